"""Does pooling animals help on real data? ``sharedrep.evaluate`` on two reaching monkeys.

Data: public demo data of Dyer et al., "A cryptography-based approach for movement
decoding", Nature Biomedical Engineering 1, 967-976 (2017) (KordingLab/DAD), read from
``../shared/data/monkey_reach`` (or ``$SHAREDREP_DATA``): motor-cortex activity and hand
velocity (x, y) of monkey C (two blocks, same 71 units) and monkey M (two blocks with
different units). Each block is a recording; the animal labels keep both blocks of a
monkey on the same side of every split (leave-one-animal-out).

For each ``n_shared`` given (default 2 = every behaviour feature, then 1), it runs
:func:`sharedrep.inference.evaluate.evaluate` with lags 0..3 bins, reach ids as trials,
10 interleaved blocks per recording and calibration fractions 0.1 / 0.2 / 0.5, and prints
the tables (markdown) and the verdict that ``docs/real_data.md`` reports.

Run ``python examples/evaluate_monkey_reach.py [--n-shared 2 1] [--out DIR] [--n-jobs 2]``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

from sharedrep import ShaReD
from sharedrep.inference.evaluate import evaluate
from sharedrep.sim.datasets import load_monkey_reach


def run(root=None, *, n_shared=2, lags=3, n_jobs=1, progress=True):
    """``(evaluation, seconds, n_warnings)`` for one ``n_shared``."""
    recs = load_monkey_reach(root)
    model = ShaReD(n_shared=n_shared, lags=lags, cv=5, random_state=0)
    t0 = time.time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ev = evaluate(
            model,
            [r.neural for r in recs],
            [r.behavior for r in recs],
            [r.trial for r in recs],
            animals=[r.monkey for r in recs],
            calibration_fractions=(0.1, 0.2, 0.5),
            n_blocks=10,
            behavior_names=list(recs[0].behavior_names),
            random_state=0,
            n_jobs=n_jobs,
            progress=progress,
        )
    return ev, time.time() - t0, len(caught)


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub markdown table (floats with 3 decimals; p-values with 3 digits)."""
    cols = list(df.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        cells = []
        for c, v in zip(cols, row, strict=True):
            if isinstance(v, float | np.floating):
                cells.append(
                    "n/a" if np.isnan(v) else f"{v:.3g}" if "_p" in str(c) else f"{v:.3f}"
                )
            else:
                cells.append(str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(ev, seconds: float, n_warnings: int, n_shared: int) -> None:
    """Print the tables of one evaluation as markdown."""
    print(f"\n## n_shared = {n_shared}\n")
    print(f"Verdict: {ev.verdict}\n")
    ks = ev.settings["n_shared_per_fit"]
    print(f"({seconds:.0f} s; {n_warnings} warnings; fits chose k = {ks})\n")
    pooled = ev.animal_scores[ev.animal_scores["feature"] == "pooled"]
    wide = pooled.pivot_table(index=["animal", "fraction"], columns="method", values="r2")
    wide = wide[[m for m in ("constant", "ridge", "shared", "combined", "own") if m in wide]]
    print("Held-out R^2 per animal (velocity x and y pooled):\n")
    print(markdown_table(wide.reset_index()))
    chosen = ev.scores[(ev.scores["method"] == "combined") & (ev.scores["feature"] == "pooled")]
    print("\nDecoder chosen by the inner CV of with_subject (per recording):\n")
    print(markdown_table(chosen[["animal", "entry", "fraction", "n_calibration", "decoder"]]))
    comp = ev.comparisons[ev.comparisons["baseline"] == "ridge"]
    keep = ["fraction", "method", "baseline", "wins", "ties", "losses", "mean_diff"]
    print("\nAgainst the per-animal ridge (2 animals: no paired test is possible):\n")
    print(markdown_table(comp[keep]))
    print("\nWarnings (unique messages):\n")
    for message in ev.warnings:
        print(f"- {message}")
    rep = ev.reproducibility
    print("\nShared axes, principal angles between the two monkeys' fits:\n")
    print(markdown_table(rep[["comparison", "first", "second", "k_first", "max_angle_deg"]]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--root", default=None, help="data folder (default $SHAREDREP_DATA or ../shared/data)"
    )
    ap.add_argument("--n-shared", type=int, nargs="+", default=[2, 1])
    ap.add_argument("--lags", type=int, default=3)
    ap.add_argument("--n-jobs", type=int, default=1)
    ap.add_argument(
        "--out", default=None, help="write each evaluation's tables to OUT/k<n_shared>/"
    )
    args = ap.parse_args(argv)
    results = {}
    for k in args.n_shared:
        ev, seconds, n_warn = run(args.root, n_shared=k, lags=args.lags, n_jobs=args.n_jobs)
        report(ev, seconds, n_warn, k)
        if args.out is not None:
            ev.to_csv(f"{args.out}/k{k}")
        results[k] = ev
    return results


if __name__ == "__main__":
    main()
