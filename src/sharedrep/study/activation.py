"""Selective activation and suppression: movement-encoding vs other units across learning.

Is the activity of the units that encode the learned movement kept (or enhanced) while
the activity of the other units -- irrelevant to the task -- is suppressed in experts?
Private compute steps build the per-unit, per-group and per-mouse tables and the changes
tested over mice; :func:`sharedrep.study.figures.plot_selective_activation` draws them.
It may import ``sharedrep.utils``, ``sharedrep.data``, ``sharedrep.core``,
``sharedrep.inference`` and the other ``sharedrep.study`` modules (never ``sharedrep.app``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from sharedrep.data.preprocess import align_to_events
from sharedrep.data.session import SessionCollection
from sharedrep.study._common import (
    analysis,
    ci_text,
    describe_provenance,
    dropped,
    fmt_num,
    fnum,
    given_order,
    ignored_n_boot,
    label_reasons,
    left_out_cells,
    left_out_of,
    merge_reasons,
    mice_text,
    nanmean,
    nanmean_rows,
    no_session,
    nonfinite_mice,
    origin,
    p_text,
    paired_mice,
    reason_cell,
    reason_text,
    select_days,
    selected_stages,
    session_provenance,
    sign_flip_test,
    t_mean_ci,
    trial_flags,
    ttest_p,
    untestable_reason,
    wilcoxon_p,
)
from sharedrep.study._result import AnalysisResult
from sharedrep.study.figures import plot_selective_activation
from sharedrep.study.populations import analysed_stages

__all__ = ["selective_activation", "unit_activity"]


@analysis("unit_activity")
def unit_activity(
    collection: SessionCollection,
    *,
    window: tuple[float, float] = (0.0, 2.0),
    event: str = "cue_time",
    left_out: dict | None = None,
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
    left_out : dict, optional
        Receives ``{session_id: reason}`` for the sessions without a row (no trials, no
        ``event`` column, no usable trial).

    Returns
    -------
    pandas.DataFrame
        ``subject``, ``session_id``, ``day``, ``stage``, ``population``, ``unit_id``,
        ``activity``, ``n_trials``.

    Raises
    ------
    AnalysisError
        An error while reading one session; the message names the analysis, the
        population, stage, session and subject.
    """
    frames = []
    reasons: dict = {}
    for s in collection:
        tr = s.trials
        if len(tr) == 0 or event not in tr.columns:
            reasons[s.session_id] = "no trials" if not len(tr) else f"no {event!r} column"
            continue
        with origin(session=s):
            frame = _session_activity(s, window=window, event=event)
        if frame is None:
            reasons[s.session_id] = f"no laser-off, no-stimulation trial with a finite {event!r}"
            continue
        frames.append(frame)
    if left_out is not None:
        left_out.update(merge_reasons(left_out, reasons))
    cols = ["subject", "session_id", "day", "stage", "population", "unit_id", "activity"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)


def _session_activity(s, *, window, event) -> pd.DataFrame | None:
    """Rows of :func:`unit_activity` for one session (None: no usable trial)."""
    tr = s.trials
    stim, sil = trial_flags(s)
    use = ~(stim | sil)
    ev = pd.to_numeric(tr[event], errors="coerce").to_numpy(float)
    use &= np.isfinite(ev)
    if not use.any():
        return None
    aligned, rel = align_to_events(s.neural, s.timestamps, ev[use], window=window)
    absolute = ev[use][:, None] + rel[None, :]
    inside = (absolute >= tr["start_time"].to_numpy(float)[use][:, None]) & (
        absolute < tr["stop_time"].to_numpy(float)[use][:, None]
    )
    aligned[~inside] = np.nan
    act = nanmean_rows(aligned.reshape(-1, aligned.shape[-1]), axis=0)
    return pd.DataFrame(
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


_KEYS = ["subject", "population", "stage", "unit_id"]
#: Why a mouse with sessions of a population and stage has no units there.
_NO_UNITS = "no {0} unit of {1} with both activity and an encoding class"
_CHANGE_COLUMNS = [
    "population",
    "measure",
    "stage_from",
    "stage_to",
    "value_from",
    "value_to",
    "change",
    "ci_low",
    "ci_high",
    "ci_reason",
    "p_value",
    "p_signflip",
    "p_wilcoxon",
    "n_mice",
    "mice_left_out",
    "testable",
    "reason",
]

#: Why a mouse has no value of a measure in a stage.
_NO_VALUE = {
    "other": "no other unit with activity",
    "encoding": "no encoding unit with activity",
    "selectivity": "no encoding or no other unit with activity",
}


def _check_encoding_table(encoding_table: pd.DataFrame) -> None:
    """Refuse an encoding table without the columns the analysis joins on."""
    missing = {*_KEYS, "encodes"} - set(encoding_table.columns)
    if missing:
        raise ValueError(f"encoding_table lacks column(s) {sorted(missing)}")


def _classified_activity(
    collection, encoding_table, pops, stages, *, window, event, days_per_stage, first_stage=None
) -> pd.DataFrame:
    """Per unit: mean activity over the stage's days, joined with its encoding class.

    Returns
    -------
    units : pandas.DataFrame
        ``subject``, ``population``, ``stage``, ``unit_id``, ``activity`` (neural units,
        e.g. dF/F) and ``encodes`` (bool); units in both tables only.
    sessions : dict
        The sessions used and those left out, with the reason
        (``_common.session_provenance``).
    """
    chosen = collection.filter(population=pops, stage=stages)
    sel = select_days(chosen, days_per_stage, first_stage)
    reasons = merge_reasons(
        label_reasons(collection, pops, stages),
        dropped(
            chosen,
            sel,
            lambda s: (
                f"day {s.day} not among the {days_per_stage} day(s) kept per mouse, "
                "population and stage (days_per_stage)"
            ),
        ),
    )
    act = unit_activity(sel, window=window, event=event, left_out=reasons)
    cols = [*_KEYS, "encodes"]
    joined = act[[*_KEYS, "session_id"]].merge(encoding_table[_KEYS], on=_KEYS, how="inner")
    used = set(joined["session_id"])
    no_units = "none of its units is in the unit-encoding table"
    reasons = merge_reasons(
        reasons, dropped(sel, [s for s in sel if s.session_id in used], no_units)
    )
    if len(act):
        act = act.groupby(_KEYS, as_index=False)["activity"].mean()
    units = act[_KEYS + ["activity"]].merge(encoding_table[cols], on=_KEYS, how="inner")
    return units, session_provenance(collection, used, reasons)


def _group_activity(units: pd.DataFrame) -> pd.DataFrame:
    """Mean activity of the encoding and of the other units, per mouse x population x stage."""
    rows = []
    for (subj, pop, st), g in units.groupby(["subject", "population", "stage"], sort=False):
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
    return pd.DataFrame(
        rows, columns=["subject", "population", "stage", "group", "n_units", "activity"]
    )


def _selectivity(table: pd.DataFrame) -> pd.DataFrame:
    """Wide table per mouse x population x stage: ``encoding``, ``other``, ``selectivity``."""
    wide = table.pivot_table(
        index=["subject", "population", "stage"], columns="group", values="activity"
    ).reset_index()
    for c in ("encoding", "other"):
        if c not in wide.columns:
            wide[c] = np.nan
    wide["selectivity"] = wide["encoding"] - wide["other"]
    wide.columns.name = None
    return wide


def _no_value(measure: str, a, b, first: str, last: str):
    """Why a mouse in both stages has no change of ``measure`` (a function of the mouse)."""

    def why(mouse) -> str:
        empty = [st for st, w in ((first, a), (last, b)) if not np.isfinite(w.loc[mouse, measure])]
        return f"{_NO_VALUE.get(measure, 'no value')} in {' and '.join(empty)}"

    return why


def _change_row(pop, measure, a, b, common, *, first, last, seed, left_out=None) -> dict:
    """Change of one measure from the first to the last stage over the mice in both.

    ``value_from`` and ``value_to`` are means over the same mice as ``change`` (those
    with a value in both stages), so that ``value_to - value_from == change``.

    ``left_out``: ``{mouse: reason}`` of the mice in one stage only; the mice in both
    without a value of ``measure`` are added to the row's ``mice_left_out``.
    """
    d = np.array([b.loc[m, measure] - a.loc[m, measure] for m in common], float)
    left_out = {
        **(left_out or {}),
        **nonfinite_mice(common, d, _no_value(measure, a, b, first, last)),
    }
    lo, hi, why = t_mean_ci(d)
    paired = [m for m, v in zip(common, d, strict=True) if np.isfinite(v)]  # as the change
    row = {
        "population": pop,
        "measure": measure,
        "stage_from": first,
        "stage_to": last,
        "value_from": nanmean(a.loc[paired, measure]),
        "value_to": nanmean(b.loc[paired, measure]),
        "change": nanmean(d),
        "ci_low": lo,
        "ci_high": hi,
        "ci_reason": reason_cell(why),
        "p_value": ttest_p(d),
        "p_signflip": sign_flip_test(d, random_state=seed),
        "p_wilcoxon": wilcoxon_p(d),
        "n_mice": int(np.isfinite(d).sum()),
        "mice_left_out": left_out,
    }
    row["testable"] = bool(np.isfinite(row["p_value"]))
    row["reason"] = reason_cell(untestable_reason(row["p_value"], row["n_mice"], left_out))
    return row


def _stage_changes(wide, pops, stages, *, random_state, absent) -> pd.DataFrame:
    """Per population, changes (last - first stage) of other, encoding and selectivity.

    ``absent(population, stage)``: why a mouse has no units there (a function of the
    mouse, ``_common.no_session``), for the mice in one stage only.
    """
    rows = []
    if len(stages) >= 2:
        first, last = stages[0], stages[-1]
        for k, pop in enumerate(pops):
            w = wide[wide["population"] == pop]
            a = w[w["stage"] == first].set_index("subject")
            b = w[w["stage"] == last].set_index("subject")
            common, left_out = paired_mice(a.index, b.index, absent(pop, first), absent(pop, last))
            for j, measure in enumerate(("other", "encoding", "selectivity")):
                seed = random_state + 3 * k + j
                rows.append(
                    _change_row(
                        pop,
                        measure,
                        a,
                        b,
                        common,
                        first=first,
                        last=last,
                        seed=seed,
                        left_out=left_out,
                    )
                )
    return pd.DataFrame(rows, columns=_CHANGE_COLUMNS)


def _summarise(changes: pd.DataFrame, window, event: str, pops=(), stages=()) -> dict:
    """Headline numbers: ``changes`` {"pop/measure": {...}}, ``window``, ``event``,
    ``populations`` and ``stages`` (those of the encoding table, in learning order)."""
    changes_summary = {
        f"{r['population']}/{r['measure']}": {
            "stage_from": r["stage_from"],
            "stage_to": r["stage_to"],
            "value_from": fnum(r["value_from"]),
            "value_to": fnum(r["value_to"]),
            "change": fnum(r["change"]),
            "ci": [fnum(r["ci_low"]), fnum(r["ci_high"])],
            "ci_reason": reason_text(r.get("ci_reason")),
            "p_value": fnum(r["p_value"]),
            "p_signflip": fnum(r["p_signflip"]),
            "p_wilcoxon": fnum(r["p_wilcoxon"]),
            "n_mice": int(r["n_mice"]),
            "mice_left_out": left_out_of(r.get("mice_left_out")),
            "testable": bool(r["testable"]),
            "reason": reason_text(r["reason"]),
        }
        for r in changes.to_dict("records")
    }
    return {
        "changes": changes_summary,
        "window": list(window),
        "event": event,
        "populations": [str(p) for p in pops],
        "stages": [str(st) for st in stages],
    }


def _describe(summary: dict, window, event: str) -> str:
    """One paragraph: the measure, the test (mice as the unit) and every change."""
    txt = "; ".join(
        f"{k}: {fmt_num(v['value_from'])} -> {fmt_num(v['value_to'])} ({v['stage_from']} -> "
        f"{v['stage_to']}), change {fmt_num(v['change'], '+.3g')} "
        f"[{ci_text(*v['ci'], v['ci_reason'], label='t 95% CI')}], "
        f"{p_text(v['p_value'], reason=v['reason'], label='paired t-test p')}, "
        f"{p_text(v['p_signflip'], n_mice=v['n_mice'], label='sign-flip p')} "
        # an untestable p's reason names the mice left out already
        f"({mice_text(v['n_mice'], None if v['reason'] else v['mice_left_out'])})"
        for k, v in summary["changes"].items()
    )
    return (
        "Mean activity in the task window "
        f"({window[0]:g}..{window[1]:g} s after {event}; laser-off, no-stimulation trials) of "
        "the units classified as encoding the shared movement representation and of the "
        "other units, per mouse and stage; selectivity = encoding - other. Changes with "
        "learning were tested with mice as the unit (paired t-test, exact two-sided "
        "sign-flip and Wilcoxon tests; Student t 95% CI of the mean change over mice, "
        "exact for normal per-mouse changes, none from fewer than 2 mice or equal changes). "
        + (txt or _no_change_text(summary["stages"]))
        + "."
    )


def _no_change_text(stages: list) -> str:
    """Why no change was tested: ``"Units classified in the expert stage only: no change
    tested"``."""
    where = f"in the {stages[0]} stage only" if stages else "in no stage"
    return f"Units classified {where}: no change tested (it needs two stages)"


@analysis("selective_activation")
def selective_activation(
    collection: SessionCollection,
    encoding_table: pd.DataFrame,
    *,
    window: tuple[float, float] = (0.0, 2.0),
    event: str = "cue_time",
    days_per_stage: int | None = 2,
    n_boot: int | None = None,
    random_state: int = 0,
    stages=None,
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
    test, Student t interval of the mean change over mice (``_common.t_mean_ci``: NaN,
    with ``ci_reason``, from fewer than 2 mice or equal changes).

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
    n_boot : None
        Ignored (``FutureWarning`` when given; will be removed): the interval over mice
        is a t interval, which draws nothing.
    stages : list of str, optional
        The stages, in learning order (first: before learning); default the collection's
        ``analysis["stages"]``, else novice, intermediate, expert (other labels of unknown
        order raise :class:`~sharedrep.study._common.StageOrderError`, a ValueError). A
        stage left out of the list is a selection: its sessions and the rows of
        ``encoding_table`` of it are left out (the sessions named in
        ``summary["sessions"]``), as by every analysis.
    random_state : int, default 0
        Seed of the sign-flip test's random sign patterns (more than 16 mice).

    Returns
    -------
    AnalysisResult
        ``table``: per mouse x population x stage x group (``"encoding"``, ``"other"``):
        ``subject``, ``population``, ``stage``, ``group``, ``n_units``, ``activity``.
        ``tables["selectivity"]``: per mouse x population x stage: ``encoding``,
        ``other``, ``selectivity``. ``tables["changes"]``: per population and measure:
        ``measure``, ``stage_from``, ``stage_to``, ``change``, ``ci_low``, ``ci_high``
        (t 95% interval of the mean change), ``ci_reason`` (why it is NaN; NaN when it is
        not, ``""`` in the summary),
        ``p_value`` (t-test), ``p_signflip``, ``p_wilcoxon``, ``n_mice``,
        ``mice_left_out`` (the mice left out of the change -- in one stage only, or
        without a value -- each with the reason, e.g. ``"mouse03, no expert session of
        m1"``; NaN when none, ``{mouse: reason}`` in the summary), ``testable``
        (the t-test p-value is a number), ``reason`` (NaN when testable, else e.g.
        ``"not testable (n = 1 mouse)"``; ``""`` in the summary).
        ``summary``: ``changes`` {measure: {...}} (empty with one stage), ``populations``
        and ``stages`` (of ``encoding_table``, stages in learning order), ``window``,
        ``event``, ``sessions`` (the sessions used and those left out, with the reason:
        ``_common.session_provenance``).

    Raises
    ------
    AnalysisError
        An error while reading one session; the message names ``selective_activation``,
        the population, stage, session and subject.
    """
    ignored_n_boot(n_boot, "selective_activation")
    _check_encoding_table(encoding_table)
    pops = list(dict.fromkeys(encoding_table["population"]))
    given, order = stages, given_order(collection, stages)
    stages = selected_stages(encoding_table["stage"], order)  # the rule of every analysis
    units, sessions = _classified_activity(
        collection,
        encoding_table,
        pops,
        stages,
        window=window,
        event=event,
        days_per_stage=days_per_stage,
        first_stage=analysed_stages(collection, given)[0],  # the days of the classification
    )
    table = _group_activity(units)
    wide = _selectivity(table)
    changes = _stage_changes(
        wide,
        pops,
        stages,
        random_state=random_state,
        absent=lambda pop, st: no_session(collection, st, pop, _NO_UNITS.format(st, pop)),
    )
    figure = plot_selective_activation(wide, pops, stages, window=window, event=event)
    summary = _summarise(changes, window, event, pops, stages)
    summary["sessions"] = sessions
    return AnalysisResult(
        name="selective_activation",
        table=table,
        figure=figure,
        summary=summary,
        description=_describe(summary, window, event) + describe_provenance(sessions),
        tables={"selectivity": wide, "changes": left_out_cells(changes), "units": units},
    )
