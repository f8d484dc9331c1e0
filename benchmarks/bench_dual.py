"""Benchmark: primal vs kernel (dual) ridge solves when columns outnumber samples.

For every size in the grid, fits ``ShaReD(form="primal")`` and ``ShaReD(form="dual")``
on the same simulated data (``n_shared="auto"``, cv=5, 10 alphas, no private
components), prints both times, their ratio and the largest relative difference between
the two models' encoders (the forms are algebraically identical). Printed, never
asserted. ``--quick`` runs a smaller grid (well under a minute on 2 cores).

    python benchmarks/bench_dual.py [--quick] [--subjects 4] [--samples 1000] [--lags 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
try:
    import sharedrep  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, os.path.join(HERE, "..", "src"))


def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--quick", action="store_true", help="units 100, 300 only")
    ap.add_argument("--subjects", type=int, default=4)
    ap.add_argument("--samples", type=int, default=1000, help="per subject")
    ap.add_argument("--lags", type=int, default=2, help="lags 0..LAGS")
    ap.add_argument("--units", type=int, nargs="+", default=[100, 300, 600, 1000])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.quick:
        args.units = [100, 300]
    return args


def fit_time(form, d, lags, seed):
    from sharedrep import ShaReD

    model = ShaReD(
        n_shared="auto",
        lags=lags,
        cv=5,
        random_state=seed,
        private=False,
        form=form,
        alphas=np.logspace(-4, 3, 10),
        max_shared=4,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        model.fit(d.neural, d.behavior, groups=d.groups)
    return time.perf_counter() - t0, model


def main(argv=None) -> int:
    args = parse_args(argv)
    from sharedrep import __version__, simulate

    print(
        f"sharedrep {__version__}, numpy {np.__version__}; {os.cpu_count()} CPU cores; "
        f"{args.subjects} subjects x {args.samples} samples, lags 0..{args.lags}, cv=5 x "
        "10 alphas, private=False"
    )
    print(
        f"{'units':>6} {'columns q':>9} {'primal s':>9} {'dual s':>8} {'speed-up':>8} "
        f"{'max rel diff':>12}"
    )
    for n_units in args.units:
        d = simulate(
            n_subjects=args.subjects,
            n_samples=args.samples,
            n_units=n_units,
            n_behavior=8,
            seed=args.seed,
            trial_length=50,
        )
        tp, mp = fit_time("primal", d, args.lags, args.seed)
        td, md = fit_time("dual", d, args.lags, args.seed)
        diff = max(
            np.abs(a - b).max() / np.abs(a).max()
            for a, b in zip(mp.encoders_, md.encoders_, strict=True)
        )
        same = (mp.alpha_, mp.n_shared_) == (md.alpha_, md.n_shared_)
        print(
            f"{n_units:>6} {n_units * (args.lags + 1):>9} {tp:>9.2f} {td:>8.2f} "
            f"{tp / td:>7.1f}x {diff:>12.1e}" + ("" if same else "  (different alpha/k!)"),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
