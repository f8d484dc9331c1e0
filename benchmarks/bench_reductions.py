"""Benchmark: one cross-validation fold's ridge solves and the alternatives to its reduction.

Every fold of every subject solves ``(G + a n I) P_a = B`` for the whole alpha grid
(``G`` the ``q x q`` standardised training Gram matrix, ``B`` its ``q x p`` cross-products
with the behaviour). The fit reduces ``G`` once per fold to tridiagonal form (LAPACK
``dsytrd``, ``4 q^3 / 3`` flops) and solves every alpha from it
(:func:`sharedrep.core.solver.ridge_path`). This script times, on the same matrix and
single-threaded BLAS (each subject runs on its own worker thread in the fit):

* ``ridge_path``: what the fit does (reduction, tridiagonal solves, two ``Q`` applications);
* ``dsytrd``: the reduction alone, with its rate in GFLOP/s against ``dgemm``'s on a
  ``q x q`` product (the practical peak of one core);
* ``Cholesky per alpha``: one ``potrf`` and two triangular solves per alpha instead;
* ``dsytrd_sy2sb``: LAPACK's blocked reduction to a band of width ``kd`` (all level-3 BLAS;
  the band systems would then be solved per alpha). Only its reduction is timed, and only
  when the LAPACK that SciPy loads exports it;
* ``ssytrd``: the float32 reduction.

The matrix is the correlation matrix of simulated lag-embedded activity (``q / 4`` units,
lags 0..3, ``4 q`` samples): the conditioning of a real design, not of white noise. Each
timing is the minimum of ``--repeat`` interleaved runs on a buffer touched beforehand
(page faults not counted). Nothing is asserted.

Run ``python benchmarks/bench_reductions.py`` (``q`` = 800 and 1600) or
``--q 400 800 1600 --repeat 5``.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import platform
import time

import numpy as np
import scipy
import scipy.linalg as sla


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--q", type=int, nargs="+", default=[800, 1600], help="matrix sizes")
    ap.add_argument("--alphas", type=int, default=10, help="size of the alpha grid")
    ap.add_argument("--behavior", type=int, default=12, help="right-hand sides p")
    ap.add_argument("--kd", type=int, default=32, help="band width of dsytrd_sy2sb")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved repeats (minimum used)")
    return ap.parse_args(argv)


def design_gram(q: int, seed: int = 0) -> np.ndarray:
    """Correlation matrix of simulated lag-embedded activity, Fortran order, (q, q)."""
    from sharedrep import simulate

    n_units, n_lags = max(q // 4, 1), 4
    T = 4 * q + n_lags
    d = simulate(n_subjects=1, n_samples=T, n_units=n_units, n_behavior=4, lag=2, seed=seed)
    X = d.neural[0]
    Xl = np.hstack([X[n_lags - 1 - lag : T - lag] for lag in range(n_lags)])[:, :q]
    Xl = (Xl - Xl.mean(axis=0)) / Xl.std(axis=0)
    return np.asfortranarray(Xl.T @ Xl / Xl.shape[0])


def _sy2sb_function():
    """``dsytrd_sy2sb`` of the LAPACK SciPy loads (32-bit integers), or None."""
    import scipy.linalg.cython_lapack  # noqa: F401  (loads SciPy's LAPACK)
    from threadpoolctl import threadpool_info

    paths = [i["filepath"] for i in threadpool_info() if i.get("user_api") == "blas"]
    paths.sort(key=lambda p: "scipy" not in os.path.basename(os.path.dirname(p)))
    for path in paths:
        lib = ctypes.CDLL(path)
        for name in ("scipy_dsytrd_sy2sb_", "dsytrd_sy2sb_"):
            func = getattr(lib, name, None)
            if func is not None:
                func.restype = None
                return func
    return None


def _int(v: int):
    return ctypes.byref(ctypes.c_int(v))


def sy2sb(func, a: np.ndarray, kd: int) -> int:
    """LAPACK ``dsytrd_sy2sb`` (lower) in place on the Fortran-ordered ``a``; its info."""
    q = a.shape[0]
    ab, tau = np.zeros((kd + 1, q), order="F"), np.zeros(q)
    info, query = ctypes.c_int(0), np.zeros(1)
    ptr = [x.ctypes.data_as(ctypes.c_void_p) for x in (a, ab, tau)]
    args = (b"L", _int(q), _int(kd), ptr[0], _int(q), ptr[1], _int(kd + 1), ptr[2])
    func(*args, query.ctypes.data_as(ctypes.c_void_p), _int(-1), ctypes.byref(info))
    work = np.zeros(max(int(query[0]), 1))
    func(*args, work.ctypes.data_as(ctypes.c_void_p), _int(work.size), ctypes.byref(info))
    return int(info.value)


def cholesky_path(G: np.ndarray, alphas: np.ndarray, B: np.ndarray, work: np.ndarray):
    """``(G + a I)^{-1} B`` per alpha by Cholesky in the pre-touched ``work``."""
    out = []
    for a in alphas:
        np.copyto(work, G)
        work[np.diag_indices_from(work)] += a
        c, info = sla.lapack.dpotrf(work, lower=1, overwrite_a=1, clean=0)
        out.append(sla.cho_solve((c, True), B, check_finite=False))
    return out


def time_all(q: int, args) -> dict:
    from sharedrep.core import _lapack, solver

    G = design_gram(q)
    B = np.random.default_rng(1).standard_normal((q, args.behavior))
    alphas = np.logspace(-4, 3, args.alphas)
    work = np.array(G, order="F")  # touched: copies below do not fault pages
    work32 = np.array(G, dtype=np.float32, order="F")
    lwork32 = int(sla.lapack.ssytrd_lwork(q, lower=1)[0])
    sy2sb_func = _sy2sb_function()

    def fit_path():
        np.copyto(work, G)
        solver.ridge_path(work, 1.0, alphas, B, overwrite=True)

    def dsytrd():
        np.copyto(work, G)
        _lapack.tridiagonalize(work, overwrite=True)

    def band():
        np.copyto(work, G)
        if sy2sb(sy2sb_func, work, args.kd) != 0:
            raise RuntimeError("dsytrd_sy2sb failed")

    def ssytrd():
        np.copyto(work32, G)
        sla.lapack.ssytrd(work32, lower=1, lwork=lwork32, overwrite_a=1)

    def gemm():
        np.matmul(G, G)

    cases = {
        "ridge_path (the fit's fold solve)": fit_path,
        "dsytrd": dsytrd,
        f"Cholesky per alpha ({alphas.size})": lambda: cholesky_path(G, alphas, B, work),
        f"dsytrd_sy2sb (kd = {args.kd})": band if sy2sb_func is not None else None,
        "ssytrd (float32)": ssytrd,
        "dgemm q x q (reference)": gemm,
    }
    best = {k: np.inf for k, f in cases.items() if f is not None}
    for _ in range(args.repeat):
        for name in best:
            t0 = time.perf_counter()
            cases[name]()
            best[name] = min(best[name], time.perf_counter() - t0)
    if sy2sb_func is None:
        best["dsytrd_sy2sb (not exported by this LAPACK)"] = np.nan
    return best


def main(argv=None) -> int:
    from threadpoolctl import threadpool_limits

    args = parse_args(argv)
    print(__doc__.split("\n\n")[0])
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, scipy "
        f"{scipy.__version__}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; "
        "single-threaded BLAS"
    )
    with threadpool_limits(1):
        for q in args.q:
            best = time_all(q, args)
            t_red = best["dsytrd"]
            t_gemm = best["dgemm q x q (reference)"]
            print(f"\nq = {q}: seconds (min of {args.repeat}), and as a multiple of dsytrd")
            for name, t in best.items():
                print(f"  {name:<42} {t:8.4f} s   {t / t_red:5.2f}x")
            rate = 4 * q**3 / 3 / t_red / 1e9
            peak = 2 * q**3 / t_gemm / 1e9
            print(f"  dsytrd runs at {rate:.1f} GFLOP/s, dgemm at {peak:.1f} GFLOP/s")
    print(f"\nload {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
