"""Scaling of a full cross-validated ShaReD fit with subjects, units, samples and lags.

For every problem of a grid the script times

* the **lower bound**: one pass forming every subject's Gram matrix ``X~' X~`` of its
  lag-embedded activity with numpy (the floating-point work any exact fit must do;
  building the shifted copies is not timed), as in ``bench_fit.py``;
* the **full CV fit**: ``ShaReD(n_shared="auto", alpha=None, cv=5, 10 alphas,
  max_shared=8, lags=L).fit(...)`` with the private components (``--no-private`` to skip);

and prints their ratio (issue target: <= 2), the peak memory of the fit measured with
``tracemalloc`` in a separate, untimed fit (numpy allocations; the input data are not
counted since they exist before the fit) next to the size of the data, and, per axis of
the grid, the fitted exponent ``b`` of ``time ~ size^b`` (least squares on logs).

It then fits a cost model to every measured point (the flop counts of the two stages,
see :func:`cost_terms`; ``a`` from the Gram passes, the other terms by non-negative least
squares on the rest of the fit time, see :func:`fit_cost_model`)::

    time   ~ a * S * T * q^2  +  b * S * n_folds * q^3  +  c * S  +  d
    memory ~ e * S * q^2  +  f * S * T  +  g

and extrapolates it, **as an extrapolation** (nothing is run at that size), to 200
subjects x 1000 units x 1e6 samples (lags 0 and 0..3) on a Dask cluster: the core-hours
of the fit, the time of one subject's task (the wall-time floor: a subject is one task),
the wall time on clusters of 50 and 200 single-core workers, and the memory of one worker
and of the driver (the driver bound asserted by ``tests/core/test_dask_memory.py``:
statistics stay on the workers, the driver holds ``O(q (p + k))`` numbers and the
bookkeeping of about six tasks per fold per subject).

The grid varies one factor at a time around a base problem (four points per axis of
subjects, units and samples). ``--quick`` (base 4 subjects x 100 units x 5,000 samples,
lags 0) finishes in under two minutes on 2 cores; the default
grid (base 20 x 200 x 20,000; subjects 1..200, units 10..1000, samples 1e3..1e6, lags
0..5) needs a large machine: problems whose data exceed ``--max-gb`` are skipped.

Nothing is asserted; no test runs this script. See docs/benchmarks.md for results.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import sys
import time
import tracemalloc
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_fit import gram_pass, machine_info  # noqa: E402

QUICK = dict(
    base=dict(subjects=4, units=100, samples=5000, lags=0),
    subjects=[2, 4, 8, 16],
    units=[50, 100, 200, 300],
    samples=[2500, 5000, 10000, 20000],
    lags=[0, 1],
)
FULL = dict(
    base=dict(subjects=20, units=200, samples=20000, lags=0),
    subjects=[1, 10, 50, 200],
    units=[10, 100, 300, 1000],
    samples=[1000, 10000, 100000, 1000000],
    lags=[0, 2, 5],
)
AXES = ("subjects", "units", "samples", "lags")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--quick", action="store_true", help="small grid (about a minute)")
    ap.add_argument(
        "--base",
        type=int,
        nargs=4,
        metavar=("S", "N", "T", "L"),
        default=None,
        help="base problem: subjects, units, samples, lags (default: the mode's)",
    )
    for axis in AXES:
        ap.add_argument(
            f"--{axis}",
            type=int,
            nargs="+",
            default=None,
            help=f"values of {axis} (default: the grid of the mode)",
        )
    ap.add_argument("--behavior", type=int, default=12, help="behaviour features p")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--alphas", type=int, default=10, help="size of the log alpha grid")
    ap.add_argument("--max-shared", type=int, default=8)
    ap.add_argument("--trial-length", type=int, default=100)
    ap.add_argument("--no-private", action="store_true", help="skip the private components")
    ap.add_argument("--no-memory", action="store_true", help="skip the tracemalloc fit")
    ap.add_argument("--repeat", type=int, default=3, help="Gram passes timed (min used)")
    ap.add_argument(
        "--fit-repeat", type=int, default=None, help="fits timed (min used; --quick: 2, else 1)"
    )
    ap.add_argument("--threads", type=int, default=None, help="BLAS threads (threadpoolctl)")
    ap.add_argument("--max-gb", type=float, default=8.0, help="skip larger problems")
    ap.add_argument(
        "--backend",
        default="numpy",
        choices=["numpy", "dask", "torch"],
        help="dask: a private LocalCluster (started before timing)",
    )
    ap.add_argument("--device", default="cpu", help="torch device for --backend torch")
    ap.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.fit_repeat is None:
        args.fit_repeat = 2 if args.quick else 1
    return args


def problems(args):
    grid = QUICK if args.quick else FULL
    base = grid["base"] if args.base is None else dict(zip(AXES, args.base, strict=True))
    out, seen = [], set()
    for axis in AXES:
        values = getattr(args, axis) or grid[axis]
        for v in values:
            prob = dict(base, **{axis: v})
            key = tuple(prob[a] for a in AXES)
            out.append((axis, prob, key in seen))
            seen.add(key)
    return out


def data_gb(prob, p):
    return prob["subjects"] * prob["samples"] * (prob["units"] + p) * 8 / 1e9


def make_model(args, prob):
    from sharedrep import ShaReD

    return ShaReD(
        n_shared="auto",
        alpha=None,
        lags=prob["lags"],
        cv=args.folds,
        random_state=args.seed,
        alphas=np.logspace(-4, 3, args.alphas),
        max_shared=min(args.max_shared, args.behavior),
        private=not args.no_private,
        backend=args.backend,
        device=args.device,
        dtype=args.dtype,
    )


def run_problem(args, prob):
    from sharedrep import simulate

    d = simulate(
        n_subjects=prob["subjects"],
        n_samples=prob["samples"],
        n_units=prob["units"],
        n_behavior=args.behavior,
        n_shared=2,
        lag=min(prob["lags"], 2),
        trial_length=args.trial_length,
        seed=args.seed,
    )
    n_lags = prob["lags"] + 1
    gram_pass(d.neural[:1], n_lags)  # warm-up
    t_gram = min(gram_pass(d.neural, n_lags) for _ in range(args.repeat))
    model = make_model(args, prob)
    fits = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if args.backend != "numpy":  # start the cluster / initialise the device
            model.fit(d.neural[:1], d.behavior[:1], groups=d.groups[:1])
        for _ in range(args.fit_repeat):
            gc.collect()
            t0 = time.perf_counter()
            model.fit(d.neural, d.behavior, groups=d.groups)
            fits.append(time.perf_counter() - t0)
        peak = float("nan")
        if not args.no_memory:
            gc.collect()
            tracemalloc.start()
            try:
                make_model(args, prob).fit(d.neural, d.behavior, groups=d.groups)
                peak = tracemalloc.get_traced_memory()[1] / 1e6
            finally:
                tracemalloc.stop()
    return t_gram, min(fits), peak, model


def exponent(sizes, times):
    sizes, times = np.asarray(sizes, float), np.asarray(times, float)
    ok = (sizes > 0) & (times > 0)
    if ok.sum() < 2 or np.unique(sizes[ok]).size < 2:
        return float("nan")
    return float(np.polyfit(np.log(sizes[ok]), np.log(times[ok]), 1)[0])


TARGET = dict(subjects=200, units=1000, samples=1_000_000)
LATENCY_S = 0.05  # one driver <-> workers round trip on a cluster (assumed, not measured)
ROUNDS_PER_FOLD = 3  # gathers per fold: training behaviour, moments, held-out errors


def cost_terms(S, N, T, n_lags, n_folds):
    """Flop counts of the fit's stages for a problem (``q = N * n_lags`` columns).

    Returns ``[S T q^2 (data pass), S n_folds q^3 (fold solves), S (per subject), 1]``.
    """
    q = float(N) * n_lags
    return np.array([S * T * q**2, S * n_folds * q**3, float(S), 1.0])


def fit_cost_model(rows, n_folds):
    """Coefficients of :func:`cost_terms` from the measured points (non-negative).

    The data-pass coefficient ``a`` comes from the Gram-pass times alone (the same
    ``S T q^2`` products, measured apart from everything else); the other three from the
    rest of the fit time, ``fit - a S T q^2``, by non-negative least squares on errors
    relative to the fit time. Returns ``(coefficients (4,), max relative error of the
    fit times)``.
    """
    from scipy.optimize import nnls

    terms = np.array(
        [
            cost_terms(p["subjects"], p["units"], p["samples"], p["lags"] + 1, n_folds)
            for _, p, _ in rows
        ]
    )
    gram = np.array([r[2][0] for r in rows])
    times = np.array([r[2][1] for r in rows])
    a = float(np.sum(terms[:, 0] / gram) / np.sum((terms[:, 0] / gram) ** 2))  # relative LS
    rest = terms[:, 1:]
    scale = rest.max(axis=0)  # columns of comparable size for the solver
    other, _ = nnls(rest / scale / times[:, None], (times - a * terms[:, 0]) / times)
    coef = np.concatenate([[a], other / scale])
    pred = terms @ coef
    return coef, float(np.max(np.abs(pred / times - 1.0)))


def fit_memory_model(rows, p):
    """Non-negative least squares of the peak memory (MB) on ``[S q^2, S T (N + p), 1]``."""
    from scipy.optimize import nnls

    terms, peaks = [], []
    for _, prob, res in rows:
        if not np.isfinite(res[2]):
            continue
        q = prob["units"] * (prob["lags"] + 1)
        S, T = prob["subjects"], prob["samples"]
        terms.append([S * q * q, S * T * (prob["units"] + p), 1.0])
        peaks.append(res[2])
    if len(peaks) < 3:
        return None
    terms, peaks = np.array(terms), np.array(peaks)
    scale = terms.max(axis=0)
    coef, _ = nnls(terms / scale / peaks[:, None], np.ones(peaks.size))
    return coef / scale


def extrapolate(rows, args) -> list[str]:
    """Lines of the extrapolation to :data:`TARGET` on a Dask cluster (a model, not a run)."""
    from sharedrep.utils.parallel import n_threads

    coef, err = fit_cost_model(rows, args.folds)
    threads = n_threads()
    out = [
        "Cost model (a from the Gram passes, the rest by NNLS on the remaining fit time, "
        f"relative errors; seconds on this machine with {threads} worker threads):",
        f"  time = {coef[0]:.3g} * S*T*q^2 + {coef[1]:.3g} * S*n_folds*q^3 + "
        f"{coef[2]:.3g} * S + {coef[3]:.3g}   (max relative error {err:.0%})",
    ]
    mem = fit_memory_model(rows, args.behavior)
    if mem is not None:
        out.append(
            f"  in-memory peak MB = {mem[0]:.3g} * S*q^2 + {mem[1]:.3g} * S*T*(N+p) + {mem[2]:.3g}"
        )
    S, N, T = TARGET["subjects"], TARGET["units"], TARGET["samples"]
    p, k = args.behavior, min(args.max_shared, args.behavior)
    out.append(
        f"\nEXTRAPOLATION (not measured) to {S} subjects x {N} units x {T:.0e} samples, "
        f"{args.folds} folds x {args.alphas} alphas, p = {p}, on a Dask cluster:"
    )
    out.append(
        f"{'lags':>6}{'q':>7}{'core-h':>9}{'1 subject':>11}{'wall 50w':>10}{'wall 200w':>11}"
        f"{'worker GB':>11}{'driver MB':>11}{'gathered GB (before)':>22}"
    )
    for n_lags in (1, 4):
        q = N * n_lags
        core_s = float(cost_terms(S, N, T, n_lags, args.folds)[:3] @ coef[:3]) * threads
        one = core_s / S  # one subject's task on one core: the wall-time floor
        rounds = args.folds * ROUNDS_PER_FOLD * LATENCY_S
        walls = [max(one, core_s / w) + rounds for w in (50, 200)]
        worker = (8 * T * N * (n_lags + 1) + 8 * (args.folds + 3) * (q + p + 1) ** 2) / 1e9
        driver = (2**20 + S * (8 * q * (p + k + 4) + args.folds * 48 * 1024)) / 1e6
        gathered = S * args.folds * (q + p + 1) ** 2 * 8 / 1e9
        out.append(
            f"{n_lags - 1:>6}{q:>7}{core_s / 3600:>9.1f}{_hours(one):>11}{_hours(walls[0]):>10}"
            f"{_hours(walls[1]):>11}{worker:>11.1f}{driver:>11.0f}{gathered:>22.1f}"
        )
    out.append(
        "  core-h: fitted time x threads (the measured points parallelise over subjects); "
        "1 subject: one task's time, the floor of the wall time; wall Nw: N single-core "
        f"workers plus {ROUNDS_PER_FOLD} round trips per fold of {LATENCY_S * 1e3:.0f} ms "
        "(assumed); worker GB: one subject's activity and its lagged copy, chunk "
        "statistics and the folds in flight; driver MB: the bound of "
        "tests/core/test_dask_memory.py; gathered GB (before): the chunk statistics the "
        "driver gathered before the statistics stayed on the workers."
    )
    return out


def _hours(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def main(argv=None) -> int:
    args = parse_args(argv)
    limiter = contextlib.nullcontext()
    if args.threads is not None:
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(limits=args.threads)
        if args.backend == "torch":  # torch's own intra-op pool is not limited by threadpoolctl
            import torch

            torch.set_num_threads(args.threads)
    with limiter:
        print("Machine")
        for line in machine_info():
            print("  " + line)
        print(
            f"\nFit: n_shared='auto' (k <= {min(args.max_shared, args.behavior)}), "
            f"{args.folds} folds x {args.alphas} alphas, p = {args.behavior}, trials of "
            f"{args.trial_length} samples, private components "
            f"{'off' if args.no_private else 'on'}, backend {args.backend}"
            f"{' on ' + args.device if args.backend == 'torch' else ''}, {args.dtype}; "
            f"minimum of {args.repeat} Gram passes and {args.fit_repeat} fit(s)\n"
        )
        header = (
            f"{'axis':<9}{'S':>5}{'N':>6}{'T':>9}{'lags':>5}{'q':>6}{'data MB':>10}"
            f"{'Gram s':>10}{'fit s':>10}{'ratio':>7}{'peak MB':>9}{'peak/data':>10}"
        )
        print(header)
        print("-" * len(header))
        rows = []
        t_start = time.perf_counter()
        for axis, prob, duplicate in problems(args):
            gb = data_gb(prob, args.behavior)
            if gb > args.max_gb:
                print(f"{axis:<9}skipped: {gb:.1f} GB of data > --max-gb {args.max_gb}")
                continue
            if duplicate:
                prev = next(r for r in rows if r[1] == prob)
                res = prev[2]
            else:
                t_gram, t_fit, peak, _ = run_problem(args, prob)
                res = (t_gram, t_fit, peak)
            rows.append((axis, prob, res))
            t_gram, t_fit, peak = res
            q = prob["units"] * (prob["lags"] + 1)
            mb = gb * 1e3
            print(
                f"{axis:<9}{prob['subjects']:>5}{prob['units']:>6}{prob['samples']:>9}"
                f"{prob['lags']:>5}{q:>6}{mb:>10.1f}{t_gram:>10.3f}{t_fit:>10.3f}"
                f"{t_fit / t_gram:>7.1f}{peak:>9.1f}{peak / mb:>10.2f}",
                flush=True,
            )
        print("\nFitted exponents b of time ~ size^b (one factor varied at a time):")
        print(f"{'axis':<10}{'size':<22}{'b (Gram pass)':>15}{'b (full fit)':>14}")
        for axis in AXES:
            sel = [r for r in rows if r[0] == axis]
            if axis == "lags":
                size = [r[1]["lags"] + 1 for r in sel]
                label = "n_lags (columns)"
            else:
                size = [r[1][axis] for r in sel]
                label = axis
            bg = exponent(size, [r[2][0] for r in sel])
            bf = exponent(size, [r[2][1] for r in sel])
            print(f"{axis:<10}{label:<22}{bg:>15.2f}{bf:>14.2f}")
        ratios = [r[2][1] / r[2][0] for r in rows]
        if ratios:
            print(
                f"\nRatio full fit / Gram pass: median {np.median(ratios):.1f}, range "
                f"{min(ratios):.1f}..{max(ratios):.1f} (issue target <= 2)"
            )
        if len(rows) >= 4:
            print()
            for line in extrapolate(rows, args):
                print(line)
        print(f"\nTotal wall time {time.perf_counter() - t_start:.0f} s")
        if hasattr(os, "getloadavg"):
            load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
            print(f"load average at the end (1, 5, 15 min): {load}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
