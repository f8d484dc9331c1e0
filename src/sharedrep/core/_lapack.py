"""LAPACK's symmetric reductions, called without holding the GIL.

The per-subject work runs on a thread per core (:func:`sharedrep.utils.parallel.thread_map`).
numpy's linear algebra releases the GIL, but SciPy's f2py wrappers of ``dsytrd`` and of
the ``eigh`` drivers (``dsyevr``) do not, so two subjects' calls would run one after the
other. Here they are called through the function pointers that
:mod:`scipy.linalg.cython_lapack` exports (SciPy's public Cython API, the same routines
SciPy links), by :mod:`ctypes`, which releases the GIL during foreign calls. When a
pointer cannot be obtained, or its signature is not the expected one, SciPy's wrappers
are used instead: the results are the same, only the threads serialise.
"""

from __future__ import annotations

import ctypes
import functools
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla

__all__ = ["Tridiagonal", "syevr_top", "sytrd", "tridiagonalize"]

_C_TYPES = {"c": "char *", "i": "int *", "d": "__pyx_t_5scipy_6linalg_13cython_lapack_d *"}


@functools.cache
def _function(name: str, args: str):
    """``scipy.linalg.cython_lapack.<name>`` as a ctypes function, or None.

    ``args`` spells the C signature, one letter per argument: ``c`` (``char *``), ``i``
    (``int *``), ``d`` (``double *``); the pointer is used only when the capsule's
    signature is exactly that.
    """
    try:
        from scipy.linalg import cython_lapack

        capsule = cython_lapack.__pyx_capi__[name]
        api = ctypes.pythonapi
        api.PyCapsule_GetName.restype = ctypes.c_char_p
        api.PyCapsule_GetName.argtypes = [ctypes.py_object]
        api.PyCapsule_GetPointer.restype = ctypes.c_void_p
        api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
        label = api.PyCapsule_GetName(capsule)
        expected = "void (" + ", ".join(_C_TYPES[a] for a in args) + ")"
        if label is None or label.decode() != expected:
            return None
        address = api.PyCapsule_GetPointer(capsule, label)
    except (ImportError, AttributeError, KeyError, ValueError, TypeError):
        return None
    if not address:
        return None
    types = [ctypes.c_char_p if a == "c" else ctypes.c_void_p for a in args]
    return ctypes.CFUNCTYPE(None, *types)(address)


def _sytrd_pointer():
    return _function("dsytrd", "cididdddii")


def _ormtr_pointer():
    return _function("dormtr", "ccciididdidii")


def _syevr_pointer():
    return _function("dsyevr", "cccididdiididdiidiiii")


def _ptr(x: np.ndarray):
    return x.ctypes.data_as(ctypes.c_void_p)


def _int(v: int):
    return ctypes.byref(ctypes.c_int(v))


def _sytrd_scipy(a: np.ndarray):
    q = a.shape[0]
    lwork = int(sla.lapack.dsytrd_lwork(q, lower=1)[0])
    c, d, e, tau, info = sla.lapack.dsytrd(a, lower=1, lwork=max(lwork, q))
    return c, d, e, tau, int(info)


def sytrd(a: np.ndarray, *, release_gil: bool = True):
    """Householder reduction ``A = Q T Q'`` of a symmetric matrix (its lower triangle).

    Parameters
    ----------
    a : ndarray (q, q)
        Symmetric matrix; only the lower triangle is read. Not modified.
    release_gil : bool, default=True
        Call LAPACK without holding the GIL (falls back to SciPy's wrapper, which holds
        it, when the Cython LAPACK pointer is unavailable).

    Returns
    -------
    c : ndarray (q, q), Fortran order
        LAPACK's output: below the first subdiagonal, the Householder reflectors of ``Q``.
    d : ndarray (q,)
        Diagonal of ``T``.
    e : ndarray (q - 1,)
        Subdiagonal of ``T``.
    tau : ndarray (q - 1,)
        Scalar factors of the reflectors.
    info : int
        LAPACK's status (0 on success).

    Notes
    -----
    ``Q = H(1) ... H(q-1)``; apply it with LAPACK ``ormqr`` on rows ``1..q-1`` and the
    reflectors ``c[1:, :-1]`` (what LAPACK's ``ormtr`` does for ``uplo="L"``).
    """
    a = np.asarray(a, dtype=np.float64)
    q = a.shape[0]
    func = _sytrd_pointer() if release_gil and q > 1 else None
    if func is None:
        return _sytrd_scipy(a)
    c = np.array(a, dtype=np.float64, order="F", copy=True)
    return c, *_dsytrd(func, c)


def _dsytrd(func, c: np.ndarray):
    """LAPACK ``dsytrd`` (``uplo="L"``) in place on the Fortran-ordered ``c`` through the
    pointer ``func`` (workspace queried first); returns ``(d, e, tau, info)``."""
    q = c.shape[0]
    d, e, tau = np.empty(q), np.empty(q - 1), np.empty(q - 1)
    info, query = ctypes.c_int(0), np.empty(1)
    args = (b"L", _int(q), _ptr(c), _int(q), _ptr(d), _ptr(e), _ptr(tau))
    func(*args, _ptr(query), _int(-1), ctypes.byref(info))
    work = np.empty(max(int(query[0]), q))
    func(*args, _ptr(work), _int(work.size), ctypes.byref(info))
    return d, e, tau, int(info.value)


_TSIZE = 65 * 64  # workspace of ormqr's block reflector (LAPACK: LDT * NBMAX)


@dataclass
class Tridiagonal:
    """A Householder reduction ``A = Q T Q'`` of a symmetric matrix (:func:`tridiagonalize`).

    Attributes
    ----------
    c : ndarray (q, q), Fortran order
        LAPACK's output holding the reflectors of ``Q`` (below the subdiagonal).
    d : ndarray (q,)
        Diagonal of ``T``.
    e : ndarray (q - 1,)
        Off-diagonal of ``T``.
    tau : ndarray (q - 1,)
        Scalar factors of the reflectors.
    info : int
        LAPACK's status (0 on success).
    """

    c: np.ndarray
    d: np.ndarray
    e: np.ndarray
    tau: np.ndarray
    info: int

    def apply_q(self, x: np.ndarray, *, transpose: bool = False) -> np.ndarray:
        """``Q x`` (or ``Q' x`` with ``transpose``) for ``x`` of shape (q, m); a new
        Fortran-ordered array (``x`` is not modified). LAPACK ``ormtr``, without the GIL
        when its pointer is available."""
        out = np.array(x, dtype=np.float64, order="F", copy=True)
        q, m = out.shape
        if q < 2 or m == 0:
            return out
        trans = b"T" if transpose else b"N"
        func = _ormtr_pointer()
        if func is None:  # SciPy's wrapper: ormtr is ormqr on rows 1..q-1 (uplo L)
            return _ormtr_scipy(self, out, trans.decode())
        info, query = ctypes.c_int(0), np.empty(1)
        args = (b"L", b"L", trans, _int(q), _int(m), _ptr(self.c), _int(q))
        args += (_ptr(self.tau), _ptr(out), _int(q))
        func(*args, _ptr(query), _int(-1), ctypes.byref(info))
        # room for blocks of 64 reflectors (LAPACK's query may ask for less, and slower)
        work = np.empty(max(int(query[0]), 64 * m + _TSIZE))
        func(*args, _ptr(work), _int(work.size), ctypes.byref(info))
        if info.value != 0:  # never expected: arguments are checked above
            raise RuntimeError(f"LAPACK dormtr failed (info = {info.value})")
        return out


def _ormtr_scipy(red: Tridiagonal, out: np.ndarray, trans: str) -> np.ndarray:
    """``ormtr`` through SciPy's ``dormqr`` (``uplo="L"``: rows ``1..q-1``, reflectors
    ``c[1:, :-1]``)."""
    m = out.shape[1]
    reflectors = red.c[1:, :-1]
    out[1:], _, info = sla.lapack.dormqr("L", trans, reflectors, red.tau, out[1:], lwork=64 * m)
    if info != 0:
        raise RuntimeError(f"LAPACK dormqr failed (info = {info})")
    return out


def tridiagonalize(a: np.ndarray, *, overwrite: bool = False, release_gil: bool = True):
    """Householder reduction ``A = Q T Q'`` of a symmetric matrix, as a :class:`Tridiagonal`.

    Parameters
    ----------
    a : ndarray (q, q)
        Symmetric matrix; only its lower triangle is read.
    overwrite : bool, default=False
        Reduce ``a`` in its own memory when it is a Fortran-ordered, writeable float64
        array (no ``q x q`` copy): ``a`` is then destroyed. Otherwise ``a`` is copied.
    release_gil : bool, default=True
        As for :func:`sytrd`.
    """
    a = np.asarray(a)
    q = a.shape[0]
    func = _sytrd_pointer() if release_gil and q > 1 else None
    if func is None or _ormtr_pointer() is None:
        c, d, e, tau, info = sytrd(a, release_gil=release_gil)
        return Tridiagonal(c, d, e, tau, info)
    if overwrite and a.dtype == np.float64 and a.flags.f_contiguous and a.flags.writeable:
        c = a
    else:
        c = np.array(a, dtype=np.float64, order="F", copy=True)
    d, e, tau, info = _dsytrd(func, c)
    return Tridiagonal(c, d, e, tau, info)


def syevr_top(a: np.ndarray, m: int, *, release_gil: bool = True):
    """The ``m`` largest eigenpairs of a symmetric matrix (LAPACK ``dsyevr``, lower triangle).

    Parameters
    ----------
    a : ndarray (q, q)
        Symmetric matrix; only the lower triangle is read. Not modified.
    m : int
        Number of eigenpairs, ``1 <= m <= q``.
    release_gil : bool, default=True
        As for :func:`sytrd`.

    Returns
    -------
    w : ndarray (m,)
        Eigenvalues in increasing order.
    v : ndarray (q, m)
        Orthonormal eigenvectors (columns).
    """
    a = np.asarray(a, dtype=np.float64)
    q = a.shape[0]
    if not 1 <= m <= q:
        raise ValueError(f"m must be in 1..{q}; got {m}")
    func = _syevr_pointer() if release_gil else None
    if func is None:
        return sla.eigh(a, subset_by_index=[q - m, q - 1], driver="evr")
    c = np.array(a, dtype=np.float64, order="F", copy=True)
    w, z = np.empty(q), np.empty((q, m), order="F")
    isuppz = np.empty(2 * max(m, 1), dtype=np.intc)
    found, info = ctypes.c_int(0), ctypes.c_int(0)
    zero = ctypes.byref(ctypes.c_double(0.0))
    args = (b"V", b"I", b"L", _int(q), _ptr(c), _int(q), zero, zero, _int(q - m + 1), _int(q))
    args += (zero, ctypes.byref(found), _ptr(w), _ptr(z), _int(q), _ptr(isuppz))
    work, iwork = np.empty(1), np.empty(1, dtype=np.intc)
    func(*args, _ptr(work), _int(-1), _ptr(iwork), _int(-1), ctypes.byref(info))
    work = np.empty(max(int(work[0]), 26 * q))
    iwork = np.empty(max(int(iwork[0]), 10 * q), dtype=np.intc)
    func(*args, _ptr(work), _int(work.size), _ptr(iwork), _int(iwork.size), ctypes.byref(info))
    if info.value != 0 or found.value != m:  # never expected for a finite symmetric matrix
        return sla.eigh(a, subset_by_index=[q - m, q - 1], driver="evr")
    return w[:m].copy(), np.ascontiguousarray(z)
