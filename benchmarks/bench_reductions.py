"""Benchmark: one cross-validation fold's ridge solves and the alternatives to its reduction.

Every fold of every subject solves ``(G + a n I) P_a = B`` for the whole alpha grid
(``G`` the ``q x q`` standardised training Gram matrix, ``B`` its ``q x p`` cross-products
with the behaviour). The fit reduces ``G`` once per fold and solves every alpha from the
reduced matrix (:func:`sharedrep.core.solver.ridge_path`): to tridiagonal form (LAPACK
``dsytrd``, ``4 q^3 / 3`` flops) below ``q = 800``, to a band of 32 subdiagonals (LAPACK
``dsytrd_sy2sb``, level-3 BLAS) from ``q = 800`` on. This script times, on the same matrix
and single-threaded BLAS (each subject runs on its own worker thread in the fit):

* ``fold solve, tridiagonal route`` and ``fold solve, band route``: ``ridge_path`` made to
  take each route (reduction, per-alpha solves, two ``Q`` applications); the fit takes the
  one marked ``<- fit``;
* ``dsytrd``: the tridiagonal reduction alone, with its rate in GFLOP/s against
  ``dgemm``'s on a ``q x q`` product (the practical peak of one core);
* ``Cholesky per alpha``: one ``potrf`` and two triangular solves per alpha instead;
* ``dsytrd_sy2sb``: the band reduction alone (only when the BLAS library SciPy loads
  exports it);
* ``ssytrd``: the float32 tridiagonal reduction.

The matrix is the correlation matrix of simulated lag-embedded activity (``q / 4`` units,
lags 0..3, ``4 q`` samples): the conditioning of a real design, not of white noise. Each
timing is the minimum of ``--repeat`` interleaved runs on a buffer touched beforehand
(page faults not counted). Nothing is asserted.

Run ``python benchmarks/bench_reductions.py`` (``q`` = 800 and 1600) or
``--q 400 800 1600 --repeat 5``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import time

import numpy as np
import scipy
import scipy.linalg as sla

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_fit import cpu_model  # noqa: E402


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


@contextlib.contextmanager
def band_from(q: int):
    """Make :func:`sharedrep.core.solver.ridge_path` reduce to a band from size ``q`` on."""
    from sharedrep.core import _lapack

    before, _lapack.BAND_MIN_Q = _lapack.BAND_MIN_Q, q
    try:
        yield
    finally:
        _lapack.BAND_MIN_Q = before


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
    has_band = _lapack.band_reduce(G[:8, :8], 2) is not None

    def fold_solve(band_min_q):
        def run():
            np.copyto(work, G)
            with band_from(band_min_q):
                solver.ridge_path(work, 1.0, alphas, B, overwrite=True)

        return run

    def dsytrd():
        np.copyto(work, G)
        _lapack.tridiagonalize(work, overwrite=True)

    def band():
        np.copyto(work, G)
        if _lapack.band_reduce(work, args.kd, overwrite=True).info != 0:
            raise RuntimeError("dsytrd_sy2sb failed")

    def ssytrd():
        np.copyto(work32, G)
        sla.lapack.ssytrd(work32, lower=1, lwork=lwork32, overwrite_a=1)

    def gemm():
        np.matmul(G, G)

    fit_band = has_band and q >= _lapack.BAND_MIN_Q
    cases = {
        "fold solve, tridiagonal route" + ("" if fit_band else " <- fit"): fold_solve(10**9),
        "fold solve, band route" + (" <- fit" if fit_band else ""): fold_solve(0)
        if has_band
        else None,
        "dsytrd": dsytrd,
        f"Cholesky per alpha ({alphas.size})": lambda: cholesky_path(G, alphas, B, work),
        f"dsytrd_sy2sb (kd = {args.kd})": band if has_band else None,
        "ssytrd (float32)": ssytrd,
        "dgemm q x q (reference)": gemm,
    }
    best = {k: np.inf for k, f in cases.items() if f is not None}
    for _ in range(args.repeat):
        for name in best:
            t0 = time.perf_counter()
            cases[name]()
            best[name] = min(best[name], time.perf_counter() - t0)
    if not has_band:
        best["dsytrd_sy2sb (not exported by this LAPACK)"] = np.nan
    return best


def main(argv=None) -> int:
    from threadpoolctl import threadpool_limits

    args = parse_args(argv)
    print(__doc__.split("\n\n")[0])
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, scipy "
        f"{scipy.__version__}, {os.cpu_count()} CPUs ({cpu_model()}), "
        f"load {os.getloadavg()[0]:.2f}; single-threaded BLAS"
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
