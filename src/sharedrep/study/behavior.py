"""Behaviour: learning curves of the lever-push task.

:func:`trial_measures` extracts per-trial behaviour (success, reaction time, movement
duration, lever trajectory aligned to movement onset); :func:`learning_curves` summarises
it per mouse and day, tests the trend across days with mice as the unit and draws it with
:func:`sharedrep.study.figures.plot_learning_curves`. It may import ``sharedrep.utils``,
``sharedrep.data``, ``sharedrep.core``, ``sharedrep.inference`` and the other
``sharedrep.study`` modules (never ``sharedrep.app``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from sharedrep.data.preprocess import align_to_events, detect_movement_onsets
from sharedrep.data.session import SessionCollection
from sharedrep.data.studyfile import LABEL_SIMILARITY
from sharedrep.inference.multitest import holm
from sharedrep.study._common import (
    STAGE_ORDER,
    analysis,
    ci_text,
    describe_provenance,
    dropped,
    fmt_num,
    fnum,
    given_order,
    ignored_n_boot,
    left_out_cells,
    left_out_of,
    lever_index,
    merge_reasons,
    mice_text,
    nanmean,
    nanmedian,
    nonfinite_mice,
    ordered_stages,
    origin,
    p_text,
    reason_cell,
    reason_text,
    selected_stages,
    session_provenance,
    sign_flip_test,
    stage_reasons,
    subcollection,
    success_of,
    t_mean_ci,
    trial_flags,
    ttest_p,
    untestable_reason,
)
from sharedrep.study._result import AnalysisResult
from sharedrep.study.figures import plot_learning_curves
from sharedrep.utils.validation import closest_label

__all__ = [
    "trial_measures",
    "learning_curves",
    "trajectory_reproducibility",
    "one_stage_reason",
    "METRICS",
]

#: Learning-curve metrics: (column, unit, label).
METRICS = (
    ("success_rate", "fraction", "success rate"),
    ("reaction_time_s", "s", "reaction time"),
    ("movement_duration_s", "s", "movement duration"),
    ("reproducibility", "r", "trajectory reproducibility"),
)
#: Fraction of the peak displacement below which a push counts as ended.
END_FRACTION = 0.2
#: Similarity above which an unknown stage label is taken for a typo of a learning stage.
TYPO_SIMILARITY = LABEL_SIMILARITY


def _session_rate(collection: SessionCollection) -> float:
    rates = [s.sampling_rate for s in collection if np.isfinite(s.sampling_rate)]
    if not rates:
        raise ValueError("no session has a sampling rate (need >= 2 samples)")
    return float(np.median(rates))


def _trial_times(tr: pd.DataFrame, x: np.ndarray, t: np.ndarray):
    """Cue and movement-onset times of every trial (s; NaN when unknown).

    The onset is the trials table's ``movement_onset_time``, else detected from the
    lever ``x`` (shape (n_samples,)) after the cue, else NaN.
    """
    n = len(tr)
    cue = (
        pd.to_numeric(tr["cue_time"], errors="coerce").to_numpy(float)
        if "cue_time" in tr.columns
        else np.full(n, np.nan)
    )
    if "movement_onset_time" in tr.columns:
        onset = pd.to_numeric(tr["movement_onset_time"], errors="coerce").to_numpy(float)
    elif np.isfinite(cue).any():
        onset = detect_movement_onsets(x, t, cue)
    else:
        onset = np.full(n, np.nan)
    return cue, onset


def _inside_trials(x, t, events, start, stop, *, window, rate):
    """``x`` cut around ``events`` (trials x times), NaN outside each trial; and the times."""
    aligned, rel = align_to_events(x, t, events, window=window, sampling_rate=rate)
    absolute = events[:, None] + rel[None, :]
    aligned[(absolute < start[:, None]) | (absolute >= stop[:, None])] = np.nan
    return aligned, rel


def _peaks_and_durations(disp: np.ndarray, rel: np.ndarray, moved: np.ndarray):
    """Peak displacement (lever units) and movement duration (s) of every trial.

    The movement ends at the first sample after the peak where the displacement falls
    below ``END_FRACTION`` of the peak (NaN if it does not within the trial).
    """
    n = disp.shape[0]
    dur = np.full(n, np.nan)
    peak = np.full(n, np.nan)
    after = rel >= -1e-9
    for i in np.flatnonzero(moved):
        seg = disp[i, after]
        ok = np.isfinite(seg)
        if not ok.any():
            continue
        j = int(np.argmax(np.where(ok, seg, -np.inf)))
        peak[i] = seg[j]
        if seg[j] <= 0:
            continue
        below = np.flatnonzero(ok[j:] & (seg[j:] < END_FRACTION * seg[j]))
        if below.size:
            dur[i] = float(rel[after][j + below[0]])
    return peak, dur


def _session_measures(s, lever: int, *, window, rate):
    """Per-trial measures and onset-aligned lever displacement of one session.

    ``lever`` is the column of the lever position in ``s.behavior``.

    Returns
    -------
    frame : pandas.DataFrame
        One row per trial (columns of :func:`trial_measures`).
    traj : ndarray of shape (n_trials, n_window)
        Displacement in ``window`` around onset (NaN for trials that did not move).
    rel : ndarray of shape (n_window,)
        Seconds relative to movement onset.
    """
    tr, t = s.trials, s.timestamps
    n = len(tr)
    x = s.behavior[:, lever]
    start = tr["start_time"].to_numpy(float)
    stop = tr["stop_time"].to_numpy(float)
    cue, onset = _trial_times(tr, x, t)
    # baseline: median lever position in the 0.5 s before the cue (or the onset)
    ref = np.where(np.isfinite(cue), cue, onset - 0.1)
    base_win, _ = _inside_trials(x, t, ref, start, stop, window=(-0.5, -1.0 / rate), rate=rate)
    baseline = np.array([nanmedian(r) for r in base_win])
    long_window = (window[0], max(window[1], 3.0))
    aligned, rel = _inside_trials(x, t, onset, start, stop, window=long_window, rate=rate)
    disp = aligned - baseline[:, None]
    moved = np.isfinite(onset)
    peak, dur = _peaks_and_durations(disp, rel, moved)
    keep = (rel >= window[0] - 1e-9) & (rel <= window[1] + 1e-9)
    traj = disp[:, keep]
    traj[~moved] = np.nan
    stim, sil = trial_flags(s)
    frame = pd.DataFrame(
        {
            "subject": s.subject,
            "session_id": s.session_id,
            "day": s.day,
            "stage": s.stage,
            "population": s.population,
            "trial": np.arange(n),
            "cue_time": cue,
            "movement_onset_time": onset,
            "moved": moved,
            "success": success_of(tr),
            "reaction_time_s": onset - cue,
            "movement_duration_s": dur,
            "peak_displacement": peak,
            "stim": stim,
            "silencing": sil,
        }
    )
    return frame, traj, rel[keep]


@analysis("trial_measures")
def trial_measures(
    collection: SessionCollection,
    *,
    lever: str | None = None,
    window: tuple[float, float] = (-0.2, 1.5),
    sampling_rate: float | None = None,
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Per-trial behaviour of every session with trials.

    For each trial: the lever displacement is the lever position minus its median in the
    0.5 s before the cue (before movement onset when there is no cue); the movement
    onset is the trials table's ``movement_onset_time`` (else detected from the lever
    with :func:`sharedrep.data.preprocess.detect_movement_onsets`); the reaction time is onset
    minus cue; the movement ends at the first sample after the peak displacement where
    the displacement falls below ``END_FRACTION`` (20 %) of the peak (duration = end -
    onset; NaN if it does not fall back within the trial). Samples outside the trial are
    never used.

    Parameters
    ----------
    collection : SessionCollection
    lever : str, optional
        Behaviour feature holding the lever position (default: see
        ``_common.lever_index``: ``lever_position``, ``lever``, ...).
    window : (float, float), default (-0.2, 1.5)
        Trajectory window around movement onset, seconds.
    sampling_rate : float, optional
        Rate (Hz) of the common trajectory time axis; default the median session rate.

    Returns
    -------
    trials : pandas.DataFrame
        One row per trial: ``subject``, ``session_id``, ``day``, ``stage``,
        ``population``, ``trial`` (row in the session's trials table), ``cue_time``,
        ``movement_onset_time`` (s), ``moved`` (bool), ``success`` (1/0, NaN unknown),
        ``reaction_time_s``, ``movement_duration_s``, ``peak_displacement``
        (lever units), ``stim``, ``silencing`` (bool).
    trajectories : numpy.ndarray, shape (n_trials, n_window)
        Lever displacement aligned to movement onset (NaN when the trial did not move or
        the window leaves the trial).
    rel_times : numpy.ndarray, shape (n_window,)
        Seconds relative to movement onset.

    Raises
    ------
    ValueError
        No session with trials, or a session without a lever-position feature.
    AnalysisError
        An error while measuring one session's trials; the message names the analysis,
        the population, stage, session and subject.
    """
    rate = float(sampling_rate) if sampling_rate is not None else _session_rate(collection)
    frames, trajs, rel_traj = [], [], None
    for s in collection:
        if len(s.trials) == 0:
            continue
        column = lever_index(s, lever)
        with origin(session=s):
            frame, traj, rel_traj = _session_measures(s, column, window=window, rate=rate)
        frames.append(frame)
        trajs.append(traj)
    if not frames:
        raise ValueError("no session has trials: behaviour analyses need a trials table")
    return pd.concat(frames, ignore_index=True), np.concatenate(trajs), rel_traj


def repeated_recordings(collection: SessionCollection, lever: str | None = None) -> dict:
    """Sessions whose behaviour repeats an earlier session's: ``{session_id: reason}``.

    Two sessions of one mouse and day with the same frame times, the same trial start
    times and the same lever trace are one behavioural recording stored twice (e.g. two
    populations imaged at once, one file each). Their trials must count once: the
    per-mouse means would not change, but every trial would pair with its own copy in
    the trajectory reproducibility (r = 1) and trial-level tests would count it twice.
    The first session (collection order) is kept; sessions without trials, day or lever
    feature are never repeats.
    """
    kept: dict = {}
    out = {}
    for s in collection:
        if len(s.trials) == 0 or s.day is None:
            continue
        try:
            trace = s.behavior[:, lever_index(s, lever)]
        except ValueError:
            continue
        same = next((k for k in kept.get((s.subject, s.day), []) if _same(s, trace, *k)), None)
        if same is not None:
            out[s.session_id] = (
                f"same trials and lever trace as {same[0].session_id} (one behavioural "
                "recording, its trials counted once)"
            )
        else:
            kept.setdefault((s.subject, s.day), []).append((s, trace))
    return out


def _same(s, trace: np.ndarray, other, other_trace: np.ndarray) -> bool:
    """Whether session ``s`` (lever ``trace``) has the frame times, trial start times and
    lever trace of ``other``."""
    return (
        np.array_equal(s.timestamps, other.timestamps)
        and np.array_equal(s.trials["start_time"], other.trials["start_time"])
        and np.array_equal(trace, other_trace, equal_nan=True)
    )


def trajectory_reproducibility(trajectories: np.ndarray) -> float:
    """Mean pairwise Pearson correlation between trial trajectories.

    Parameters
    ----------
    trajectories : numpy.ndarray, shape (n_trials, n_window)
        Rows with any NaN or without variance are ignored.

    Returns
    -------
    float
        Mean of the off-diagonal correlations (NaN with fewer than 3 usable trials).
    """
    a = np.asarray(trajectories, dtype=float)
    a = a[np.all(np.isfinite(a), axis=1)]
    if a.shape[0] < 3:
        return math.nan
    a = a - a.mean(axis=1, keepdims=True)
    sd = np.sqrt(np.sum(a**2, axis=1))
    a = a[sd > 0] / sd[sd > 0, None]
    n = a.shape[0]
    if n < 3:
        return math.nan
    c = a @ a.T
    return float((c.sum() - np.trace(c)) / (n * (n - 1)))


def _slope(days: np.ndarray, values: np.ndarray) -> float:
    ok = np.isfinite(days) & np.isfinite(values)
    if np.unique(days[ok]).size < 2:
        return math.nan
    return float(np.polyfit(days[ok], values[ok], 1)[0])


def _day_table(trials: pd.DataFrame, traj: np.ndarray) -> pd.DataFrame:
    """One row per mouse x day of the metrics (stimulation and silencing trials excluded)."""
    use = ~(trials["stim"].to_numpy() | trials["silencing"].to_numpy())
    trials_u = trials[use]
    traj_u = traj[use]
    rows = []
    for (subj, day), idx in trials_u.groupby(["subject", "day"], sort=False).groups.items():
        d = trials_u.loc[idx]
        pos = trials_u.index.get_indexer(idx)
        moved = d["moved"].to_numpy()
        rows.append(
            {
                "subject": subj,
                "day": int(day),
                "stage": d["stage"].iloc[0],
                "n_trials": len(d),
                "success_rate": nanmean(d["success"]),
                "reaction_time_s": nanmedian(d["reaction_time_s"][moved]),
                "movement_duration_s": nanmedian(d["movement_duration_s"][moved]),
                "reproducibility": trajectory_reproducibility(traj_u[pos][moved]),
            }
        )
    if not rows:
        raise ValueError("no trials with a day: learning curves need sessions with days")
    return pd.DataFrame(rows).sort_values(["subject", "day"], ignore_index=True)


def _stage_gap(dm: pd.DataFrame, first: str, last: str, a: float, b: float) -> str:
    """Why one mouse (its rows ``dm``) has no last - first stage difference of a metric
    whose stage means are ``a`` and ``b``: ``"no expert session"``, or ``"no value in its
    novice sessions"``."""
    missing = [st for st in dict.fromkeys((first, last)) if not (dm["stage"] == st).any()]
    if missing:
        return f"no {' or '.join(missing)} session"
    empty = [st for st, v in ((first, a), (last, b)) if not math.isfinite(v)]
    return f"no value in its {' or '.join(dict.fromkeys(empty))} sessions"


def _trend_row(table, mice, col, unit, first, last, *, seed) -> dict:
    """Trend of one metric: mean per-mouse slope against day, and last - first stage.

    ``first_stage_mean`` and ``last_stage_mean`` average the same mice as
    ``stage_difference`` (those with a value in both stages), so that their difference
    is the stage difference. ``mice_left_out`` (of the slope) and
    ``mice_left_out_stage`` (of the stage means and difference) hold ``{mouse:
    reason}`` of the mice without a value.
    """
    slopes, firsts, lasts, gaps = [], [], [], {}
    for m in mice:
        dm = table[table["subject"] == m]
        slopes.append(_slope(dm["day"].to_numpy(float), dm[col].to_numpy(float)))
        a = nanmean(dm.loc[dm["stage"] == first, col])
        b = nanmean(dm.loc[dm["stage"] == last, col])
        firsts.append(a)
        lasts.append(b)
        if first is not None and not math.isfinite(b - a):
            gaps[m] = _stage_gap(dm, first, last, a, b)
    slopes, firsts, lasts = np.array(slopes), np.array(firsts), np.array(lasts)
    diffs = lasts - firsts
    paired = np.isfinite(diffs)
    lo, hi, why = t_mean_ci(slopes)
    return {
        "metric": col,
        "unit": unit,
        "slope_per_day": nanmean(slopes),
        "ci_low": lo,
        "ci_high": hi,
        "ci_reason": reason_cell(why),
        "p_value": ttest_p(slopes),
        "p_signflip": sign_flip_test(slopes, random_state=seed),
        "first_stage_mean": nanmean(firsts[paired]),
        "last_stage_mean": nanmean(lasts[paired]),
        "stage_difference": nanmean(diffs),
        "p_stage": ttest_p(diffs) if first != last else math.nan,
        "n_mice": int(np.isfinite(slopes).sum()),
        "mice_left_out": nonfinite_mice(mice, slopes, "fewer than 2 days with a value"),
        "n_mice_stage": int(paired.sum()),
        "mice_left_out_stage": gaps,
    }


def _trends(table, mice, first, last, *, random_state) -> pd.DataFrame:
    """One row per metric of :data:`METRICS` with Holm-corrected p-values (``p_holm``)."""
    trends = pd.DataFrame(
        [
            _trend_row(table, mice, col, unit, first, last, seed=random_state + k)
            for k, (col, unit, _) in enumerate(METRICS)
        ]
    )
    trends.insert(trends.columns.get_loc("p_value") + 1, "p_holm", holm(trends["p_value"]))
    trends["testable"] = np.isfinite(trends["p_value"].to_numpy(float))
    trends["reason"] = [
        reason_cell(untestable_reason(p, n, left_out))
        for p, n, left_out in zip(
            trends["p_value"], trends["n_mice"], trends["mice_left_out"], strict=True
        )
    ]
    return trends


def one_stage_reason(first, last) -> str:
    """Why learning curves cannot show learning across stages.

    Parameters
    ----------
    first, last : str or None
        The first and last stage of the curves (``summary["stages"]``).

    Returns
    -------
    str
        ``"one stage analysed: expert; learning needs at least two stages"`` when the
        first and the last stage are one stage: a trend over its days describes that
        stage, it is no evidence of learning across stages; ``""`` with two stages or
        more, or without stage labels (``None``).
    """
    if first is None or first != last:
        return ""
    return f"one stage analysed: {first}; learning needs at least two stages"


def _summarise(table, trends, mice, first, last) -> dict:
    """Headline numbers: mice, days, stages compared and each metric's trend."""
    metrics = {
        r["metric"]: {
            "unit": r["unit"],
            "slope_per_day": fnum(r["slope_per_day"]),
            "ci": [fnum(r["ci_low"]), fnum(r["ci_high"])],
            "ci_reason": reason_text(r.get("ci_reason")),
            "p_value": fnum(r["p_value"]),
            "p_holm": fnum(r["p_holm"]),
            "p_signflip": fnum(r["p_signflip"]),
            "first_stage_mean": fnum(r["first_stage_mean"]),
            "last_stage_mean": fnum(r["last_stage_mean"]),
            "stage_difference": fnum(r["stage_difference"]),
            "p_stage": fnum(r["p_stage"]),
            "n_mice": int(r["n_mice"]),
            "mice_left_out": left_out_of(r.get("mice_left_out")),
            "n_mice_stage": int(r["n_mice_stage"]),
            "mice_left_out_stage": left_out_of(r.get("mice_left_out_stage")),
            "testable": bool(r["testable"]),
            "reason": reason_text(r["reason"]),
        }
        for r in trends.to_dict("records")
    }
    why = one_stage_reason(first, last)
    return {
        "n_mice": len(mice),
        "days": sorted(int(d) for d in table["day"].unique()),
        "stages": [first, last],
        "learning_testable": not why,
        "learning_reason": why,
        "metrics": metrics,
    }


def _stage_means_text(r: dict, unit: str, first: str, last: str) -> str:
    """``"0.2 -> 0.3 fraction (novice -> expert)"``: the first and last stage's means,
    with the mice they average when some are left out (those of the stage difference);
    ``"0.9 fraction (the expert stage only)"`` when there is one stage."""
    over = ""
    if r["mice_left_out_stage"]:
        what = "mean" if first == last else f"means and {last} - {first} difference"
        over = f"; {what} over {mice_text(r['n_mice_stage'], r['mice_left_out_stage'])}"
    if first == last:  # one stage: no stage change to give
        return f"{fmt_num(r['first_stage_mean'])} {unit} (the {first} stage only{over})"
    return (
        f"{fmt_num(r['first_stage_mean'])} -> {fmt_num(r['last_stage_mean'])} {unit} "
        f"({first} -> {last}{over})"
    )


def _left_out_text(r: dict) -> str:
    """The mice one metric's slope leaves out, named (``""``: none, or named by the
    reason of its untestable p)."""
    if r["mice_left_out"] and r["testable"]:
        return f" (slope over {mice_text(r['n_mice'], r['mice_left_out'])})"
    return ""


def _describe(summary: dict) -> str:
    """One paragraph: the trend test (mice as the unit) and every metric's result."""
    first, last = summary["stages"]
    parts = []
    for col, unit, label in METRICS:
        r = summary["metrics"][col]
        p = (
            f"p = {r['p_value']:.3g} (Holm {r['p_holm']:.3g})"
            if r["testable"]
            else p_text(r["p_value"], reason=r["reason"])
        )
        parts.append(
            f"{label}: {_stage_means_text(r, unit, first, last)}, slope "
            f"{fmt_num(r['slope_per_day'], '+.3g')} {unit}/day "
            f"[{ci_text(*r['ci'], r['ci_reason'], label='t 95% CI')}], {p}" + _left_out_text(r)
        )
    return (
        "Behavioural learning curves per mouse and day (stimulation and silencing trials "
        "excluded). For each metric the per-mouse least-squares slope against day was "
        "computed and its mean across mice tested against zero with a two-sided one-sample "
        "t-test (mice are the unit of inference; trials are nested in mice; an exact "
        "sign-flip test is also reported as p_signflip, whose smallest possible value is "
        "2 / 2^n_mice), with a Student t 95% CI of the mean slope over mice (exact for "
        "normal per-mouse slopes; no interval from fewer than 2 mice or equal slopes) and "
        f"Holm correction across the four metrics (n = {summary['n_mice']} mice). "
        + "; ".join(parts)
        + "."
        + _one_stage_text(summary)
    )


def _one_stage_text(summary: dict) -> str:
    """``" Learning across stages is not testable: one stage analysed: expert; ..."``
    when the curves hold one stage (``summary["learning_reason"]``); ``""`` otherwise."""
    first, why = summary["stages"][0], summary["learning_reason"]
    if not why:
        return ""
    return (
        f" Learning across stages is not testable: {why}. The slopes and their tests "
        f"describe the trend over the days of the {first} stage only, and no stage "
        "difference is tested."
    )


def _curve_sessions(
    collection: SessionCollection, stages=None, lever: str | None = None
) -> tuple[SessionCollection, dict, list]:
    """The sessions the learning curves use, ``{session_id: reason}`` for the others, and
    the stages in learning order.

    With the user's stage list (``stages``, else ``[analysis] stages``): the stages it
    lists (``_common.selected_stages``, the rule of every analysis), the sessions of the
    others left out, named. Without it, the learning stages present (novice,
    intermediate, expert): a session labelled otherwise that looks like a typo of one of
    them (e.g. ``"novcie"``) is left out, so that it neither joins the curves under a
    stage of its own nor becomes the "last stage" of the comparison; any other label
    raises :class:`StageOrderError` (its learning order is unknown). Sessions without a
    stage are kept (their days still count in the slopes); sessions without trials or
    without a day, and repeats of another session's behaviour (:func:`repeated_recordings`),
    are left out.
    """
    labelled = [s for s in collection if s.stage is not None]
    given = given_order(collection, stages)
    present = list(dict.fromkeys(s.stage for s in labelled))
    order = _learning_stages(present) if given is None else selected_stages(present, given)
    reasons = merge_reasons(
        # the stages left out: of the user's list, else typos of a learning stage
        stage_reasons(labelled, order if given is None else given),
        {s.session_id: "no trials" for s in collection if len(s.trials) == 0},
        {s.session_id: "no day (the curves are per day)" for s in collection if s.day is None},
        repeated_recordings(collection, lever),
    )
    kept = [s for s in collection if s.session_id not in reasons]
    return subcollection(collection, kept), reasons, order


def _learning_stages(present: list) -> list:
    """The stages of the curves without a stage list: novice, intermediate, expert
    present, in learning order; a label that looks like a typo of one of them is left
    out; several stages with another label raise :class:`StageOrderError`."""
    known = [st for st in STAGE_ORDER if st in present]
    typos = [
        st
        for st in present
        if st not in STAGE_ORDER
        and known
        and closest_label(st, STAGE_ORDER, TYPO_SIMILARITY) is not None
    ]
    order = known + ordered_stages(st for st in present if st not in known + typos)
    return ordered_stages(order)  # several stages of unknown order: refused


def _curve_provenance(collection, kept, trials: pd.DataFrame, reasons: dict) -> dict:
    """``summary["sessions"]`` of the learning curves (sessions with a usable trial)."""
    usable = ~(trials["stim"].to_numpy(bool) | trials["silencing"].to_numpy(bool))
    used = set(trials.loc[usable, "session_id"])
    only_flagged = dropped(
        kept, [s for s in kept if s.session_id in used], "only stimulation or silencing trials"
    )
    return session_provenance(collection, used, merge_reasons(reasons, only_flagged))


@analysis("learning_curves")
def learning_curves(
    collection: SessionCollection,
    *,
    lever: str | None = None,
    window: tuple[float, float] = (-0.2, 1.5),
    n_boot: int | None = None,
    random_state: int = 0,
    stages=None,
) -> AnalysisResult:
    """Learning curves: success, reaction time, movement duration, reproducibility by day.

    Per mouse and day (trials of every session of that day pooled, a session repeating
    another's behaviour counted once, see :func:`repeated_recordings`; stimulation and
    silencing trials excluded): success rate (fraction of trials rewarded), median
    reaction time (cue to movement onset, s), median movement duration (s; see
    :func:`trial_measures`) and trial-to-trial trajectory reproducibility (mean pairwise
    correlation of the lever displacement from -0.2 to 1.5 s around movement onset,
    trials with a movement).

    **Trend test, mice as the unit.** Per mouse, the least-squares slope of each metric
    against day; the mean slope across mice is tested against 0 by a two-sided
    one-sample t-test (and an exact sign-flip test), with the matching Student t
    interval over mice (``_common.t_mean_ci``: NaN, with ``ci_reason``, from fewer than
    2 mice or equal slopes); Holm correction over the four metrics. Also the per-mouse
    last - first stage difference (means over the days of each stage), paired t-test,
    and the first and last stage's means over the same mice (those with a value in both
    stages), so that last - first mean is the mean difference.

    Parameters
    ----------
    collection : SessionCollection
    lever : str, optional
        Lever-position feature (default: found by name).
    window : (float, float), default (-0.2, 1.5)
        Trajectory window around movement onset, seconds.
    n_boot : None
        Ignored (``FutureWarning`` when given; will be removed): the interval over mice
        is a t interval, which draws nothing.
    random_state : int, default 0
        Seed of the sign-flip test's random sign patterns (more than 16 mice).
    stages : list of str, optional
        The stages, in learning order (first: before learning); default the collection's
        ``analysis["stages"]``, else novice, intermediate, expert (other labels: see
        Raises). A stage left out of the list is a selection: its sessions are left out
        (named in ``summary["sessions"]``), as by every analysis.

    Returns
    -------
    AnalysisResult
        ``table``: one row per mouse x day: ``subject``, ``day``, ``stage``, ``n_trials``,
        ``success_rate``, ``reaction_time_s``, ``movement_duration_s``,
        ``reproducibility``. ``tables["trends"]``: one row per metric: ``metric``,
        ``unit``, ``slope_per_day``, ``ci_low``, ``ci_high`` (t 95% interval of the mean
        slope), ``ci_reason`` (why the interval is NaN; NaN when it is not), ``p_value``
        (t-test), ``p_holm``, ``p_signflip``, ``first_stage_mean``,
        ``last_stage_mean`` (means of the first and last stage, whatever their labels,
        over the ``n_mice_stage`` mice), ``stage_difference`` (their difference: the mean
        per-mouse last - first difference), ``p_stage``, ``n_mice`` (mice with a slope),
        ``mice_left_out`` (the others, each with the reason, e.g. ``"mouse07, fewer than 2
        days with a value"``; NaN when none), ``n_mice_stage`` (mice with a value in both
        stages, behind the stage means and ``p_stage``), ``mice_left_out_stage`` (the
        others, e.g. ``"mouse03, no expert session"``), ``testable``, ``reason``.
        ``tables["trials"]``: the per-trial measures. ``summary``: ``{"n_mice", "days",
        "stages" ([first, last]), "learning_testable", "learning_reason", "metrics":
        {metric: {"unit", "slope_per_day", "ci",
        "ci_reason", "p_value", "p_holm", "p_signflip", "first_stage_mean",
        "last_stage_mean", "stage_difference", "p_stage", "n_mice", "mice_left_out",
        "n_mice_stage", "mice_left_out_stage", "testable", "reason"}}, "sessions"}``
        (``mice_left_out``, ``mice_left_out_stage``: ``{mouse: reason}``, ``{}`` when
        none, named in the description; ``testable``: the t-test p-value is a number;
        ``reason``: ``""``, or why not, e.g. ``"not testable (n = 3 mice)"``; NaN instead
        of ``""`` in ``tables["trends"]``) (``sessions``: the sessions used and those left
        out, with the reason, see ``_common.session_provenance``; a session whose stage is
        not a learning stage while others are, e.g. a typo, is left out). The keys
        ``novice`` and ``expert`` of older summaries (stage means over different mice) are
        no longer written: ``first_stage_mean`` and ``last_stage_mean`` replace them (the
        report still reads them from old summaries). ``learning_testable`` is False and
        ``learning_reason`` says why (:func:`one_stage_reason`, e.g. ``"one stage
        analysed: expert; learning needs at least two stages"``) when the curves hold one
        stage: their day trends then describe that stage and are no evidence of learning
        across stages (``learning_reason`` is ``""`` otherwise).

    Raises
    ------
    StageOrderError
        (a ValueError) Several stages, some of unknown learning order (not novice,
        intermediate, expert), and no ``stages`` list.
    AnalysisError
        An error while measuring one session; the message names ``learning_curves``, the
        population, stage, session and subject.
    """
    ignored_n_boot(n_boot, "learning_curves")
    kept, reasons, order = _curve_sessions(collection, stages, lever)
    trials, traj, _ = trial_measures(kept, lever=lever, window=window)
    table = _day_table(trials, traj)
    mice = list(dict.fromkeys(table["subject"]))
    stages = selected_stages(table["stage"], order)
    first, last = (stages[0], stages[-1]) if stages else (None, None)
    trends = _trends(table, mice, first, last, random_state=random_state)
    summary = _summarise(table, trends, mice, first, last)
    summary["sessions"] = _curve_provenance(collection, kept, trials, reasons)
    return AnalysisResult(
        name="learning_curves",
        table=table,
        figure=plot_learning_curves(table, METRICS),
        summary=summary,
        description=_describe(summary) + describe_provenance(summary["sessions"]),
        tables={
            "trends": left_out_cells(left_out_cells(trends), "mice_left_out_stage"),
            "trials": trials,
        },
    )
