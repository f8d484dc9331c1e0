"""Circular-shift permutation test of the shared dimensions of a ShaReD fit.

:func:`permutation_test` asks whether each shared dimension is predicted from neural activity
better than chance. Subjects (animals) are the units of inference; time samples are
autocorrelated and never resampled one by one: under the null, each subject's behaviour is
circularly shifted against its own neural activity (whole trials when trial ids are given)
and the *complete* pipeline, cross-validated selection included, is refitted. This module
also holds the shift machinery reused by :mod:`~sharedrep.inference.transfer` and
:mod:`~sharedrep.inference.encoding` (:func:`default_min_shift`,
:func:`circular_shift_candidates`, :func:`subject_shift_candidates`, :func:`draw_shifts`:
distinct combinations drawn up front from ``random_state``) and the max-statistic
family-wise correction :func:`max_statistic_p_values`. It imports :mod:`sharedrep.utils`,
:mod:`sharedrep.core` and :mod:`sharedrep.inference._resampling`.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import numbers
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from joblib import delayed
from sklearn.base import clone

from sharedrep.core.design import as_lags, segments
from sharedrep.core.neural_cache import reuse_neural_side
from sharedrep.inference._resampling import (
    _check_count,
    _check_model,
    _check_n_jobs,
    _for_subjects,
    _heldout_r2,
    _progress_map,
    _quiet_fit,
    _require_cv,
    _seed_sequence,
    _upper_p,
    _validate_data,
)

__all__ = [
    "PermutationResult",
    "permutation_test",
    "circular_shift_candidates",
    "default_min_shift",
    "draw_shifts",
    "max_statistic_p_values",
    "subject_shift_candidates",
]


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

    Parameters
    ----------
    observed : array-like (k,)
    null : array-like (n_perm, k)

    Returns
    -------
    ndarray (k,)
        A null row holding a NaN (a refit that could not be scored) has maximum
        ``+inf``: it counts as at least as extreme as every observed value (conservative;
        a failed refit never makes the observed look rarer). A NaN observed value gives
        NaN, never the smallest p.
    """
    observed = np.asarray(observed, dtype=float)
    null = np.asarray(null, dtype=float)
    if null.ndim != 2 or observed.shape != null.shape[1:]:
        raise ValueError(
            f"null must be (n_perm, k) with observed (k,); got {null.shape} and {observed.shape}"
        )
    if null.shape[1] == 0:
        return np.zeros(0)
    null_max = np.max(np.where(np.isnan(null), np.inf, null), axis=1)
    return _upper_p(observed, null_max[:, None])


def _p_values(observed: np.ndarray, null: np.ndarray) -> np.ndarray:
    """Per-dimension Monte-Carlo p-values (:func:`~sharedrep.inference._resampling._upper_p`:
    a NaN null value counts as extreme, a NaN observed value gives NaN)."""
    return np.atleast_1d(_upper_p(observed, null))


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
        ``(1 + #{null[:, j] >= observed[j]}) / (1 + n_perm)``. A NaN null value (a refit
        that could not be scored) counts as at least as extreme (conservative); a NaN
        observed value gives NaN.
    p_values_fwer : ndarray (k,)
        Family-wise corrected over the ``k`` dimensions (max-statistic method, see
        :func:`max_statistic_p_values`; a null row with a NaN counts as extreme).
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
    n_perm_requested : int
        ``n_perm`` as asked. ``n_perm`` (the property) is the number of permutations
        actually used: smaller when fewer distinct combinations of shifts exist.
    p_min : float
        Smallest p-value the test can give: ``1 / (1 + n_perm)`` with the permutations
        actually used. A p-value equal to it means "at least as extreme as every
        permutation": report ``p <= p_min``.
    level : float
        Significance level the test was asked to reach (``level`` of
        :func:`permutation_test`, default 0.05).
    testable : bool
        Whether the test can answer at ``level``: ``p_min <= level`` and every observed
        statistic is finite. With 1 subject of 6 trials only 5 whole-trial shifts exist
        and the smallest p is 1/6 whatever the data: a p-value above ``level`` is then
        no evidence of absence.
    reason : str
        Empty when ``testable``; otherwise why not, for callers to print instead of a
        p-value, e.g. ``"not testable at the 5% level: only 5 distinct circular shifts
        exist (n_perm = 200 requested), smallest achievable p = 0.167"``, ``"not testable
        at the 5% level: n_perm = 9 circular shifts, smallest achievable p = 0.1"`` or
        ``"not testable: the observed held-out R^2 is not finite (dimension 1: nan)"``.
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
    n_perm_requested: int = 0
    p_min: float = math.nan
    level: float = 0.05
    testable: bool = False
    reason: str = ""

    @property
    def n_perm(self) -> int:
        """int: Number of permutations actually used (see ``n_perm_requested``)."""
        return int(self.null.shape[0])

    def summary(self) -> pd.DataFrame:
        """One row per shared dimension: observed, null mean / 95th percentile, p-values.

        ``attrs`` hold ``testable``, ``reason``, ``p_min``, ``level``, ``n_perm`` (used),
        ``n_perm_requested`` and ``exhaustive`` (see the class attributes): check
        ``testable`` before reading ``p_value`` as evidence.
        """
        with warnings.catch_warnings():  # a dimension whose null is all NaN: NaN, quietly
            warnings.simplefilter("ignore", RuntimeWarning)
            null_mean = np.nanmean(self.null, axis=0)
            null_q95 = np.nanquantile(self.null, 0.95, axis=0)
        df = pd.DataFrame(
            {
                "dimension": np.arange(self.observed.size),
                "r2_heldout": self.observed,
                "null_mean": null_mean,
                "null_q95": null_q95,
                "p_value": self.p_values,
                "p_value_fwer": self.p_values_fwer,
            }
        )
        df.attrs.update(
            testable=self.testable,
            reason=self.reason,
            p_min=self.p_min,
            level=self.level,
            n_perm=self.n_perm,
            n_perm_requested=self.n_perm_requested,
            exhaustive=self.exhaustive,
        )
        return df


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
    level: float = 0.05,
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
    (they do not enter the statistic). What depends on the neural activity alone is the
    same in every refit: each chunk's ``X'X`` and each fold's factorisation of its
    standardised Gram matrix (an orthogonal reduction, or from 60 permutations on its
    eigendecomposition), most of a fit's cost. With ``n_jobs=1`` they are computed in
    the observed fit, kept in this process (at most 2 GiB;
    :mod:`sharedrep.core.neural_cache`; not with ``low_memory="strict"``) and taken by
    the null refits whose rows are the same (not those that drop other rows for missing
    behaviour), which compute only the behaviour side: the null equals that of complete
    refits to rounding (relative differences ~1e-14 in tests).

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
    Monte-Carlo test), where ``n_perm`` is the number of permutations actually used. A
    null refit without a score (NaN) counts as at least as extreme; a NaN observed
    statistic gives p = NaN. ``p_values_fwer`` correct for testing ``k`` dimensions with
    the max-statistic method: each observed value is compared with the null distribution
    of the maximum over dimensions.

    **When the test cannot answer.** No p-value can be below ``p_min = 1 / (1 + n_perm)``.
    When fewer distinct combinations of shifts exist than ``n_perm`` asks for (short
    recordings, few trials, one subject), all of them are used and ``n_perm`` is smaller
    than requested; a ``UserWarning`` says so. When ``p_min > level`` the test cannot
    reach significance whatever the data: the result has ``testable=False`` with a
    ``reason`` and a ``UserWarning`` is issued. Do not read such a p-value as "not
    significant".

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
        on it. The refits reuse the observed fit's neural side (see above) with
        ``n_jobs=1`` only, where they run in this process: from about 300 lagged columns
        per subject on, one job is about as fast as two without the reuse, or faster;
        on small subjects several jobs are faster (``benchmarks/bench_resampling.py``).
    random_state : int, SeedSequence, Generator or None
        Seeds the shifts, which are all drawn up front (distinct combinations of the
        subjects' offsets, see :func:`draw_shifts`), so results do not depend on
        ``n_jobs``. When fewer than ``n_perm`` combinations exist, all are used (an
        exhaustive test; ``n_perm`` of the result is then smaller).
    whole_trials : bool, default True
        With trial ids, shift by whole trials only (see
        :func:`circular_shift_candidates`).
    level : float in (0, 1), default 0.05
        Significance level the p-values will be compared with. Used only to say whether
        the test can reach it (``testable``, ``reason`` and a warning); the p-values do
        not depend on it.
    progress : bool, default True
        Show a rich progress bar.

    Returns
    -------
    PermutationResult
        Check ``testable`` before quoting ``p_values``; ``reason`` says why not (print it
        instead of the p-value) and ``p_min`` is the smallest p the test can give.

    Warns
    -----
    UserWarning
        When fewer distinct combinations of shifts than ``n_perm`` exist, and when the
        smallest achievable p-value ``p_min`` exceeds ``level``.

    Examples
    --------
    >>> import warnings
    >>> from sharedrep import ShaReD, simulate
    >>> d = simulate(n_subjects=1, n_samples=300, n_units=8, n_behavior=4, n_shared=1,
    ...              trial_length=50, seed=0)
    >>> m = ShaReD(n_shared=1, alpha=1.0, cv=3, private=False)
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     r = permutation_test(m, d.neural, d.behavior, d.groups, n_perm=200,
    ...                          random_state=0, progress=False)
    >>> r.n_perm_requested, r.n_perm, round(r.p_min, 3), r.testable
    (200, 5, 0.167, False)
    >>> r.reason.startswith("not testable at the 5% level: only 5 distinct circular shifts")
    True
    """
    _check_model(model)
    _require_cv(model, what="permutation_test")
    n_perm = _check_count(n_perm, "n_perm")
    if not (isinstance(level, numbers.Real) and not isinstance(level, bool) and 0 < level < 1):
        raise ValueError(f"level must be a number in (0, 1); got {level!r}")
    level = float(level)
    n_jobs = _check_n_jobs(n_jobs, model)
    Xs, Ys, gs = _validate_data(model, neural, behavior, groups)
    Ts = [X.shape[0] for X in Xs]
    min_shift = _check_min_shift(min_shift, Ts)
    lags = model.get_params().get("lags", 0)
    shifts_used, cands = subject_shift_candidates(Ts, gs, min_shift, lags, whole_trials)

    shifts, exhaustive = draw_shifts(cands, n_perm, random_state)
    n_requested, n_perm = n_perm, shifts.shape[0]
    reuse = reuse_neural_side() if n_jobs == 1 else contextlib.nullcontext()
    with reuse as kept:  # the neural side is the same in every refit
        if kept is not None:
            kept.reuses = n_perm
        observed_model = clone(model)
        observed_model.fit(Xs, Ys, groups=None if all(g is None for g in gs) else gs)
        if kept is not None:
            kept.freeze()  # a null fold whose rows differ (missing behaviour) is not kept
        k = int(observed_model.n_shared_)
        observed = _heldout_r2(observed_model, k)

        p_min = 1.0 / (1.0 + n_perm)
        _warn_resolution(n_perm, n_requested, p_min, level)
        testable, reason = _testability(observed, n_perm, n_requested, p_min, level)
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
        n_perm_requested=int(n_requested),
        p_min=float(p_min),
        level=level,
        testable=bool(testable),
        reason=reason,
    )


def _warn_resolution(n_used: int, n_requested: int, p_min: float, level: float) -> None:
    """Warn when fewer distinct shifts than requested exist, and when ``p_min > level``."""
    if n_used < n_requested:
        warnings.warn(
            f"only {n_used} distinct circular shifts exist (n_perm={n_requested} "
            f"requested): all {n_used} are used (result.n_perm)",
            UserWarning,
            stacklevel=3,
        )
    if p_min > level:
        warnings.warn(
            f"with {n_used} circular shifts the smallest achievable p-value is {p_min:.3g} "
            f"> level {level:g}: this permutation test cannot reach significance "
            "(result.testable is False; see result.reason)",
            UserWarning,
            stacklevel=3,
        )


def _testability(observed, n_used: int, n_requested: int, p_min: float, level: float):
    """``(testable, reason)`` of a permutation test (see ``PermutationResult.testable``)."""
    bad = np.flatnonzero(~np.isfinite(observed))
    if bad.size:
        what = ", ".join(f"dimension {j}: {observed[j]:.3g}" for j in bad)
        return False, f"not testable: the observed held-out R^2 is not finite ({what})"
    if p_min > level:
        if n_used < n_requested:
            what = (
                f"only {n_used} distinct circular shifts exist (n_perm = {n_requested} requested)"
            )
        else:
            what = f"n_perm = {n_used} circular shifts"
        return False, (
            f"not testable at the {100 * level:g}% level: {what}, smallest achievable "
            f"p = {p_min:.3g}"
        )
    return True, ""
