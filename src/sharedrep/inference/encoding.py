"""Unit-level encoding of the shared representation (within subjects).

For every recorded unit of every subject, :func:`unit_encoding` asks whether the unit's
activity is predicted by the (lagged) shared behavioural latents ``z_s = Y_s V`` and
classifies it as *encoding the shared representation* or not, with the
Benjamini-Hochberg false discovery rate controlled within each subject.

Unit of inference
-----------------
Here the units of inference are the **neurons of one subject**: p-values and the FDR are
per subject; results are never pooled across animals as if neurons of different animals
were independent samples. The fraction of encoding units per subject is a per-animal
summary; compare it across animals with subject-level statistics
(:mod:`sharedrep.inference.bootstrap`, :mod:`sharedrep.inference.groups`). Each unit's
encoding model is the package's ridge (:func:`sharedrep.core.ridge.ridge_fit`) on
contiguous folds (:func:`sharedrep.core.cv.block_folds`). It imports :mod:`sharedrep.utils`,
:mod:`sharedrep.core` and :mod:`sharedrep.inference` helpers (shifts, multiple testing).
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import clone

from sharedrep.core.cv import block_folds
from sharedrep.core.design import as_lags, segments
from sharedrep.core.ridge import standardize_columns
from sharedrep.inference._resampling import (
    _check_count,
    _check_model,
    _quiet_fit,
    _seed_sequence,
    _upper_p,
)
from sharedrep.inference.multitest import benjamini_hochberg
from sharedrep.inference.permutation import (
    _check_min_shift,
    draw_shifts,
    subject_shift_candidates,
)
from sharedrep.utils.validation import check_subject_arrays

__all__ = ["unit_encoding"]


def _subject_folds(n_samples: int, groups, n_folds: int, subject: int) -> np.ndarray:
    """Contiguous folds of one subject: blocks of whole trials (or of samples)."""
    try:
        return block_folds(n_samples, n_folds, groups, trials="contiguous", edges="round")
    except ValueError as exc:
        raise ValueError(f"subject {subject}: {exc}") from None


def _lagged(Z: np.ndarray, lags: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """``D[t] = [Z[t + l] for l in lags]``; NaN where ``t + l`` leaves ``t``'s segment.

    Lag ``l`` follows the model convention: neural activity at ``t`` goes with behaviour
    at ``t + l`` (activity at ``t - l`` predicts behaviour at ``t``).
    """
    T, k = Z.shape
    D = np.full((T, k * lags.size), np.nan)
    t = np.arange(T)
    for j, lag in enumerate(lags):
        src = t + lag
        ok = (src >= 0) & (src < T)
        ok[ok] &= seg[src[ok]] == seg[ok]
        D[ok, j * k : (j + 1) * k] = Z[src[ok]]
    return D


def _train_masks(fold: np.ndarray, n_folds: int, gap: int) -> list[np.ndarray]:
    """Training rows of every fold: other folds minus rows within ``gap`` of a test row."""
    masks = []
    for f in range(n_folds):
        test = fold == f
        train = ~test
        if gap > 0 and np.any(test):
            near = np.convolve(test.astype(float), np.ones(2 * gap + 1), mode="same") > 0
            train &= ~near
        masks.append(train)
    return masks


#: Why ``unit_encoding(cross_fit=False)`` reports no p-values (``attrs["reason"]``).
NO_CROSS_FIT_REASON = (
    "no p-values, q-values or encoding decisions are reported (p_value and q_value NaN, "
    "encodes <NA>): the full-data shared axes were fitted on the same rows as the units' "
    "activity, so the observed alignment is the one the axes were chosen for and the "
    "circular-shift null is not valid (on data without encoding far more than 5% of the "
    "units reach p <= 0.05); r2_cv and the structure coefficients are descriptive only"
)

_CONSTANT = 1e-12  # a unit whose centred sum of squares is below this fraction is constant


@dataclass(frozen=True)
class _Activity:
    """One subject's activity prepared once for every shift (:func:`_activity`).

    ``xc`` (T, N): activity minus each unit's mean over the finite rows (0 - mean where
    a row is not finite; such rows are never used); ``xc2``: its squares; ``finite``
    (T,): rows where every unit is finite.
    """

    xc: np.ndarray
    xc2: np.ndarray
    finite: np.ndarray


def _activity(X: np.ndarray) -> _Activity:
    finite = np.all(np.isfinite(X), axis=1)
    xf = np.where(np.isfinite(X), X, 0.0)
    center = xf[finite].mean(axis=0) if finite.any() else np.zeros(X.shape[1])
    xc = xf - center
    return _Activity(xc, xc * xc, finite)


def _cv_r2(act: _Activity, designs, fold, train_masks, alpha) -> np.ndarray:
    """Cross-validated R^2 of every unit (all units at once, ridge).

    ``designs[f]`` is the design used in fold ``f`` (cross-fitted latents); rows with a
    NaN in the design (incomplete lag window) are skipped. Returns ``r2`` (N,):
    ``1 - sum_f SSE_f / sum_f SST_f`` with ``SST_f`` about the held-out mean of fold
    ``f``; NaN for units constant in a training or test part.

    Each fold's ridge is the model of :func:`sharedrep.core.ridge.ridge_fit`
    (``constant="unit"``, normal equations), solved and scored from moments: the
    design's products with the activity on the training and held-out rows (one product
    over the recording per fold, whose rows outside the fold's parts are zero) and the
    sums of squares of the activity on those rows, so the activity is read a few times
    per call instead of being copied per fold. Equal to fitting and predicting
    explicitly up to rounding (``tests/inference/test_encoding.py``).
    """
    N = act.xc.shape[1]
    sse, sst, q_te = np.zeros(N), np.zeros(N), np.zeros(N)
    bad = np.zeros(N, dtype=bool)
    parts = []
    for f in range(len(train_masks)):
        usable = np.all(np.isfinite(designs[f]), axis=1) & act.finite
        tr, te = usable & train_masks[f], usable & (fold == f)
        if tr.sum() >= 3 and te.sum() >= 2:
            parts.append((f, tr, te))
    if not parts:
        return np.full(N, np.nan)
    masks = np.stack([m for _, tr, te in parts for m in (tr, te)], axis=1).astype(float)
    squares = masks.T @ act.xc2  # (2 folds, N): sums of squares on each part
    sums = masks.T @ act.xc
    for i, (f, tr, te) in enumerate(parts):
        two = slice(2 * i, 2 * i + 2)
        fold_sse, fold_sst = _fold_errors(
            act.xc, designs[f], tr, te, sums[two], squares[2 * i + 1], alpha
        )
        q_tr = squares[2 * i]
        bad |= q_tr - sums[2 * i] ** 2 / tr.sum() <= _CONSTANT * q_tr  # constant in training
        sse += fold_sse
        sst += fold_sst
        q_te += squares[2 * i + 1]
    bad |= sst <= _CONSTANT * q_te
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = 1.0 - sse / np.where(sst > 0, sst, np.nan)
    r2[bad] = np.nan
    return r2


def _fold_errors(xc, D, tr, te, sums, q_te, alpha):
    """Held-out SSE and SST (N,) of one fold's ridge of ``xc`` on the design ``D``.

    ``sums`` (2, N): the activity's sums over the training and the held-out rows;
    ``q_te`` (N,): its sum of squares over the held-out rows.
    """
    d = D.shape[1]
    s_tr, s_te = sums
    n_tr, n_te = tr.sum(), te.sum()
    mean, scale = standardize_columns(D[tr], "unit")
    Zs_tr, Zs_te = (D[tr] - mean) / scale, (D[te] - mean) / scale
    y_mean = s_tr / n_tr
    M = np.zeros((D.shape[0], 2 * d))  # Z' X on both parts by one product
    M[tr, :d], M[te, d:] = D[tr], D[te]
    DX = M.T @ xc
    cross_tr = (DX[:d] - np.outer(mean, s_tr)) / scale[:, None]
    cross_te = (DX[d:] - np.outer(mean, s_te)) / scale[:, None]
    G = Zs_tr.T @ Zs_tr + alpha * n_tr * np.eye(d)
    coef = np.linalg.solve(G, cross_tr - np.outer(Zs_tr.sum(axis=0), y_mean))
    # held-out sums of x * pred and pred^2, pred = Zs_te coef + y_mean
    x_pred = np.sum(coef * cross_te, axis=0) + y_mean * s_te
    pred2 = np.sum(coef * (Zs_te.T @ Zs_te @ coef), axis=0)
    pred2 += 2.0 * y_mean * (Zs_te.sum(axis=0) @ coef) + n_te * y_mean**2
    return q_te - 2.0 * x_pred + pred2, q_te - s_te**2 / n_te


def _corr_cols(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of every column of ``a`` (n x N) with every column of ``b``."""
    ac = a - a.mean(axis=0)
    bc = b - b.mean(axis=0)
    na = np.sqrt(np.sum(ac**2, axis=0))
    nb = np.sqrt(np.sum(bc**2, axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (ac.T @ bc) / np.outer(np.where(na > 0, na, np.nan), np.where(nb > 0, nb, np.nan))


def _check_encoding_params(n_perm, fdr, cv, gap, alpha) -> tuple[int, int]:
    """Validated ``(n_perm, cv)``; ``fdr`` in (0, 1), ``gap`` >= 0, ``alpha`` > 0."""
    n_perm = _check_count(n_perm, "n_perm")
    if not (isinstance(fdr, numbers.Real) and 0.0 < fdr < 1.0):
        raise ValueError(f"fdr must be a number in (0, 1); got {fdr!r}")
    cv = _check_count(cv, "cv", 2)
    if not isinstance(gap, numbers.Integral) or isinstance(gap, bool) or gap < 0:
        raise ValueError(f"gap must be a non-negative int (samples); got {gap!r}")
    if not (isinstance(alpha, numbers.Real) and np.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha must be a positive number; got {alpha!r}")
    return n_perm, cv


def _full_model(model, Xs, Ys, gs):
    """The model itself when fitted (checked against the data), else a clone fitted on it."""
    S = len(Xs)
    if not hasattr(model, "shared_axes_"):
        return clone(model).fit(Xs, Ys, groups=None if all(g is None for g in gs) else gs)
    if model.n_subjects_ < S:
        raise ValueError(
            f"the fitted model has {model.n_subjects_} subjects but {S} were given; pass "
            "the data it was fitted on (or an unfitted model)"
        )
    for s, X in enumerate(Xs):
        if X.shape[1] != model.n_units_[s]:
            raise ValueError(
                f"subject {s}: neural has {X.shape[1]} units but the fitted model has "
                f"{model.n_units_[s]}; pass the data the model was fitted on"
            )
    if model.n_features_ != Ys[0].shape[1]:
        raise ValueError(
            f"behavior has {Ys[0].shape[1]} features but the fitted model has {model.n_features_}"
        )
    return model


def _fold_latents(full, Xs, Ys, gs, masks, cv, k, cross_fit) -> list:
    """Latents per fold and subject: ``latents[f][s]`` of shape (T_s, k).

    Cross-fitted: the axes of fold ``f`` come from a refit (selected alpha, ``k`` fixed)
    on that fold's training rows of every subject; otherwise the full-data latents serve
    every fold (the same list object, so designs are built once).
    """
    if not cross_fit:
        z_full = [full.transform_behavior(Y, subject=s) for s, Y in enumerate(Ys)]
        return [z_full] * cv
    template = clone(full).set_params(alpha=float(full.alpha_), n_shared=k, cv=None, private=False)
    latents = []
    for f in range(cv):
        tr_X, tr_Y, tr_g = [], [], []
        for s, (X, Y, g) in enumerate(zip(Xs, Ys, gs, strict=True)):
            idx = np.flatnonzero(masks[s][f])
            seg = segments(X.shape[0], g)[idx]
            # a new segment wherever rows are not consecutive: lag windows never join
            # the two sides of a removed block
            brk = np.r_[True, (np.diff(idx) != 1) | (np.diff(seg) != 0)]
            tr_X.append(X[idx])
            tr_Y.append(Y[idx])
            tr_g.append(np.cumsum(brk))
        mf = _quiet_fit(clone(template), tr_X, tr_Y, tr_g)
        latents.append([mf.transform_behavior(Y, subject=s) for s, Y in enumerate(Ys)])
    return latents


def _unit_r2(act: _Activity, g, fold, train_masks, design, alpha, cv) -> np.ndarray:
    """Cross-validated R^2 (N,) of subject ``s``'s units from its lagged latents.

    ``design = (latents, s, lags, offset)``: the latents are circularly shifted by
    ``offset`` samples (0 for the observed statistic) before lagging.
    """
    latents, s, lags, offset = design
    seg = segments(act.xc.shape[0], g) * cv + fold
    designs = []
    for f in range(cv):
        if f > 0 and latents[f] is latents[0]:
            designs.append(designs[0])
            continue
        Z = latents[f][s]
        if offset:
            Z = np.roll(Z, -offset, axis=0)
        designs.append(_lagged(Z, lags, seg))
    return _cv_r2(act, designs, fold, train_masks, alpha)


def _null_r2(r2_all, Xs, shifts, progress: bool) -> list[np.ndarray]:
    """Null R^2 ``(n_shifts_s, N_s)`` per subject, ``r2_all(s, shift)`` for every shift."""
    null = [np.empty((sh.size, X.shape[1])) for sh, X in zip(shifts, Xs, strict=True)]
    bar = None
    if progress:
        from rich.progress import Progress

        bar = Progress(transient=True)
        bar.start()
        task = bar.add_task("unit permutations", total=sum(sh.size for sh in shifts))
    try:
        for s in range(len(Xs)):
            for b, c in enumerate(shifts[s]):
                null[s][b] = r2_all(s, int(c))
                if bar is not None:
                    bar.advance(task)
    finally:
        if bar is not None:
            bar.stop()
    return null


def _structure(full, X, Y, g, s, lags) -> tuple[int, np.ndarray]:
    """Structure coefficients (N, k) with the full-data latents at the best single lag.

    The lag maximises the sum of squared correlations; returns ``(lag, corr)`` (NaN
    correlations when no lag leaves 3 complete rows).
    """
    z = full.transform_behavior(Y, subject=s)
    seg = segments(X.shape[0], g)
    best_lag, best_val, best_corr = int(lags[0]), -np.inf, None
    for lag in lags:
        D = _lagged(z, np.array([lag]), seg)
        ok = np.all(np.isfinite(D), axis=1) & np.all(np.isfinite(X), axis=1)
        if ok.sum() < 3:
            continue
        c = _corr_cols(X[ok], D[ok])
        val = float(np.nansum(c**2))
        if val > best_val:
            best_lag, best_val, best_corr = int(lag), val, c
    if best_corr is None:
        best_corr = np.full((X.shape[1], int(full.n_shared_)), np.nan)
    return best_lag, best_corr


def _unit_table(obs, null, fdr, corr, tested: bool = True) -> tuple[pd.DataFrame, float]:
    """One subject's table (permutation p-values, BH q-values, decisions, structure) and
    the largest p-value declared encoding (NaN if none).

    Parameters
    ----------
    obs : ndarray of shape (N,)
        Observed cross-validated R^2 of the units (NaN: the unit cannot be scored).
    null : ndarray of shape (n_shifts, N)
        R^2 of the units under each circular shift (NaN: that shift could not be scored).
    fdr : float
        Threshold on the q-values.
    corr : ndarray of shape (N, k)
        Structure coefficients.
    tested : bool, default True
        False when there is no valid null (``cross_fit=False``): ``p_value`` and
        ``q_value`` are NaN and ``encodes`` is a pandas nullable boolean column of
        ``<NA>`` (undecided, neither encoding nor not).

    Returns
    -------
    (pandas.DataFrame, float)
        ``p = (1 + #{null >= obs or NaN}) / (1 + n_shifts)`` per unit
        (:func:`sharedrep.inference._resampling._upper_p`: a NaN null R^2 counts as at
        least as extreme, a NaN observed R^2 gives a NaN p-value, never classified).
    """
    if tested:
        pval = _upper_p(obs, null)
        qval = benjamini_hochberg(pval)
        encodes = np.isfinite(qval) & (qval <= fdr)
    else:
        pval = np.full(obs.size, np.nan)
        qval = np.full(obs.size, np.nan)
        encodes = pd.array([pd.NA] * obs.size, dtype="boolean")
    df = pd.DataFrame(
        {
            "unit": np.arange(obs.size),
            "r2_cv": obs,
            "p_value": pval,
            "q_value": qval,
            "encodes": encodes,
        }
    )
    for j in range(corr.shape[1]):
        df[f"structure_{j}"] = corr[:, j]
    sig = pval[encodes] if tested else np.zeros(0)
    return df, float(sig.max()) if sig.size else float("nan")


def _warn_p_value_floor(tables, fdr) -> None:
    """Warn when a subject has too few shifts for any p-value to reach ``fdr``."""
    floor = [
        (s, t.attrs["n_perm"]) for s, t in enumerate(tables) if 1 / (1 + t.attrs["n_perm"]) > fdr
    ]
    if floor:
        s0, n0 = floor[0]
        warnings.warn(
            f"subjects {[s for s, _ in floor]}: with {n0} circular shifts (subject {s0}) the "
            f"smallest possible p-value is 1/{n0 + 1} = {1 / (n0 + 1):.3g} > fdr = {fdr}: no "
            f"unit can be declared encoding; use n_perm >= {int(np.ceil(1 / fdr))} (and "
            "enough data for as many distinct shifts)",
            UserWarning,
            stacklevel=3,
        )


def _unit_shifts(Ts, gs, min_shift, lags, whole_trials, n_perm, random_state, cross_fit):
    """``(min shifts, candidates, drawn shifts, reason)`` per subject for
    :func:`unit_encoding`: with ``cross_fit=False`` there is no valid null, so no shift
    is drawn (``reason`` says why, and a warning recommends ``cross_fit=True``)."""
    if not cross_fit:
        reason = NO_CROSS_FIT_REASON
        warnings.warn(
            f"unit_encoding(cross_fit=False): {reason}; use cross_fit=True for inference",
            UserWarning,
            stacklevel=3,
        )
        none = [None] * len(Ts)
        return none, none, [np.zeros(0, dtype=np.int64) for _ in Ts], reason
    shifts_used, cands = subject_shift_candidates(Ts, gs, min_shift, lags, whole_trials)
    seeds = _seed_sequence(random_state).spawn(len(Ts))
    shifts = [
        draw_shifts([c], n_perm, seed)[0][:, 0] for c, seed in zip(cands, seeds, strict=True)
    ]
    return shifts_used, cands, shifts, ""


def unit_encoding(
    model,
    neural,
    behavior,
    groups=None,
    n_perm: int = 200,
    fdr: float = 0.05,
    random_state=None,
    *,
    cv: int = 5,
    alpha: float = 1e-2,
    lags=None,
    min_shift: int | None = None,
    cross_fit: bool = True,
    gap: int = 0,
    whole_trials: bool = True,
    progress: bool = True,
) -> list[pd.DataFrame]:
    """Which units encode the shared representation? One table per subject.

    For unit ``i`` of subject ``s``:

    * **Cross-validated R^2** (``r2_cv``) of the unit's activity ``x_i[t]`` predicted by
      ridge regression from the lagged shared latents ``[z_s[t + l] for l in lags]``
      (the model's lags: activity at ``t`` goes with behaviour at ``t + l``). Folds are
      contiguous blocks of whole trials (of samples without trial ids); lag windows never
      cross a trial or a fold. With ``cross_fit=True`` (default) the shared axes
      themselves are refitted without the held-out block (``alpha`` and ``n_shared`` fixed
      to the full fit's values), so the axes were never chosen using the activity being
      predicted and the held-out R^2 is honest; with ``cross_fit=False`` the full-data
      axes are used for every fold (faster, but optimistic because each unit took part
      in choosing the axes, and **without p-values**: see below).
    * **Permutation p-value** (``p_value``): the latents are circularly shifted relative to
      the subject's neural activity (whole trials with trial ids; minimum shift as in
      :func:`sharedrep.inference.permutation.permutation_test`; distinct shifts, drawn without
      replacement), the *same* shift for every unit of the subject in a permutation, and
      the cross-validated R^2 recomputed for all units at once;
      ``p = (1 + #{null >= observed or NaN}) / (1 + n_shifts)`` (a shift whose R^2 is
      undefined counts as at least as extreme; a unit whose observed R^2 is NaN gets a
      NaN p-value and is not classified). The axes and the ridge penalty are not
      reselected per permutation (the test is conditional on them). Only with
      ``cross_fit=True``: with ``cross_fit=False`` the full-data axes were fitted on the
      very rows being predicted, so the observed alignment is the one they were chosen
      for and the shifted alignments are not; that null is not valid (on data without
      any encoding about 16 % of the units reach ``p <= 0.05``), so no permutations are
      run, ``p_value`` and ``q_value`` are NaN, ``encodes`` is ``<NA>`` (undecided),
      ``attrs["reason"]`` says why and a ``UserWarning`` recommends ``cross_fit=True``.
      ``r2_cv`` and the structure coefficients are still reported, as descriptions.
    * **q-value** (``q_value``): Benjamini-Hochberg within the subject;
      ``encodes = q_value <= fdr`` (False where the p-value is NaN).
    * **Structure coefficients** (``structure_0 ...``): correlation of the unit with each
      shared latent of the full-data fit ``z_s = transform_behavior(Y_s)``, at the single
      lag (per subject) where the units' squared correlations are largest in total
      (recorded in ``attrs["structure_lag"]``). Descriptive, no test.

    **What is resampled.** Only the alignment between each subject's latents and its
    units (circular shifts). **Unit of inference.** Units *within* a subject; the FDR is
    controlled per subject, never across animals.

    Parameters
    ----------
    model : ShaReD
        A model fitted on exactly these data (its axes, ``alpha_``, ``n_shared_`` and lags
        are used), or an unfitted template, which is then fitted (a clone).
    neural, behavior, groups
        As in :meth:`ShaReD.fit`.
    n_perm : int, default 200
    fdr : float in (0, 1), default 0.05
    random_state : int, SeedSequence, Generator or None
        Seeds the shifts (one child seed per subject).
    cv : int, default 5
        Folds of the unit-level cross-validation.
    alpha : float, default 0.01
        Scale-free ridge penalty of the unit regressions (``a n I`` added to the Gram
        matrix of the standardised lagged latents).
    lags : int, sequence or None
        Lags of the latents; default the model's lags.
    min_shift : int or None
        Minimum circular shift in samples (default per subject as in
        :func:`sharedrep.inference.permutation.default_min_shift`).
    cross_fit : bool, default True
        Refit the shared axes without each held-out block. ``False`` is faster but
        descriptive only: no p-values, q-values or ``encodes`` (see above).
    gap : int, default 0
        Samples on each side of a held-out block removed from its training part (for
        strongly autocorrelated data without trial structure).
    whole_trials : bool, default True
        With trial ids, shift by whole trials only. The number of distinct shifts is then
        about the number of trials (minus the excluded near-zero shifts); when it is at
        most ``n_perm`` all of them are used (an exhaustive test, ``attrs["n_perm"]``
        smaller), so the smallest attainable p-value is ``1 / (1 + n_shifts)``: with few
        trials no unit can pass the FDR threshold. ``False`` allows shifts by any number
        of samples (still at least ``min_shift``), at the price of breaking trial-locked
        structure in the null.
    progress : bool, default True
        Show a rich progress bar over permutations.

    Returns
    -------
    list of pandas.DataFrame
        One per subject, one row per unit: ``unit``, ``r2_cv``, ``p_value``, ``q_value``,
        ``encodes`` (bool; with ``cross_fit=False`` a pandas nullable ``boolean`` column
        of ``<NA>``), ``structure_0 .. structure_{k-1}``. ``attrs`` holds ``subject``,
        ``fdr`` (the threshold on ``q_value``), ``p_threshold`` (largest p-value declared
        encoding, NaN if none), ``n_perm`` (shifts used; 0 with ``cross_fit=False``),
        ``exhaustive``, ``lags``, ``structure_lag``, ``min_shift`` (None with
        ``cross_fit=False``), ``reason`` (why there are no p-values; empty when there
        are), ``cv``, ``alpha``, ``cross_fit``, ``gap``.
    """
    _check_model(model)
    n_perm, cv = _check_encoding_params(n_perm, fdr, cv, gap, alpha)
    nan_policy = model.get_params().get("nan_policy", "raise")
    Xs, Ys, gs = check_subject_arrays(neural, behavior, groups, nan_policy=nan_policy)
    Ts = [X.shape[0] for X in Xs]
    min_shift = _check_min_shift(min_shift, Ts)
    full = _full_model(model, Xs, Ys, gs)
    lags = as_lags(full.lags_ if lags is None else lags)
    k = int(full.n_shared_)

    folds = [_subject_folds(T, g, cv, s) for s, (T, g) in enumerate(zip(Ts, gs, strict=True))]
    masks = [_train_masks(fold, cv, gap) for fold in folds]
    latents = _fold_latents(full, Xs, Ys, gs, masks, cv, k, cross_fit)
    shifts_used, cands, shifts, reason = _unit_shifts(
        Ts, gs, min_shift, lags, whole_trials, n_perm, random_state, cross_fit
    )

    prepared = {}  # one subject's activity at a time, prepared once for all its shifts

    def r2_all(s, offset):
        if s not in prepared:
            prepared.clear()
            prepared[s] = _activity(Xs[s])
        design = (latents, s, lags, offset)
        return _unit_r2(prepared[s], gs[s], folds[s], masks[s], design, alpha, cv)

    observed = [r2_all(s, 0) for s in range(len(Xs))]
    null = _null_r2(r2_all, Xs, shifts, progress)
    tables = []
    for s in range(len(Xs)):
        structure_lag, corr = _structure(full, Xs[s], Ys[s], gs[s], s, lags)
        df, p_threshold = _unit_table(observed[s], null[s], fdr, corr, tested=cross_fit)
        df.attrs.update(
            subject=s,
            fdr=float(fdr),
            p_threshold=p_threshold,
            n_perm=int(null[s].shape[0]),
            exhaustive=bool(cross_fit and null[s].shape[0] == cands[s].size),
            lags=lags.tolist(),
            structure_lag=structure_lag,
            min_shift=None if shifts_used[s] is None else int(shifts_used[s]),
            reason=reason,
            cv=cv,
            alpha=float(alpha),
            cross_fit=bool(cross_fit),
            gap=int(gap),
        )
        tables.append(df)
    if cross_fit:
        _warn_p_value_floor(tables, fdr)
    return tables
