"""Optogenetics: which M1 units are driven by thalamic axon stimulation, and do they encode?

:func:`stimulation_responses` classifies every unit of the sessions with stimulation
trials as driven / suppressed / not responsive (stimulation vs no-stimulation trials,
light-artefact frames masked, per-unit test, Benjamini-Hochberg FDR within each
session). :func:`unit_encoding_table` classifies the same units as encoding the shared
movement representation or not (:func:`sharedrep.inference.encoding.unit_encoding`, per stage).
:func:`encoding_overlap` relates the two per stage (odds ratio; permutation tests).
Each analysis is compute (private helpers returning tables) -> plot
(:mod:`sharedrep.study.figures`) -> summarise -> describe. This module may import
``sharedrep.data``, ``sharedrep.inference``, ``sharedrep.utils`` and ``sharedrep.study``'s
``_common``, ``_result`` and ``figures``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import mannwhitneyu

from sharedrep.data.preprocess import exclusion_mask
from sharedrep.data.session import Session, SessionCollection
from sharedrep.inference.encoding import unit_encoding
from sharedrep.inference.multitest import benjamini_hochberg
from sharedrep.study._common import (
    Steps,
    analysis,
    count_mice,
    describe_provenance,
    empty_figure,
    fmt_num,
    fnum,
    given_order,
    label_reasons,
    left_out_cells,
    left_out_note,
    left_out_of,
    make_model,
    merge_reasons,
    no_session,
    origin,
    p_text,
    paired_mice,
    quiet,
    selected_stages,
    selection_note,
    session_provenance,
    sign_flip_test,
    sign_flip_testability,
    single_blas,
    stage_reasons,
    subcollection,
    t_mean_ci,
    trial_flags,
)
from sharedrep.study._result import AnalysisResult
from sharedrep.study.figures import plot_encoding_overlap, plot_stimulation_responses
from sharedrep.utils.validation import closest_label

__all__ = [
    "stimulation_responses",
    "unit_encoding_table",
    "encoding_overlap",
    "overlap_counts",
]

_STIM_COLUMNS = [
    "subject",
    "session_id",
    "day",
    "stage",
    "population",
    "unit_id",
    "n_stim",
    "n_control",
    "response_stim",
    "response_control",
    "effect",
    "p_value",
    "q_value",
    "classification",
]


def _stim_onsets(session: Session, stim: np.ndarray) -> np.ndarray:
    """First stimulation onset inside each stimulation trial (NaN otherwise)."""
    tr = session.trials
    on = (
        np.sort(session.stimulation["start_time"].to_numpy(float))
        if len(session.stimulation)
        else np.zeros(0)
    )
    out = np.full(len(tr), np.nan)
    st, sp = tr["start_time"].to_numpy(float), tr["stop_time"].to_numpy(float)
    for k in np.flatnonzero(stim):
        inside = on[(on >= st[k]) & (on < sp[k])]
        if inside.size:
            out[k] = inside[0]
    return out


def _session_responses(
    s: Session,
    *,
    window: tuple[float, float],
    baseline: tuple[float, float],
    mask_artifacts: bool,
    artifact_margin: float,
):
    """Per-trial responses (trials x units) of stimulation and control trials."""
    stim, sil = trial_flags(s)
    onsets = _stim_onsets(s, stim)
    stim = stim & np.isfinite(onsets)
    control = ~stim & ~sil
    if stim.sum() < 2 or control.sum() < 2:
        return None
    rate = s.sampling_rate
    dt = 1.0 / rate
    start = s.trials["start_time"].to_numpy(float)
    offset = float(np.median(onsets[stim] - start[stim]))
    ref = np.where(stim, onsets, start + offset)
    t = s.timestamps
    # frame holding each (pseudo-)onset: last frame starting at or before it
    f0 = np.searchsorted(t, ref, side="right") - 1
    r0 = int(np.floor(window[0] * rate + 1e-9))
    r1 = int(np.ceil(window[1] * rate - 1e-9))
    b0 = int(np.floor(baseline[0] * rate + 1e-9))
    b1 = int(np.ceil(baseline[1] * rate - 1e-9))
    resp_off = np.arange(r0, max(r1, r0 + 1))
    base_off = np.arange(b0, max(b1, b0 + 1))
    base_off = base_off[base_off < 0] if np.any(base_off < 0) else base_off
    n_masked = 0
    if mask_artifacts and len(s.stimulation):
        art = exclusion_mask(t, s.stimulation, margin=artifact_margin, frame_duration=dt)
        # relative frames hit by light in any stimulation trial are masked in every trial
        offsets = np.union1d(resp_off, base_off)
        rel_hit = set()
        for k in np.flatnonzero(stim):
            fr_k = f0[k] + offsets
            ok = (fr_k >= 0) & (fr_k < t.size)
            rel_hit.update(offsets[ok][art[fr_k[ok]]].tolist())
        keep_r = np.array([o not in rel_hit for o in resp_off])
        keep_b = np.array([o not in rel_hit for o in base_off])
        n_masked = int((~keep_r).sum() + (~keep_b).sum())
        resp_off, base_off = resp_off[keep_r], base_off[keep_b]
    if resp_off.size == 0 or base_off.size == 0:
        raise ValueError(
            f"session {s.session_id!r}: every response or baseline frame overlaps a "
            "stimulation pulse; widen the window"
        )
    X = s.neural
    T = X.shape[0]
    used = np.flatnonzero(stim | control)
    R = np.full((len(s.trials), X.shape[1]), np.nan)
    for k in used:
        ri, bi = f0[k] + resp_off, f0[k] + base_off
        if ri.min() < 0 or bi.min() < 0 or ri.max() >= T or bi.max() >= T:
            continue
        R[k] = X[ri].mean(axis=0) - X[bi].mean(axis=0)
    ok = np.all(np.isfinite(R), axis=1)
    return R[stim & ok], R[control & ok], n_masked, resp_off.size, base_off.size


@analysis("stimulation_responses")
@single_blas
def stimulation_responses(
    collection: SessionCollection,
    fdr: float = 0.05,
    *,
    population=None,
    window: tuple[float, float] = (0.0, 1.0),
    baseline: tuple[float, float] = (-0.25, 0.0),
    mask_artifacts: bool = True,
    artifact_margin: float = 0.0,
    stages=None,
) -> AnalysisResult:
    """Classify units as driven / suppressed / not responsive by optogenetic stimulation.

    For every session with stimulation trials (``trials["stim"]``, or trials containing
    a stimulation onset), the response of a unit in a trial is its mean activity in the
    response window after stimulation onset minus its mean in the baseline window before
    it. Control (no-stimulation, laser-off) trials are read at the same time after trial
    start (median stimulation offset). **Light artefacts:** every frame that overlaps a
    stimulation interval (frame ``[t, t + 1/rate)``, plus ``artifact_margin`` s) in any
    stimulation trial is removed, at the same relative position, from the windows of
    every trial (stimulation and control alike). **Test:** per unit, two-sided
    Mann-Whitney U test of stimulation vs control responses (trials as samples, within
    one session); Benjamini-Hochberg within each session (one mouse and day);
    ``driven``: q <= ``fdr`` and a positive mean difference, ``suppressed``: q <= ``fdr``
    and negative, else ``not responsive``. The unit of inference is the unit within a
    mouse; fractions are summarised per mouse.

    Parameters
    ----------
    collection : SessionCollection
    fdr : float, default 0.05
    population : str or list of str, optional
        Restrict to these populations (default: every session with stimulation; each
        population is summarised on its own).
    window, baseline : (float, float)
        Seconds relative to stimulation onset; defaults (0, 1) and (-0.25, 0).
    mask_artifacts : bool, default True
        Remove the light-artefact frames (False only to demonstrate the artefact).
    artifact_margin : float, default 0.0
        Seconds added around each stimulation interval when masking.
    stages : list of str, optional
        The stages in learning order (first: before learning), for the per-stage
        summary; default the collection's ``analysis["stages"]``, else novice,
        intermediate, expert (other labels of unknown order raise
        :class:`~sharedrep.study._common.StageOrderError`, a ValueError). A stage left
        out of the list is a selection: its sessions are left out (named in
        ``summary["sessions"]``), as by every analysis.

    Returns
    -------
    AnalysisResult
        ``table``: one row per unit and stimulation session: ``subject``,
        ``session_id``, ``day``, ``stage``, ``population``, ``unit_id``, ``n_stim``,
        ``n_control``, ``response_stim``, ``response_control`` (mean responses, dF/F),
        ``effect`` (difference), ``p_value``, ``q_value``, ``classification``.
        ``tables["fractions"]``: per session: counts and fractions per class.
        ``summary``: ``populations`` {population: {``stages`` {stage: row}}}, each
        population summarised on its own (never pooled), a row holding ``n_mice``,
        ``n_units``, ``n_driven``, ``n_suppressed``, ``fraction_driven`` (mean over
        mice), ``fraction_driven_ci`` (its Student t 95% interval over mice, clipped to
        [0, 1]; NaN from fewer than 2 mice or equal fractions) and
        ``fraction_driven_ci_reason`` (why NaN; ``""``); ``stages``: with one
        population, its rows {stage: row} (as summaries written before ``populations``
        existed); with several, {``"population/stage"``: row} with the row's
        ``population`` and ``stage`` added, so that no row mixes populations;
        ``masked_frames`` per session; ``sessions`` (the sessions used and those left
        out, with the reason: ``_common.session_provenance``). When no unit could be
        classified, ``summary["skipped"]`` says why (e.g. ``"no stimulation sessions in
        the study"``: :func:`~sharedrep.study.run_study`'s skipped form) and ``stages``
        and ``populations`` are empty.

    Raises
    ------
    ValueError
        ``population`` names a population that no session of ``collection`` has (the
        message lists those that exist and suggests a close one, e.g. differing by case).
    AnalysisError
        An error while classifying one session's units; the message names
        ``stimulation_responses``, the population, stage, session and subject.
    """
    if not (0 < fdr < 1):
        raise ValueError(f"fdr must be in (0, 1); got {fdr!r}")
    if window[0] >= window[1] or baseline[0] >= baseline[1]:
        raise ValueError("window and baseline must be (start, stop) with start < stop")
    given = collection
    order = given_order(collection, stages)
    pops = None if population is None else check_populations(collection, population, "population")
    collection, reasons = _stimulation_sessions(collection, pops, order)
    table, fractions, masked, not_analysed = _compute_stimulation(
        collection,
        reasons,
        fdr,
        window=window,
        baseline=baseline,
        mask_artifacts=mask_artifacts,
        artifact_margin=artifact_margin,
    )
    summary = _summarise_stimulation(
        table,
        fractions,
        fdr=fdr,
        masked=masked,
        mask_artifacts=mask_artifacts,
        not_analysed=not_analysed,
        order=order,
    )
    if not len(table):
        summary["skipped"] = _no_stimulation_reason(
            pops, not_analysed, selection_note(given, order)
        )
    summary["sessions"] = session_provenance(given, masked, reasons)
    return AnalysisResult(
        name="stimulation_responses",
        table=table,
        figure=plot_stimulation_responses(
            table,
            fractions,
            fdr,
            stages=_stages_of(summary["populations"], order),
            populations=list(summary["populations"]),
        ),
        summary=summary,
        description=_describe_stimulation(summary, window, baseline)
        + describe_provenance(summary["sessions"]),
        tables={"fractions": fractions},
    )


def _stimulation_sessions(collection, pops, order) -> tuple[SessionCollection, dict]:
    """The sessions of ``stimulation_responses`` and ``{session_id: reason}`` of the others.

    ``pops``: the populations asked for (None: all). ``order``: the user's stage list
    (``given_order``; None: every stage); the sessions of a stage it does not list are
    left out, named, as by every analysis (``_common.stage_reasons``).
    """
    reasons = merge_reasons(
        label_reasons(collection, populations=pops), stage_reasons(collection, order)
    )
    kept = [s for s in collection if s.session_id not in reasons]
    return subcollection(collection, kept), reasons


def _stages_of(populations: dict, order) -> list:
    """The stages of the per-population summaries, in learning order (``order``: the
    user's, see ``_common.selected_stages``), whichever population has which."""
    return selected_stages((st for v in populations.values() for st in v["stages"]), order)


def check_populations(collection: SessionCollection, population, setting: str) -> list[str]:
    """``population`` (a label or labels) as a list, each checked to be in ``collection``.

    Raises
    ------
    ValueError
        A label that no session of ``collection`` has; the message names ``setting``, the
        populations that exist and, for a label differing by case or spelling, the close one.
    """
    pops = [population] if isinstance(population, str) else list(population)
    known = [str(p) for p in collection.populations if p is not None]
    for pop in pops:
        if str(pop) in known:
            continue
        close = closest_label(str(pop), known, cutoff=0.6)
        hint = f"; did you mean {close!r}?" if close else ""
        raise ValueError(
            f"{setting}={pop!r}: no session of the study has this population; "
            f"populations in the study: {known}{hint}"
        )
    return [str(p) for p in pops]


def _no_stimulation_reason(pops, not_analysed: list, selection: str = "") -> str:
    """Why :func:`stimulation_responses` classified no unit (its ``summary["skipped"]``);
    ``selection``: ``_common.selection_note`` of the user's stage list."""
    if not_analysed:
        more = "; ..." if len(not_analysed) > 3 else ""
        return f"no stimulation session could be analysed ({'; '.join(not_analysed[:3])}{more})"
    if pops is not None:
        return f"no stimulation sessions in population(s) {pops}" + (
            f" of {selection}" if selection else ""
        )
    return f"no stimulation sessions in {selection or 'the study'}"


def _classify_units(s: Session, Rs: np.ndarray, Rc: np.ndarray, fdr: float) -> pd.DataFrame:
    """Per-unit table of one session: Mann-Whitney U (stimulation vs control), BH, class.

    ``Rs``, ``Rc``: responses of shape (n_stim_trials, n_units), (n_control_trials, n_units).
    """
    p = np.array(mannwhitneyu(Rs, Rc, axis=0, alternative="two-sided").pvalue, dtype=float)
    q = benjamini_hochberg(p)
    eff = Rs.mean(axis=0) - Rc.mean(axis=0)
    cls = np.where(
        np.isfinite(q) & (q <= fdr),
        np.where(eff > 0, "driven", "suppressed"),
        "not responsive",
    )
    return pd.DataFrame(
        {
            "subject": s.subject,
            "session_id": s.session_id,
            "day": s.day,
            "stage": s.stage,
            "population": s.population,
            "unit_id": s.unit_ids,
            "n_stim": Rs.shape[0],
            "n_control": Rc.shape[0],
            "response_stim": Rs.mean(axis=0),
            "response_control": Rc.mean(axis=0),
            "effect": eff,
            "p_value": p,
            "q_value": q,
            "classification": cls,
        }
    )


def _fraction_row(s: Session, cls: np.ndarray, n_masked, n_resp, n_base) -> dict:
    """One row of the per-session fractions table (counts of driven/suppressed units)."""
    return {
        "subject": s.subject,
        "session_id": s.session_id,
        "stage": s.stage,
        "population": s.population,
        "n_units": s.n_units,
        "n_driven": int((cls == "driven").sum()),
        "n_suppressed": int((cls == "suppressed").sum()),
        "fraction_driven": float((cls == "driven").mean()),
        "fraction_suppressed": float((cls == "suppressed").mean()),
        "masked_frames": n_masked,
        "response_frames": n_resp,
        "baseline_frames": n_base,
    }


def _session_stim_responses(s: Session, **options):
    """Responses of one session, or the reason it is not analysed; None without stimulation.

    Returns None (no trials or no stimulation trial), a ``str`` (why the session cannot
    be analysed) or ``_session_responses``' tuple.
    """
    if len(s.trials) == 0:
        return None
    stim, sil = trial_flags(s)
    if not stim.any():
        return None
    if len(s.stimulation) == 0:
        return f"{s.session_id}: stimulation trials but no stimulation times"
    res = _session_responses(s, **options)
    if res is None:
        n_control = int(np.sum(~stim & ~sil))
        return (
            f"{s.session_id}: {int(stim.sum())} stimulation and {n_control} control "
            "trials (needs at least 2 of each)"
        )
    return res


def _compute_stimulation(collection: SessionCollection, reasons: dict, fdr: float, **options):
    """Classify the units of every stimulation session.

    Returns ``(table, fractions, masked, not_analysed)``: the per-unit table, the
    per-session fractions, the masked frames per session and the sessions with
    stimulation trials that could not be analysed (why). ``reasons`` receives
    ``{session_id: reason}`` of every session not analysed.
    """
    frames, frac_rows, masked, not_analysed = [], [], {}, []
    for s in collection:
        with origin(session=s):
            res = _session_stim_responses(s, **options)
        if res is None:
            reasons.setdefault(
                s.session_id, "no trials" if not len(s.trials) else "no stimulation trial"
            )
            continue
        if isinstance(res, str):
            not_analysed.append(res)
            reasons.setdefault(s.session_id, res.removeprefix(f"{s.session_id}: "))
            continue
        Rs, Rc, n_masked, n_resp, n_base = res
        masked[s.session_id] = n_masked
        with origin(session=s):
            df = _classify_units(s, Rs, Rc, fdr)
        frames.append(df)
        cls = df["classification"].to_numpy()
        frac_rows.append(_fraction_row(s, cls, n_masked, n_resp, n_base))
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=_STIM_COLUMNS)
    return table, pd.DataFrame(frac_rows), masked, not_analysed


def _fraction_ci(fractions) -> dict:
    """``fraction_driven_ci`` (t 95% interval of the mean over mice, clipped to [0, 1]:
    a fraction lies there) and ``fraction_driven_ci_reason`` (why NaN; ``""``)."""
    lo, hi, why = t_mean_ci(fractions)
    return {
        "fraction_driven_ci": [float(np.clip(lo, 0.0, 1.0)), float(np.clip(hi, 0.0, 1.0))],
        "fraction_driven_ci_reason": why,
    }


def _stage_rows(fractions: pd.DataFrame, stages: list) -> dict:
    """Per-stage counts and fraction driven (mean over mice) of the sessions ``fractions``."""
    per_stage = {}
    for st in stages:
        f = fractions[fractions["stage"] == st]
        if not len(f):
            continue
        fd = f.groupby("subject")["fraction_driven"].mean().to_numpy()
        per_stage[st] = {
            "n_mice": int(f["subject"].nunique()),
            "n_units": int(f["n_units"].sum()),
            "n_driven": int(f["n_driven"].sum()),
            "n_suppressed": int(f["n_suppressed"].sum()),
            "fraction_driven": fnum(np.mean(fd)) if fd.size else math.nan,
            **_fraction_ci(fd),
        }
    return per_stage


def _population_stages(fractions: pd.DataFrame, stages: list) -> dict:
    """``{population: {"stages": per-stage rows}}``, each population summarised alone."""
    if not len(fractions):
        return {}
    pops = list(dict.fromkeys(fractions["population"]))
    if len(pops) == 1:
        return {pops[0]: {"stages": _stage_rows(fractions, stages)}}
    labels = fractions["population"].astype(str)
    return {p: {"stages": _stage_rows(fractions[labels == str(p)], stages)} for p in pops}


def _pop_stage_rows(populations: dict) -> dict:
    """The top-level ``stages`` of several populations: ``{"m1/novice": row}``, each row
    naming its ``population`` and ``stage`` (one population: ``{"novice": row}``)."""
    if len(populations) == 1:
        return dict(next(iter(populations.values()))["stages"])
    return {
        f"{pop}/{st}": {"population": pop, "stage": st, **row}
        for pop, v in populations.items()
        for st, row in v["stages"].items()
    }


def _summarise_stimulation(
    table, fractions, *, fdr, masked, mask_artifacts, not_analysed, order=None
):
    """Headline numbers of :func:`stimulation_responses` (keys documented there)."""
    stages = selected_stages(table["stage"], order) if len(table) else []
    populations = _population_stages(fractions, stages)
    return {
        "fdr": float(fdr),
        "stages": _pop_stage_rows(populations),
        "masked_frames": masked,
        "mask_artifacts": bool(mask_artifacts),
        "not_analysed": not_analysed,
        "populations": populations,
    }


def _stim_stage_text(stages: dict) -> str:
    """``"novice: 3 driven and 1 suppressed of 90 units in 3 mice (mean fraction driven
    0.03); expert: ..."``: the per-stage counts of one population."""
    return "; ".join(
        f"{st}: {v['n_driven']} driven and {v['n_suppressed']} suppressed of {v['n_units']} "
        f"units in {v['n_mice']} mice (mean fraction driven {v['fraction_driven']:.2f})"
        for st, v in stages.items()
    )


def _describe_stimulation(summary: dict, window, baseline) -> str:
    """The paragraph of :func:`stimulation_responses`: test, unit of inference, counts."""
    fdr, not_analysed = summary["fdr"], summary["not_analysed"]
    pops = summary["populations"]
    stage_txt = (
        _stim_stage_text(summary["stages"])
        if len(pops) < 2
        else "Each population is summarised on its own: "
        + ". ".join(f"{pop}: {_stim_stage_text(v['stages'])}" for pop, v in pops.items())
    )
    return (
        "Units of the sessions with optogenetic stimulation were classified by comparing "
        f"their response (mean in {window[0]:g}..{window[1]:g} s after stimulation onset "
        f"minus {baseline[0]:g}..{baseline[1]:g} s before) in stimulation vs no-stimulation "
        "trials (two-sided Mann-Whitney U test per unit, trials as samples; "
        f"Benjamini-Hochberg FDR {fdr:g} within each session, i.e. within one mouse). "
        + (
            "Frames overlapping a light pulse were masked at the same relative position in "
            "every trial. "
            if summary["mask_artifacts"]
            else "Light-artefact frames were NOT masked (demonstration only). "
        )
        + "Units, not mice, are the unit of this test; fractions are reported per mouse. "
        + (stage_txt if stage_txt else "No session had stimulation trials that could be analysed")
        + "."
        + (
            " Not analysed: "
            + "; ".join(not_analysed[:5])
            + ("; ..." if len(not_analysed) > 5 else "")
            + "."
            if not_analysed
            else ""
        )
    )


@analysis("unit_encoding_table")
def unit_encoding_table(
    collection: SessionCollection,
    *,
    populations=None,
    stages=None,
    model=None,
    n_perm: int = 99,
    fdr: float = 0.05,
    days_per_stage: int | None = 2,
    within_trials: bool = True,
    whole_trials: bool = False,
    random_state: int = 0,
    progress=False,
    provenance: dict | None = None,
) -> pd.DataFrame:
    """Per-unit encoding of the shared representation, per population x stage.

    ShaReD (``model``) is fitted on the mice of each population x stage (stimulation and
    silencing samples removed, ``days_per_stage`` days), then
    :func:`sharedrep.inference.encoding.unit_encoding` tests every unit (cross-validated
    R^2 from the lagged shared latents, circular-shift permutation p-value, BH-FDR ``fdr``
    within each mouse).

    **Null (``whole_trials``).** By default the latents are shifted by any number of
    samples (at least the longest trial and 10 % of the recording): the null then breaks
    the alignment with the trial structure, so its strength does not depend on how
    stereotyped the behaviour of a stage is (with whole-trial shifts an expert's
    stereotyped movement makes every shifted latent almost as good as the aligned one, and
    the number of distinct shifts -- about the number of trials -- bounds the smallest
    p-value, which with ~100 trials and BH over ~30 units can make detection impossible).
    The caveat: trial-locked activity that is not movement-related (e.g. a cue response)
    also counts as encoding, especially in experts, whose movement is locked to the cue.
    ``whole_trials=True`` uses only whole-trial shifts (stricter: trial-to-trial tracking
    of the movement).

    Parameters
    ----------
    collection : SessionCollection
    populations, stages : list of str, optional
        Default: every population; the stages of the collection's ``analysis["stages"]``
        (``_common.selected_stages``), else every stage; the cells with at least 2 mice.
    model : ShaReD, optional
    n_perm : int, default 99
    fdr : float, default 0.05
    days_per_stage : int or None, default 2
    within_trials : bool, default True
    whole_trials : bool, default False
        Shift by whole trials only in the unit-level null (see above).
    random_state : int, default 0
    progress : bool or rich.progress.Progress, default False
    provenance : dict, optional
        Receives the sessions fitted and those left out, with the reason
        (``_common.session_provenance``).

    Returns
    -------
    pandas.DataFrame
        One row per unit: ``subject``, ``population``, ``stage``, ``unit_id``,
        ``r2_cv``, ``p_value``, ``q_value``, ``encodes`` (bool).

    Raises
    ------
    AnalysisError
        An error while testing the units of one population x stage; the message names
        the analysis, the population, stage, sessions and subjects.
    """
    from sharedrep.study.populations import cell_session_ids, fit_cells

    if model is None:
        model = make_model(random_state=random_state)
    if stages is None:
        stages = selected_stages(collection.stages, given_order(collection))
    left_out: dict = {}
    cells = fit_cells(
        collection,
        populations,
        stages,
        days_per_stage=days_per_stage,
        within_trials=within_trials,
        require=False,
        left_out=left_out,
    )
    if provenance is not None:
        provenance.update(session_provenance(collection, cell_session_ids(cells), left_out))
    frames = []
    with Steps(progress, "unit encoding", len(cells)) as steps, quiet():
        for i, ((pop, st), args) in enumerate(cells.items()):
            with origin(population=pop, stage=st, cell=args):
                tabs = unit_encoding(
                    model,
                    args.neural,
                    args.behavior,
                    args.groups,
                    n_perm=n_perm,
                    fdr=fdr,
                    random_state=int(random_state) + i,
                    whole_trials=whole_trials,
                    progress=False,
                )
            for subj, ids, tab in zip(args.subjects, args.unit_ids, tabs, strict=True):
                frames.append(
                    pd.DataFrame(
                        {
                            "subject": subj,
                            "population": pop,
                            "stage": st,
                            "unit_id": ids[tab["unit"].to_numpy()],
                            "r2_cv": tab["r2_cv"].to_numpy(),
                            "p_value": tab["p_value"].to_numpy(),
                            "q_value": tab["q_value"].to_numpy(),
                            "encodes": tab["encodes"].to_numpy(bool),
                        }
                    )
                )
            steps.advance(f"{pop}/{st}")
    cols = ["subject", "population", "stage", "unit_id", "r2_cv", "p_value", "q_value", "encodes"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)


def overlap_counts(stim_table: pd.DataFrame, encoding_table: pd.DataFrame) -> pd.DataFrame:
    """Per-unit join of stimulation classes and encoding, per mouse x population x stage.

    A unit is ``driven`` when it was classified driven in any stimulation session of that
    mouse, population and stage.

    Returns
    -------
    pandas.DataFrame
        ``subject``, ``population``, ``stage``, ``unit_id``, ``driven``, ``encodes``.
    """
    st = stim_table.copy()
    st["driven"] = st["classification"] == "driven"
    drv = st.groupby(["subject", "population", "stage", "unit_id"], as_index=False)["driven"].any()
    enc = encoding_table[["subject", "population", "stage", "unit_id", "encodes"]]
    return drv.merge(enc, on=["subject", "population", "stage", "unit_id"], how="inner")


def _mh_log_or(a, b, c, d, n) -> float:
    """log Mantel-Haenszel odds ratio over strata, 0.5 added to both sums."""
    num = np.sum(a * d / n) + 0.5
    den = np.sum(b * c / n) + 0.5
    return float(np.log(num / den))


def _strata_counts(driven: list[np.ndarray], enc: list[np.ndarray]):
    """2 x 2 counts ``(a, b, c, d, n)`` per mouse (stratum), each of shape (n_mice,)."""
    a = np.array([np.sum(x & y) for x, y in zip(driven, enc, strict=True)], float)
    b = np.array([np.sum(x & ~y) for x, y in zip(driven, enc, strict=True)], float)
    c = np.array([np.sum(~x & y) for x, y in zip(driven, enc, strict=True)], float)
    d = np.array([np.sum(~x & ~y) for x, y in zip(driven, enc, strict=True)], float)
    return a, b, c, d, a + b + c + d


def _perm_mh(driven, enc, n_perm, rng) -> np.ndarray:
    """Null log MH-OR with the driven labels permuted within each mouse (vectorised)."""
    A = np.zeros((n_perm, len(driven)))
    for k, (x, y) in enumerate(zip(driven, enc, strict=True)):
        P = rng.permuted(np.tile(x, (n_perm, 1)), axis=1)
        A[:, k] = (P & y).sum(axis=1)
    nd = np.array([x.sum() for x in driven], float)
    ne = np.array([y.sum() for y in enc], float)
    n = np.array([x.size for x in driven], float)
    B = nd - A
    C = ne - A
    D = n - nd - ne + A
    num = np.sum(A * D / n, axis=1) + 0.5
    den = np.sum(B * C / n, axis=1) + 0.5
    return np.log(num / den)


def _haldane_log_or(a, b, c, d) -> float:
    """log odds ratio of one 2 x 2 table with 0.5 added to every cell (Haldane)."""
    return float(np.log((a + 0.5) * (d + 0.5) / ((b + 0.5) * (c + 0.5))))


@analysis("encoding_overlap")
@single_blas
def encoding_overlap(
    collection: SessionCollection,
    stim_table: pd.DataFrame,
    *,
    encoding_table: pd.DataFrame | None = None,
    model=None,
    n_perm_units: int = 99,
    fdr: float = 0.05,
    n_perm: int = 2000,
    days_per_stage: int | None = 2,
    whole_trials: bool = False,
    random_state: int = 0,
    progress=False,
    stages=None,
) -> AnalysisResult:
    """Overlap of stimulation-driven units with units encoding the shared representation.

    For every mouse and stage (and population with stimulation sessions): a 2 x 2 table
    of units driven (from ``stim_table``, :func:`stimulation_responses`) x encoding (from
    ``encoding_table``, :func:`unit_encoding_table`, computed when not given). Every
    population is tested and summarised on its own, never pooled.

    **Pooled test, units within mice (caveat).** Mantel-Haenszel odds ratio with the
    mice as strata (0.5 added to its numerator and denominator sums); p-value: the driven
    labels are permuted among the units of each mouse (``n_perm`` permutations,
    two-sided on the log OR). Units are treated as exchangeable within a mouse; the
    result holds for these mice and does not generalise to other animals by itself.
    **Stage difference** (last - first stage, e.g. expert - novice): difference of the
    log MH odds ratios; null: stage labels permuted among the unit observations of each
    mouse (two-sided; the same neuron may contribute to both stages when units are
    tracked, so observations are not independent: a caveat). **Mice as the unit:** per
    mouse log odds ratio (Haldane 0.5 correction; mice without driven or encoding units
    (or with every unit driven or encoding) are uninformative: their odds ratio is
    undefined, NaN, and they are excluded); mean over mice, exact sign-flip test (two-sided per
    stage; for the difference, paired over mice, one-sided "greater", the hypothesis
    that learning increases the overlap). With fewer than 5 informative mice the
    sign-flip test cannot reach 0.05. **Not testable:** a stage without any driven or
    any encoding unit has no odds ratio (NaN; only the 0.5 corrections would be left), and
    then the stage difference is NaN and ``summary["testable"]`` False, with the reason in
    ``summary["untestable_reason"]``.

    Parameters
    ----------
    collection : SessionCollection
    stim_table : pandas.DataFrame
        ``stimulation_responses(...).table``.
    encoding_table : pandas.DataFrame, optional
        ``unit_encoding_table(...)``; computed for the populations and stages of
        ``stim_table`` when None.
    model : ShaReD, optional
        For the encoding table.
    n_perm_units : int, default 99
        Permutations of :func:`sharedrep.inference.encoding.unit_encoding`.
    fdr : float, default 0.05
        FDR of the unit encoding classification.
    n_perm : int, default 2000
        Permutations of the overlap tests.
    days_per_stage : int or None, default 2
    whole_trials : bool, default False
        Null of the unit encoding test (see :func:`unit_encoding_table`).
    random_state : int, default 0
    progress : bool or rich.progress.Progress, default False
    stages : list of str, optional
        The stages, in learning order (first: before learning), compared first vs last;
        the rows of ``stim_table`` and the sessions of other stages are not analysed (a
        selection, named in ``summary["sessions"]``, as by every analysis). Default: the
        collection's ``analysis["stages"]``, else novice, intermediate, expert (other
        labels of unknown order raise :class:`~sharedrep.study._common.StageOrderError`).

    Returns
    -------
    AnalysisResult
        ``table``: per mouse x population x stage: ``subject``, ``population``,
        ``stage``, ``n_units``, ``driven_encoding``, ``driven_other``,
        ``nondriven_encoding``, ``nondriven_other``, ``log_odds_ratio``, ``odds_ratio``,
        ``informative``. ``tables["units"]``: the per-unit join;
        ``tables["unit_encoding"]``: the encoding table used; ``tables["stages"]``: per
        population x stage: ``odds_ratio_mh``, ``p_pooled``, ``mean_log_or``, ``p_mice``,
        ``n_informative``, ``mice_left_out`` (the mice without an odds ratio, each with the
        reason, e.g. ``"mouse02, no driven unit"``; NaN when none), one row per
        population and stage. ``summary``: ``populations`` {population: {``stages``,
        ``difference``, ``testable``, ``untestable_reason``}}: every population of
        ``stim_table``, each tested on its own (its own random generator seeded by
        ``random_state``: the result of a ``stim_table`` of that population alone, for
        the same encoding table), where ``stages`` is {stage: {``population``,
        ``odds_ratio``, ``p_pooled``, ``mean_log_or``, ``p_mice``,
        ``n_mice`` (mice with units in both tables), ``n_informative`` (of them, the mice
        with a per-mouse odds ratio), ``mice_left_out`` (the others: {mouse: reason},
        ``{}`` when none), ``n_driven``,
        ``n_encoding``, ``n_units``, ``reason`` (why ``p_pooled`` is NaN; "" when it is
        a number)}}, ``difference``
        {``population``, ``stage_from``, ``stage_to``,
        ``ratio_of_odds_ratios``, ``p_pooled``, ``mean_log_or_difference``,
        ``p_mice``, ``n_mice``, ``mice_left_out`` ({mouse: reason} of the mice left out
        of the per-mouse test: those in one stage only, e.g. ``"mouse03, no expert
        session of m1"``, also left out of the pooled difference, and those without an
        odds ratio in a stage; ``{}`` when none), ``p_min``, ``testable``, ``reason``:
        whether the one-sided sign-flip over mice (``p_mice``, smallest p ``2^-n_mice``)
        can reach 0.05, and why not} (``{}`` when not computed), ``testable`` (bool: the
        stage difference has a p-value), ``untestable_reason`` (why not, starting with
        the population; "" when testable). **One population:** its entry is also at the
        top level, with ``population`` (as summaries written before ``populations``
        existed). **Several populations:** no top-level ``population`` nor
        ``difference`` (there is no single one); ``stages`` is {``"population/stage"``:
        row}, each row also naming its ``stage``; ``testable``: every population's
        difference has a p-value; ``untestable_reason``: the reasons of those that have
        none. Also ``n_perm``,
        ``unit_test_coarse`` (why the unit encoding test cannot classify units at
        ``fdr`` -- its smallest p ``1/(1 + n_perm_units)`` is not below ``fdr``, e.g.
        ``"unit classification too coarse: n_perm_units=19 gives p >= 0.05 ..."``, also
        leading ``untestable_reason``; "" when it can, or when ``encoding_table`` was
        given) and
        ``sessions`` (the sessions used and those left out, with the reason:
        ``_common.session_provenance``).

    Raises
    ------
    AnalysisError
        An error while testing the units of one population x stage; the message names
        ``encoding_overlap``, the population, stage, sessions and subjects.
    """
    order = given_order(collection, stages)
    stages = selected_stages(stim_table["stage"], order) if len(stim_table) else []
    if order is not None:  # the stages left out of the list: a selection
        stim_table = stim_table[stim_table["stage"].isna() | stim_table["stage"].isin(stages)]
    if len(stim_table) == 0:
        return _empty_overlap(collection)
    pops = list(dict.fromkeys(stim_table["population"]))
    fitted: dict = {}
    if encoding_table is None:
        encoding_table = unit_encoding_table(
            collection,
            populations=pops,
            stages=stages,
            model=model,
            n_perm=n_perm_units,
            fdr=fdr,
            days_per_stage=days_per_stage,
            whole_trials=whole_trials,
            random_state=random_state,
            progress=progress,
            provenance=fitted,
        )
        coarse = _coarse_unit_test(n_perm_units, fdr)
    else:
        coarse = ""  # a given table: its resolution is unknown here
    units = overlap_counts(stim_table, encoding_table)

    def absent(pop, st):  # why a mouse has no units of a population and stage
        return no_session(collection, st, pop, f"no {st} unit of {pop} in both tables")

    tables = _compute_overlap(units, pops, stages, n_perm, random_state, absent)
    figure = plot_encoding_overlap(
        tables.table, tables.stages_table, tables.populations, tables.stages
    )
    summary = _summarise_overlap(tables, n_perm, coarse)
    summary["sessions"] = _overlap_provenance(collection, stim_table, units, fitted, order)
    return AnalysisResult(
        name="encoding_overlap",
        table=tables.table,
        figure=figure,
        summary=summary,
        description=_describe_overlap(summary, whole_trials)
        + describe_provenance(summary["sessions"]),
        tables={
            "units": units,
            "unit_encoding": encoding_table,
            "stages": left_out_cells(tables.stages_table),
        },
    )


def _overlap_provenance(collection, stim_table, units, fitted: dict, order=None) -> dict:
    """``summary["sessions"]`` of :func:`encoding_overlap`.

    Used: the stimulation sessions, and the sessions of the encoding fits (``fitted``:
    :func:`unit_encoding_table`'s provenance; empty when the table was given), of the
    mice, populations and stages with units in both tables. The sessions of a stage the
    user's list ``order`` leaves out are named as such (``_common.stage_reasons``).
    """
    keys = set(zip(units["subject"], units["population"], units["stage"], strict=True))
    sources = set(stim_table["session_id"]) | set(fitted.get("used", ()))
    used = [
        s.session_id
        for s in collection
        if s.session_id in sources and (s.subject, s.population, s.stage) in keys
    ]
    other = (
        "not a stimulation session, nor fitted for the unit encoding"
        if fitted
        else "not a stimulation session (the unit-encoding table was given)"
    )
    reasons = {
        s.session_id: (
            "no unit classified both by stimulation and by encoding in its mouse, "
            "population and stage"
            if s.session_id in sources
            else other
        )
        for s in collection
    }
    unstimulated = _unstimulated_reasons(collection, stim_table)
    return session_provenance(
        collection,
        used,
        merge_reasons(
            stage_reasons(collection, order), unstimulated, fitted.get("left_out", {}), reasons
        ),
    )


def _unstimulated_reasons(collection, stim_table) -> dict:
    """``{session_id: reason}`` of the sessions of a population and stage of which no
    stimulation session is in ``stim_table``: the overlap has no unit classified there,
    whatever the encoding fit did with them (e.g. an intermediate stage imaged without
    stimulation, which is not "a stage outside the analysis's stages")."""
    stimulated = set(zip(stim_table["population"], stim_table["stage"], strict=True))
    return {
        s.session_id: f"no stimulation session of {s.population} in the {s.stage} stage was "
        "analysed (the overlap needs units classified by stimulation)"
        for s in collection
        if (s.population, s.stage) not in stimulated
    }


def _empty_overlap(collection) -> AnalysisResult:
    """The result of :func:`encoding_overlap` when no unit was classified by stimulation."""
    sessions = session_provenance(
        collection, (), {s.session_id: "no unit classified by stimulation" for s in collection}
    )
    return AnalysisResult(
        name="encoding_overlap",
        table=pd.DataFrame(),
        figure=empty_figure("no stimulation sessions: overlap not computed"),
        summary={
            "stages": {},
            "difference": {},
            "testable": False,
            "untestable_reason": "no stimulation sessions",
            "sessions": sessions,
        },
        description="No units were classified by stimulation; the overlap with "
        "movement-encoding units could not be computed.",
    )


def _mouse_row(subj, pop: str, st: str, x: np.ndarray, y: np.ndarray) -> dict:
    """2 x 2 counts and Haldane log odds ratio of one mouse (``x`` driven, ``y`` encodes)."""
    a, b = int(np.sum(x & y)), int(np.sum(x & ~y))
    c, d = int(np.sum(~x & y)), int(np.sum(~x & ~y))
    informative = (a + b > 0) and (c + d > 0) and (a + c > 0) and (b + d > 0)
    # an empty margin (no driven / no encoding unit, or all of them) leaves the
    # odds ratio undefined (0 / 0): the Haldane correction would invent one
    lor = _haldane_log_or(a, b, c, d) if informative else math.nan
    return {
        "subject": subj,
        "population": pop,
        "stage": st,
        "n_units": x.size,
        "driven_encoding": a,
        "driven_other": b,
        "nondriven_encoding": c,
        "nondriven_other": d,
        "log_odds_ratio": lor,
        "odds_ratio": math.exp(lor),
        "informative": informative,
    }


def _mouse_table(units: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Per mouse x population x stage 2 x 2 table, and the unit labels behind it.

    Returns ``(table, data)`` with ``data[(population, stage)] = (mice, driven, encodes)``,
    ``driven`` and ``encodes`` lists (one per mouse) of boolean arrays of shape (n_units,).
    """
    rows = []
    data: dict = {}
    for (pop, st), g in units.groupby(["population", "stage"], sort=False):
        drv, enc, mice = [], [], []
        for subj, gs in g.groupby("subject", sort=False):
            x = gs["driven"].to_numpy(bool)
            y = gs["encodes"].to_numpy(bool)
            rows.append(_mouse_row(subj, pop, st, x, y))
            drv.append(x)
            enc.append(y)
            mice.append(subj)
        data[(pop, st)] = (mice, drv, enc)
    return pd.DataFrame(rows), data


def _uninformative(row) -> str:
    """Why one mouse's 2 x 2 table (a row of :func:`_mouse_table`) has no odds ratio."""
    n = row["n_units"]
    parts = []
    for what, k in (
        ("driven", row["driven_encoding"] + row["driven_other"]),
        ("encoding", row["driven_encoding"] + row["nondriven_encoding"]),
    ):
        if k == 0:
            parts.append(f"no {what} unit")
        elif k == n:
            parts.append(f"every unit {what}")
    return " and ".join(parts) or "no odds ratio"


def _uninformative_mice(table: pd.DataFrame, pop: str, st: str, mice=None) -> dict:
    """``{mouse: reason}`` of the mice (of ``mice``; default all) of one population and
    stage without a per-mouse odds ratio (left out of the per-mouse tests)."""
    t = table[(table["population"] == pop) & (table["stage"] == st) & ~table["informative"]]
    return {
        r["subject"]: _uninformative(r)
        for r in t.to_dict("records")
        if mice is None or r["subject"] in mice
    }


def _stage_row(pop, st, cell: tuple, table: pd.DataFrame, n_perm: int, rng) -> dict:
    """Pooled (Mantel-Haenszel, permutation) and per-mouse (sign-flip) tests of one stage."""
    mice, drv, enc = cell
    a, b, c, d, n = _strata_counts(drv, enc)
    obs = _mh_log_or(a, b, c, d, n)
    null = _perm_mh(drv, enc, n_perm, rng)
    p_pooled = float((1 + np.sum(np.abs(null) >= abs(obs) - 1e-12)) / (1 + n_perm))
    if not any(x.any() for x in drv) or not any(y.any() for y in enc):
        # no driven or no encoding unit: only the 0.5 corrections are left
        obs, p_pooled = math.nan, math.nan
    t = table[(table["population"] == pop) & (table["stage"] == st) & table["informative"]]
    lors = t["log_odds_ratio"].to_numpy()
    return {
        "population": pop,
        "stage": st,
        "n_mice": len(mice),
        "n_units": int(n.sum()),
        "n_driven": int(sum(x.sum() for x in drv)),
        "n_encoding": int(sum(y.sum() for y in enc)),
        "odds_ratio_mh": math.exp(obs),
        "p_pooled": p_pooled,
        "mean_log_or": float(lors.mean()) if lors.size else math.nan,
        "p_mice": sign_flip_test(lors) if lors.size else math.nan,
        "n_informative": int(lors.size),
        "mice_left_out": _uninformative_mice(table, pop, st),
    }


def _mh_log_or_rows(A, nd, ne, n) -> np.ndarray:
    """log Mantel-Haenszel odds ratio of each row of stacked strata counts.

    ``A`` (driven and encoding), ``nd`` (driven), ``ne`` (encoding), ``n`` (units):
    arrays of shape (n_perm, n_mice); returns shape (n_perm,).
    """
    B, C, D = nd - A, ne - A, n - nd - ne + A
    return np.log((np.sum(A * D / n, 1) + 0.5) / (np.sum(B * C / n, 1) + 0.5))


def _stage_label_null(first: tuple, last: tuple, n_perm: int, rng) -> np.ndarray:
    """Null of the log MH-OR difference (last - first), stage labels permuted within mice.

    ``first``, ``last``: ``(driven, encodes)`` lists aligned over the mice of both stages.
    """
    n_mice = len(first[0])
    A_f = np.zeros((n_perm, n_mice))
    A_l = np.zeros((n_perm, n_mice))
    cnt = {k: np.zeros((n_perm, n_mice)) for k in ("ndf", "nef", "nf", "ndl", "nel", "nl")}
    for k in range(n_mice):
        x = np.concatenate([first[0][k], last[0][k]])
        y = np.concatenate([first[1][k], last[1][k]])
        nf = first[0][k].size
        lab = rng.permuted(np.tile(np.arange(x.size) < nf, (n_perm, 1)), axis=1)
        A_f[:, k] = (lab & x & y).sum(1)
        A_l[:, k] = (~lab & x & y).sum(1)
        cnt["ndf"][:, k] = (lab & x).sum(1)
        cnt["nef"][:, k] = (lab & y).sum(1)
        cnt["nf"][:, k] = nf
        cnt["ndl"][:, k] = (~lab & x).sum(1)
        cnt["nel"][:, k] = (~lab & y).sum(1)
        cnt["nl"][:, k] = x.size - nf
    return _mh_log_or_rows(A_l, cnt["ndl"], cnt["nel"], cnt["nl"]) - _mh_log_or_rows(
        A_f, cnt["ndf"], cnt["nef"], cnt["nf"]
    )


def _aligned(cell: tuple, common: list) -> tuple[list, list]:
    """``(driven, encodes)`` of one stage's cell restricted to, and ordered as, ``common``."""
    mice, drv, enc = cell
    return [drv[mice.index(m)] for m in common], [enc[mice.index(m)] for m in common]


def _empty_margins(first: str, last: str, aligned: dict, common: list) -> list[str]:
    """Why the stage difference has no log odds ratio (empty list: it has one)."""
    # without a driven or an encoding unit among the mice of a stage, that stage's
    # log odds ratio is undefined (only the 0.5 corrections): no difference to test
    if not common:
        return [f"no mouse in both {first} and {last}"]
    return [
        f"no {what} unit in {st}"
        for st in (first, last)
        for what, arrays in zip(("driven", "encoding"), aligned[st], strict=True)
        if not any(arr.any() for arr in arrays)
    ]


def _not_informative_in_both(table, pop, first, last, common) -> dict:
    """``{mouse: reason}`` of the mice of ``common`` without an odds ratio in a stage:
    ``"no odds ratio in novice (no driven unit)"``."""
    out: dict = {}
    for st in (first, last):
        for m, why in _uninformative_mice(table, pop, st, set(common)).items():
            out.setdefault(m, []).append(f"{st} ({why})")
    return {m: "no odds ratio in " + " and ".join(out[m]) for m in common if m in out}


def _paired_log_or_differences(table, pop, first, last, common) -> np.ndarray:
    """Per-mouse log OR difference (last - first) over the mice informative in both."""
    tp = table[table["population"] == pop]
    lf = tp[tp["stage"] == first].set_index("subject")
    ll = tp[tp["stage"] == last].set_index("subject")
    paired = [
        m for m in common if bool(lf.loc[m, "informative"]) and bool(ll.loc[m, "informative"])
    ]
    return np.array(
        [ll.loc[m, "log_odds_ratio"] - lf.loc[m, "log_odds_ratio"] for m in paired], float
    )


def _stage_difference(data, table, pop, first, last, n_perm, rng, absent) -> tuple[dict, str]:
    """Change of the overlap from ``first`` to ``last`` stage: ``(difference, untestable)``.

    ``absent(population, stage)``: why a mouse has no units there (a function of the
    mouse), for the mice in one stage only (``mice_left_out``).
    """
    common, left_out = paired_mice(
        data[(pop, first)][0], data[(pop, last)][0], absent(pop, first), absent(pop, last)
    )
    aligned = {st: _aligned(data[(pop, st)], common) for st in (first, last)}
    obs = _mh_log_or(*_strata_counts(*aligned[last])) - _mh_log_or(
        *_strata_counts(*aligned[first])
    )
    empty = _empty_margins(first, last, aligned, common)
    null = _stage_label_null(aligned[first], aligned[last], n_perm, rng)
    p_pooled = float((1 + np.sum(np.abs(null) >= abs(obs) - 1e-12)) / (1 + n_perm))
    dlor = _paired_log_or_differences(table, pop, first, last, common)
    left_out.update(_not_informative_in_both(table, pop, first, last, common))
    if empty:
        obs, p_pooled = math.nan, math.nan
    diff = {
        "population": pop,
        "stage_from": first,
        "stage_to": last,
        "ratio_of_odds_ratios": math.exp(obs),
        "log_or_difference": obs,
        "p_pooled": p_pooled,
        "mean_log_or_difference": float(dlor.mean()) if dlor.size else math.nan,
        "p_mice": sign_flip_test(dlor, "greater") if dlor.size else math.nan,
        "p_mice_two_sided": sign_flip_test(dlor) if dlor.size else math.nan,
        "n_mice": int(dlor.size),
        "mice_left_out": left_out,
    }
    diff.update(sign_flip_testability(diff["p_mice"], dlor.size, "greater", left_out))
    return diff, f"{pop}: " + "; ".join(empty) if empty else ""


@dataclass
class _OverlapTables:
    """Tables computed by :func:`encoding_overlap` (see its Returns section).

    ``differences``: {population: the raw stage-difference dict (empty when not
    computed)}; ``untestable``: {population: why it has no p-value ("" when it has one)}.
    """

    table: pd.DataFrame
    units: pd.DataFrame
    stages_table: pd.DataFrame
    differences: dict
    untestable: dict
    populations: list
    stages: list


def _population_difference(data, table, pop, stages, n_perm, rng, absent) -> tuple[dict, str]:
    """``(difference, untestable)`` of one population (``_stage_difference``), or why none."""
    if len(stages) < 2:
        return {}, f"{pop}: fewer than 2 stages with stimulation sessions"
    if (pop, stages[0]) in data and (pop, stages[-1]) in data:
        return _stage_difference(data, table, pop, stages[0], stages[-1], n_perm, rng, absent)
    return {}, f"{pop}: no units classified in both {stages[0]} and {stages[-1]}"


def _compute_overlap(
    units: pd.DataFrame, pops, stages, n_perm: int, random_state, absent
) -> _OverlapTables:
    """Per-mouse tables, per-stage tests and the stage difference of every population.

    Each population is tested on its own, with its own generator seeded by
    ``random_state``: its results are those of a study stimulating it alone.
    ``absent(population, stage)``: why a mouse has no units there (``_stage_difference``).
    """
    table, data = _mouse_table(units)
    rows, diffs, untestable = [], {}, {}
    for pop in pops:
        rng = np.random.default_rng(random_state)
        cells = [(st, cell) for (p, st), cell in data.items() if p == pop]
        rows += [_stage_row(pop, st, cell, table, n_perm, rng) for st, cell in cells]
        diffs[pop], untestable[pop] = _population_difference(
            data, table, pop, stages, n_perm, rng, absent
        )
    return _OverlapTables(table, units, pd.DataFrame(rows), diffs, untestable, list(pops), stages)


def _coarse_unit_test(n_perm_units: int, fdr: float) -> str:
    """Why the unit encoding test cannot classify units at ``fdr`` ("" when it can).

    Its smallest achievable p-value is ``1 / (1 + n_perm_units)``; at or above ``fdr``,
    Benjamini-Hochberg passes a unit only when every unit of its mouse reaches it.
    """
    p_min = 1.0 / (1 + int(n_perm_units))
    if p_min < fdr - 1e-12:
        return ""
    return (
        f"unit classification too coarse: n_perm_units={int(n_perm_units)} gives p >= "
        f"{p_min:.3g} (1/{int(n_perm_units) + 1}), which BH-FDR {fdr:g} passes only when "
        f"every unit of a mouse reaches it, so (almost) no unit can be classified as "
        f"encoding; use n_perm_units >= {math.ceil(5 / fdr) - 1}"
    )


def _stage_reason(r: dict, coarse: str) -> str:
    """Why a stage's pooled odds ratio has no p-value ("" when it has one)."""
    if math.isfinite(fnum(r["p_pooled"])):
        return ""
    if coarse and not r["n_encoding"]:
        return coarse.split(" (")[0]  # the first clause; the whole note leads the text
    missing = [w for w, k in (("driven", "n_driven"), ("encoding", "n_encoding")) if not r[k]]
    return f"no {' and no '.join(missing)} unit" if missing else ""


def _with_coarse(coarse: str, untestable: str) -> str:
    """``untestable`` led by ``coarse`` (the unit test's resolution) when both are set."""
    return f"{coarse}; {untestable}" if coarse and untestable else untestable


def _overlap_stages(tables: _OverlapTables, pop, coarse: str) -> dict:
    """``{stage: row}`` of one population's per-stage tests (keys documented there), in
    learning order (``tables.stages``)."""
    rank = {st: k for k, st in enumerate(tables.stages)}
    rows = sorted(
        (r for r in tables.stages_table.to_dict("records") if r["population"] == pop),
        key=lambda r: rank.get(r["stage"], len(rank)),
    )
    return {
        r["stage"]: {
            "population": r["population"],
            "n_mice": int(r["n_mice"]),
            "reason": _stage_reason(r, coarse),
            "odds_ratio": fnum(r["odds_ratio_mh"]),
            "p_pooled": fnum(r["p_pooled"]),
            "mean_log_or": fnum(r["mean_log_or"]),
            "p_mice": fnum(r["p_mice"]),
            "n_informative": int(r["n_informative"]),
            "mice_left_out": left_out_of(r.get("mice_left_out")),
            "n_driven": int(r["n_driven"]),
            "n_encoding": int(r["n_encoding"]),
            "n_units": int(r["n_units"]),
        }
        for r in rows
    }


def _overlap_population(tables: _OverlapTables, pop, coarse: str) -> dict:
    """One population's ``stages``, ``difference``, ``testable``, ``untestable_reason``."""
    diff = tables.differences[pop]
    return {
        "stages": _overlap_stages(tables, pop, coarse),
        "difference": {k: (fnum(v) if isinstance(v, float) else v) for k, v in diff.items()},
        "testable": bool(diff) and not math.isnan(diff.get("p_pooled", math.nan)),
        "untestable_reason": _with_coarse(coarse, tables.untestable[pop]),
    }


def _summarise_overlap(tables: _OverlapTables, n_perm: int, coarse: str = "") -> dict:
    """Headline numbers of :func:`encoding_overlap` (keys documented there)."""
    pops = {pop: _overlap_population(tables, pop, coarse) for pop in tables.populations}
    if len(pops) == 1:
        pop, only = next(iter(pops.items()))
        head = {"population": pop, **only}
    else:
        reasons = [r for r in tables.untestable.values() if r]
        head = {
            "stages": _pop_stage_rows(pops),
            "testable": all(v["testable"] for v in pops.values()),
            "untestable_reason": _with_coarse(coarse, "; ".join(reasons)),
        }
    return head | {"unit_test_coarse": coarse, "n_perm": int(n_perm), "populations": pops}


def _overlap_stage_text(stages: dict) -> str:
    """The per-stage results of one population (MH odds ratio, per-mouse log OR, counts)."""
    return "; ".join(
        f"{st}: MH odds ratio {fmt_num(v['odds_ratio'], '.2f')} "
        f"({p_text(v['p_pooled'], n_mice=v['n_mice'], reason=v['reason'], label='pooled p')})"
        f", mean per-mouse log OR {fmt_num(v['mean_log_or'], '.2f')} over "
        f"{count_mice(v['n_informative'], 'informative')}{left_out_note(v['mice_left_out'])} ("
        + p_text(
            v["p_mice"],
            n_mice=v["n_informative"],
            reason=v["reason"] if not v["n_informative"] else "",
            label="sign-flip p",
        )
        + f"); {v['n_driven']} driven, {v['n_encoding']} encoding of {v['n_units']} units "
        f"in {v['n_mice']} mice"
        for st, v in stages.items()
    )


def _overlap_difference_text(diff: dict, untestable: str) -> str:
    """The stage difference of one population, or why it is not tested."""
    if untestable:
        return f"stage difference not testable: {untestable}"
    if not diff:
        return "no stage comparison"
    return (
        f"{diff['stage_to']} vs {diff['stage_from']}: ratio of odds ratios "
        f"{fmt_num(diff['ratio_of_odds_ratios'], '.2f')} "
        f"({p_text(diff['p_pooled'], n_mice=diff['n_mice'], label='pooled permutation p')}); "
        f"per-mouse log OR difference {fmt_num(diff['mean_log_or_difference'], '.2f')} over "
        f"{count_mice(diff['n_mice'])}"
        # an untestable p's reason names the mice left out already
        + ("" if diff.get("reason") else left_out_note(diff["mice_left_out"]))
        + " ("
        f"{p_text(diff['p_mice'], reason=diff.get('reason', ''), label='one-sided sign-flip p')})"
    )


def _overlap_results_text(v: dict) -> str:
    """Per-stage results and stage difference of one population (a ``populations`` entry)."""
    return (
        _overlap_stage_text(v["stages"])
        + ". "
        + _overlap_difference_text(v["difference"], v["untestable_reason"])
    )


def _describe_overlap(summary: dict, whole_trials: bool) -> str:
    """The paragraph of :func:`encoding_overlap`: tests, units of inference, results (of
    each population on its own)."""
    pops = summary["populations"]
    if len(pops) == 1:
        who, results = f"{summary['population']} units", _overlap_results_text(summary)
    else:
        who = f"units of each population ({', '.join(map(str, pops))}; tested separately)"
        results = ". ".join(f"In {pop}: {_overlap_results_text(v)}" for pop, v in pops.items())
    return (
        f"Overlap of stimulation-driven {who} with units encoding the shared movement "
        "representation (unit_encoding: cross-validated R^2 from the lagged shared latents, "
        + (
            "whole-trial circular shifts"
            if whole_trials
            else "circular shifts by any number of samples -- trial-locked activity that is "
            "not movement-related would also count as encoding --"
        )
        + ", BH-FDR within mice), per stage. Pooled test: "
        "Mantel-Haenszel odds ratio with mice as strata, driven labels permuted among the "
        f"units of each mouse ({summary['n_perm']} permutations, two-sided) -- units are "
        "treated as exchangeable within a mouse, so this p-value concerns these mice and "
        "units, not the population of animals; the stage difference permutes stage labels "
        "among the unit observations of each mouse (the same tracked neuron can enter both "
        "stages). Mice as the unit: per-mouse log odds ratios (Haldane correction; mice "
        "without driven or encoding units excluded), exact sign-flip tests (with n mice the "
        "smallest one-sided p is 2^-n). "
        + (f"Not testable: {summary['unit_test_coarse']}. " if summary["unit_test_coarse"] else "")
        + results
        + "."
    )
