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

The grid varies one factor at a time around a base problem. ``--quick`` (base 4 subjects
x 200 units x 10,000 samples, lags 0) finishes in about a minute on 2 cores; the default
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
    base=dict(subjects=8, units=200, samples=10000, lags=0),
    subjects=[2, 4, 8, 16],
    units=[50, 100, 200, 400],
    samples=[2500, 5000, 10000, 20000],
    lags=[0, 1, 2],
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
    ap.add_argument("--fit-repeat", type=int, default=1, help="fits timed (min used)")
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
    return ap.parse_args(argv)


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
        print(f"Total wall time {time.perf_counter() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
