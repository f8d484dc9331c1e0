"""What is the shared representation? Loadings and onset-aligned latents per population x stage.

For every population and stage the mice are aligned with ShaReD exactly as in
:func:`~sharedrep.study.encoding_by_population` (same cells, same cleaning, same model
template: :func:`~sharedrep.study.populations.fit_cells`); the loadings of the shared axes
(sign-aligned to a reference cell) and the latents predicted from each mouse's neural
activity around movement onset are tabulated by private compute steps, drawn by
:func:`sharedrep.study.figures.plot_shared_representation`, summarised and described. It
may import ``sharedrep.utils``, ``sharedrep.data``, ``sharedrep.core`` and the other
``sharedrep.study`` modules (never ``sharedrep.app``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.base import clone

from sharedrep.data.preprocess import align_to_events
from sharedrep.data.session import SessionCollection
from sharedrep.study._common import (
    AnalysisError,
    Steps,
    analysis,
    describe_provenance,
    encoding_sessions,
    fnum,
    left_out_names,
    lever_index,
    make_model,
    nanmean_rows,
    nanmedian,
    no_session,
    origin,
    paired_mice,
    quiet,
    select_days,
    session_provenance,
    single_blas,
    trial_flags,
)
from sharedrep.study._result import AnalysisResult
from sharedrep.study.behavior import trial_measures
from sharedrep.study.figures import plot_shared_representation
from sharedrep.study.populations import analysed_stages, cell_session_ids, fit_cells

__all__ = ["shared_representation"]

_TRAJ_COLUMNS = ["population", "stage", "subject", "dimension", "time_s", "latent", "n_trials"]
_LOAD_COLUMNS = ["population", "stage", "dimension", "feature", "loading"]
#: Note on a fitted session without a usable trial with a movement onset.
_NO_ONSET = (
    "no movement onset in a usable (no stimulation, no silencing) trial: fitted, but not "
    "in the latent trajectories"
)


def _heldout_r2(model) -> float:
    """Pooled held-out R^2 of the first shared latent (in-sample ``explained_`` without CV)."""
    cvr = getattr(model, "cv_results_", None)
    if cvr:
        ia, _ = cvr["best_index"]
        return float(cvr["r2_dim"][ia, 0])
    return float(model.explained_[0])


def _onsets(clean: SessionCollection) -> dict:
    """``{session_id: (movement onset per trial, usable trial?)}``.

    Onsets come from :func:`~sharedrep.study.behavior.trial_measures` (the trials table's
    ``movement_onset_time``, else detected from the lever); stimulation and silencing
    trials are not usable.
    """
    try:
        tm, _, _ = trial_measures(clean)
    except AnalysisError:  # a session's data are wrong: say so
        raise
    except ValueError:  # no lever feature: only the trials table can tell
        tm = None
    out = {}
    for s in clean:
        n = len(s.trials)
        if tm is not None:
            rows = tm[tm["session_id"] == s.session_id].sort_values("trial")
            onset = rows["movement_onset_time"].to_numpy(float)
        elif "movement_onset_time" in s.trials.columns:
            onset = pd.to_numeric(s.trials["movement_onset_time"], errors="coerce").to_numpy(float)
        else:
            onset = np.full(n, np.nan)
        with origin(session=s):
            stim, sil = trial_flags(s) if n else (np.zeros(0, bool), np.zeros(0, bool))
        out[s.session_id] = (onset, np.isfinite(onset) & ~stim & ~sil)
    return out


def _orientation(axes: np.ndarray, lever: int | None) -> np.ndarray:
    """Signs (+1/-1 per dimension) making the lever loading (else the largest) positive."""
    signs = np.ones(axes.shape[1])
    for d in range(axes.shape[1]):
        j = lever if lever is not None else int(np.argmax(np.abs(axes[:, d])))
        signs[d] = -1.0 if axes[j, d] < 0 else 1.0
    return signs


def _principal_angles_deg(a: np.ndarray, b: np.ndarray) -> list[float]:
    from scipy.linalg import subspace_angles

    return [float(np.degrees(x)) for x in sorted(subspace_angles(a, b))]


def _peak(times: np.ndarray, values: np.ndarray) -> tuple[float, float]:
    """Time and value of the maximum of a trajectory (NaN when nothing is finite)."""
    ok = np.isfinite(values)
    if not ok.any():
        return math.nan, math.nan
    j = int(np.argmax(np.where(ok, values, -np.inf)))
    return float(times[j]), float(values[j])


def _check_window(window) -> None:
    """Refuse a window that is not ``(start, stop)`` with ``start < stop`` (seconds)."""
    if not (len(window) == 2 and window[0] < window[1]):
        raise ValueError(f"window must be (start, stop) with start < stop; got {window!r}")


def _used_sessions(collection: SessionCollection, cells: dict, days_per_stage, first_stage=None):
    """The cleaned sessions (stimulation and silencing samples removed) the cells' fits use.

    Returns
    -------
    SessionCollection
        The sessions of :func:`~sharedrep.study._common.select_days` on the encoding
        sessions that some cell uses, in that order (name, analysis and source kept).
    """
    clean = select_days(encoding_sessions(collection), days_per_stage, first_stage)
    used = {sid for args in cells.values() for ids in args.session_ids for sid in ids}
    return SessionCollection(
        [s for s in clean if s.session_id in used],
        name=clean.name,
        analysis=clean.analysis,
        source=clean.source,
    )


def _fit_cells(cells: dict, model, progress) -> dict:
    """``{(population, stage): fitted ShaReD}``: ``model`` cloned per cell, mice as subjects."""
    fitted = {}
    with Steps(progress, "representation", len(cells)) as steps, quiet():
        for (pop, st), args in cells.items():
            with origin(population=pop, stage=st, cell=args):
                fitted[(pop, st)] = clone(model).fit(
                    args.neural, args.behavior, groups=args.groups
                )
            steps.advance(f"{pop}/{st}")
    return fitted


def _reference_cell(cells: dict, r2: dict) -> tuple:
    """The cell whose first latent is best predicted (held-out R^2); the first cell if none is."""
    finite = [k for k in cells if np.isfinite(r2[k])]
    return max(finite, key=lambda k: r2[k]) if finite else next(iter(cells))


def _lever_row(ref_args, sessions: dict) -> int | None:
    """Row of the lever-position feature among the reference cell's behaviour features.

    ``None`` when there is no lever feature (the axes are then oriented by their largest
    loading).
    """
    first = sessions[ref_args.session_ids[0][0]]
    try:
        return ref_args.behavior_names.index(first.behavior_names[lever_index(first)])
    except ValueError:  # no lever feature: orient by the largest loading
        return None


def _aligned_signs(fitted: dict, ref_key: tuple, lever: int | None) -> dict:
    """``{cell: signs (n_shared,)}`` aligning every cell's axes to the oriented reference axes."""
    ref = fitted[ref_key].shared_axes_
    ref_axes = ref * _orientation(ref, lever)
    signs = {}
    for key, m in fitted.items():
        k = min(m.shared_axes_.shape[1], ref_axes.shape[1])
        sg = np.ones(m.shared_axes_.shape[1])
        sg[:k] = np.where(np.sum(m.shared_axes_[:, :k] * ref_axes[:, :k], axis=0) < 0, -1.0, 1.0)
        signs[key] = sg
    return signs


def _loading_rows(pop: str, st: str, axes: np.ndarray, names) -> list[dict]:
    """Rows of the loadings table of one cell (``axes``: features x dimensions, sign-aligned)."""
    return [
        {
            "population": pop,
            "stage": st,
            "dimension": d + 1,
            "feature": name,
            "loading": float(axes[f, d]),
        }
        for d in range(axes.shape[1])
        for f, name in enumerate(names)
    ]


def _session_windows(m, i: int, s, onset, usable, sign, *, window, rate, within_trials):
    """Shared latents of one session cut around its usable trials' movement onsets.

    Returns
    -------
    aligned : ndarray of shape (n_usable_trials, n_times, n_shared)
        Sign-aligned latents (NaN outside the trial, and outside trials when
        ``within_trials``).
    rel : ndarray of shape (n_times,)
        Seconds relative to movement onset.
    """
    z, rows = m.transform(s.neural, subject=i, groups=s.groups(), return_rows=True)
    full = np.full((s.n_samples, z.shape[1]), np.nan)
    full[rows] = z * sign
    if within_trials:
        full[s.trial_ids() < 0] = np.nan
    aligned, rel = align_to_events(
        full, s.timestamps, onset[usable], window=window, sampling_rate=rate
    )
    start = s.trials["start_time"].to_numpy(float)[usable]
    stop = s.trials["stop_time"].to_numpy(float)[usable]
    absolute = onset[usable][:, None] + rel[None, :]
    aligned[(absolute < start[:, None]) | (absolute >= stop[:, None])] = np.nan
    return aligned, rel


def _mouse_trajectory(m, i: int, session_ids, sessions, onsets, sign, **kw):
    """Mean over one mouse's usable trials of the shared latents around movement onset.

    Returns
    -------
    traj : ndarray of shape (n_times, n_shared) or None
        ``None`` when the mouse has no usable trial.
    rel : ndarray of shape (n_times,) or None
        Seconds relative to movement onset.
    n_trials : int
        Trials with data in the first latent.
    """
    windows, rel = [], None
    for sid in session_ids:
        onset, usable = onsets[sid]
        if usable.any():
            with origin(session=sessions[sid]):
                aligned, rel = _session_windows(m, i, sessions[sid], onset, usable, sign, **kw)
            windows.append(aligned)
    if not windows:
        return None, rel, 0
    w = np.concatenate(windows)  # (trials, time, k)
    n_tr = int(np.sum(np.any(np.isfinite(w[..., 0]), axis=1)))
    return nanmean_rows(w, axis=0), rel, n_tr


def _trajectory_rows(pop, st, subj, rel, traj, n_tr) -> list[dict]:
    """Rows of the trajectories table of one mouse (``traj``: times x dimensions)."""
    return [
        {
            "population": pop,
            "stage": st,
            "subject": subj,
            "dimension": d + 1,
            "time_s": float(t_s),
            "latent": float(v),
            "n_trials": n_tr,
        }
        for d in range(traj.shape[1])
        for t_s, v in zip(rel, traj[:, d], strict=True)
    ]


def _cell_row(pop, st, args, m, r2: float, rel, per_subject: dict) -> dict:
    """One row of the cells table: fit, and peak of the mean (over mice) of latent 1."""
    if per_subject:
        mean = nanmean_rows(np.stack([v[:, 0] for v in per_subject.values()]), axis=0)
        peak_t, peak_v = _peak(rel, mean)
        subject_peaks = [_peak(rel, v[:, 0])[0] for v in per_subject.values()]
    else:
        peak_t, peak_v, subject_peaks = math.nan, math.nan, []
    return {
        "population": pop,
        "stage": st,
        "n_subjects": len(args),
        "alpha": float(m.alpha_),
        "heldout_r2": r2,
        "peak_time_s": peak_t,
        "peak_latent": peak_v,
        "median_subject_peak_s": nanmedian(subject_peaks),
        "subject_peaks_s": subject_peaks,
    }


def _representation_tables(cells, fitted, signs, r2, clean, *, window, within_trials):
    """Loadings, per-mouse trajectories and per-cell rows of every cell.

    Returns
    -------
    dict
        ``"loadings"``, ``"trajectories"`` and ``"cells"`` (DataFrames, documented in
        :func:`shared_representation`) and ``"cell_rows"`` (the cells' rows, with each
        mouse's peak time ``subject_peaks_s``) and ``"no_onsets"`` (``{session_id:
        note}`` of the sessions without a usable movement onset).
    """
    sessions = {s.session_id: s for s in clean}
    onsets = _onsets(clean)
    rates = [s.sampling_rate for s in clean if np.isfinite(s.sampling_rate)]
    kw = dict(window=window, rate=float(np.median(rates)), within_trials=within_trials)
    load_rows, traj_rows, cell_rows = [], [], []
    for (pop, st), args in cells.items():
        m, sign = fitted[(pop, st)], signs[(pop, st)]
        load_rows += _loading_rows(pop, st, m.shared_axes_ * sign, args.behavior_names)
        per_subject, rel = {}, None
        for i, subj in enumerate(args.subjects):
            traj, r, n_tr = _mouse_trajectory(
                m, i, args.session_ids[i], sessions, onsets, sign, **kw
            )
            if traj is None:
                continue
            rel, per_subject[subj] = r, traj
            traj_rows += _trajectory_rows(pop, st, subj, rel, traj, n_tr)
        cell_rows.append(_cell_row(pop, st, args, m, r2[(pop, st)], rel, per_subject))
    return {
        "loadings": pd.DataFrame(load_rows, columns=_LOAD_COLUMNS),
        "trajectories": pd.DataFrame(traj_rows, columns=_TRAJ_COLUMNS),
        "cells": pd.DataFrame(cell_rows).drop(columns="subject_peaks_s"),
        "cell_rows": cell_rows,
        "no_onsets": {sid: _NO_ONSET for sid, (_, usable) in onsets.items() if not usable.any()},
    }


def _stage_angles(fitted: dict, cells: dict, collection: SessionCollection) -> dict:
    """``{population: {stages, angles_deg, max_angle_deg, mice_in_one_stage}}``: first vs
    last stage's axes, and ``{mouse: reason}`` of the mice only one of the two fits holds
    (``_common.paired_mice``: the angle then mixes learning with differences between
    mice)."""
    angles = {}
    for p in dict.fromkeys(p for p, _ in cells):
        stg = list(dict.fromkeys(s for q, s in cells if q == p))  # learning order (fit_cells)
        if len(stg) < 2:
            continue
        first, last = cells[(p, stg[0])], cells[(p, stg[-1])]
        ang = _principal_angles_deg(
            fitted[(p, stg[0])].shared_axes_, fitted[(p, stg[-1])].shared_axes_
        )
        _, one_stage = paired_mice(
            first.subjects,
            last.subjects,
            no_session(collection, stg[0], p),
            no_session(collection, stg[-1], p),
        )
        angles[p] = {
            "stages": [stg[0], stg[-1]],
            "angles_deg": ang,
            "max_angle_deg": max(ang),
            "mice_in_one_stage": one_stage,
        }
    return angles


def _summarise(
    tables: dict, fitted: dict, cells: dict, ref_key: tuple, window, collection
) -> dict:
    """Headline numbers: reference cell, per-cell fit and peaks, stage angles, window."""
    cells_summary = {
        f"{r['population']}/{r['stage']}": {
            "heldout_r2": fnum(r["heldout_r2"]),
            "peak_time_s": fnum(r["peak_time_s"]),
            "peak_latent": fnum(r["peak_latent"]),
            "median_subject_peak_s": fnum(r["median_subject_peak_s"]),
            "subject_peaks_s": [fnum(x) for x in r["subject_peaks_s"]],
            "n_subjects": int(r["n_subjects"]),
        }
        for r in tables["cell_rows"]
    }
    return {
        "reference": "/".join(ref_key),
        "cells": cells_summary,
        "angles": _stage_angles(fitted, cells, collection),
        "window_s": [float(window[0]), float(window[1])],
    }


def _fitted_apart(mice: dict | None) -> str:
    """``" (the two fits hold different mice: mouse01, no novice session of m1)"``: the
    mice in one of the two stages' fits only; ``""`` when both fits hold the same mice."""
    return f" (the two fits hold different mice: {left_out_names(mice)})" if mice else ""


def _describe(cells_table: pd.DataFrame, summary: dict, days_per_stage, window) -> str:
    """One paragraph: the fits, the sign alignment, the trajectories and the results."""
    n_mice = int(cells_table["n_subjects"].max())
    cell_txt = "; ".join(
        f"{k}: held-out R^2 = {v['heldout_r2']:.3f}, mean latent peaks at "
        f"{v['peak_time_s']:+.2f} s (median over mice {v['median_subject_peak_s']:+.2f} s, "
        f"{v['n_subjects']} mice)"
        for k, v in summary["cells"].items()
    )
    angle_txt = "; ".join(
        f"{p} {a['stages'][0]} vs {a['stages'][1]}: {a['max_angle_deg']:.1f} deg"
        + _fitted_apart(a.get("mice_in_one_stage"))
        for p, a in summary["angles"].items()
    )
    return (
        "ShaReD was fitted per population and learning stage with the mice as subjects "
        f"(up to {n_mice} mice; {days_per_stage or 'all'} day(s) per stage; stimulation and "
        "silencing trials removed), as for the encoding analysis. The loadings of the "
        "shared axes on the behaviour features are in pooled-standardised units; axis "
        f"signs were aligned to the reference cell {summary['reference']} (best held-out "
        "R^2, oriented so that its lever loading is positive). The first shared latent was "
        "predicted from each mouse's neural activity and averaged over its trials around "
        f"movement onset ({window[0]:+.1f} to {window[1]:+.1f} s; stimulation and silencing "
        "trials excluded): one trajectory per mouse, the mouse being the unit of inference "
        "(cells are summarised over mice; no test is made here). "
        + cell_txt
        + ". Largest principal angle between the first and last stage's shared axes: "
        + (angle_txt if angle_txt else "not computable (one stage)")
        + "."
    )


@analysis("shared_representation")
@single_blas
def shared_representation(
    collection: SessionCollection,
    *,
    populations=None,
    stages=None,
    model=None,
    days_per_stage: int | None = 2,
    window: tuple[float, float] = (-1.0, 2.0),
    within_trials: bool = True,
    random_state: int = 0,
    progress=False,
) -> AnalysisResult:
    """Shared-axes loadings and onset-aligned shared latents per population x stage.

    **Fit.** Per cell (population x stage with at least 2 mice) ShaReD is fitted on the
    mice together, on the data of :func:`~sharedrep.study.encoding_by_population`
    (:func:`~sharedrep.study.populations.fit_cells`: ``days_per_stage`` days per mouse,
    stimulation and silencing trials removed; ``model`` cloned, default
    ``_common.make_model()``).

    **Loadings.** ``shared_axes_`` (behaviour features x shared dimensions,
    pooled-standardised units). ShaReD axes have an arbitrary sign: the reference cell
    (the one whose first latent is best predicted from neural activity, held-out R^2) is
    oriented so that its lever-position loading (else its largest loading) is positive,
    and every dimension of every other cell is flipped when its dot product with the
    reference's is negative. Latents get the same signs.

    **Latent trajectories.** The shared latents predicted from each mouse's neural
    activity (:meth:`sharedrep.ShaReD.transform`, lag windows never crossing trials or
    removed samples) are cut around each usable trial's movement onset (``window``
    seconds; samples outside the trial are NaN) and averaged over the mouse's trials:
    one trajectory per mouse. The mouse is the unit of inference: cell summaries are
    over mice.

    Parameters
    ----------
    collection : SessionCollection
    populations, stages : list of str, optional
        Default: all populations; the stages of the collection's ``analysis["stages"]``,
        else novice and expert (all stages if either is missing).
    model : ShaReD, optional
        Template (cloned).
    days_per_stage : int or None, default 2
        See :func:`~sharedrep.study.encoding_by_population`.
    window : (float, float), default (-1.0, 2.0)
        Seconds around movement onset.
    within_trials : bool, default True
        Fit on samples inside trials only.
    random_state : int, default 0
        Seed of the default model.
    progress : bool or rich.progress.Progress, default False

    Returns
    -------
    AnalysisResult
        ``table``: ``population``, ``stage``, ``dimension`` (1-based), ``feature``,
        ``loading`` (sign-aligned, pooled-standardised units). ``tables["trajectories"]``:
        ``population``, ``stage``, ``subject``, ``dimension``, ``time_s`` (relative to
        movement onset), ``latent`` (mean over the mouse's trials; NaN where no trial has
        data), ``n_trials``. ``tables["cells"]``: per cell ``n_subjects``, ``alpha``,
        ``heldout_r2``, ``peak_time_s``, ``peak_latent`` (of the mean over mice of the
        first latent), ``median_subject_peak_s``. ``summary``: ``reference`` ("pop/stage"),
        ``cells`` {"pop/stage": {heldout_r2, peak_time_s, peak_latent,
        median_subject_peak_s, subject_peaks_s, n_subjects}}, ``angles``
        {population: {"stages": [first, last], "angles_deg": [...], "max_angle_deg",
        "mice_in_one_stage"}} (principal angles between the first and last stage's shared
        axes; ``mice_in_one_stage``: ``{mouse: reason}`` of the mice only one of the two
        fits holds, ``{}`` when none, named in the description),
        ``sessions`` (the sessions used and those left out, with the reason; sessions
        without a usable movement onset are ``partly_used``: fitted, but not in the
        trajectories).

    Raises
    ------
    AnalysisError
        An error while fitting one cell or cutting one session's latents; the message
        starts with ``"shared_representation"`` and names the population, stage,
        session(s) and subject(s).
    """
    if model is None:
        model = make_model(random_state=random_state)
    _check_window(window)
    left_out: dict = {}
    cells = fit_cells(
        collection,
        populations,
        stages,
        days_per_stage=days_per_stage,
        within_trials=within_trials,
        left_out=left_out,
    )
    first = analysed_stages(collection, stages)[0]  # whose earliest days the cells use
    clean = _used_sessions(collection, cells, days_per_stage, first)
    sessions = {s.session_id: s for s in clean}
    fitted = _fit_cells(cells, model, progress)
    r2 = {key: _heldout_r2(m) for key, m in fitted.items()}
    ref_key = _reference_cell(cells, r2)
    signs = _aligned_signs(fitted, ref_key, _lever_row(cells[ref_key], sessions))
    tables = _representation_tables(
        cells, fitted, signs, r2, clean, window=window, within_trials=within_trials
    )
    summary = _summarise(tables, fitted, cells, ref_key, window, collection)
    summary["sessions"] = session_provenance(
        collection, cell_session_ids(cells), left_out, tables["no_onsets"]
    )
    figure = plot_shared_representation(tables["loadings"], tables["trajectories"], ref_key)
    description = _describe(tables["cells"], summary, days_per_stage, window)
    description += describe_provenance(summary["sessions"])
    return AnalysisResult(
        name="shared_representation",
        table=tables["loadings"],
        figure=figure,
        summary=summary,
        description=description,
        tables={"trajectories": tables["trajectories"], "cells": tables["cells"]},
    )
