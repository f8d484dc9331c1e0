"""What is the shared representation? Loadings and onset-aligned latents per population x stage.

For every population and stage the mice are aligned with ShaReD exactly as in
:func:`~sharedrep.study.encoding_by_population` (same cells, same cleaning, same model
template: :func:`~sharedrep.study.populations.fit_cells`). Two things are shown per cell:
the loadings of the shared axes on the behaviour features (pooled-standardised units,
signs aligned to a reference cell so that cells are comparable), and the shared latent
predicted from each mouse's neural activity (:meth:`sharedrep.ShaReD.transform`) around
movement onset, averaged over the mouse's trials.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.base import clone

from sharedrep.data.preprocess import align_to_events
from sharedrep.data.session import SessionCollection
from sharedrep.study._common import (
    Steps,
    encoding_sessions,
    fnum,
    lever_index,
    make_model,
    nanmean_rows,
    nanmedian,
    new_figure,
    ordered_stages,
    quiet,
    select_days,
    single_blas,
    trial_flags,
)
from sharedrep.study._result import AnalysisResult
from sharedrep.study.behavior import trial_measures
from sharedrep.study.populations import fit_cells

__all__ = ["shared_representation"]

_TRAJ_COLUMNS = ["population", "stage", "subject", "dimension", "time_s", "latent", "n_trials"]
_LOAD_COLUMNS = ["population", "stage", "dimension", "feature", "loading"]


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
        Default: all populations; novice and expert (all stages if either is missing).
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
        {population: {"stages": [first, last], "angles_deg": [...], "max_angle_deg"}}
        (principal angles between the first and last stage's shared axes).
    """
    if model is None:
        model = make_model(random_state=random_state)
    if not (len(window) == 2 and window[0] < window[1]):
        raise ValueError(f"window must be (start, stop) with start < stop; got {window!r}")
    cells = fit_cells(
        collection,
        populations,
        stages,
        days_per_stage=days_per_stage,
        within_trials=within_trials,
    )
    clean = select_days(encoding_sessions(collection), days_per_stage)
    used = {sid for args in cells.values() for ids in args.session_ids for sid in ids}
    clean = SessionCollection(
        [s for s in clean if s.session_id in used],
        name=clean.name,
        analysis=clean.analysis,
        source=clean.source,
    )
    sessions = {s.session_id: s for s in clean}
    onsets = _onsets(clean)
    rates = [s.sampling_rate for s in clean if np.isfinite(s.sampling_rate)]
    rate = float(np.median(rates))

    # ------------------------------------------------------------------ fits
    fitted = {}
    with Steps(progress, "representation", len(cells)) as steps, quiet():
        for (pop, st), args in cells.items():
            fitted[(pop, st)] = clone(model).fit(args.neural, args.behavior, groups=args.groups)
            steps.advance(f"{pop}/{st}")
    r2 = {key: _heldout_r2(m) for key, m in fitted.items()}
    finite = [k for k in cells if np.isfinite(r2[k])]
    ref_key = max(finite, key=lambda k: r2[k]) if finite else next(iter(cells))
    ref_args = cells[ref_key]
    first = sessions[ref_args.session_ids[0][0]]
    try:
        lever = ref_args.behavior_names.index(first.behavior_names[lever_index(first)])
    except ValueError:  # no lever feature: orient by the largest loading
        lever = None
    ref_axes = fitted[ref_key].shared_axes_ * _orientation(fitted[ref_key].shared_axes_, lever)
    signs = {}
    for key, m in fitted.items():
        k = min(m.shared_axes_.shape[1], ref_axes.shape[1])
        sg = np.ones(m.shared_axes_.shape[1])
        sg[:k] = np.where(np.sum(m.shared_axes_[:, :k] * ref_axes[:, :k], axis=0) < 0, -1.0, 1.0)
        signs[key] = sg

    # ------------------------------------------------------------------ tables
    load_rows, traj_rows, cell_rows = [], [], []
    rel = None
    mean_traj = {}
    subj_traj = {}
    for (pop, st), args in cells.items():
        m = fitted[(pop, st)]
        axes = m.shared_axes_ * signs[(pop, st)]
        for d in range(axes.shape[1]):
            for f, name in enumerate(args.behavior_names):
                load_rows.append(
                    {
                        "population": pop,
                        "stage": st,
                        "dimension": d + 1,
                        "feature": name,
                        "loading": float(axes[f, d]),
                    }
                )
        per_subject = {}
        for i, subj in enumerate(args.subjects):
            windows = []
            for sid in args.session_ids[i]:
                s = sessions[sid]
                onset, usable = onsets[sid]
                if not usable.any():
                    continue
                z, rows = m.transform(s.neural, subject=i, groups=s.groups(), return_rows=True)
                full = np.full((s.n_samples, z.shape[1]), np.nan)
                full[rows] = z * signs[(pop, st)]
                tid = s.trial_ids()
                if within_trials:
                    full[tid < 0] = np.nan
                aligned, rel = align_to_events(
                    full, s.timestamps, onset[usable], window=window, sampling_rate=rate
                )
                start = s.trials["start_time"].to_numpy(float)[usable]
                stop = s.trials["stop_time"].to_numpy(float)[usable]
                absolute = onset[usable][:, None] + rel[None, :]
                aligned[(absolute < start[:, None]) | (absolute >= stop[:, None])] = np.nan
                windows.append(aligned)
            if not windows:
                continue
            w = np.concatenate(windows)  # (trials, time, k)
            traj = nanmean_rows(w, axis=0)  # (time, k)
            n_tr = int(np.sum(np.any(np.isfinite(w[..., 0]), axis=1)))
            per_subject[subj] = traj
            for d in range(traj.shape[1]):
                for t_s, v in zip(rel, traj[:, d], strict=True):
                    traj_rows.append(
                        {
                            "population": pop,
                            "stage": st,
                            "subject": subj,
                            "dimension": d + 1,
                            "time_s": float(t_s),
                            "latent": float(v),
                            "n_trials": n_tr,
                        }
                    )
        subj_traj[(pop, st)] = per_subject
        if per_subject:
            stack = np.stack([v[:, 0] for v in per_subject.values()])
            mean_traj[(pop, st)] = nanmean_rows(stack, axis=0)
            peak_t, peak_v = _peak(rel, mean_traj[(pop, st)])
            subject_peaks = [_peak(rel, v[:, 0])[0] for v in per_subject.values()]
        else:
            peak_t, peak_v, subject_peaks = math.nan, math.nan, []
        cell_rows.append(
            {
                "population": pop,
                "stage": st,
                "n_subjects": len(args),
                "alpha": float(m.alpha_),
                "heldout_r2": r2[(pop, st)],
                "peak_time_s": peak_t,
                "peak_latent": peak_v,
                "median_subject_peak_s": nanmedian(subject_peaks),
                "subject_peaks_s": subject_peaks,
            }
        )
    table = pd.DataFrame(load_rows, columns=_LOAD_COLUMNS)
    trajectories = pd.DataFrame(traj_rows, columns=_TRAJ_COLUMNS)
    cells_table = pd.DataFrame(cell_rows).drop(columns="subject_peaks_s")

    # ------------------------------------------------------------------ summary
    pops = list(dict.fromkeys(p for p, _ in cells))
    angles = {}
    for p in pops:
        stg = ordered_stages(s for q, s in cells if q == p)
        if len(stg) < 2:
            continue
        a, b = fitted[(p, stg[0])].shared_axes_, fitted[(p, stg[-1])].shared_axes_
        ang = _principal_angles_deg(a, b)
        angles[p] = {"stages": [stg[0], stg[-1]], "angles_deg": ang, "max_angle_deg": max(ang)}
    cells_summary = {
        f"{r['population']}/{r['stage']}": {
            "heldout_r2": fnum(r["heldout_r2"]),
            "peak_time_s": fnum(r["peak_time_s"]),
            "peak_latent": fnum(r["peak_latent"]),
            "median_subject_peak_s": fnum(r["median_subject_peak_s"]),
            "subject_peaks_s": [fnum(x) for x in r["subject_peaks_s"]],
            "n_subjects": int(r["n_subjects"]),
        }
        for r in cell_rows
    }
    ref_name = "/".join(ref_key)
    summary = {
        "reference": ref_name,
        "cells": cells_summary,
        "angles": angles,
        "window_s": [float(window[0]), float(window[1])],
    }

    # ------------------------------------------------------------------ figure
    keys = list(cells)
    fig, ax = new_figure(2, len(keys), width=3.0, height=2.9)
    names = list(ref_args.behavior_names)
    for c, key in enumerate(keys):
        top, bottom = ax[0, c], ax[1, c]
        sub = table[(table["population"] == key[0]) & (table["stage"] == key[1])]
        k = int(sub["dimension"].max())
        if k == 1:
            vals = sub.set_index("feature").loc[names, "loading"].to_numpy()
            top.barh(range(len(names)), vals, color=np.where(vals >= 0, "#e6550d", "#3182bd"))
            top.axvline(0, color="0.5", lw=0.5)
            top.set_xlabel("loading (dim. 1)")
        else:
            grid = sub.pivot(index="feature", columns="dimension", values="loading").loc[names]
            lim = float(np.nanmax(np.abs(grid.to_numpy()))) or 1.0
            top.imshow(grid.to_numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
            top.set_xticks(range(k), [str(d) for d in range(1, k + 1)])
            top.set_xlabel("shared dimension")
        top.set_yticks(range(len(names)), names if c == 0 else [""] * len(names), fontsize=7)
        if k == 1:
            top.invert_yaxis()
        top.set_title(f"{key[0]} / {key[1]}" + (" (ref.)" if key == ref_key else ""), fontsize=9)
        for subj, v in subj_traj.get(key, {}).items():
            bottom.plot(rel, v[:, 0], lw=0.8, alpha=0.7, label=subj)
        if key in mean_traj:
            bottom.plot(rel, mean_traj[key], color="k", lw=2, label="mean")
        bottom.axvline(0, color="0.4", lw=0.8, ls="--")
        bottom.axhline(0, color="0.6", lw=0.5)
        bottom.set_xlabel("time from movement onset (s)")
        if c == 0:
            bottom.set_ylabel("shared latent 1 (from neural)")
            bottom.legend(frameon=False, fontsize=6)
    lim = float(np.nanmax(np.abs(table["loading"].to_numpy()))) if len(table) else 0.0
    curves = [v[:, 0] for per in subj_traj.values() for v in per.values()]
    curves = np.concatenate(curves) if curves else np.zeros(0)
    curves = curves[np.isfinite(curves)]
    for c in range(len(keys)):
        if lim > 0 and not ax[0, c].images:
            ax[0, c].set_xlim(-1.1 * lim, 1.1 * lim)
        if curves.size:
            pad = 0.05 * (curves.max() - curves.min() or 1.0)
            ax[1, c].set_ylim(curves.min() - pad, curves.max() + pad)
    fig.suptitle(
        "Shared axes (top: loadings, pooled-standardised, signs aligned to the reference "
        "cell) and latent 1 around movement onset (bottom: one line per mouse)",
        fontsize=9,
    )

    # ------------------------------------------------------------------ description
    n_mice = int(cells_table["n_subjects"].max())
    cell_txt = "; ".join(
        f"{k}: held-out R^2 = {v['heldout_r2']:.3f}, mean latent peaks at "
        f"{v['peak_time_s']:+.2f} s (median over mice {v['median_subject_peak_s']:+.2f} s, "
        f"{v['n_subjects']} mice)"
        for k, v in cells_summary.items()
    )
    angle_txt = "; ".join(
        f"{p} {a['stages'][0]} vs {a['stages'][1]}: {a['max_angle_deg']:.1f} deg"
        for p, a in angles.items()
    )
    description = (
        "ShaReD was fitted per population and learning stage with the mice as subjects "
        f"(up to {n_mice} mice; {days_per_stage or 'all'} day(s) per stage; stimulation and "
        "silencing trials removed), as for the encoding analysis. The loadings of the "
        "shared axes on the behaviour features are in pooled-standardised units; axis "
        f"signs were aligned to the reference cell {ref_name} (best held-out R^2, oriented "
        "so that its lever loading is positive). The first shared latent was predicted "
        "from each mouse's neural activity and averaged over its trials around movement "
        f"onset ({window[0]:+.1f} to {window[1]:+.1f} s; stimulation and silencing trials "
        "excluded): one trajectory per mouse, the mouse being the unit of inference "
        "(cells are summarised over mice; no test is made here). "
        + cell_txt
        + ". Largest principal angle between the first and last stage's shared axes: "
        + (angle_txt if angle_txt else "not computable (one stage)")
        + "."
    )
    return AnalysisResult(
        name="shared_representation",
        table=table,
        figure=fig,
        summary=summary,
        description=description,
        tables={"trajectories": trajectories, "cells": cells_table},
    )
