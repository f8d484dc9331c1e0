"""Selective activation and suppression: movement-encoding vs other units across learning.

Is the activity of the units that encode the learned movement kept (or enhanced) while
the activity of the other units -- irrelevant to the task -- is suppressed in experts?
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from sharedrep.data.preprocess import align_to_events
from sharedrep.data.session import SessionCollection
from sharedrep.study._common import (
    bootstrap_mean_ci,
    fnum,
    nanmean,
    nanmean_rows,
    new_figure,
    ordered_stages,
    select_days,
    sign_flip_test,
    trial_flags,
    ttest_p,
    wilcoxon_p,
)
from sharedrep.study._result import AnalysisResult

__all__ = ["selective_activation", "unit_activity"]


def unit_activity(
    collection: SessionCollection,
    *,
    window: tuple[float, float] = (0.0, 2.0),
    event: str = "cue_time",
) -> pd.DataFrame:
    """Mean activity of every unit in a task window, per session.

    Mean neural activity (e.g. dF/F) in ``window`` seconds around ``event`` (a trials
    column; default the cue) over the laser-off, no-stimulation trials; frames outside
    the trial are not used.

    Parameters
    ----------
    collection : SessionCollection
    window : (float, float), default (0.0, 2.0)
    event : str, default "cue_time"

    Returns
    -------
    pandas.DataFrame
        ``subject``, ``session_id``, ``day``, ``stage``, ``population``, ``unit_id``,
        ``activity``, ``n_trials``.
    """
    frames = []
    for s in collection:
        tr = s.trials
        if len(tr) == 0 or event not in tr.columns:
            continue
        stim, sil = trial_flags(s)
        use = ~(stim | sil)
        ev = pd.to_numeric(tr[event], errors="coerce").to_numpy(float)
        use &= np.isfinite(ev)
        if not use.any():
            continue
        aligned, rel = align_to_events(s.neural, s.timestamps, ev[use], window=window)
        absolute = ev[use][:, None] + rel[None, :]
        inside = (absolute >= tr["start_time"].to_numpy(float)[use][:, None]) & (
            absolute < tr["stop_time"].to_numpy(float)[use][:, None]
        )
        aligned[~inside] = np.nan
        act = nanmean_rows(aligned.reshape(-1, aligned.shape[-1]), axis=0)
        frames.append(
            pd.DataFrame(
                {
                    "subject": s.subject,
                    "session_id": s.session_id,
                    "day": s.day,
                    "stage": s.stage,
                    "population": s.population,
                    "unit_id": s.unit_ids,
                    "activity": act,
                    "n_trials": int(use.sum()),
                }
            )
        )
    cols = ["subject", "session_id", "day", "stage", "population", "unit_id", "activity"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)


def selective_activation(
    collection: SessionCollection,
    encoding_table: pd.DataFrame,
    *,
    window: tuple[float, float] = (0.0, 2.0),
    event: str = "cue_time",
    days_per_stage: int | None = 2,
    n_boot: int = 2000,
    random_state: int = 0,
) -> AnalysisResult:
    """Activity of movement-encoding vs other units, novice vs expert.

    For every mouse, population and stage of ``encoding_table`` (e.g.
    ``encoding_overlap(...).tables["unit_encoding"]``, or
    :func:`sharedrep.study.optogenetics.unit_encoding_table`): the mean activity of each
    unit in the task window (``window`` s after the ``event``, laser-off no-stimulation
    trials; see :func:`unit_activity`), averaged over the days of the stage used for the
    encoding classification (``days_per_stage``), then averaged over the units that
    encode the shared representation in that stage and over the other units. The
    **selectivity** of a mouse is encoding minus other activity.

    **Test, mice as the unit:** per mouse the change from the first to the last stage
    (e.g. expert - novice) of (a) the activity of other units (suppression: < 0), (b) the
    activity of encoding units, (c) the selectivity (> 0: selective activation); mean
    over mice, paired t-test and exact sign-flip test (two-sided), Wilcoxon signed-rank
    test, bootstrap interval over mice.

    Parameters
    ----------
    collection : SessionCollection
    encoding_table : pandas.DataFrame
        Columns ``subject``, ``population``, ``stage``, ``unit_id``, ``encodes``.
    window : (float, float), default (0.0, 2.0)
        Seconds relative to ``event``.
    event : str, default "cue_time"
    days_per_stage : int or None, default 2
        Days per mouse and stage (as in the encoding analyses).
    n_boot : int, default 2000
    random_state : int, default 0

    Returns
    -------
    AnalysisResult
        ``table``: per mouse x population x stage x group (``"encoding"``, ``"other"``):
        ``subject``, ``population``, ``stage``, ``group``, ``n_units``, ``activity``.
        ``tables["selectivity"]``: per mouse x population x stage: ``encoding``,
        ``other``, ``selectivity``. ``tables["changes"]``: per population and measure:
        ``measure``, ``stage_from``, ``stage_to``, ``change``, ``ci_low``, ``ci_high``,
        ``p_value`` (t-test), ``p_signflip``, ``p_wilcoxon``, ``n_mice``.
        ``summary``: ``changes`` {measure: {...}}.
    """
    need = {"subject", "population", "stage", "unit_id", "encodes"}
    missing = need - set(encoding_table.columns)
    if missing:
        raise ValueError(f"encoding_table lacks column(s) {sorted(missing)}")
    pops = list(dict.fromkeys(encoding_table["population"]))
    stages = ordered_stages(encoding_table["stage"])
    sel = select_days(collection.filter(population=pops, stage=stages), days_per_stage)
    act = unit_activity(sel, window=window, event=event)
    if len(act):
        act = act.groupby(["subject", "population", "stage", "unit_id"], as_index=False)[
            "activity"
        ].mean()
    merged = act.merge(
        encoding_table[list(need)], on=["subject", "population", "stage", "unit_id"], how="inner"
    )
    rows = []
    for (subj, pop, st), g in merged.groupby(["subject", "population", "stage"], sort=False):
        enc = g["encodes"].to_numpy(bool)
        for name, m in (("encoding", enc), ("other", ~enc)):
            a = g["activity"].to_numpy(float)[m]
            a = a[np.isfinite(a)]
            rows.append(
                {
                    "subject": subj,
                    "population": pop,
                    "stage": st,
                    "group": name,
                    "n_units": int(a.size),
                    "activity": float(a.mean()) if a.size else math.nan,
                }
            )
    table = pd.DataFrame(
        rows, columns=["subject", "population", "stage", "group", "n_units", "activity"]
    )
    wide = table.pivot_table(
        index=["subject", "population", "stage"], columns="group", values="activity"
    ).reset_index()
    for c in ("encoding", "other"):
        if c not in wide.columns:
            wide[c] = np.nan
    wide["selectivity"] = wide["encoding"] - wide["other"]
    wide.columns.name = None

    change_rows = []
    if len(stages) >= 2:
        first, last = stages[0], stages[-1]
        for k, pop in enumerate(pops):
            w = wide[wide["population"] == pop]
            a = w[w["stage"] == first].set_index("subject")
            b = w[w["stage"] == last].set_index("subject")
            common = [m for m in a.index if m in b.index]
            for j, measure in enumerate(("other", "encoding", "selectivity")):
                d = np.array([b.loc[m, measure] - a.loc[m, measure] for m in common], float)
                lo, hi = bootstrap_mean_ci(d, n_boot=n_boot, random_state=random_state + 3 * k + j)
                change_rows.append(
                    {
                        "population": pop,
                        "measure": measure,
                        "stage_from": first,
                        "stage_to": last,
                        "value_from": nanmean(a.loc[common, measure]),
                        "value_to": nanmean(b.loc[common, measure]),
                        "change": nanmean(d),
                        "ci_low": lo,
                        "ci_high": hi,
                        "p_value": ttest_p(d),
                        "p_signflip": sign_flip_test(d),
                        "p_wilcoxon": wilcoxon_p(d),
                        "n_mice": int(np.isfinite(d).sum()),
                    }
                )
    changes = pd.DataFrame(
        change_rows,
        columns=[
            "population",
            "measure",
            "stage_from",
            "stage_to",
            "value_from",
            "value_to",
            "change",
            "ci_low",
            "ci_high",
            "p_value",
            "p_signflip",
            "p_wilcoxon",
            "n_mice",
        ],
    )

    fig, axes = new_figure(1, max(1, len(pops)), width=3.6, height=3.0)
    for ax, pop in zip(axes[0], pops, strict=False):
        w = wide[wide["population"] == pop]
        for grp, col in (("encoding", "#d62728"), ("other", "0.4")):
            means = [w.loc[w["stage"] == st, grp].mean() for st in stages]
            for m in w["subject"].unique():
                wm = w[w["subject"] == m].set_index("stage")
                ax.plot(
                    range(len(stages)),
                    [wm[grp].get(st, np.nan) for st in stages],
                    color=col,
                    alpha=0.3,
                    lw=0.8,
                )
            ax.plot(range(len(stages)), means, color=col, lw=2, marker="o", label=grp)
        ax.set_xticks(range(len(stages)), stages)
        ax.set_ylabel(f"mean activity {window[0]:g}..{window[1]:g} s after {event}")
        ax.set_title(pop, fontsize=10)
        ax.legend(frameon=False, fontsize=8)

    changes_summary = {
        f"{r['population']}/{r['measure']}": {
            "stage_from": r["stage_from"],
            "stage_to": r["stage_to"],
            "value_from": fnum(r["value_from"]),
            "value_to": fnum(r["value_to"]),
            "change": fnum(r["change"]),
            "ci": [fnum(r["ci_low"]), fnum(r["ci_high"])],
            "p_value": fnum(r["p_value"]),
            "p_signflip": fnum(r["p_signflip"]),
            "p_wilcoxon": fnum(r["p_wilcoxon"]),
            "n_mice": int(r["n_mice"]),
        }
        for r in changes.to_dict("records")
    }
    summary = {"changes": changes_summary, "window": list(window), "event": event}
    txt = "; ".join(
        f"{k}: {v['value_from']:.3g} -> {v['value_to']:.3g} ({v['stage_from']} -> "
        f"{v['stage_to']}), change {v['change']:+.3g} [95% CI {v['ci'][0]:+.3g}, "
        f"{v['ci'][1]:+.3g}], paired t-test p = {v['p_value']:.3g}, sign-flip p = "
        f"{v['p_signflip']:.3g} (n = {v['n_mice']} mice)"
        for k, v in changes_summary.items()
    )
    description = (
        "Mean activity in the task window "
        f"({window[0]:g}..{window[1]:g} s after {event}; laser-off, no-stimulation trials) of "
        "the units classified as encoding the shared movement representation and of the "
        "other units, per mouse and stage; selectivity = encoding - other. Changes with "
        "learning were tested with mice as the unit (paired t-test, exact two-sided "
        "sign-flip and Wilcoxon tests; bootstrap 95% CI over mice). "
        + (txt if txt else "Only one stage: no change tested")
        + "."
    )
    return AnalysisResult(
        name="selective_activation",
        table=table,
        figure=fig,
        summary=summary,
        description=description,
        tables={"selectivity": wide, "changes": changes, "units": merged},
    )
