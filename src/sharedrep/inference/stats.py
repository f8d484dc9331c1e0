"""Statistics for ShaReD fits: permutation nulls, subject bootstrap, group comparisons.

Unit of inference
-----------------
Subjects (animals) are the independent units throughout this module. Neurons are nested
in subjects and are never treated as independent samples here (see
:mod:`sharedrep.inference.encoding` for the unit-level analysis, which is explicitly *within* a
subject). Time samples inside a subject are autocorrelated; no function here resamples
individual samples.

* :func:`permutation_test` -- is each shared dimension predicted from neural activity
  better than chance? Null: each subject's behaviour is circularly shifted against its
  own neural activity (whole trials when trial ids are given) and the *complete*
  pipeline, cross-validated selection included, is refitted.
* :func:`bootstrap_subjects` -- how variable are the held-out scores and the axis
  loadings across animals? Subjects are resampled with replacement and the axes are
  Procrustes-aligned to the full-data axes before summarising.
* :func:`compare_groups` -- do two populations of subjects (two brain regions, novices vs
  experts) differ in held-out score or in their shared subspace? Null: the subject labels
  are permuted between the groups.

All Monte-Carlo functions are reproducible: ``random_state`` seeds a
:class:`numpy.random.SeedSequence`; circular shifts are drawn up front as distinct
combinations (:func:`draw_shifts`), bootstrap draws and random relabellings from one
spawned child seed each, so results never depend on ``n_jobs``.
"""

from __future__ import annotations

import itertools
import math
import numbers
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.linalg as sla
from joblib import Parallel, delayed
from sklearn.base import clone

from sharedrep.core.design import as_lags, segments
from sharedrep.utils.validation import check_subject_arrays

__all__ = [
    "PermutationResult",
    "permutation_test",
    "BootstrapResult",
    "bootstrap_subjects",
    "GroupComparison",
    "compare_groups",
    "circular_shift_candidates",
    "default_min_shift",
    "max_statistic_p_values",
    "draw_shifts",
    "subject_shift_candidates",
]


# --------------------------------------------------------------------------- helpers
def _seed_sequence(random_state) -> np.random.SeedSequence:
    """A SeedSequence from an int, None, a SeedSequence or a Generator."""
    if isinstance(random_state, np.random.SeedSequence):
        return random_state
    if random_state is None:
        return np.random.SeedSequence()
    if isinstance(random_state, np.random.Generator):
        return np.random.SeedSequence(int(random_state.integers(2**63)))
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be a non-negative int; got {random_state}")
        return np.random.SeedSequence(int(random_state))
    raise TypeError(
        "random_state must be None, a non-negative int, a numpy SeedSequence or Generator; "
        f"got {random_state!r}"
    )


def _spawn_rngs(random_state, n: int) -> list[np.random.Generator]:
    """``n`` independent generators (one per permutation / draw)."""
    return [np.random.default_rng(c) for c in _seed_sequence(random_state).spawn(n)]


def _check_count(value, name: str, minimum: int = 1) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}")
    return int(value)


def _check_n_jobs(n_jobs, model=None) -> int:
    """Validated ``n_jobs``; 1 (with a warning) for a model whose fits run elsewhere.

    With ``backend="dask"`` (or ``"torch"``) each refit already runs on the cluster (or
    the device); joblib worker processes would each start their own cluster (or device
    context), which fails or competes for it.
    """
    if not isinstance(n_jobs, numbers.Integral) or isinstance(n_jobs, bool) or n_jobs == 0:
        raise ValueError(f"n_jobs must be a non-zero int (-1 = all cores); got {n_jobs!r}")
    backend = None if model is None else model.get_params().get("backend", "numpy")
    if n_jobs != 1 and backend in ("dask", "torch"):
        where = "cluster" if backend == "dask" else "torch device"
        warnings.warn(
            f"n_jobs={n_jobs} ignored: with backend={backend!r} every refit runs on the "
            f"{where} already; the refits run one after the other (n_jobs=1)",
            UserWarning,
            stacklevel=3,
        )
        return 1
    return int(n_jobs)


def _check_model(model, name: str = "model"):
    """The model must be a scikit-learn style ShaReD template (get_params + fit)."""
    if not (hasattr(model, "get_params") and hasattr(model, "fit")):
        raise TypeError(
            f"{name} must be a ShaReD estimator (used as a template and cloned); "
            f"got {type(model).__name__}"
        )
    return model


def _require_cv(model, name: str = "model", what: str = "this test"):
    if model.get_params().get("cv") is None:
        raise ValueError(
            f"{name} has cv=None: {what} needs the cross-validated held-out score "
            "(cv_results_['r2_dim']); give the model cv folds, e.g. ShaReD(..., cv=5)"
        )


def _for_subjects(template, idx, n_subjects: int, **params):
    """An unfitted clone of ``template`` for the subjects ``idx`` (in that order) of data
    holding ``n_subjects``.

    ``subject_weights`` follow their subjects (a subject drawn twice keeps its weight
    twice); ``params`` are set too, and the private components are skipped.
    """
    m = clone(template)
    given = m.get_params()
    if "private" in given:
        params.setdefault("private", False)
    weights = given.get("subject_weights")
    if weights is not None:
        weights = np.asarray(weights, dtype=float)
        if weights.shape != (n_subjects,):
            raise ValueError(
                f"subject_weights must be {n_subjects} numbers (one per subject of the data); "
                f"got {given['subject_weights']!r}"
            )
        weights = weights[np.asarray(idx, dtype=int)]
        if not weights.sum() > 0:
            raise ValueError(
                f"subjects {[int(i) for i in idx]} all have subject_weights 0: a model of "
                "them alone is undefined"
            )
        params["subject_weights"] = weights
    return m.set_params(**params)


def _quiet_fit(model, Xs, Ys, gs):
    """Fit while silencing warnings that are expected on resampled / null data."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="no shared dimension", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*are constant", category=UserWarning)
        return model.fit(Xs, Ys, groups=None if all(g is None for g in gs) else gs)


def _heldout_r2(fitted, k: int) -> np.ndarray:
    """Pooled held-out R^2 of the first ``k`` latents at the selected alpha."""
    cvr = fitted.cv_results_
    i_alpha = cvr["best_index"][0]
    return np.asarray(cvr["r2_dim"][i_alpha, :k], dtype=float)


def _progress_map(tasks: list, n_jobs: int, progress: bool, description: str) -> list:
    """Run ``delayed`` tasks (in order) with joblib and an optional rich progress bar."""
    if n_jobs == 1:
        results_iter = (fn(*args, **kwargs) for fn, args, kwargs in tasks)
    else:
        results_iter = Parallel(n_jobs=n_jobs, return_as="generator")(tasks)
    if not progress:
        return list(results_iter)
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    out = []
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=len(tasks))
        for res in results_iter:
            out.append(res)
            bar.advance(task)
    return out


def _check_groups_length(T: int, groups) -> None:
    if groups is not None and np.shape(groups) != (T,):
        raise ValueError(
            f"groups must have shape ({T},) (one trial id per sample); got {np.shape(groups)}"
        )


def default_min_shift(n_samples: int, groups=None, lags=0) -> int:
    """Default minimum circular shift of a subject, in samples.

    ``max(ceil(0.1 * T), longest trial, max|lag| + 1)``: the shifted behaviour is never
    paired with (a lag window of) its own trial, nor with its close temporal neighbours.
    """
    T = int(n_samples)
    _check_groups_length(T, groups)
    out = max(1, math.ceil(0.1 * T), int(np.max(np.abs(as_lags(lags)))) + 1)
    if groups is not None:
        seg = segments(T, groups)
        out = max(out, int(np.bincount(seg).max()))
    return out


def circular_shift_candidates(
    n_samples: int, groups=None, min_shift: int | None = None, lags=0, whole_trials: bool = True
):
    """Allowed circular shifts (offsets, in samples) of one subject's behaviour.

    A shift ``c`` pairs neural sample ``t`` with behaviour sample ``(t + c) mod T``
    (``numpy.roll(Y, -c, axis=0)``). Without trial ids every ``c`` in
    ``[min_shift, T - min_shift]`` is allowed. With trial ids only whole-trial shifts are
    allowed: ``c`` is the start of a contiguous trial segment, so the behaviour is
    rotated by whole trials (the order of trials is rotated) and every neural trial
    starts together with a behaviour trial (exactly aligned when trials have equal
    lengths).

    Parameters
    ----------
    n_samples : int
    groups : array-like (T,), optional
        Trial ids.
    min_shift : int, optional
        Minimum distance (both ways round the circle); default :func:`default_min_shift`.
    lags : int or sequence
        Lags of the model (only used for the default ``min_shift``).
    whole_trials : bool, default True
        With trial ids, allow only trial starts; ``False`` allows every sample (the
        default ``min_shift`` still covers the longest trial).

    Returns
    -------
    offsets : ndarray of int

    Raises
    ------
    ValueError
        When no shift satisfies the constraints.
    """
    T = int(n_samples)
    _check_groups_length(T, groups)
    if min_shift is None:
        min_shift = default_min_shift(T, groups, lags)
    if groups is None or not whole_trials:
        cand = np.arange(min_shift, T - min_shift + 1)
    else:
        seg = segments(T, groups)
        starts = np.flatnonzero(np.diff(seg) != 0) + 1
        cand = starts[(starts >= min_shift) & (starts <= T - min_shift)]
    if cand.size == 0:
        where = (
            f" at trial boundaries ({int(seg[-1]) + 1} trials)"
            if groups is not None and whole_trials
            else ""
        )
        raise ValueError(
            f"no circular shift of at least min_shift={min_shift} samples is possible{where} "
            f"with T={T} samples; lower min_shift or give more data"
        )
    return cand.astype(np.int64)


def subject_shift_candidates(Ts, gs, min_shift, lags, whole_trials):
    """Minimum shift and admissible circular shifts of every subject.

    Returns ``(shifts_used, candidates)``: per subject the minimum shift in samples
    (``min_shift`` or :func:`default_min_shift`) and the array of admissible shifts
    (:func:`circular_shift_candidates`); errors name the subject.
    """
    shifts_used = [
        min_shift if min_shift is not None else default_min_shift(T, g, lags)
        for T, g in zip(Ts, gs, strict=True)
    ]
    cands = []
    for s, (T, g) in enumerate(zip(Ts, gs, strict=True)):
        try:
            cands.append(circular_shift_candidates(T, g, shifts_used[s], lags, whole_trials))
        except ValueError as exc:
            raise ValueError(f"subject {s}: {exc}") from None
    return shifts_used, cands


def _check_min_shift(min_shift, n_samples: list[int]):
    if min_shift is None:
        return None
    if not isinstance(min_shift, numbers.Integral) or isinstance(min_shift, bool):
        raise TypeError(f"min_shift must be an int (samples) or None; got {min_shift!r}")
    for s, T in enumerate(n_samples):
        if not 1 <= min_shift <= T // 2:
            raise ValueError(
                f"subject {s}: min_shift={min_shift} must be between 1 and T/2 = {T // 2} "
                f"(the subject has T={T} samples)"
            )
    return int(min_shift)


def draw_shifts(candidates: list, n_perm: int, random_state=None) -> tuple[np.ndarray, bool]:
    """Distinct joint circular shifts of ``S`` subjects.

    Parameters
    ----------
    candidates : list (S) of int arrays
        Allowed offsets per subject (:func:`circular_shift_candidates`).
    n_perm : int
    random_state : int, SeedSequence, Generator or None

    Returns
    -------
    shifts : ndarray of int (n, S)
        Every row is a different combination of offsets. When there are at most
        ``n_perm`` combinations, all of them are returned (``n`` may be smaller than
        ``n_perm``: an exhaustive test); otherwise ``n_perm`` combinations drawn without
        replacement. Drawing *with* replacement from few combinations would make the
        Monte-Carlo p-value ``(1 + #) / (1 + n_perm)`` too small (e.g. 17 possible shifts
        but p = 0.01).
    exhaustive : bool
    """
    sizes = [int(np.size(c)) for c in candidates]
    total = math.prod(sizes)
    if total <= n_perm:
        combos = np.array(list(itertools.product(*candidates)), dtype=np.int64)
        return combos.reshape(total, len(candidates)), True
    rng = np.random.default_rng(_seed_sequence(random_state))
    if total < 2**62:
        idx = rng.choice(total, size=n_perm, replace=False)
        out = np.empty((n_perm, len(candidates)), dtype=np.int64)
        for s in range(len(candidates) - 1, -1, -1):
            out[:, s] = np.asarray(candidates[s])[idx % sizes[s]]
            idx //= sizes[s]
        return out, False
    # astronomically many combinations: independent draws, duplicates rejected
    seen, rows = set(), []
    while len(rows) < n_perm:
        row = tuple(int(rng.choice(c)) for c in candidates)
        if row not in seen:
            seen.add(row)
            rows.append(row)
    return np.array(rows, dtype=np.int64), False


def max_statistic_p_values(observed: np.ndarray, null: np.ndarray) -> np.ndarray:
    """Family-wise error corrected p-values by the single-step max-statistic method.

    ``p_fwer[j] = (1 + #{b : max_j' null[b, j'] >= observed[j]}) / (1 + n_perm)``:
    comparing every dimension with the null distribution of the *largest* statistic over
    all dimensions controls the family-wise error rate in the strong sense under subset
    pivotality (Westfall & Young 1993), whatever the dependence between dimensions.
    """
    observed = np.asarray(observed, dtype=float)
    null = np.asarray(null, dtype=float)
    null_max = np.max(np.where(np.isfinite(null), null, -np.inf), axis=1)
    count = np.sum(null_max[:, None] >= observed[None, :], axis=0)
    return (1.0 + count) / (1.0 + null.shape[0])


def _p_values(observed: np.ndarray, null: np.ndarray) -> np.ndarray:
    count = np.sum(np.where(np.isfinite(null), null, -np.inf) >= observed[None, :], axis=0)
    return (1.0 + count) / (1.0 + null.shape[0])


def _validate_data(model, neural, behavior, groups):
    nan_policy = model.get_params().get("nan_policy", "raise")
    return check_subject_arrays(neural, behavior, groups, nan_policy=nan_policy)


# --------------------------------------------------------------------------- permutation
@dataclass
class PermutationResult:
    """Result of :func:`permutation_test`.

    Attributes
    ----------
    observed : ndarray (k,)
        Pooled held-out R^2 of each shared latent (cross-validation at the selected alpha)
        on the real data. Dimension ``j`` is the ``j``-th *ordered* dimension
        (eigenvalue rank), not a fixed behavioural direction.
    null : ndarray (n_perm, k)
        The same statistic for every circularly shifted dataset.
    p_values : ndarray (k,)
        ``(1 + #{null[:, j] >= observed[j]}) / (1 + n_perm)``.
    p_values_fwer : ndarray (k,)
        Family-wise corrected over the ``k`` dimensions (max-statistic method, see
        :func:`max_statistic_p_values`).
    shifts : ndarray of int (n_perm, S)
        Offset of each subject's behaviour in each permutation
        (``numpy.roll(Y_s, -shift, axis=0)``).
    min_shift : list of int
        Minimum shift used for each subject.
    n_shared : int
        ``k`` of the observed fit.
    alpha : float
        Ridge parameter selected on the observed data.
    null_alpha : ndarray (n_perm,)
        Ridge parameter selected in each null refit.
    exhaustive : bool
        Whether every allowed combination of shifts was used.
    model : ShaReD
        The model fitted on the real data (a clone of the template).
    """

    observed: np.ndarray
    null: np.ndarray
    p_values: np.ndarray
    p_values_fwer: np.ndarray
    shifts: np.ndarray
    min_shift: list
    n_shared: int
    alpha: float
    null_alpha: np.ndarray
    exhaustive: bool = False
    model: object = field(repr=False, default=None)

    @property
    def n_perm(self) -> int:
        """int: Number of permutations."""
        return int(self.null.shape[0])

    def summary(self) -> pd.DataFrame:
        """One row per shared dimension: observed, null mean / 95th percentile, p-values."""
        return pd.DataFrame(
            {
                "dimension": np.arange(self.observed.size),
                "r2_heldout": self.observed,
                "null_mean": np.nanmean(self.null, axis=0),
                "null_q95": np.nanquantile(self.null, 0.95, axis=0),
                "p_value": self.p_values,
                "p_value_fwer": self.p_values_fwer,
            }
        )


def _shifted(Ys, offsets):
    return [np.roll(Y, -int(c), axis=0) for Y, c in zip(Ys, offsets, strict=True)]


def _null_fit(template, Xs, Ys, gs, offsets, k):
    """One null refit: behaviour circularly shifted, complete pipeline refitted."""
    m = _for_subjects(template, range(len(Xs)), len(Xs))
    _quiet_fit(m, Xs, _shifted(Ys, offsets), gs)
    return _heldout_r2(m, k), float(m.alpha_)


def permutation_test(
    model,
    neural,
    behavior,
    groups=None,
    n_perm: int = 200,
    min_shift: int | None = None,
    n_jobs: int = 1,
    random_state=None,
    *,
    whole_trials: bool = True,
    progress: bool = True,
) -> PermutationResult:
    """Permutation test of the shared dimensions by circular shifts.

    **What is resampled.** For each permutation, each subject's behaviour is circularly
    shifted against its own neural activity by its own offset, among the allowed offsets
    of :func:`circular_shift_candidates` (every permutation a different combination of
    offsets, drawn uniformly without replacement by :func:`draw_shifts`): at least
    ``min_shift`` samples away from the true alignment in both directions, and -- when
    trial ids are given -- only at trial starts, so whole trials are rotated (the order of
    trials is rotated). Neural activity, trial ids, and the within-subject temporal
    structure of both signals are kept; only their alignment is broken. The *complete*
    pipeline is refitted on each shifted dataset (``sklearn.base.clone(model)`` then
    ``fit``): standardisation, cross-validated selection of ``alpha`` (and of ``n_shared``
    when ``"auto"``), axes and encoders; private components are skipped in null refits
    (they do not enter the statistic).

    **Statistic.** The pooled held-out R^2 of each shared latent predicted from neural
    activity, from the model's own cross-validation at the selected alpha
    (``cv_results_["r2_dim"][best_alpha, :k]``); ``k`` is the number of dimensions of the
    observed fit. The statistic of dimension ``j > 0`` is that of the ``j``-th *ordered*
    dimension of each fit (by eigenvalue), so its p-value tests whether a ``j``-th
    dimension as well predicted arises when behaviour and neural activity are unrelated
    (a test against the global null, not conditional on the first ``j - 1`` dimensions).

    **Unit of inference.** Subjects jointly: the null is the pooled statistic with every
    subject's alignment broken. Neurons are not resampled.

    **p-values.** ``p = (1 + #{null >= observed}) / (1 + n_perm)`` (never 0; valid for a
    Monte-Carlo test). ``p_values_fwer`` correct for testing ``k`` dimensions with the
    max-statistic method: each observed value is compared with the null distribution of
    the maximum over dimensions.

    Circular shifts assume each signal is (approximately) stationary over the recording;
    strong slow drifts common to neural activity and behaviour are kept in the null,
    which makes the test conservative rather than liberal for them.

    Parameters
    ----------
    model : ShaReD
        Template (fitted or not; it is not modified). Needs ``cv`` folds.
    neural, behavior : lists of arrays (T_s, N_s) and (T_s, p)
    groups : list of arrays (T_s,) or None
        Trial ids (whole-trial shifts; folds hold out whole trials).
    n_perm : int, default 200
    min_shift : int or None
        Minimum circular shift in samples (same for all subjects); default per subject
        ``max(ceil(0.1 T_s), longest trial, max|lag| + 1)``.
    n_jobs : int, default 1
        Parallel jobs over permutations (joblib; -1 = all cores). Results do not depend
        on it.
    random_state : int, SeedSequence, Generator or None
        Seeds the shifts, which are all drawn up front (distinct combinations of the
        subjects' offsets, see :func:`draw_shifts`), so results do not depend on
        ``n_jobs``. When fewer than ``n_perm`` combinations exist, all are used (an
        exhaustive test; ``n_perm`` of the result is then smaller).
    whole_trials : bool, default True
        With trial ids, shift by whole trials only (see
        :func:`circular_shift_candidates`).
    progress : bool, default True
        Show a rich progress bar.

    Returns
    -------
    PermutationResult
    """
    _check_model(model)
    _require_cv(model, what="permutation_test")
    n_perm = _check_count(n_perm, "n_perm")
    n_jobs = _check_n_jobs(n_jobs, model)
    Xs, Ys, gs = _validate_data(model, neural, behavior, groups)
    Ts = [X.shape[0] for X in Xs]
    min_shift = _check_min_shift(min_shift, Ts)
    lags = model.get_params().get("lags", 0)
    shifts_used, cands = subject_shift_candidates(Ts, gs, min_shift, lags, whole_trials)

    observed_model = clone(model)
    observed_model.fit(Xs, Ys, groups=None if all(g is None for g in gs) else gs)
    k = int(observed_model.n_shared_)
    observed = _heldout_r2(observed_model, k)

    shifts, exhaustive = draw_shifts(cands, n_perm, random_state)
    n_perm = shifts.shape[0]
    tasks = [delayed(_null_fit)(model, Xs, Ys, gs, shifts[b], k) for b in range(n_perm)]
    results = _progress_map(tasks, n_jobs, progress, "permutations")
    null = np.array([r[0] for r in results], dtype=float).reshape(n_perm, k)
    null_alpha = np.array([r[1] for r in results], dtype=float)
    return PermutationResult(
        observed=observed,
        null=null,
        p_values=_p_values(observed, null),
        p_values_fwer=max_statistic_p_values(observed, null),
        shifts=shifts,
        min_shift=shifts_used,
        n_shared=k,
        alpha=float(observed_model.alpha_),
        null_alpha=null_alpha,
        exhaustive=exhaustive,
        model=observed_model,
    )


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
    subjects : ndarray of int (n_boot, S)
        Subjects drawn in each bootstrap sample.
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
    subjects); each subject keeps all its samples, units and trials. Every bootstrap
    sample is refitted with the complete pipeline (cross-validated alpha when
    ``alpha=None``); ``n_shared`` is fixed to the full-data fit's ``k`` so that the
    dimensions can be matched. A subject drawn twice is fitted twice with the same folds,
    so no held-out trial is ever in a training set.

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
        As in :meth:`ShaReD.fit`. At least 2 subjects.
    n_boot : int, default 200
    ci : float in (0, 1), default 0.95
        Confidence level of the percentile intervals.
    random_state, n_jobs, progress
        As in :func:`permutation_test`.

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
    if S < 5:
        warnings.warn(
            f"only {S} subjects: subject-bootstrap intervals are unreliable with so few",
            UserWarning,
            stacklevel=2,
        )
    has_cv = model.get_params().get("cv") is not None
    full = clone(model).fit(Xs, Ys, groups=None if all(g is None for g in gs) else gs)
    k = int(full.n_shared_)
    ref = (full.shared_axes_, full.behavior_scale_, _sqrtm_psd(full.metric_))
    score = _heldout_r2(full, k) if has_cv else np.full(k, np.nan)

    rngs = _spawn_rngs(random_state, n_boot)
    draws = np.array([rng.integers(0, S, size=S) for rng in rngs], dtype=np.int64)
    tasks = [
        delayed(_boot_fit)(model, Xs, Ys, gs, draws[b], k, has_cv, ref) for b in range(n_boot)
    ]
    results = _progress_map(tasks, n_jobs, progress, "bootstrap")
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
@dataclass
class GroupComparison:
    """Result of :func:`compare_groups`.

    Attributes
    ----------
    score_a, score_b : ndarray (k,)
        Held-out R^2 per shared dimension of each group's fit.
    difference : ndarray (k,)
        ``score_a - score_b``.
    null_difference : ndarray (n_perm, k)
    p_values : ndarray (k,)
        Two-sided: ``(1 + #{|null| >= |observed|}) / (1 + n_perm)`` (exact enumeration:
        ``#{|null| >= |observed|} / n_splits`` with the observed split included).
    difference_mean, p_value_mean : float
        The same for the mean over dimensions.
    angles : ndarray (k,)
        Principal angles (degrees, increasing) between the two groups' shared subspaces
        (group-level fits), in a common standardised behaviour space.
    similarity : float
        Mean squared cosine of those angles (1 = same subspace, 0 = orthogonal).
    null_similarity : ndarray (n_perm,)
        The same similarity between the relabelled pseudo-groups' fits.
    p_similarity : float
        One-sided: fraction of relabellings with a similarity as low as observed. Weak
        when groups are small (a pseudo-group that mixes 3 subjects of A with 1 of B finds
        A's subspace, like the real group): prefer ``p_subspace``.
    subspace_f : float
        PERMANOVA pseudo-F of the subject-level subspaces: every subject's own ``k``-dim
        subspace (single-subject fit), distances ``d_ij^2 = 1 - mean cos^2`` of their
        principal angles, between-group over within-group dispersion.
    null_subspace_f : ndarray (n_perm,)
    p_subspace : float
        One-sided: fraction of relabellings with a pseudo-F at least as large.
    n_perm : int
        Number of relabellings used.
    exact : bool
        Whether all distinct relabellings were enumerated.
    splits : ndarray of bool (n_perm, S_a + S_b)
        Pseudo-group A membership of each relabelling (subjects ordered A then B).
    """

    score_a: np.ndarray
    score_b: np.ndarray
    difference: np.ndarray
    null_difference: np.ndarray
    p_values: np.ndarray
    difference_mean: float
    p_value_mean: float
    angles: np.ndarray
    similarity: float
    null_similarity: np.ndarray
    p_similarity: float
    subspace_f: float
    null_subspace_f: np.ndarray
    p_subspace: float
    n_perm: int
    exact: bool
    splits: np.ndarray = field(repr=False, default=None)

    def summary(self) -> pd.DataFrame:
        """One row per dimension plus a ``"mean"`` row."""
        df = pd.DataFrame(
            {
                "dimension": [str(j) for j in range(self.difference.size)] + ["mean"],
                "score_a": np.r_[self.score_a, np.mean(self.score_a)],
                "score_b": np.r_[self.score_b, np.mean(self.score_b)],
                "difference": np.r_[self.difference, self.difference_mean],
                "p_value": np.r_[self.p_values, self.p_value_mean],
            }
        )
        df.attrs.update(
            similarity=self.similarity,
            p_similarity=self.p_similarity,
            angles=self.angles,
            subspace_f=self.subspace_f,
            p_subspace=self.p_subspace,
        )
        return df


def _unpack_data(data, name: str):
    if isinstance(data, dict):
        try:
            return data["neural"], data["behavior"], data.get("groups")
        except KeyError as exc:
            raise ValueError(f"{name} dict needs keys 'neural' and 'behavior'") from exc
    if hasattr(data, "neural") and hasattr(data, "behavior"):
        return data.neural, data.behavior, getattr(data, "groups", None)
    if isinstance(data, tuple | list) and len(data) in (2, 3):
        return tuple(data) + (None,) * (3 - len(data))
    raise TypeError(
        f"{name} must be a tuple (neural, behavior[, groups]), a dict with those keys or an "
        f"object with .neural/.behavior (e.g. SimulatedData); got {type(data).__name__}"
    )


def _common_scale(Ys) -> np.ndarray:
    """Mean over subjects of each behaviour feature's variance, as a std (p,).

    Samples with a non-finite feature (kept only with ``nan_policy="omit"``, and then
    dropped by the fits) are left out.
    """
    rows = [np.all(np.isfinite(Y), axis=1) for Y in Ys]
    var = np.mean([np.var(Y[ok], axis=0) for Y, ok in zip(Ys, rows, strict=True)], axis=0)
    sd = np.sqrt(var)
    sd[sd <= 0] = 1.0
    return sd


def _subspace(fitted, k, common_scale) -> np.ndarray:
    """Shared axes as weights on behaviour standardised by ``common_scale``."""
    return (common_scale / fitted.behavior_scale_)[:, None] * fitted.shared_axes_[:, :k]


def _similarity(Va, Vb):
    ang = sla.subspace_angles(Va, Vb)
    return float(np.mean(np.cos(ang) ** 2)), np.sort(np.degrees(ang))


def _pseudo_f(D2: np.ndarray, in_a: np.ndarray) -> float:
    """PERMANOVA pseudo-F (Anderson 2001) of two groups from squared distances ``D2``."""
    n = D2.shape[0]
    iu = np.triu_indices(n, 1)
    ss_total = D2[iu].sum() / n
    ss_within = 0.0
    for mask in (in_a, ~in_a):
        sub = D2[np.ix_(mask, mask)]
        m = int(mask.sum())
        ss_within += sub[np.triu_indices(m, 1)].sum() / m
    ss_between = ss_total - ss_within
    if ss_within <= 0:
        return float("inf") if ss_between > 0 else float("nan")
    return float(ss_between / (ss_within / (n - 2)))


def _group_fit(template_a, template_b, Xs, Ys, gs, in_a, k, common_scale):
    ia = np.flatnonzero(in_a)
    ib = np.flatnonzero(~in_a)
    fits = []
    for template, idx in ((template_a, ia), (template_b, ib)):
        # k fixed as in the observed statistic: a null fit selecting fewer dimensions
        # would be compared over fewer angles
        m = _for_subjects(template, idx, len(Xs), n_shared=k)
        _quiet_fit(m, [Xs[i] for i in idx], [Ys[i] for i in idx], [gs[i] for i in idx])
        fits.append(m)
    ra, rb = (_heldout_r2(m, k) for m in fits)
    sim, _ = _similarity(*(_subspace(m, k, common_scale) for m in fits))
    return ra - rb, sim


def _comparable_params(model_a, model_b):
    pa, pb = model_a.get_params(), model_b.get_params()
    diff = []
    for key in sorted(set(pa) | set(pb)):
        va, vb = pa.get(key), pb.get(key)
        try:
            same = bool(np.all(np.asarray(va, dtype=object) == np.asarray(vb, dtype=object)))
            same = same and np.shape(va) == np.shape(vb)
        except Exception:  # pragma: no cover - exotic parameter values
            same = va is vb
        if not same:
            diff.append(f"{key}: {va!r} vs {vb!r}")
    if diff:
        raise ValueError(
            "compare_groups permutes subjects between the groups, so both groups must be "
            "analysed with the same model specification; differing parameters: " + "; ".join(diff)
        )


def compare_groups(
    model_a,
    data_a,
    model_b,
    data_b,
    n_perm: int = 200,
    n_jobs: int = 1,
    random_state=None,
    *,
    progress: bool = True,
) -> GroupComparison:
    """Compare two groups of subjects (e.g. two brain regions, novices vs experts).

    Two questions, one relabelling null:

    1. **Held-out score.** Is the cross-validated R^2 of the shared latents different in
       group A and group B? Statistic: ``r2_a[j] - r2_b[j]`` per dimension (pooled
       held-out R^2 at each fit's selected alpha) and its mean over dimensions; two-sided.
    2. **Shared subspace.** Do the groups use different behavioural subspaces? Subspaces
       are compared through their principal angles, as weights on behaviour features
       standardised by a common within-subject scale. Reported: the angles and the
       similarity (mean squared cosine) between the two group fits, with a relabelling
       null (``p_similarity``); and -- the recommended test -- a PERMANOVA of the
       subject-level subspaces (each subject's own fit, distance
       ``1 - mean cos^2``; ``p_subspace``), which stays powerful when a mixed pseudo-group
       would simply follow its majority.

    **What is resampled.** Subject labels: the ``S_a + S_b`` subjects are reassigned to
    pseudo-groups of sizes ``S_a`` and ``S_b`` and both pseudo-groups are refitted with the
    complete pipeline. When the number of distinct splits ``C(S_a + S_b, S_a)`` is at most
    ``n_perm``, all splits are enumerated (an exact test; the observed split is one of
    them); otherwise ``n_perm`` random splits are drawn. The subject-level subspaces of the
    PERMANOVA are fitted once per subject; only their group labels are permuted.

    **Unit of inference.** Subjects (animals): the null hypothesis is that group
    membership is exchangeable across subjects. Subjects must therefore be independent
    animals; when the same animal appears in both groups (e.g. novice and expert sessions
    of one mouse), this test ignores the pairing and is conservative.

    Parameters
    ----------
    model_a, model_b : ShaReD
        Templates with identical parameters (cloned; not modified). Need ``cv`` folds and
        ``subject_weights=None`` (subjects move between the groups in the permutations,
        so a weight per position of a group would not follow its subject).
    data_a, data_b : tuple (neural, behavior[, groups]), dict or SimulatedData
        Each group's subjects. The behaviour features must be the same.
    n_perm : int, default 200
    n_jobs, random_state, progress
        As in :func:`permutation_test`.

    Returns
    -------
    GroupComparison
    """
    _check_model(model_a, "model_a")
    _check_model(model_b, "model_b")
    _require_cv(model_a, "model_a", "compare_groups")
    _comparable_params(model_a, model_b)
    if model_a.get_params().get("subject_weights") is not None:
        raise ValueError(
            "compare_groups needs subject_weights=None: subjects move between the groups in "
            "its permutations, so weights given per position of a group cannot follow them"
        )
    n_perm = _check_count(n_perm, "n_perm")
    n_jobs = _check_n_jobs(n_jobs, model_a)
    Xa, Ya, ga = _validate_data(model_a, *_unpack_data(data_a, "data_a"))
    Xb, Yb, gb = _validate_data(model_b, *_unpack_data(data_b, "data_b"))
    if Ya[0].shape[1] != Yb[0].shape[1]:
        raise ValueError(
            f"data_a has {Ya[0].shape[1]} behaviour features but data_b has {Yb[0].shape[1]}: "
            "the groups must share the same behavioural features"
        )
    Sa, Sb = len(Xa), len(Xb)
    if Sa < 2 or Sb < 2:
        raise ValueError(
            f"compare_groups needs at least 2 subjects per group (got {Sa} in A, {Sb} in B)"
        )
    Xs, Ys, gs = Xa + Xb, Ya + Yb, ga + gb
    common = _common_scale(Ys)
    fa = clone(model_a).fit(Xa, Ya, groups=None if all(g is None for g in ga) else ga)
    fb = clone(model_b).fit(Xb, Yb, groups=None if all(g is None for g in gb) else gb)
    k = int(min(fa.n_shared_, fb.n_shared_))
    ra, rb = _heldout_r2(fa, k), _heldout_r2(fb, k)
    diff = ra - rb
    sim, angles = _similarity(_subspace(fa, k, common), _subspace(fb, k, common))

    # subject-level subspaces (each subject alone, same specification, k fixed)
    single = []
    for i in range(Sa + Sb):
        m = _for_subjects(model_a, [i], Sa + Sb, n_shared=k)
        try:
            _quiet_fit(m, [Xs[i]], [Ys[i]], [gs[i]])
        except ValueError as exc:
            grp, j = ("A", i) if i < Sa else ("B", i - Sa)
            raise ValueError(
                f"group {grp} subject {j}: single-subject fit for the subspace test failed: {exc}"
            ) from None
        single.append(_subspace(m, k, common))
    D2 = np.zeros((Sa + Sb, Sa + Sb))
    for i in range(Sa + Sb):
        for j in range(i + 1, Sa + Sb):
            D2[i, j] = D2[j, i] = 1.0 - _similarity(single[i], single[j])[0]
    observed_split = np.r_[np.ones(Sa, bool), np.zeros(Sb, bool)]
    f_obs = _pseudo_f(D2, observed_split)

    S = Sa + Sb
    n_splits = math.comb(S, Sa)
    exact = n_splits <= n_perm
    if exact:
        splits = np.zeros((n_splits, S), dtype=bool)
        for i, comb in enumerate(itertools.combinations(range(S), Sa)):
            splits[i, list(comb)] = True
    else:
        splits = np.zeros((n_perm, S), dtype=bool)
        for i, rng in enumerate(_spawn_rngs(random_state, n_perm)):
            splits[i, rng.permutation(S)[:Sa]] = True
    tasks = [
        delayed(_group_fit)(model_a, model_b, Xs, Ys, gs, splits[i], k, common)
        for i in range(splits.shape[0])
    ]
    results = _progress_map(tasks, n_jobs, progress, "relabellings")
    null_diff = np.array([r[0] for r in results], dtype=float).reshape(-1, k)
    null_sim = np.array([r[1] for r in results], dtype=float)
    null_f = np.array([_pseudo_f(D2, split) for split in splits], dtype=float)
    tol = 1e-12
    if exact:

        def _p(count, n):
            return count / n
    else:

        def _p(count, n):
            return (1.0 + count) / (1.0 + n)

    n = null_diff.shape[0]
    p_dim = _p(np.sum(np.abs(null_diff) >= np.abs(diff)[None, :] - tol, axis=0), n)
    mean_diff = float(np.mean(diff))
    p_mean = float(_p(np.sum(np.abs(null_diff.mean(axis=1)) >= abs(mean_diff) - tol), n))
    p_sim = float(_p(np.sum(null_sim <= sim + tol), n))
    p_f = float(_p(np.sum(null_f >= f_obs - tol), n))
    return GroupComparison(
        score_a=ra,
        score_b=rb,
        difference=diff,
        null_difference=null_diff,
        p_values=np.asarray(p_dim, dtype=float),
        difference_mean=mean_diff,
        p_value_mean=p_mean,
        angles=angles,
        similarity=sim,
        null_similarity=null_sim,
        p_similarity=p_sim,
        subspace_f=f_obs,
        null_subspace_f=null_f,
        p_subspace=p_f,
        n_perm=int(n),
        exact=bool(exact),
        splits=splits,
    )
