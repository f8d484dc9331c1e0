"""LAPACK's symmetric tridiagonal reduction, called without holding the GIL.

The per-subject solves run on a thread per core (:func:`sharedrep.solver.thread_map`).
numpy's linear algebra and most BLAS wrappers release the GIL, but SciPy's f2py wrappers
of ``dsytrd`` (and of the ``eigh`` drivers built on it) do not, so two subjects' reductions
would run one after the other. Here ``dsytrd`` is called through the function pointer
that :mod:`scipy.linalg.cython_lapack` exports (its public Cython API, the same routine
SciPy links), by :mod:`ctypes`, which releases the GIL during foreign calls. When that
pointer cannot be obtained, or its signature is not the expected one, the f2py wrapper
is used instead: the results are the same, only the threads serialise.
"""

from __future__ import annotations

import ctypes
import functools

import numpy as np
import scipy.linalg as sla

__all__ = ["sytrd"]

_D = "__pyx_t_5scipy_6linalg_13cython_lapack_d *"
_SYTRD_SIGNATURE = f"void (char *, int *, {_D}, int *, {_D}, {_D}, {_D}, {_D}, int *, int *)"


@functools.cache
def _sytrd_pointer():
    """``dsytrd`` of ``scipy.linalg.cython_lapack`` as a ctypes function, or None."""
    try:
        from scipy.linalg import cython_lapack

        capsule = cython_lapack.__pyx_capi__["dsytrd"]
        api = ctypes.pythonapi
        api.PyCapsule_GetName.restype = ctypes.c_char_p
        api.PyCapsule_GetName.argtypes = [ctypes.py_object]
        api.PyCapsule_GetPointer.restype = ctypes.c_void_p
        api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
        name = api.PyCapsule_GetName(capsule)
        if name is None or name.decode() != _SYTRD_SIGNATURE:
            return None
        address = api.PyCapsule_GetPointer(capsule, name)
    except (ImportError, AttributeError, KeyError, ValueError, TypeError):
        return None
    if not address:
        return None
    ptr = ctypes.c_void_p
    return ctypes.CFUNCTYPE(None, ctypes.c_char_p, *([ptr] * 9))(address)


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
    d = np.empty(q)
    e = np.empty(q - 1)
    tau = np.empty(q - 1)
    n, info = ctypes.c_int(q), ctypes.c_int(0)
    ptrs = [x.ctypes.data_as(ctypes.c_void_p) for x in (c, d, e, tau)]
    query, lwork = np.empty(1), ctypes.c_int(-1)
    args = (b"L", ctypes.byref(n), ptrs[0], ctypes.byref(n), *ptrs[1:])
    func(*args, query.ctypes.data_as(ctypes.c_void_p), ctypes.byref(lwork), ctypes.byref(info))
    lwork = ctypes.c_int(max(int(query[0]), q))
    work = np.empty(lwork.value)
    func(*args, work.ctypes.data_as(ctypes.c_void_p), ctypes.byref(lwork), ctypes.byref(info))
    return c, d, e, tau, int(info.value)
