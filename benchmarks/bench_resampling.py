"""Benchmark: resampling refits that reuse what does not change, against refits that compute
everything again.

``bootstrap_subjects`` and ``compare_groups`` refit the model on many sets of the same
subjects. On the numpy backend each subject is now reduced once (its data pass and the
ridge solves of its folds for the alpha grid, ``sharedrep.core.backends.reuse_statistics``)
and every refit reuses it, running in this process. ``permutation_test`` refits the same
neural activity against shifted behaviour: its refits take the observed fit's neural
statistics and fold reductions (``sharedrep.core.neural_cache``) and compute only the
behaviour side. The other way, selected here by switching the reuse off
(``sharedrep.inference._resampling._reuses_subjects``; ``neural_cache.MAX_BYTES = 0``),
refits everything in ``--jobs`` joblib workers, as before.

For each problem size the script times both ways of each procedure (interleaved; the
minimum of ``--repeat`` runs), prints their ratio and the largest difference between
their results (the reused refits take the reduced path: equal to rounding), and the
machine load. Nothing is asserted.

Run ``python benchmarks/bench_resampling.py`` (6 subjects x 20 units x 4,000 samples and
6 x 100 x 10,000, lags 0..2) or ``--quick`` (6 x 20 x 3,000, well under a minute); see
``--help``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_fit import load_line, machine_info  # noqa: E402

SIZES = ((6, 20, 4000), (6, 100, 10000))  # subjects, units, samples per subject
QUICK = ((6, 20, 3000),)


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--quick", action="store_true", help=f"only {QUICK[0]}")
    ap.add_argument(
        "--size",
        type=int,
        nargs=3,
        action="append",
        metavar=("SUBJECTS", "UNITS", "SAMPLES"),
        help=f"a problem size (repeatable); default {SIZES}",
    )
    ap.add_argument("--lags", type=int, default=2, help="lags 0..LAGS")
    ap.add_argument("--n-boot", type=int, default=20, help="bootstrap resamples")
    ap.add_argument("--n-perm", type=int, default=20, help="relabellings (3 + 3 subjects: 20)")
    ap.add_argument("--n-shift", type=int, default=60, help="circular shifts of permutation_test")
    ap.add_argument("--jobs", type=int, default=-1, help="joblib jobs of the refits without reuse")
    ap.add_argument("--repeat", type=int, default=2, help="interleaved repeats (minimum used)")
    return ap.parse_args(argv)


def make_data(S: int, N: int, T: int):
    from sharedrep import simulate

    return simulate(
        n_subjects=S, n_samples=T, n_units=N, n_behavior=6, n_shared=2, trial_length=50, seed=0
    )


def run(procedure: str, reuse: bool, model, d, args, jobs=None):
    """``(seconds, result)`` of one procedure with the reuse on or off (``jobs``: the
    refits' joblib jobs; ``--jobs`` by default)."""
    jobs = args.jobs if jobs is None else jobs
    from sharedrep.core import neural_cache
    from sharedrep.inference import _resampling
    from sharedrep.inference.bootstrap import bootstrap_subjects
    from sharedrep.inference.groups import compare_groups
    from sharedrep.inference.permutation import permutation_test

    original, kept_bytes = _resampling._reuses_subjects, neural_cache.MAX_BYTES
    if not reuse:
        _resampling._reuses_subjects = lambda model: False
        neural_cache.MAX_BYTES = 0
    try:
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if procedure == "bootstrap_subjects":
                res = bootstrap_subjects(
                    model, d.neural, d.behavior, d.groups, n_boot=args.n_boot,
                    random_state=0, n_jobs=jobs, progress=False,
                )  # fmt: skip
            elif procedure == "permutation_test":
                res = permutation_test(
                    model, d.neural, d.behavior, d.groups, n_perm=args.n_shift,
                    random_state=0, n_jobs=jobs, progress=False,
                )  # fmt: skip
            else:
                half = len(d.neural) // 2
                a = (d.neural[:half], d.behavior[:half], d.groups[:half])
                b = (d.neural[half:], d.behavior[half:], d.groups[half:])
                res = compare_groups(
                    model, a, model, b, n_perm=args.n_perm, random_state=0,
                    n_jobs=jobs, progress=False,
                )  # fmt: skip
        return time.perf_counter() - t0, res
    finally:
        _resampling._reuses_subjects, neural_cache.MAX_BYTES = original, kept_bytes


def difference(procedure: str, a, b) -> float:
    """Largest absolute difference between the two results' numbers."""
    if procedure == "bootstrap_subjects":
        pairs = [(a.axes_boot, b.axes_boot), (a.score_boot, b.score_boot)]
    elif procedure == "permutation_test":
        pairs = [(a.null, b.null), (a.null_alpha, b.null_alpha)]
    else:
        pairs = [(a.null_difference, b.null_difference), (a.null_similarity, b.null_similarity)]
    return max(float(np.nanmax(np.abs(x - y))) for x, y in pairs)


def main(argv=None) -> int:
    args = parse_args(argv)
    from sharedrep import ShaReD

    print("Machine")
    for line in machine_info():
        print("  " + line)
    sizes = args.size or (QUICK if args.quick else SIZES)
    model = ShaReD(n_shared="auto", lags=list(range(args.lags + 1)), cv=5, random_state=0)
    print(
        f"\nModel: ShaReD(n_shared='auto', lags 0..{args.lags}, cv=5, default alpha grid); "
        f"{args.n_boot} bootstrap resamples; {args.n_perm} relabellings at most; "
        f"{args.n_shift} circular shifts; refits "
        f"without reuse in n_jobs={args.jobs} joblib workers; minimum of {args.repeat}"
    )
    for S, N, T in sizes:
        d = make_data(S, N, T)
        print(f"\n{S} subjects x {N} units x {T} samples ({load_line()})")
        for procedure in ("bootstrap_subjects", "compare_groups", "permutation_test"):
            best = {}
            results = {}
            shifts = procedure == "permutation_test"  # reuses with one job only
            ways = [(False, None), (True, 1 if shifts else None)] + (
                [(False, 1)] if shifts else []
            )
            for _ in range(args.repeat):
                for reuse, jobs in ways:
                    t, results[reuse, jobs] = run(procedure, reuse, model, d, args, jobs)
                    best[reuse, jobs] = min(best.get((reuse, jobs), np.inf), t)
            on, off = best[ways[1]], best[False, None]
            print(
                f"  {procedure:<19} reused: {on:7.2f} s   refitted: {off:7.2f} s"
                f"   ratio {on / off:.2f}   largest difference "
                f"{difference(procedure, results[ways[1]], results[False, None]):.1e}"
            )
            if shifts:
                one = best[False, 1]
                print(
                    f"  {'':<19} (reused with n_jobs=1; refitted with n_jobs=1: {one:7.2f} s,"
                    f" ratio {on / one:.2f})"
                )
    print(f"\n{load_line()} (after)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
