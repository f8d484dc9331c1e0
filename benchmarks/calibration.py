"""Null-rejection rates of the group comparison in the design of ``sharedrep demo``.

Simulates the lever-push study of the demo (6 mice, days 1, 2, 13, 14, 50 trials per
session) with every effect switched off (``StudyEffects.null()``: no learning, thalamus
and other inputs encode alike), selects the cells exactly as ``encoding_by_population``
does (``fit_cells``, two days per stage, samples inside trials), and runs
:func:`sharedrep.inference.groups.compare_groups` with the analyses' ShaReD template on

* ``stage``: other_input / expert vs other_input / novice (the same 6 mice in both groups,
  as in the demo's stage comparisons), and
* ``population``: thalamus / expert vs other_input / expert (the same 6 mice, two
  populations, as in the demo's population comparisons), and
* ``m1_stage``: m1 / expert vs m1 / novice (as ``stage``, for the M1 neurons).

The true difference is zero in every design, so the fraction of replicates with ``p <= 0.05``
must be at most about 5% (the pairing of the same mice in both groups, ignored by the
relabelling, can only make the test conservative). With ``--n-perm 19`` random
relabellings ``p <= 0.05`` means the observed split beats all 19, probability 1/20 under
exchangeability. ``--paired`` relabels within mice instead (``compare_groups(...,
paired=True)``: 2**6 = 64 swap patterns, 19 drawn at random). Prints, per design, the
rejection rate with its 95% Clopper-Pearson interval, the fraction of ``p <= 0.5`` and
the mean p; ``--csv`` appends every
replicate as it is done, ``--first`` splits a run into parts (seeds depend on the
replicate number only) and ``--summarise`` prints the rates of such files.
``--learning`` simulates with the default effects instead (learning on): the
differences learning makes to the same cells, and the rate of ``p <= 0.05`` as power.

    python benchmarks/calibration.py [--reps 200] [--n-perm 19] [--design stage population]
    python benchmarks/calibration.py --first 100 --reps 100 --csv part2.csv
    python benchmarks/calibration.py --summarise part1.csv part2.csv

About 1.5 s per replicate and design at commit 4491e0f (2 shared cores; 200 replicates:
about 5 minutes).
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

#: The two null comparisons: (population A, stage A), (population B, stage B).
DESIGNS = {
    "stage": (("other_input", "expert"), ("other_input", "novice")),
    "population": (("thalamus", "expert"), ("other_input", "expert")),
    "m1_stage": (("m1", "expert"), ("m1", "novice")),
}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=200, help="null studies per design")
    ap.add_argument("--n-perm", type=int, default=19, help="relabellings per comparison")
    ap.add_argument("--mice", type=int, default=6)
    ap.add_argument("--trials", type=int, default=50, help="trials per session")
    ap.add_argument("--design", nargs="+", default=["stage"], choices=sorted(DESIGNS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--paired", action="store_true", help="relabel within mice (compare_groups paired=True)"
    )
    ap.add_argument(
        "--learning",
        action="store_true",
        help="simulate with the default effects (learning on) instead of StudyEffects.null(): "
        "the differences learning makes, and the rate of p <= 0.05 as power, not as a null rate",
    )
    ap.add_argument("--first", type=int, default=0, help="first replicate (split long runs)")
    ap.add_argument("--csv", default=None, help="append design, rep, difference, p here")
    ap.add_argument(
        "--summarise", nargs="+", default=None, help="only print the rates of these CSV files"
    )
    return ap.parse_args(argv)


def null_replicate(design: str, rep: int, args) -> tuple[float, float]:
    """``(difference, p)`` of one null study of the demo's design."""
    from sharedrep.inference.groups import compare_groups
    from sharedrep.sim.learning_study import StudyEffects, simulate_study
    from sharedrep.study._common import make_model
    from sharedrep.study.populations import fit_cells

    ca, cb = DESIGNS[design]
    seed = int(np.random.SeedSequence([args.seed, rep]).generate_state(1)[0])
    study = simulate_study(
        n_mice=args.mice,
        days=(1, 2, 13, 14),
        populations=tuple(dict.fromkeys([ca[0], cb[0]])),
        trials_per_session=args.trials,
        effects=StudyEffects() if args.learning else StudyEffects.null(),
        seed=seed,
    )
    cells = fit_cells(study.collection, days_per_stage=2)
    a, b = cells[ca], cells[cb]
    if args.paired and a.subjects != b.subjects:
        raise RuntimeError(f"cells {ca} and {cb} hold different mice: cannot pair them")
    model = make_model(random_state=0)
    gc = compare_groups(
        model,
        (a.neural, a.behavior, a.groups),
        model,
        (b.neural, b.behavior, b.groups),
        n_perm=args.n_perm,
        random_state=seed,
        paired=args.paired,
        progress=False,
    )
    return float(gc.difference[0]), float(gc.p_values[0])


def report(design: str, p: np.ndarray, diff: np.ndarray, level: float = 0.05) -> str:
    """Rejection rate (95% Clopper-Pearson interval), P(p <= 0.5), mean p, and the
    observed differences (mean, sd, number positive) of the replicates."""
    from scipy import stats

    k, n = int(np.sum(p <= level + 1e-12)), p.size
    ci = stats.binomtest(k, n).proportion_ci(0.95)
    sd = diff.std(ddof=1) if n > 1 else float("nan")
    return (
        f"{design:>10}: {n} studies, P(p <= {level}) = {k}/{n} = {k / n:.3f} "
        f"[95% CI {ci.low:.3f}, {ci.high:.3f}]; P(p <= 0.5) = {np.mean(p <= 0.5):.3f}; "
        f"mean p = {p.mean():.3f}; difference {diff.mean():+.3f} (sd {sd:.3f}, "
        f"{int(np.sum(diff > 0))} of {n} positive)"
    )


def summarise(paths) -> None:
    """Print the rates of replicates written by earlier runs (``--csv``)."""
    rows = [line.split(",") for path in paths for line in open(path).read().splitlines()[1:]]
    for design in sorted({r[0] for r in rows}):
        mine = [r for r in rows if r[0] == design]
        print(report(design, *(np.array([float(r[j]) for r in mine]) for j in (3, 2))))


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.summarise:
        summarise(args.summarise)
        return 0
    warnings.simplefilter("ignore")
    if args.csv and not os.path.exists(args.csv):
        with open(args.csv, "w") as fh:
            fh.write("design,rep,difference,p_value\n")
    for design in args.design:
        name = design + ("-paired" if args.paired else "") + ("-learning" if args.learning else "")
        t0, ps, diffs = time.perf_counter(), [], []
        for rep in range(args.first, args.first + args.reps):
            diff, p = null_replicate(design, rep, args)
            ps.append(p)
            diffs.append(diff)
            if args.csv:  # one line per replicate: a long run can be stopped and summarised
                with open(args.csv, "a") as fh:
                    fh.write(f"{name},{rep},{diff:.6g},{p:.6g}\n")
        line = report(name, np.array(ps), np.array(diffs))
        print(line + f" ({time.perf_counter() - t0:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
