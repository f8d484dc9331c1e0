"""LAPACK's symmetric reductions, called without holding the GIL.

The per-subject work runs on a thread per core (:func:`sharedrep.utils.parallel.thread_map`).
numpy's linear algebra releases the GIL, but SciPy's f2py wrappers of ``dsytrd`` and of
the ``eigh`` drivers (``dsyevr``) do not, so two subjects' calls would run one after the
other. Here they are called through the function pointers that
:mod:`scipy.linalg.cython_lapack` exports (SciPy's public Cython API, the same routines
SciPy links), by :mod:`ctypes`, which releases the GIL during foreign calls. When a
pointer cannot be obtained, or its signature is not the expected one, SciPy's wrappers
are used instead: the results are the same, only the threads serialise.

Wide matrices (``q >= 800``) are reduced to a band of 32 subdiagonals instead of a
tridiagonal matrix (LAPACK ``dsytrd_sy2sb``: all level-3 BLAS, where ``dsytrd`` spends half
its flops in matrix-vector products). SciPy does not wrap that routine; it is taken from the
BLAS library SciPy loaded, checked once on a small matrix, and the tridiagonal reduction is
used wherever it is missing.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla

__all__ = [
    "Banded",
    "Tridiagonal",
    "band_reduce",
    "reduce_symmetric",
    "syevr_top",
    "sytrd",
    "tridiagonalize",
]

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


def _ormqr_pointer():
    return _function("dormqr", "cciiididdidii")


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
        Fortran-ordered array (``x`` is not modified). LAPACK ``ormtr`` (``ormqr`` on rows
        ``1..q-1``), without the GIL when its pointer is available."""
        return apply_reflectors(self.c, self.tau, 1, x, transpose=transpose)

    def solve(self, shift: float, rhs: np.ndarray) -> np.ndarray:
        """``(T + shift I)^{-1} rhs`` for ``rhs`` of shape (q, m): LAPACK ``ptsv``, or a
        banded LU with pivoting where ``T + shift I`` is not numerically positive definite."""
        # T + shift I is positive definite in exact arithmetic when shift > 0 and A >= 0
        _, _, x, info = sla.lapack.dptsv(self.d + shift, self.e, rhs)
        if info == 0:
            return x
        return _banded_lu(np.vstack([self.d, np.append(self.e, 0.0)]), shift, rhs)


def _banded_lu(lower: np.ndarray, shift: float, rhs: np.ndarray) -> np.ndarray:
    """``(M + shift I)^{-1} rhs`` by a banded LU with pivoting
    (:func:`scipy.linalg.solve_banded`), for symmetric ``M`` given in LAPACK's lower band
    storage ``lower`` (kd + 1, q): ``lower[i - j, j] = M[i, j]``."""
    kd, q = lower.shape[0] - 1, lower.shape[1]
    full = np.zeros((2 * kd + 1, q))
    full[kd:] = lower
    full[kd] += shift
    for d in range(1, kd + 1):  # M[j - d, j] = M[j, j - d] = lower[d, j - d]
        full[kd - d, d:] = lower[d, : q - d]
    return sla.solve_banded((kd, kd), full, rhs)


def apply_reflectors(
    c: np.ndarray, tau: np.ndarray, offset: int, x: np.ndarray, *, transpose: bool = False
) -> np.ndarray:
    """``Q x`` (or ``Q' x``) for the reflectors of a symmetric reduction (LAPACK ``ormqr``).

    Parameters
    ----------
    c : ndarray (q, q), Fortran order
        The reduction's output: reflector ``j`` has a unit entry in row ``j + offset`` and
        its other entries in ``c[j + offset + 1:, j]``.
    tau : ndarray (>= q - offset,)
        The reflectors' scalar factors.
    offset : int
        1 for :class:`Tridiagonal`, the band width for :class:`Banded`.
    x : ndarray (q, m)
        Not modified.

    Returns
    -------
    ndarray (q, m), Fortran order
    """
    out = np.array(x, dtype=np.float64, order="F", copy=True)
    q, m = out.shape
    k = q - offset
    if k < 1 or m == 0:
        return out
    trans = b"T" if transpose else b"N"
    func = _ormqr_pointer()
    if func is None or not (c.flags.f_contiguous and c.dtype == np.float64):
        return _ormqr_scipy(c, tau, offset, out, trans.decode())
    rows, cols = _ptr_at(c, offset), _ptr_at(out, offset)
    info, query = ctypes.c_int(0), np.empty(1)
    args = (b"L", trans, _int(k), _int(m), _int(k), rows, _int(q), _ptr(tau), cols, _int(q))
    func(*args, _ptr(query), _int(-1), ctypes.byref(info))
    # room for blocks of 64 reflectors (LAPACK's query may ask for less, and slower)
    work = np.empty(max(int(query[0]), 64 * m + _TSIZE))
    func(*args, _ptr(work), _int(work.size), ctypes.byref(info))
    if info.value != 0:  # never expected: arguments are checked above
        raise RuntimeError(f"LAPACK dormqr failed (info = {info.value})")
    return out


def _ptr_at(x: np.ndarray, row: int):
    """Pointer to ``x[row, 0]`` of a Fortran-ordered float64 array."""
    return ctypes.c_void_p(x.ctypes.data + 8 * row)


def _ormqr_scipy(c, tau, offset: int, out: np.ndarray, trans: str) -> np.ndarray:
    """:func:`apply_reflectors` through SciPy's ``dormqr`` wrapper (holds the GIL)."""
    k, m = c.shape[0] - offset, out.shape[1]
    reflectors = c[offset:, :k]
    out[offset:], _, info = sla.lapack.dormqr(
        "L", trans, reflectors, tau[:k], out[offset:], lwork=64 * m
    )
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
    if func is None or _ormqr_pointer() is None:
        c, d, e, tau, info = sytrd(a, release_gil=release_gil)
        return Tridiagonal(c, d, e, tau, info)
    c = _own(a, overwrite)
    d, e, tau, info = _dsytrd(func, c)
    return Tridiagonal(c, d, e, tau, info)


BAND_MIN_Q = 800  # from this size on the band reduction is used (docs/benchmarks.md §1)
BAND_WIDTH = 32


@dataclass
class Banded:
    """A reduction ``A = Q B Q'`` of a symmetric matrix to a band (:func:`band_reduce`).

    Attributes
    ----------
    c : ndarray (q, q), Fortran order
        LAPACK's output: below the ``kd``-th subdiagonal, the reflectors of ``Q``.
    ab : ndarray (kd + 1, q), Fortran order
        ``B`` in LAPACK's lower band storage: ``ab[i - j, j] = B[i, j]`` for
        ``j <= i <= j + kd``.
    tau : ndarray (q,)
        Scalar factors of the reflectors (the first ``q - kd`` are used).
    kd : int
        Number of subdiagonals of ``B``.
    info : int
        LAPACK's status (0 on success).
    """

    c: np.ndarray
    ab: np.ndarray
    tau: np.ndarray
    kd: int
    info: int

    def apply_q(self, x: np.ndarray, *, transpose: bool = False) -> np.ndarray:
        """``Q x`` (or ``Q' x`` with ``transpose``) for ``x`` of shape (q, m); a new
        Fortran-ordered array. LAPACK ``ormqr`` on rows ``kd..q-1``."""
        return apply_reflectors(self.c, self.tau, self.kd, x, transpose=transpose)

    def solve(self, shift: float, rhs: np.ndarray) -> np.ndarray:
        """``(B + shift I)^{-1} rhs`` for ``rhs`` of shape (q, m): banded Cholesky (LAPACK
        ``pbsv``, ``O(q kd^2)``), or a banded LU with pivoting where ``B + shift I`` is not
        numerically positive definite."""
        ab = self.ab.copy(order="F")
        ab[0] += shift
        _, x, info = sla.lapack.dpbsv(ab, rhs, lower=1)
        if info == 0:
            return x
        return _banded_lu(self.ab, shift, rhs)

    def band_matrix(self) -> np.ndarray:
        """``B`` as a dense (q, q) array (for checks)."""
        q = self.ab.shape[1]
        band = np.zeros((q, q))
        for d in range(self.kd + 1):
            j = np.arange(q - d)
            band[j + d, j] = band[j, j + d] = self.ab[d, : q - d]
        return band


def band_reduce(a: np.ndarray, kd: int = BAND_WIDTH, *, overwrite: bool = False):
    """Reduce a symmetric matrix to a band, ``A = Q B Q'`` (LAPACK ``dsytrd_sy2sb``).

    Parameters
    ----------
    a : ndarray (q, q)
        Symmetric matrix; only its lower triangle is read.
    kd : int, default=32
        Number of subdiagonals of ``B``, ``1 <= kd < q``.
    overwrite : bool, default=False
        As for :func:`tridiagonalize`.

    Returns
    -------
    Banded or None
        None when the BLAS library SciPy loaded does not provide the routine.
    """
    func = _sy2sb_pointer()
    if func is None:
        return None
    return _band_reduce(func, _own(a, overwrite), kd)


def _band_reduce(func, c: np.ndarray, kd: int) -> Banded:
    """``dsytrd_sy2sb`` (``uplo="L"``) in place on the Fortran-ordered ``c``.

    Integers are passed as 64-bit values below 2^31: read correctly whether the library
    takes 32-bit (little-endian) or 64-bit integers.
    """
    q = c.shape[0]
    if not 1 <= kd < q:
        raise ValueError(f"kd must be in 1..{q - 1}; got {kd}")
    ab, tau = np.zeros((kd + 1, q), order="F"), np.zeros(q)
    ints = {k: np.array([v], dtype=np.int64) for k, v in dict(n=q, kd=kd, ldab=kd + 1).items()}
    lwork, info, query = np.array([-1], dtype=np.int64), np.zeros(1, dtype=np.int64), np.zeros(1)
    head = (_ptr(ints["n"]), _ptr(ints["kd"]), _ptr(c), _ptr(ints["n"]))
    head += (_ptr(ab), _ptr(ints["ldab"]), _ptr(tau))
    func(b"L", *head, _ptr(query), _ptr(lwork), _ptr(info))
    work = np.zeros(max(int(query[0]), q * kd, 1))
    lwork[0], info[0] = work.size, 0
    func(b"L", *head, _ptr(work), _ptr(lwork), _ptr(info))
    return Banded(c, ab, tau, kd, int(info[0]))


def _own(a: np.ndarray, overwrite: bool) -> np.ndarray:
    """``a`` itself when it may be destroyed in place (Fortran, writeable float64), else a
    Fortran-ordered float64 copy."""
    a = np.asarray(a)
    if overwrite and a.dtype == np.float64 and a.flags.f_contiguous and a.flags.writeable:
        return a
    return np.array(a, dtype=np.float64, order="F", copy=True)


@functools.cache
def _sy2sb_pointer():
    """``dsytrd_sy2sb`` of a BLAS library SciPy loaded (SciPy's own first), or None.

    Used only after it reduces a small matrix correctly (checked once per process).
    """
    if sys.byteorder != "little" or _ormqr_pointer() is None:
        return None
    for lib in _blas_libraries():
        for name in ("scipy_dsytrd_sy2sb_", "dsytrd_sy2sb_"):
            func = getattr(lib, name, None)
            if func is not None:
                func.restype = None
                if _band_reduces(func):
                    return func
    return None


def _blas_libraries() -> list:
    """The BLAS/LAPACK libraries loaded in this process (SciPy's first), as ctypes
    libraries; empty when they cannot be listed."""
    try:
        import scipy.linalg.cython_lapack  # noqa: F401  (loads SciPy's LAPACK)
        from threadpoolctl import threadpool_info

        paths = [i["filepath"] for i in threadpool_info() if i.get("user_api") == "blas"]
    except Exception:  # noqa: BLE001 - any failure: the tridiagonal reduction is used
        return []
    paths.sort(key=lambda path: "scipy" not in os.path.basename(os.path.dirname(path)))
    libs = []
    for path in paths:
        try:
            libs.append(ctypes.CDLL(path))
        except OSError:
            continue
    return libs


def _band_reduces(func) -> bool:
    """Whether ``func`` reduces a small symmetric matrix to ``Q B Q'`` correctly."""
    q, kd = 12, 3
    rng = np.random.default_rng(0)
    a = rng.standard_normal((q, q))
    a = a + a.T
    red = _band_reduce(func, np.asfortranarray(a), kd)
    if red.info != 0:
        return False
    band = red.band_matrix()
    qmat = red.apply_q(np.eye(q))
    return bool(np.allclose(qmat @ band @ qmat.T, a, rtol=0, atol=1e-12 * np.abs(a).max()))


def reduce_symmetric(a: np.ndarray, *, overwrite: bool = False):
    """``A = Q M Q'`` with ``M`` banded (:class:`Banded`, from ``q >= 800`` when available)
    or tridiagonal (:class:`Tridiagonal`); both offer ``apply_q`` and ``solve``.

    Parameters
    ----------
    a : ndarray (q, q)
        Symmetric matrix; only its lower triangle is read.
    overwrite : bool, default=False
        As for :func:`tridiagonalize`.
    """
    q = np.shape(a)[0]
    if q >= max(BAND_MIN_Q, 2):
        red = band_reduce(a, min(BAND_WIDTH, q - 1), overwrite=overwrite)
        if red is not None:
            return red
    return tridiagonalize(a, overwrite=overwrite)


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
