"""Silencing: does silencing the thalamic inputs impair the learned movement?

Laser-on (silencing) vs laser-off trials of the sessions with silencing trials, compared
within each mouse and then paired across mice; private compute steps build the tables,
:func:`sharedrep.study.figures.plot_silencing_effects` draws them. It may import
``sharedrep.utils``, ``sharedrep.data``, ``sharedrep.core``, ``sharedrep.inference`` and
the other ``sharedrep.study`` modules (never ``sharedrep.app``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from sharedrep.data.session import SessionCollection
from sharedrep.inference.multitest import holm
from sharedrep.study._common import (
    STAGE_ORDER,
    AnalysisError,
    analysis,
    ci_text,
    describe_provenance,
    empty_figure,
    fmt_num,
    fnum,
    given_order,
    ignored_n_boot,
    left_out_cells,
    left_out_note,
    left_out_of,
    listed_stages,
    merge_reasons,
    nanmean,
    nanmedian,
    nonfinite_mice,
    origin,
    p_text,
    paired_mice,
    reason_cell,
    reason_text,
    selection_note,
    session_provenance,
    sign_flip_test,
    sign_flip_testability,
    stage_reasons,
    subcollection,
    t_mean_ci,
    ttest_p,
    wilcoxon_p,
)
from sharedrep.study._result import AnalysisResult
from sharedrep.study.behavior import repeated_recordings, trial_measures
from sharedrep.study.figures import plot_silencing_effects

__all__ = ["silencing_effects"]

#: metric -> (unit, label, direction of impairment: "less" or "greater"); ``{stage}`` in a
#: label is the template stage (see :func:`_metrics`).
_METRICS = {
    "success_rate": ("fraction", "success rate", "less"),
    "reaction_time_s": ("s", "reaction time", "greater"),
    "template_similarity": ("r", "similarity to {stage} template", "less"),
}

#: The metrics of the headline ``impairs``: one family, Holm-corrected.
_HEADLINE = ("success_rate", "reaction_time_s")

#: ``summary["skipped"]`` of a study without silencing trials.
_NO_SILENCING_SESSIONS = "no silencing sessions in the study"


def _corr_rows(traj: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Pearson r of every complete row of ``traj`` with ``template`` (NaN otherwise)."""
    out = np.full(traj.shape[0], np.nan)
    ok = np.all(np.isfinite(traj), axis=1) & np.all(np.isfinite(template))
    if not ok.any():
        return out
    a = traj[ok] - traj[ok].mean(axis=1, keepdims=True)
    b = template - template.mean()
    den = np.sqrt(np.sum(a**2, axis=1) * np.sum(b**2))
    with np.errstate(invalid="ignore", divide="ignore"):
        out[ok] = np.where(den > 0, a @ b / np.where(den > 0, den, 1.0), np.nan)
    return out


def _metrics(template_stage: str) -> dict:
    """:data:`_METRICS` with the template stage in the labels (``"similarity to expert
    template"``)."""
    return {
        m: (unit, label.format(stage=template_stage), alt)
        for m, (unit, label, alt) in _METRICS.items()
    }


def _not_silencing(template_stage: str) -> str:
    """Why a session is left out of the silencing analysis (``template_stage``: the stage
    of the sessions that make a mouse's template)."""
    return f"no silencing (laser-on) trial, and not used for its mouse's {template_stage} template"


def _no_silencing(
    collection: SessionCollection, why: str, skipped: str, left_out: dict | None = None
) -> AnalysisResult:
    """The result when no session has silencing (laser-on) trials.

    ``why``: the reason of every session left out, but those of ``left_out``
    (``{session_id: reason}``, e.g. of a stage the user's list leaves out); ``skipped``:
    of the analysis (``summary["skipped"]``, the form of
    :func:`~sharedrep.study.run_study`: absent data, not an analysis that cannot reach
    0.05 with few mice).
    """
    reasons = merge_reasons(left_out or {}, {s.session_id: why for s in collection})
    sessions = session_provenance(collection, (), reasons)
    return AnalysisResult(
        name="silencing_effects",
        table=pd.DataFrame(),
        figure=empty_figure("no silencing trials"),
        summary={
            "skipped": skipped,
            "metrics": {},
            "n_mice": 0,
            "mice_left_out": {},
            "impairs": False,
            "testable": False,
            "reason": skipped,
            "sessions": sessions,
        },
        description=f"Not run: {skipped}. No session had silencing (laser-on) trials; "
        "no silencing analysis." + describe_provenance(sessions),
    )


def _template_similarity(trials, traj, in_sil, template_stage) -> tuple[np.ndarray, set]:
    """Pearson r of each silencing-session trial's trajectory with its mouse's template.

    The template is the mean trajectory of the mouse's successful laser-off,
    no-stimulation trials of ``template_stage`` sessions without silencing (else of the
    silencing sessions). Returns the similarities, shape (n_trials,), NaN where not
    computable, and the ids of the sessions whose trials made a template.
    """
    no_stim = ~trials["stim"].to_numpy(bool)
    sim = np.full(len(trials), np.nan)
    template_sessions: set = set()
    for subj in trials.loc[in_sil, "subject"].unique():
        of_mouse = (trials["subject"] == subj).to_numpy()
        base = (
            of_mouse
            & no_stim
            & ~trials["silencing"].to_numpy(bool)
            & (trials["success"].to_numpy(float) == 1)
        )
        tmpl_rows = base & (trials["stage"] == template_stage).to_numpy() & ~in_sil
        if not tmpl_rows.any():
            tmpl_rows = base & in_sil
        rows_ok = tmpl_rows & np.all(np.isfinite(traj), axis=1)
        if not rows_ok.any():
            continue
        template_sessions.update(trials.loc[rows_ok, "session_id"])
        template = traj[rows_ok].mean(axis=0)
        sel = of_mouse & in_sil
        with origin(subject=subj):
            sim[sel] = _corr_rows(traj[sel], template)
    return sim, template_sessions


def _laser_table(used: pd.DataFrame) -> pd.DataFrame:
    """Per mouse x laser (``"off"``/``"on"``): trials, success, reaction time, similarity."""
    rows = []
    for (subj, laser), g in used.groupby(["subject", "laser"], sort=False):
        moved = g["moved"].to_numpy(bool)
        rows.append(
            {
                "subject": subj,
                "laser": laser,
                "n_trials": len(g),
                "success_rate": nanmean(g["success"]),
                "reaction_time_s": nanmedian(g["reaction_time_s"][moved]),
                "template_similarity": nanmean(g["template_similarity"][moved]),
            }
        )
    return pd.DataFrame(rows).sort_values(["subject", "laser"], ignore_index=True)


def _paired_mice(table: pd.DataFrame) -> tuple[list, dict]:
    """Mice (sorted) with both laser-on and laser-off trials, and ``{mouse: reason}`` of
    the others (``"no laser-on trial"``: stimulation trials are not used)."""
    return paired_mice(
        sorted(set(table.loc[table["laser"] == "on", "subject"])),
        sorted(set(table.loc[table["laser"] == "off", "subject"])),
        "no laser-on trial",
        "no laser-off trial",
    )


def _testability(p, n_mice: int, alternative: str, left_out: dict) -> dict:
    """``p_min``, ``testable`` and ``reason`` (a table cell) of the sign-flip test."""
    out = sign_flip_testability(p, n_mice, alternative, left_out)
    return {**out, "reason": reason_cell(out["reason"])}


def _no_value(label: str, w: pd.DataFrame):
    """Why a mouse of ``w`` (laser-on and -off values of one metric) has no difference."""

    def why(mouse) -> str:
        lasers = [laser for laser in ("on", "off") if not np.isfinite(w.loc[mouse, laser])]
        return f"no {label} with the laser {' or '.join(lasers)}"

    return why


def _effects(used, table, mice, metrics, *, n_perm, random_state, left_out) -> pd.DataFrame:
    """Per metric: laser-on - laser-off difference paired across mice, and its tests.

    ``metrics``: :func:`_metrics`. ``left_out``: ``{mouse: reason}`` of the mice without
    both lasers; the mice without a value of a metric are added to its ``mice_left_out``.
    """
    wide = {m: table.pivot(index="subject", columns="laser", values=m) for m in metrics}
    rng = np.random.default_rng(random_state)
    rows = []
    for metric, (unit, label, alt) in metrics.items():
        w = wide[metric].loc[mice] if mice else pd.DataFrame(columns=["on", "off"])
        d = (w["on"] - w["off"]).to_numpy(float) if mice else np.zeros(0)
        out = {**left_out, **nonfinite_mice(mice, d, _no_value(label, w))}
        lo, hi, why = t_mean_ci(d)
        p = sign_flip_test(d, alt)
        n = int(np.isfinite(d).sum())
        rows.append(
            {
                "metric": metric,
                "unit": unit,
                "laser_off": nanmean(w["off"]) if mice else math.nan,
                "laser_on": nanmean(w["on"]) if mice else math.nan,
                "difference": nanmean(d),
                "ci_low": lo,
                "ci_high": hi,
                "ci_reason": reason_cell(why),
                "alternative": alt,
                "p_value": p,
                **_testability(p, n, alt, out),
                "p_wilcoxon": wilcoxon_p(d, alt),
                "p_ttest": ttest_p(d, alt),
                "p_trials": _trial_permutation(used, metric, mice, alt, n_perm, rng),
                "n_mice": n,
                "mice_left_out": out,
            }
        )
    return pd.DataFrame(rows)


def _summarise(effects: pd.DataFrame, mice: list, left_out: dict | None = None) -> dict:
    """Headline numbers: per-metric effects, mice, ``impairs``.

    ``impairs``: the sign-flip p-values (one-sided, in the direction of an impairment) of
    the :data:`_HEADLINE` metrics (success rate, reaction time) Holm-corrected as one
    family (``p_holm``; NaN for the other metrics and for a p that is not a number);
    True when a corrected p <= 0.05. ``testable``: whether a corrected p can reach 0.05
    at all with these mice (``reason`` says why not).
    """
    metrics = {
        r["metric"]: {
            "unit": r["unit"],
            "laser_off": fnum(r["laser_off"]),
            "laser_on": fnum(r["laser_on"]),
            "difference": fnum(r["difference"]),
            "ci": [fnum(r["ci_low"]), fnum(r["ci_high"])],
            "ci_reason": reason_text(r.get("ci_reason")),
            "alternative": r["alternative"],
            "p_value": fnum(r["p_value"]),
            "p_min": fnum(r["p_min"]),
            "testable": bool(r["testable"]),
            "reason": reason_text(r["reason"]),
            "p_wilcoxon": fnum(r["p_wilcoxon"]),
            "p_ttest": fnum(r["p_ttest"]),
            "p_trials": fnum(r["p_trials"]),
            "n_mice": int(r["n_mice"]),
            "mice_left_out": left_out_of(r.get("mice_left_out")),
        }
        for r in effects.to_dict("records")
    }
    family = [m for m in _HEADLINE if m in metrics]
    adjusted = dict(zip(family, holm([metrics[m]["p_value"] for m in family]), strict=True))
    for m, v in metrics.items():
        v["p_holm"] = fnum(adjusted.get(m, math.nan))
    impairs = any(v <= 0.05 for v in adjusted.values() if math.isfinite(v))
    testable, reason = _headline_testable(metrics, family)
    return {
        "metrics": metrics,
        "n_mice": len(mice),
        "mice_left_out": left_out or {},
        "impairs": bool(impairs),
        "testable": bool(testable),
        "reason": reason,
    }


def _headline_testable(metrics: dict, family: list) -> tuple[bool, str]:
    """Whether the Holm-corrected headline can reach 0.05, and why not.

    Holm's smallest adjusted p is ``len(family)`` times the smallest raw p, so the
    headline is testable when ``len(family) * p_min <= 0.05`` for some metric of the
    family whose own test is testable (``""`` as the reason then).
    """
    floors = [
        len(family) * metrics[m]["p_min"]
        for m in family
        if metrics[m]["testable"] and math.isfinite(metrics[m]["p_min"])
    ]
    if floors and min(floors) <= 0.05:
        return True, ""
    names = ", ".join(_METRICS[m][1] for m in family)
    if not floors:
        return False, f"no metric of the headline ({names}) can be tested"
    return False, (
        f"not testable at the 5% level: the smallest Holm-corrected p over {len(family)} "
        f"metrics ({names}) is {min(floors):.3g}; more mice are needed"
    )


def _more_left_out(v: dict, left_out: dict) -> str:
    """The mice one metric leaves out beyond ``left_out`` (named with the mice of the
    analysis), unless its reason names them: ``" (n = 4 mice (left out: ...))"``."""
    more = {m: why for m, why in v["mice_left_out"].items() if m not in left_out}
    if not more or v["reason"]:
        return ""
    return f" (n = {v['n_mice']} mice{left_out_note(more)})"


def _describe(summary: dict, n_sessions: int, template_stage: str) -> str:
    """One paragraph: the comparison, the tests (mice as the unit) and every metric."""
    n_mice = summary["n_mice"]
    labels = {m: label for m, (_, label, _) in _metrics(template_stage).items()}
    holm_txt = ", ".join(
        f"{labels[m]} {p_text(v['p_holm'], n_mice=v['n_mice'], label='Holm p')}"
        for m, v in summary["metrics"].items()
        if m in _HEADLINE
    )
    txt = "; ".join(
        f"{labels[m]}: {fmt_num(v['laser_off'])} (off) vs {fmt_num(v['laser_on'])} (on) "
        f"{v['unit']}, difference {fmt_num(v['difference'], '+.3g')} "
        f"[{ci_text(*v['ci'], v['ci_reason'], label='t 95% CI')}], "
        f"{p_text(v['p_value'], reason=v['reason'], label='sign-flip p')}, "
        f"{p_text(v['p_wilcoxon'], n_mice=v['n_mice'], label='Wilcoxon p')}, "
        f"{p_text(v['p_trials'], n_mice=v['n_mice'], label='trial-level p')}"
        + _more_left_out(v, summary["mice_left_out"])
        for m, v in summary["metrics"].items()
    )
    return (
        "Behaviour in laser-on (silencing) vs laser-off trials of the sessions with "
        f"silencing trials ({n_sessions} sessions, {n_mice} mice"
        f"{left_out_note(summary['mice_left_out'])}). Per mouse "
        "success rate, median reaction time and mean correlation of the lever trajectory "
        f"with the mouse's {template_stage} template (the mean trajectory of its successful "
        f"laser-off trials in {template_stage} sessions without silencing, else in its "
        "silencing sessions); laser-on minus laser-off differences paired across mice (mice "
        "are the unit of inference), one-sided in the direction of an impairment stated a "
        "priori (exact sign-flip test, smallest possible p = "
        f"{2.0 ** -max(n_mice, 1):.3g}; Wilcoxon signed-rank; two-sided Student t 95% CI "
        "of the mean difference over mice, exact for normal per-mouse differences, none "
        "from fewer than 2 mice or equal differences); a trial-level permutation within "
        "mice is given as a secondary, fixed-effect test. Headline (impaired or not): the "
        "sign-flip p-values of success rate and reaction time Holm-corrected as one family ("
        + holm_txt
        + "). "
        + txt
        + "."
    )


@analysis("silencing_effects")
def silencing_effects(
    collection: SessionCollection,
    *,
    lever: str | None = None,
    window: tuple[float, float] = (-0.2, 1.5),
    template_stage: str | None = None,
    n_perm: int = 2000,
    n_boot: int | None = None,
    random_state: int = 0,
    stages=None,
) -> AnalysisResult:
    """Laser-on vs laser-off behaviour in the sessions with silencing trials.

    Per mouse, over the trials of its sessions that contain silencing trials
    (``trials["silencing"]``; stimulation trials excluded; a session repeating another's
    behaviour counted once, see :func:`~sharedrep.study.behavior.repeated_recordings`):
    success rate, median
    reaction time (s) and mean similarity to the mouse's template (Pearson r of
    the lever displacement from -0.2 to 1.5 s around movement onset with the mean
    trajectory of its successful laser-off trials of ``template_stage`` sessions without
    silencing, or, when there are none, of the laser-off trials of the silencing
    sessions), separately for laser-on and laser-off trials.

    **Test, paired across mice:** per mouse laser-on - laser-off difference; one-sided in
    the direction of an impairment (success and similarity lower, reaction time
    longer), stated a priori: exact sign-flip test (smallest p with n mice: 2^-n),
    Wilcoxon signed-rank test and paired t-test; two-sided Student t 95% interval of
    the mean difference over mice (``_common.t_mean_ci``: NaN, with ``ci_reason``, from
    fewer than 2 mice or equal differences).
    The headline ``impairs`` combines the success-rate and reaction-time sign-flip
    p-values with a Holm correction (family-wise 5%, one family of two tests).
    Secondary, trials within mice (fixed-effect, these mice only): laser labels
    permuted among the trials of each mouse (``n_perm``), statistic the mean over mice
    of the per-mouse differences.

    Parameters
    ----------
    collection : SessionCollection
    lever : str, optional
        Lever-position feature (default: found by name).
    window : (float, float), default (-0.2, 1.5)
        Trajectory window around movement onset, seconds.
    template_stage : str, optional
        Default: the last stage of the learning order (``stages``, else the collection's
        ``analysis["stages"]``), else ``"expert"``.
    n_perm : int, default 2000
    n_boot : None
        Ignored (``FutureWarning`` when given; will be removed): the interval over mice
        is a t interval, which draws nothing.
    random_state : int, default 0
        Seed of the trial-level permutation.
    stages : list of str, optional
        The stages in learning order (first: before learning); its last stage is the
        default ``template_stage``. A stage left out of the list is a selection: its
        sessions (silencing or template) are left out, named in ``summary["sessions"]``,
        as by every analysis.

    Returns
    -------
    AnalysisResult
        ``table``: per mouse x laser (``"off"``/``"on"``): ``subject``, ``laser``,
        ``n_trials``, ``success_rate``, ``reaction_time_s``, ``template_similarity``.
        ``tables["effects"]``: per metric: ``metric``, ``unit``, ``laser_off``,
        ``laser_on``, ``difference`` (on - off), ``ci_low``, ``ci_high`` (t 95% interval
        of the mean difference), ``ci_reason`` (why it is NaN; NaN when it is not, ``""``
        in the summary), ``alternative``,
        ``p_value`` (sign-flip), ``p_min`` (its smallest achievable value, ``2^-n``),
        ``testable`` (``p_min <= 0.05`` and p a number), ``reason`` (why not; NaN when
        testable, ``""`` in the summary),
        ``p_wilcoxon``, ``p_ttest``, ``p_trials``, ``n_mice``, ``mice_left_out`` (the
        mice of the silencing sessions left out of the metric, each with the reason, e.g.
        ``"mouse02, no laser-off trial"``; NaN when none).
        ``tables["trials"]``: the trials used with their similarity. ``summary``:
        ``metrics`` {metric: {laser_off, laser_on, difference, ci, ci_reason, p_value, p_min,
        testable, reason, p_wilcoxon, p_ttest, p_trials, n_mice, mice_left_out, p_holm}},
        ``n_mice`` (mice with laser-on and laser-off trials), ``mice_left_out`` (the other
        mice of the silencing sessions: {mouse: reason}, ``{}`` when none; named in the
        description),
        ``impairs`` (bool: success or reaction time impaired, mice as unit: their two
        one-sided sign-flip p-values Holm-corrected as one family, ``p_holm``, and a
        corrected p <= 0.05; ``p_holm`` is NaN for the similarity, not in the family),
        ``testable`` (the Holm-corrected headline can reach 0.05: twice the smallest
        ``p_min`` of the two metrics at most 0.05), ``reason`` (why not; ``""`` when
        testable), ``sessions`` (the
        sessions used -- with silencing trials, or whose trials made a mouse's template --
        and those left out, with the reason: ``_common.session_provenance``). Without
        silencing trials (or without behaviour) ``summary["skipped"]`` says why (e.g.
        ``"no silencing sessions in the study"``, the skipped form of
        :func:`~sharedrep.study.run_study`), ``metrics`` is empty and ``impairs`` False.

    Raises
    ------
    AnalysisError
        An error while measuring one session's trials or one mouse's similarities; the
        message names ``silencing_effects`` and the session or mouse.
    """
    ignored_n_boot(n_boot, "silencing_effects")
    order = given_order(collection, stages)
    if template_stage is None:
        template_stage = listed_stages(order)[-1] if order else STAGE_ORDER[-1]
    unselected = stage_reasons(collection, order)  # the stages the list leaves out
    try:
        repeats = merge_reasons(unselected, repeated_recordings(collection, lever))
        kept = subcollection(collection, [s for s in collection if s.session_id not in repeats])
        trials, traj, _ = trial_measures(kept, lever=lever, window=window)
    except AnalysisError:
        raise
    except ValueError as exc:  # no trials, or no lever feature: nothing to analyse
        why = f"no behaviour to analyse ({exc})"
        return _no_silencing(collection, why, why, unselected)
    if len(trials) == 0 or not trials["silencing"].any():
        note = selection_note(collection, order)
        skipped = f"no silencing sessions in {note}" if note else _NO_SILENCING_SESSIONS
        return _no_silencing(collection, _not_silencing(template_stage), skipped, unselected)
    sil_sessions = set(trials.loc[trials["silencing"], "session_id"])
    in_sil = trials["session_id"].isin(sil_sessions).to_numpy()
    sim, template_sessions = _template_similarity(trials, traj, in_sil, template_stage)
    trials = trials.assign(template_similarity=sim)
    used = trials[in_sil & ~trials["stim"].to_numpy(bool)].copy()
    used["laser"] = np.where(used["silencing"].to_numpy(bool), "on", "off")
    table = _laser_table(used)
    mice, left_out = _paired_mice(table)
    metrics = _metrics(template_stage)
    effects = _effects(
        used, table, mice, metrics, n_perm=n_perm, random_state=random_state, left_out=left_out
    )
    summary = _summarise(effects, mice, left_out)
    not_used = _not_silencing(template_stage)
    summary["sessions"] = session_provenance(
        collection,
        sil_sessions | template_sessions,
        {
            **{s.session_id: "no trials" if not len(s.trials) else not_used for s in collection},
            **repeats,
        },
    )
    return AnalysisResult(
        name="silencing_effects",
        table=table,
        figure=plot_silencing_effects(table, effects, mice, metrics),
        summary=summary,
        description=_describe(summary, len(sil_sessions), template_stage)
        + describe_provenance(summary["sessions"]),
        tables={"effects": left_out_cells(effects), "trials": used},
    )


def _trial_permutation(used: pd.DataFrame, metric: str, mice, alt: str, n_perm: int, rng):
    """Laser labels permuted among the trials of each mouse; mean per-mouse difference.

    The per-mouse statistic is the laser-on minus laser-off mean (median for the
    reaction time) over the trials with a value (trials with a movement for reaction
    time and similarity).
    """
    col = {"success_rate": "success"}.get(metric, metric)
    median = metric == "reaction_time_s"
    obs, null = [], []
    for m in mice:
        g = used[used["subject"] == m]
        v = g[col].to_numpy(float)
        if metric != "success_rate":
            v = np.where(g["moved"].to_numpy(bool), v, np.nan)
        on = g["laser"].to_numpy() == "on"
        ok = np.isfinite(v)
        v, on = v[ok], on[ok]
        if v.size < 2 or not on.any() or on.all():
            continue
        labels = np.vstack([on, rng.permuted(np.tile(on, (n_perm, 1)), axis=1)])
        if median:
            a = np.nanmedian(np.where(labels, v, np.nan), axis=1)
            b = np.nanmedian(np.where(labels, np.nan, v), axis=1)
        else:
            a = (labels @ v) / on.sum()
            b = (~labels @ v) / (~on).sum()
        obs.append(a[0] - b[0])
        null.append(a[1:] - b[1:])
    if not obs:
        return math.nan
    stat = float(np.mean(obs))
    nulls = np.mean(null, axis=0)
    if alt == "less":
        count = np.sum(nulls <= stat + 1e-12)
    else:
        count = np.sum(nulls >= stat - 1e-12)
    return float((1 + count) / (1 + n_perm))
