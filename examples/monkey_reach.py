"""Real-data example: cross-recording transfer of reach-velocity decoding (two monkeys).

Data: public demo data of Dyer et al., "A cryptography-based approach for movement
decoding", Nature Biomedical Engineering 1, 967-976 (2017) (KordingLab/DAD), read from
``../shared/data/monkey_reach`` (or ``$SHAREDREP_DATA``). Four recordings (two blocks of
monkey C, two of monkey M) share the same behaviour variables: hand velocity (x, y).

What it does (nothing tuned on the results):

1. **Significance** -- ShaReD with lags 0..3 bins and reach ids as trials is fitted on all
   four recordings; a circular-shift permutation test (whole reaches rotated, complete
   pipeline refitted with cross-validated alpha) gives a p-value per shared dimension.
2. **Transfer** -- each recording is held out in turn: the shared axes are fitted on the
   other three, only the held-out recording's encoder is fitted on its first 10 / 20 / 50 %
   of reaches (``add_subject``), and its velocity is decoded on its last 30 % of reaches.
   Reference: a ridge decoder of that recording alone, same lags, same calibration reaches.
   Permutation p-values: the held-out recording's velocity is rotated by whole reaches
   against its neural activity and calibration + decoding are redone.

Run ``python examples/monkey_reach.py [--n-perm 99] [--n-perm-transfer 49] [--n-jobs -1]``
(all cores by default; progress is printed as it runs);
it prints the tables as markdown (``docs/real_data.md`` reports the evaluation of
``examples/evaluate_monkey_reach.py`` on the same data).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

from sharedrep import ShaReD
from sharedrep.inference.permutation import permutation_test
from sharedrep.inference.transfer import transfer_score
from sharedrep.sim.datasets import load_monkey_reach


def make_model(lags=3, n_shared=2):
    """The model used throughout (alpha by 5-fold CV over whole reaches)."""
    return ShaReD(n_shared=n_shared, lags=lags, cv=5, random_state=0)


def run(
    root=None,
    *,
    lags=3,
    n_perm=99,
    n_perm_transfer=49,
    fractions=(0.1, 0.2, 0.5),
    test_fraction=0.3,
    heldout=None,
    n_jobs=-1,
    random_state=0,
    progress=True,
) -> dict:
    """Run the analysis; returns ``{"recordings", "permutation", "transfer", "summary"}``.

    ``heldout``: recordings to hold out in the transfer analysis (default all four).
    """
    recs = load_monkey_reach(root)
    neural = [r.neural for r in recs]
    behavior = [r.behavior for r in recs]
    trials = [r.trial for r in recs]
    info = pd.DataFrame(
        {
            "recording": [r.name for r in recs],
            "bins": [r.neural.shape[0] for r in recs],
            "units": [r.neural.shape[1] for r in recs],
            "silent_units": [int(np.sum(r.neural.std(axis=0) == 0)) for r in recs],
            "reaches": [r.n_trials for r in recs],
        }
    )
    model = make_model(lags)
    say = print if progress else (lambda *a, **k: None)
    say(f"[1/2] permutation test: {n_perm} circular shifts of the 4 recordings ...", flush=True)
    t0 = time.time()
    with warnings.catch_warnings():
        # monkey M has units that never fire in a block: dropped with a warning
        warnings.filterwarnings("ignore", message=".*are constant", category=UserWarning)
        perm = permutation_test(
            model,
            neural,
            behavior,
            trials,
            n_perm=n_perm,
            n_jobs=n_jobs,
            random_state=random_state,
            progress=progress,
        )
        t_perm = time.time() - t0
        say(f"      done in {t_perm:.0f} s", flush=True)
        say(
            f"[2/2] transfer: each recording held out, {n_perm_transfer} shifts each ...",
            flush=True,
        )
        t0 = time.time()
        tr = transfer_score(
            model,
            neural,
            behavior,
            trials,
            calibration_fractions=fractions,
            test_fraction=test_fraction,
            subjects=heldout,
            n_perm=n_perm_transfer,
            random_state=random_state,
            n_jobs=n_jobs,
            progress=progress,
        )
        t_transfer = time.time() - t0
    tr["recording"] = [recs[s].name for s in tr["subject"]]
    keys = ["recording", "fraction", "n_calibration"]
    r2 = tr.pivot_table(index=keys, columns="method", values="r2")
    wide = r2[["shared", "ridge"]].copy()
    wide["shared_minus_ridge"] = wide["shared"] - wide["ridge"]
    if n_perm_transfer:
        pv = tr.pivot_table(index=keys, columns="method", values="p_value")
        wide["p_value_shared"] = pv["shared"]
        wide["p_value_ridge"] = pv["ridge"]
    wide = wide.reset_index()
    wide.columns.name = None
    order = {r.name: i for i, r in enumerate(recs)}
    wide = wide.sort_values(
        ["recording", "fraction"], key=lambda c: c.map(order) if c.name == "recording" else c
    )
    wide = wide.reset_index(drop=True)
    fit = perm.model
    i_alpha = fit.cv_results_["best_index"][0]
    sig = perm.summary()
    per_rec = fit.cv_results_["r2_subject_dim"][i_alpha][:, : perm.n_shared]
    for j in range(perm.n_shared):
        info[f"r2_heldout_dim{j}"] = per_rec[:, j]
    return {
        "recordings": info,
        "permutation": sig,
        "transfer": wide,
        "transfer_long": tr,
        "alpha": perm.alpha,
        "n_perm": perm.n_perm,
        "lags": list(fit.lags_),
        "seconds": {"permutation": t_perm, "transfer": t_transfer},
    }


def markdown_table(df: pd.DataFrame, floatfmt: str = ".3f") -> str:
    """A GitHub markdown table (no extra dependency)."""
    cols = list(df.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        cells = []
        for c, v in zip(cols, row, strict=True):
            if isinstance(v, float | np.floating):
                cells.append(f"{v:.3g}" if str(c).startswith("p_value") else format(v, floatfmt))
            else:
                cells.append(str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--root", default=None, help="data folder (default $SHAREDREP_DATA or ../shared/data)"
    )
    ap.add_argument("--n-perm", type=int, default=99)
    ap.add_argument("--n-perm-transfer", type=int, default=49)
    ap.add_argument("--lags", type=int, default=3)
    ap.add_argument(
        "--n-jobs", type=int, default=-1, help="parallel jobs (-1: all cores, the default)"
    )
    args = ap.parse_args(argv)
    res = run(
        args.root,
        lags=args.lags,
        n_perm=args.n_perm,
        n_perm_transfer=args.n_perm_transfer,
        n_jobs=args.n_jobs,
    )
    print(
        f"lags 0..{args.lags}, alpha {res['alpha']:.3g}, {res['n_perm']} permutations "
        f"(fit), {args.n_perm_transfer} per held-out recording (transfer)"
    )
    print("\n## Recordings\n")
    print(markdown_table(res["recordings"]))
    print("\n## Permutation test (all four recordings)\n")
    print(markdown_table(res["permutation"]))
    print("\n## Transfer (held-out velocity R^2)\n")
    print(markdown_table(res["transfer"]))
    means = res["transfer"].groupby("fraction")[["shared", "ridge"]].mean().reset_index()
    print("\n## Mean over held-out recordings\n")
    print(markdown_table(means))
    print(f"\n(seconds: {res['seconds']})")
    return res


if __name__ == "__main__":
    main()
