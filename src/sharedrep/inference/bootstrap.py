"""Subject bootstrap of a ShaReD fit: variability of held-out scores and axis loadings.

:func:`bootstrap_subjects` resamples subjects (animals, the independent units; neurons and
time samples are never resampled) with replacement, refits the complete pipeline on each
draw, Procrustes-aligns the axes to the full-data axes in the reference fit's metric and
summarises the loadings and scores with percentile intervals. Every draw uses its own child
of one :class:`numpy.random.SeedSequence`, so results never depend on ``n_jobs``. It imports
:mod:`sharedrep.utils` and :mod:`sharedrep.inference._resampling`.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.linalg as sla
from joblib import delayed
from sklearn.base import clone

from sharedrep.inference._resampling import (
    _check_count,
    _check_model,
    _check_n_jobs,
    _for_subjects,
    _heldout_r2,
    _progress_map,
    _quiet_fit,
    _refit_jobs,
    _refits,
    _spawn_rngs,
    _validate_data,
)

__all__ = [
    "BootstrapResult",
    "bootstrap_subjects",
]


# --------------------------------------------------------------------------- bootstrap
@dataclass
class BootstrapResult:
    """Result of :func:`bootstrap_subjects`.

    Attributes
    ----------
    axes : ndarray (p, k)
        Shared axes of the full-data fit (pooled-standardised units of that fit).
    axes_boot : ndarray (n_boot, p, k)
        Axes of each bootstrap fit, expressed in the full fit's standardised units and
        Procrustes-aligned (rotation/reflection) to ``axes`` in the metric space.
    axes_ci : ndarray (2, p, k)
        Percentile interval (lower, upper) of every loading.
    score : ndarray (k,)
        Held-out R^2 per dimension of the full-data fit.
    score_boot : ndarray (n_boot, k)
    score_ci : ndarray (2, k)
    subjects : ndarray of int (n_boot, P)
        Subjects drawn in each bootstrap sample (indices into the data; ``P = S``, or the
        number of subjects of positive ``subject_weights``).
    ci : float
        Confidence level.
    model : ShaReD
        The full-data fit.
    """

    axes: np.ndarray
    axes_boot: np.ndarray
    axes_ci: np.ndarray
    score: np.ndarray
    score_boot: np.ndarray
    score_ci: np.ndarray
    subjects: np.ndarray
    ci: float
    model: object = field(repr=False, default=None)

    def summary(self, feature_names=None) -> pd.DataFrame:
        """Tidy table: one row per (dimension, quantity) with estimate and interval."""
        p, k = self.axes.shape
        names = feature_names if feature_names is not None else [f"feature_{i}" for i in range(p)]
        rows = []
        for j in range(k):
            rows.append(
                dict(
                    dimension=j,
                    quantity="r2_heldout",
                    estimate=self.score[j],
                    lower=self.score_ci[0, j],
                    upper=self.score_ci[1, j],
                )
            )
            for i in range(p):
                rows.append(
                    dict(
                        dimension=j,
                        quantity=f"loading:{names[i]}",
                        estimate=self.axes[i, j],
                        lower=self.axes_ci[0, i, j],
                        upper=self.axes_ci[1, i, j],
                    )
                )
        return pd.DataFrame(rows)


def _sqrtm_psd(C: np.ndarray) -> np.ndarray:
    lam, Q = np.linalg.eigh(0.5 * (C + C.T))
    return (Q * np.sqrt(np.clip(lam, 0.0, None))) @ Q.T


def _align_axes(V_b, scale_b, V_ref, scale_ref, sqrt_metric_ref) -> np.ndarray:
    """Express ``V_b`` in the reference fit's units and Procrustes-rotate it onto ``V_ref``.

    A latent ``z = ((Y - m) / scale_b) V_b = ((Y - m) / scale_ref) (scale_ref / scale_b V_b)``.
    The rotation ``R`` (orthogonal, reflections allowed) minimises
    ``|| Cm^{1/2} V_b R - Cm^{1/2} V_ref ||_F`` (metric space of the reference fit).
    """
    V_b = (scale_ref / scale_b)[:, None] * V_b
    R, _ = sla.orthogonal_procrustes(sqrt_metric_ref @ V_b, sqrt_metric_ref @ V_ref)
    return V_b @ R


def _weighted_subjects(model, n_subjects: int) -> np.ndarray:
    """Subjects the bootstrap resamples: those of positive ``subject_weights`` (all
    without weights). A subject of weight 0 takes no part in the shared model, so it is
    not part of the population of animals whose variability is estimated; a draw of
    zero-weight subjects alone would have no model at all."""
    weights = model.get_params().get("subject_weights")
    if weights is None:
        return np.arange(n_subjects)
    weights = np.asarray(weights, dtype=float)
    if weights.shape != (n_subjects,):
        raise ValueError(
            f"subject_weights must be {n_subjects} numbers (one per subject of the data); "
            f"got {model.get_params()['subject_weights']!r}"
        )
    positive = np.flatnonzero(weights > 0)
    if positive.size < 2:
        raise ValueError(
            "bootstrap_subjects resamples the subjects of positive subject_weights (a "
            "subject of weight 0 takes no part in the shared model): need at least 2, got "
            f"{positive.size} (subject_weights={weights.tolist()})"
        )
    return positive


def _boot_fit(template, Xs, Ys, gs, idx, k, has_cv, ref):
    m = _for_subjects(template, idx, len(Xs), n_shared=k)
    _quiet_fit(m, [Xs[i] for i in idx], [Ys[i] for i in idx], [gs[i] for i in idx])
    V = _align_axes(m.shared_axes_, m.behavior_scale_, *ref)
    score = _heldout_r2(m, k) if has_cv else np.full(k, np.nan)
    return V, score


def bootstrap_subjects(
    model,
    neural,
    behavior,
    groups=None,
    n_boot: int = 200,
    ci: float = 0.95,
    random_state=None,
    n_jobs: int = 1,
    *,
    progress: bool = True,
) -> BootstrapResult:
    """Bootstrap over subjects: confidence intervals for held-out scores and axis loadings.

    **What is resampled.** Whole subjects, with replacement (``S`` draws from the ``S``
    subjects); each subject keeps all its samples, units and trials. With
    ``subject_weights``, only the subjects of positive weight are resampled (``P`` draws
    from those ``P`` subjects, each keeping its weight): a subject of weight 0 takes no
    part in the shared model, so it is not part of the population whose variability is
    estimated (and a draw of zero-weight subjects alone would define no model); fewer than
    2 subjects of positive weight is an error. Every bootstrap
    sample is refitted with the complete pipeline (cross-validated alpha when
    ``alpha=None``); ``n_shared`` is fixed to the full-data fit's ``k`` so that the
    dimensions can be matched. Each subject's data pass and fold solves depend on that
    subject alone: they are computed once and reused by every refit that draws it
    (:func:`sharedrep.core.backends.reuse_statistics`; equal to independent refits to
    rounding), and the refits then run one after another in this process. A subject
    drawn twice is fitted twice with the same folds, so no held-out trial is ever in a
    training set.

    **Alignment.** Shared axes are identified only up to rotation within the shared
    subspace (and sign). Each bootstrap fit's axes are first expressed in the full fit's
    pooled-standardised units, then rotated onto the full-data axes with
    :func:`scipy.linalg.orthogonal_procrustes` in the metric space of the full fit
    (``C_m^{1/2} V``), before percentiles are taken.

    **Unit of inference.** Subjects: the intervals describe variability across animals
    drawn from the same population (neurons and samples are nested in subjects). With few
    subjects (< 8) percentile intervals are too narrow; treat them as descriptive.

    Parameters
    ----------
    model : ShaReD
        Template (cloned; not modified).
    neural, behavior, groups
        As in :meth:`ShaReD.fit`. At least 2 subjects (of positive ``subject_weights``).
    n_boot : int, default 200
    ci : float in (0, 1), default 0.95
        Confidence level of the percentile intervals.
    random_state, n_jobs, progress
        As in :func:`permutation_test`. ``n_jobs`` parallelises the refits only where
        they cannot reuse the subjects' statistics (dask or torch backend,
        ``low_memory="strict"``); otherwise they run in this process.

    Returns
    -------
    BootstrapResult
        Held-out scores are ``NaN`` when the model has ``cv=None``.
    """
    _check_model(model)
    n_boot = _check_count(n_boot, "n_boot", 2)
    n_jobs = _check_n_jobs(n_jobs, model)
    if not (isinstance(ci, numbers.Real) and 0.0 < ci < 1.0):
        raise ValueError(f"ci must be a number in (0, 1); got {ci!r}")
    Xs, Ys, gs = _validate_data(model, neural, behavior, groups)
    S = len(Xs)
    if S < 2:
        raise ValueError(f"bootstrap_subjects resamples subjects: need at least 2, got {S}")
    population = _weighted_subjects(model, S)
    P = population.size
    if P < 5:
        warnings.warn(
            f"only {P} subjects: subject-bootstrap intervals are unreliable with so few",
            UserWarning,
            stacklevel=2,
        )
    has_cv = model.get_params().get("cv") is not None
    rngs = _spawn_rngs(random_state, n_boot)
    draws = np.array([population[rng.integers(0, P, size=P)] for rng in rngs], dtype=np.int64)
    with _refits(model) as cache:  # each subject's data pass and fold solves once
        full = clone(model).fit(Xs, Ys, groups=None if all(g is None for g in gs) else gs)
        k = int(full.n_shared_)
        ref = (full.shared_axes_, full.behavior_scale_, _sqrtm_psd(full.metric_))
        tasks = [
            delayed(_boot_fit)(model, Xs, Ys, gs, draws[b], k, has_cv, ref) for b in range(n_boot)
        ]
        results = _progress_map(tasks, _refit_jobs(cache, n_jobs), progress, "bootstrap")
    score = _heldout_r2(full, k) if has_cv else np.full(k, np.nan)
    axes_boot = np.stack([r[0] for r in results])
    score_boot = np.stack([r[1] for r in results])
    q = [(1.0 - ci) / 2.0, (1.0 + ci) / 2.0]
    axes_ci = np.quantile(axes_boot, q, axis=0)
    if has_cv:
        score_ci = np.nanquantile(score_boot, q, axis=0)
    else:
        score_ci = np.full((2, k), np.nan)
    return BootstrapResult(
        axes=full.shared_axes_.copy(),
        axes_boot=axes_boot,
        axes_ci=axes_ci,
        score=score,
        score_boot=score_boot,
        score_ci=score_ci,
        subjects=draws,
        ci=float(ci),
        model=full,
    )


# --------------------------------------------------------------------------- group comparison
