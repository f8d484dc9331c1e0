"""Cross-subject transfer: decode a new animal from few calibration trials.

:func:`transfer_score` measures what the shared representation buys for a subject that
was *not* used to find it: the axes are fitted on the other subjects, only the held-out
subject's encoder is fitted (:meth:`ShaReD.add_subject`) on its first calibration trials,
and behaviour is decoded on its last trials. The references are a per-subject ridge decoder
(same lags, same calibration data, ridge penalty chosen by the same kind of inner
cross-validation) that knows nothing about the other subjects, and a constant prediction
(the calibration mean). :func:`check_calibration` flags calibration sets that cannot
support a comparison (constant or near-constant features, a behaviour range unlike the
test set's) and :func:`near_constant_features` says which features do not vary on a set
of rows (their R^2 is undefined); both are shared with
:mod:`sharedrep.inference.evaluate`. The ridge, its folds and the held-out R^2 are the
package's single helpers (:func:`sharedrep.core.ridge.ridge_cv`,
:func:`sharedrep.core.cv.block_folds`, :func:`sharedrep.core.metrics.pooled_r2`). It
imports :mod:`sharedrep.utils`, :mod:`sharedrep.core` and the shift machinery of
:mod:`sharedrep.inference.permutation`.
"""

from __future__ import annotations

import copy
import numbers
import warnings

import numpy as np
import pandas as pd
from joblib import delayed

from sharedrep.core.cv import block_folds, fold_splits
from sharedrep.core.design import (
    as_lags,
    lag_embed,
    segments,
    valid_rows,
)
from sharedrep.core.estimator import DEFAULT_ALPHAS
from sharedrep.core.metrics import pooled_r2
from sharedrep.core.ridge import ridge_cv
from sharedrep.inference._resampling import (
    _check_count,
    _check_model,
    _check_n_jobs,
    _for_subjects,
    _progress_map,
    _quiet_fit,
    _seed_sequence,
    _upper_p,
    _validate_data,
)
from sharedrep.inference.permutation import (
    _check_min_shift,
    circular_shift_candidates,
    draw_shifts,
)
from sharedrep.utils.validation import nonfinite_error

__all__ = [
    "transfer_score",
    "ridge_decoder",
    "RidgeDecoder",
    "check_calibration",
    "near_constant_features",
    "NEAR_CONSTANT",
]

#: A test row is "outside the calibration range" of a feature when it lies below the
#: calibration minimum or above the calibration maximum of that feature; a warning is
#: given when this holds for more than this share of the test rows, for any feature.
RANGE_SHARE = 0.25
#: A behaviour feature does not vary on a set of rows when its variance there is at most
#: this fraction of its pooled variance in the fit (``behavior_scale_ ** 2``): its std is
#: at most 1e-3 of how the feature varies in the fitted animals, i.e. sensor noise or
#: quantisation (an unconnected lever channel, a keypoint that never moved). An R^2 there
#: divides by that noise (a decoder off by 1 % of the pooled std scores about -100).
NEAR_CONSTANT = 1e-6
#: A behaviour feature is constant to rounding in its own units when its std is at most
#: this fraction of its largest magnitude: it varies only beyond its tenth significant
#: digit. Recorded behaviour has at most about seven (float32 data, 24-bit converters),
#: so such a spread is the rounding of a computed constant (unit conversions, filters,
#: resampling accumulate many float64 ulps, each ~1e-16 of the magnitude), not behaviour.
_ROUNDING = 1e-10


def near_constant_features(Y, scale) -> np.ndarray:
    """Behaviour features that do not vary on the rows of ``Y``: their R^2 is undefined.

    A feature does not vary when, over the rows where every feature is finite (the rows
    an R^2 scores), its variance is at most :data:`NEAR_CONSTANT` times ``scale ** 2``
    (its pooled variance in the fit), or when it is constant to rounding in its own
    units: its standard deviation is at most ``1e-10`` (``_ROUNDING``) of its largest
    magnitude ``max |Y|``, the magnitude that sets the rounding of its values (its values
    agree to about ten significant digits). The second rule does not depend on the unit
    of measurement, and an offset does not make a feature constant: ``1e6 + N(0, 1)``
    varies (std ``1e-6`` of its magnitude), ``1e6 + 1e-6 N(0, 1)`` does not. (The
    estimator's rule, :func:`sharedrep.core.solver.column_scales`, compares the variance
    with the mean square about an approximate centre and does not apply to raw, uncentred
    values.) With no such row, none varies.

    Parameters
    ----------
    Y : array-like of shape (n, p)
        Behaviour, raw units.
    scale : array-like of shape (p,)
        Pooled standard deviation of every feature in the fit (``behavior_scale_``).

    Returns
    -------
    ndarray of bool, shape (p,)
    """
    Y = np.asarray(Y, dtype=float)
    scale = np.asarray(scale, dtype=float)
    if Y.ndim != 2:
        raise ValueError(f"near_constant_features: Y must be 2-D (n, p); got shape {Y.shape}")
    if scale.shape != (Y.shape[1],):
        raise ValueError(
            f"near_constant_features: scale must have shape ({Y.shape[1]},), one pooled std "
            f"per behaviour feature of Y {Y.shape}; got shape {scale.shape}"
        )
    Y = Y[np.all(np.isfinite(Y), axis=1)]
    if Y.shape[0] == 0:
        return np.ones(Y.shape[1], dtype=bool)
    var = np.var(Y, axis=0)
    own = np.sqrt(var) <= _ROUNDING * np.max(np.abs(Y), axis=0)
    return own | (var <= NEAR_CONSTANT * scale**2)


def _constant_features(Y: np.ndarray) -> list[int]:
    """Columns of ``Y`` whose finite values do not vary: range at most ``1e-12`` of the
    column's own largest magnitude (scale-free: behaviour in small units is not constant)."""
    out = []
    for j in range(Y.shape[1]):
        v = Y[np.isfinite(Y[:, j]), j]
        if v.size == 0 or np.ptp(v) <= 1e-12 * float(np.max(np.abs(v))):
            out.append(j)
    return out


def check_calibration(Y_cal, Y_test, where: str, names=None, *, scale=None) -> list[str]:
    """Warn when a calibration set cannot support a comparison on its test set.

    Two problems are flagged, each with a ``UserWarning`` naming ``where`` and the
    features:

    * **constant features**: a behaviour feature that does not vary over the calibration
      rows (no decoder can learn it there); with ``scale``, also the **near-constant**
      ones (:func:`near_constant_features`: variance at most :data:`NEAR_CONSTANT` of the
      pooled variance, e.g. a constant plus sensor noise);
    * **a different behaviour range**: for some feature, more than :data:`RANGE_SHARE`
      (25 %) of the finite test rows lie outside the ``[min, max]`` of the calibration
      rows (the decoders must extrapolate; comparisons then measure extrapolation).

    Parameters
    ----------
    Y_cal : ndarray of shape (n_cal, p)
        Behaviour of the calibration rows (raw units; non-finite values ignored).
    Y_test : ndarray of shape (n_test, p)
        Behaviour of the test rows.
    where : str
        Who is calibrated (e.g. ``"held-out subject 3, calibration fraction 0.1"``).
    names : sequence of str or None
        Feature names (default ``feature 0``, ``feature 1``, ...).
    scale : array-like of shape (p,) or None
        Pooled standard deviation of every feature in the fit (``behavior_scale_``), in
        the units of ``Y_cal``; None: only exactly constant features are flagged.

    Returns
    -------
    list of str
        The warning messages (also issued as warnings).
    """
    Y_cal = np.asarray(Y_cal, dtype=float)
    Y_test = np.asarray(Y_test, dtype=float)
    p = Y_cal.shape[1]
    names = [f"feature {j}" for j in range(p)] if names is None else [str(n) for n in names]
    const, messages = _flat_calibration(Y_cal, where, names, scale)
    messages += _range_message(Y_cal, Y_test, const, where, names)
    for msg in messages:
        warnings.warn(msg, UserWarning, stacklevel=2)
    return messages


def _flat_calibration(Y_cal: np.ndarray, where: str, names: list, scale) -> tuple[list, list]:
    """:func:`check_calibration`'s constant (and, with ``scale``, near-constant) features
    of ``Y_cal`` (n_cal, p): ``(indices, messages)``."""
    messages = []
    const = _constant_features(Y_cal)
    if const:
        messages.append(
            f"{where}: the calibration set has constant behaviour features "
            f"{[names[j] for j in const]}: they cannot be learnt from it"
        )
    if scale is not None:
        near = [j for j in np.flatnonzero(near_constant_features(Y_cal, scale)) if j not in const]
        if near:
            messages.append(
                f"{where}: the calibration set has near-constant behaviour features "
                f"{[names[j] for j in near]} (variance at most {NEAR_CONSTANT:g} of the "
                "feature's pooled variance in the fit: noise, not behaviour): they cannot be "
                "learnt from it"
            )
        const = const + near
    return const, messages


def _range_message(Y_cal: np.ndarray, Y_test: np.ndarray, const: list, where: str, names):
    """:func:`check_calibration`'s message (a list of at most one) on the features, other
    than ``const``, for which more than :data:`RANGE_SHARE` of the finite test rows of
    ``Y_test`` (n_test, p) lie outside the calibration ``[min, max]`` of ``Y_cal``."""
    outside = []
    for j in range(Y_cal.shape[1]):
        c = Y_cal[np.isfinite(Y_cal[:, j]), j]
        t = Y_test[np.isfinite(Y_test[:, j]), j]
        if j in const or c.size == 0 or t.size == 0:
            continue
        share = float(np.mean((t < c.min()) | (t > c.max())))
        if share > RANGE_SHARE:
            outside.append(f"{names[j]} ({share:.0%})")
    if not outside:
        return []
    return [
        f"{where}: the calibration set covers a different behaviour range than the test "
        f"set: share of test rows outside the calibration min-max: {', '.join(outside)} "
        f"(more than {RANGE_SHARE:.0%}); the decoders must extrapolate"
    ]


def _split_points(n_samples: int, groups, fractions, test_fraction: float, subject: int):
    """Calibration prefixes (one per fraction) and the test suffix, as row masks.

    Units are whole trials (in order of first appearance) with trial ids, samples
    otherwise. Returns ``(cal_masks, n_cal, test_mask, n_test, unit)``.
    """
    if groups is None:
        order_id = np.arange(n_samples)
        n_units = n_samples
        unit = "samples"
    else:
        _, first, inv = np.unique(np.asarray(groups), return_index=True, return_inverse=True)
        rank = np.empty(first.size, dtype=np.int64)
        rank[np.argsort(first, kind="stable")] = np.arange(first.size)
        order_id = rank[inv]
        n_units = first.size
        unit = "trials"
    n_test = int(np.ceil(test_fraction * n_units))
    cal_masks, n_cal = [], []
    for f in fractions:
        n = max(1, int(round(f * n_units)))
        if n + n_test > n_units:
            raise ValueError(
                f"held-out subject {subject}: calibration fraction {f} ({n} {unit}) plus the "
                f"test block ({n_test} {unit}, test_fraction={test_fraction}) exceed its "
                f"{n_units} {unit}"
            )
        cal_masks.append(order_id < n)
        n_cal.append(n)
    test_mask = order_id >= n_units - n_test
    return cal_masks, n_cal, test_mask, n_test, unit


def _inner_splits(n_rows: int, groups_rows, n_folds: int):
    """Inner CV splits of the calibration rows (mirrors ``ShaReD.add_subject``).

    Whole trials in size-balanced folds with at least two trials, otherwise contiguous
    sample blocks; ``None`` when fewer than two folds are possible.
    """
    if groups_rows is not None:
        n_trials = np.unique(groups_rows).size
        if n_trials >= 2:
            k = min(n_folds, n_trials)
            return fold_splits(block_folds(n_rows, k, groups_rows, trials="balanced"))
    k = min(n_folds, n_rows // 2)
    if k < 2:
        return None
    return fold_splits(block_folds(n_rows, k, edges="kfold"))


class RidgeDecoder:
    """Single-subject ridge decoder fitted by :func:`ridge_decoder`.

    Attributes
    ----------
    alpha_ : float
        Chosen scale-free penalty (``alpha_ * n`` is added to the Gram matrix of the
        standardised lagged activity).
    lags : ndarray of int
    cv_mse_ : ndarray (n_alphas,) or None
        Pooled held-out mean squared error of each candidate alpha.
    """

    def __init__(self, lags, alpha, coef, mean, sd, y_mean, cv_mse=None):
        self.lags = lags
        self.alpha_ = float(alpha)
        self.coef_ = coef
        self._mean, self._sd, self._y_mean = mean, sd, y_mean
        self.cv_mse_ = cv_mse

    def predict(self, X, groups=None):
        """Predicted behaviour ``(Y_hat, rows)`` for the rows with a complete, finite lag
        window (windows holding a non-finite sample are left out, not predicted as NaN)."""
        X = np.asarray(X, dtype=float)
        rows = valid_rows(X.shape[0], self.lags, groups, finite=np.all(np.isfinite(X), axis=1))
        Zs = (lag_embed(X, self.lags, rows) - self._mean) / self._sd
        return Zs @ self.coef_ + self._y_mean, rows


def ridge_decoder(
    X, Y, groups=None, lags=0, alphas=None, cv: int = 5, nan_policy: str = "raise"
) -> RidgeDecoder:
    """Fit a single-subject ridge decoder of behaviour from lagged neural activity.

    Lag-embedded activity (windows never cross trials), each column standardised on the
    training rows (constant columns get zero weight), one ridge penalty ``a * n`` shared by
    all outputs, with ``a`` chosen from ``alphas`` (scale-free grid, as in
    :class:`ShaReD`) by the pooled held-out squared error of ``cv``-fold cross-validation
    over whole trials (contiguous sample blocks with fewer than two trials; the smallest
    grid; ``a = 1`` when even that is impossible). Standardisation is
    refitted in every fold. Solved through one SVD per fold for the whole grid.

    With ``nan_policy="omit"``, samples with non-finite behaviour and lag windows with a
    non-finite activity sample are left out (``"raise"``: such values are an error).

    Returns
    -------
    RidgeDecoder
        ``.predict(X_new, groups_new) -> (Y_hat, rows)``.
    """
    X = np.asarray(X, dtype=float)
    Y = np.asarray(Y, dtype=float)
    lags = as_lags(lags)
    alphas = DEFAULT_ALPHAS if alphas is None else np.sort(np.asarray(alphas, dtype=float))
    finite_x, finite_y = np.all(np.isfinite(X), axis=1), np.all(np.isfinite(Y), axis=1)
    if nan_policy != "omit":
        for name, A, ok in (("neural", X, finite_x), ("behavior", Y, finite_y)):
            if not ok.all():
                raise nonfinite_error(f"ridge decoder: {name}", np.argwhere(~np.isfinite(A))[0])
    rows = valid_rows(X.shape[0], lags, groups, finite=finite_x)
    rows = rows[finite_y[rows]]
    if rows.size < 3:
        raise ValueError(
            f"only {rows.size} complete lag windows in the calibration data; need at least 3"
        )
    Z = lag_embed(X, lags, rows)
    Yr = Y[rows]
    g_rows = None if groups is None else np.asarray(groups)[rows]
    splits = _inner_splits(rows.size, g_rows, cv)
    fit, cv_mse = ridge_cv(Z, Yr, alphas, splits)
    return RidgeDecoder(lags, fit.alpha, fit.coef, fit.mean, fit.scale, fit.y_mean, cv_mse)


def _fraction_scores(base, X, Y, g, split, fractions, target, ridge_alphas, s, check=False):
    """R^2 of (shared, ridge, constant) on the test block for every calibration fraction.

    ``check``: warn about unusable calibration sets (:func:`check_calibration`); off for
    the shifted recordings of the permutation null.
    """
    cal_masks, n_cal, test_mask, _, unit = split
    Xt, Yt = X[test_mask], Y[test_mask]
    # without trial ids the calibration and test blocks are separate pieces
    gt = np.zeros(Xt.shape[0], dtype=np.int64) if g is None else np.asarray(g)[test_mask]
    scale = base.behavior_scale_
    n_folds = int(base.cv) if base.cv is not None else 5
    out = []
    for f, mask, nc in zip(fractions, cal_masks, n_cal, strict=True):
        Xc, Yc = X[mask], Y[mask]
        gc = None if g is None else np.asarray(g)[mask]
        where = f"held-out subject {s}, calibration fraction {f} ({nc} {unit})"
        if check:
            check_calibration(Yc, Yt, where, scale=scale)
        m = copy.deepcopy(base)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*are constant", category=UserWarning)
            try:
                idx = m.add_subject(Xc, Yc, groups=gc)
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
        if target == "behavior":
            pred, rows = m.predict(Xt, subject=idx, groups=gt, return_rows=True)
            cal_target, true_test, tscale = Yc, Yt, scale
        else:
            # latents centred at the subject's calibration mean, as ``transform`` returns
            pred, rows = m.transform(Xt, subject=idx, groups=gt, return_rows=True)
            true_test = m.transform_behavior(Yt, subject=idx)
            tscale = np.ones(true_test.shape[1])
            cal_target = m.transform_behavior(Yc, subject=idx)
        varies = _varies(Yt[rows], scale)  # the rows the shared and constant scores share
        r2_shared = _r2_if_varies(true_test[rows], pred, tscale, varies)
        try:
            dec = ridge_decoder(
                Xc,
                cal_target,
                groups=gc,
                lags=base.lags_,
                alphas=ridge_alphas,
                cv=n_folds,
                nan_policy=base.nan_policy,
            )
        except ValueError as exc:
            raise ValueError(f"{where}: ridge decoder: {exc}") from None
        Rh, rrows = dec.predict(Xt, gt)
        # the constant baseline: the calibration mean, on the rows the shared decoder scores
        const = np.broadcast_to(np.nanmean(cal_target, axis=0), (rows.size, tscale.size))
        r2_const = _r2_if_varies(true_test[rows], const, tscale, varies)
        if not np.array_equal(rrows, rows):
            varies = _varies(Yt[rrows], scale)
        r2_ridge = _r2_if_varies(true_test[rrows], Rh, tscale, varies)
        out.append((r2_shared, r2_ridge, r2_const))
    return np.array(out, dtype=float)


def _varies(Y_rows, scale) -> bool:
    """Whether some behaviour feature varies on the scored rows ``Y_rows`` (n, p) (raw
    units; :func:`near_constant_features` with the fit's pooled ``scale``, shape (p,))."""
    return not np.all(near_constant_features(Y_rows, scale))


def _r2_if_varies(true, pred, tscale, varies: bool) -> float:
    """:func:`sharedrep.core.metrics.pooled_r2` of ``pred`` against ``true`` (n, q), NaN
    when no behaviour feature varies on the scored rows (``varies`` False, from
    :func:`_varies`): 1 - SSE/SST would divide by noise (e.g. -2e9 for a constant plus
    1e-6 noise)."""
    if not varies:
        return float("nan")
    return pooled_r2(true, pred, tscale)


def _transfer_one(*args):
    """:func:`_transfer_scores` with its warnings recorded, to be re-issued by the caller
    (warnings raised in joblib worker processes would be lost)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = _transfer_scores(*args)
    return rows, [(str(w.message), w.category) for w in caught]


def _transfer_scores(
    template, Xs, Ys, gs, s, fractions, test_fraction, target, ridge_alphas, shifts
):
    others = [i for i in range(len(Xs)) if i != s]
    base = _quiet_fit(
        _for_subjects(template, others, len(Xs)),
        [Xs[i] for i in others],
        [Ys[i] for i in others],
        [gs[i] for i in others],
    )
    X, Y, g = Xs[s], Ys[s], gs[s]
    split = _split_points(X.shape[0], g, fractions, test_fraction, s)
    args = (fractions, target, ridge_alphas, s)
    observed = _fraction_scores(base, X, Y, g, split, *args, check=True)  # (n_fractions, 3)
    p = np.full(observed.shape, np.nan)
    if len(shifts):
        null = np.stack(
            [
                _fraction_scores(base, X, np.roll(Y, -int(c), axis=0), g, split, *args)
                for c in shifts
            ]
        )
        # a NaN null R^2 counts as at least as extreme; a NaN observed R^2 gives NaN
        p = _upper_p(observed, null)
        p[:, 2] = np.nan  # the constant prediction is a reference, not tested
    _warn_undefined_r2(observed, fractions, s, tested=len(shifts) > 0)
    _warn_below_constant(observed, fractions, s)
    n_cal, n_test, unit = split[1], split[3], split[4]
    rows_out = []
    for i, (f, nc) in enumerate(zip(fractions, n_cal, strict=True)):
        for j, method in enumerate(("shared", "ridge", "constant")):
            rows_out.append(
                dict(
                    subject=s,
                    fraction=float(f),
                    n_calibration=int(nc),
                    calibration_unit=unit,
                    n_test=int(n_test),
                    method=method,
                    r2=float(observed[i, j]),
                    above_constant=bool(observed[i, j] > observed[i, 2]) if j < 2 else False,
                    p_value=float(p[i, j]),
                    n_shifts=len(shifts),
                )
            )
    return rows_out


def _warn_undefined_r2(observed: np.ndarray, fractions, s, tested: bool) -> None:
    """Warn where a decoder's R^2 is NaN (columns shared, ridge, constant).

    The R^2 is undefined when no behaviour feature varies on the scored test rows
    (:func:`near_constant_features`; or there are none); such a cell is not tested: its
    ``p_value`` is NaN, never a small p.
    """
    for (r_shared, r_ridge, _), f in zip(observed, fractions, strict=True):
        undefined = [m for m, r in (("shared", r_shared), ("ridge", r_ridge)) if np.isnan(r)]
        if undefined:
            warnings.warn(
                f"held-out subject {s}, calibration fraction {f}: the R^2 of the "
                f"{' and '.join(undefined)} decoder{'s' if len(undefined) > 1 else ''} is "
                "undefined (NaN: no behaviour feature varies on the scored test rows -- "
                f"variance at most {NEAR_CONSTANT:g} of its pooled variance -- or there are "
                f"none){'; it is not tested (p_value NaN)' if tested else ''}",
                UserWarning,
                stacklevel=2,
            )


def _warn_below_constant(observed: np.ndarray, fractions, s) -> None:
    """Warn where neither decoder beats the constant prediction (columns shared, ridge,
    constant): comparing the two decoders there is meaningless."""
    for (r_shared, r_ridge, r_const), f in zip(observed, fractions, strict=True):
        if r_shared <= r_const and r_ridge <= r_const:
            warnings.warn(
                f"held-out subject {s}, calibration fraction {f}: neither the shared decoder "
                f"(R^2 {r_shared:.3f}) nor the ridge decoder ({r_ridge:.3f}) beats a constant "
                f"prediction of the calibration mean ({r_const:.3f}); do not read a "
                "difference between them as a gain",
                UserWarning,
                stacklevel=2,
            )


def transfer_score(
    model,
    neural,
    behavior,
    groups=None,
    calibration_fractions=(0.05, 0.1, 0.2, 0.5),
    *,
    test_fraction: float = 0.3,
    subjects=None,
    target: str = "behavior",
    ridge_alphas=None,
    n_perm: int = 0,
    min_shift: int | None = None,
    level: float = 0.05,
    random_state=None,
    n_jobs: int = 1,
    progress: bool = True,
) -> pd.DataFrame:
    """Leave-one-subject-out transfer as a function of calibration size.

    For every held-out subject ``s``:

    1. the complete pipeline (``clone(model)``, cross-validated selection included) is fitted
       on the *other* subjects, giving the shared axes;
    2. the subject's trials are ordered in time; its last ``test_fraction`` of trials is
       the test set, and for each fraction ``f`` its first ``round(f * n_trials)`` trials
       are the calibration set (samples instead of trials without trial ids);
    3. **shared**: with the axes frozen, only the subject's encoder is fitted on the
       calibration set (:meth:`ShaReD.add_subject`, inner CV for its ridge penalty), and
       behaviour is decoded on the test set through the shared representation;
    4. **ridge**: a per-subject ridge decoder (:func:`ridge_decoder`: same lags, same
       calibration rows, penalty by inner CV over the same number of trial folds) is fitted
       on the same calibration set and decodes the same test set.

    Score: ``target="behavior"`` -- pooled R^2 of all behaviour features in the
    pooled-standardised units of the fit on the other subjects (``1 - SSE/SST``, SST about
    the test-set mean, the same rows for both methods); ``target="latents"`` -- R^2 of the
    shared latents ``z = transform_behavior(Y)`` (the ridge decoder then predicts ``z``).
    The score is undefined (NaN) when no behaviour feature varies on the scored test rows
    (:func:`near_constant_features`: variance at most :data:`NEAR_CONSTANT` of the pooled
    variance, e.g. a constant plus sensor noise): ``1 - SSE/SST`` would divide by noise.

    **Permutation p-values** (``n_perm > 0``): is a held-out subject decoded better than
    chance? The held-out subject's behaviour is circularly shifted against its neural
    activity (whole trials with trial ids; minimum shift as in
    :func:`sharedrep.inference.permutation.permutation_test`), and calibration, encoder /
    decoder fitting (inner CV included) and scoring are redone on the shifted recording; the
    axes from the other subjects stay fixed. ``p = (1 + #{null R^2 >= R^2 or NaN}) /
    (1 + n_shifts)`` per subject, fraction and method (distinct shifts; all of them when
    there are at most ``n_perm``): a shifted recording whose R^2 is undefined (NaN, e.g.
    a constant test block after the shift) counts as at least as extreme, so it never
    makes the observed R^2 look rarer. Where the observed R^2 itself is NaN (the test
    rows' behaviour does not vary), the cell is not tested: ``p_value`` is NaN and a
    warning says so. The number of distinct circular shifts a held-out subject allows is
    counted first (with trial ids: the trial starts at least ``min_shift`` from 0 and
    from ``T``); when it is smaller than ``n_perm``, all of them are used, a warning says
    so and the column ``n_shifts`` (and ``df.attrs["n_shifts"]``) reports the number
    actually used. When the smallest achievable p-value ``1 / (1 + n_shifts)`` exceeds
    ``level``, a warning says that the test cannot reach significance at that level.

    **Warnings about the comparison** (``UserWarning``, naming the subject, the fraction
    and the features): a decoder whose R^2 is undefined (NaN: the test rows' behaviour
    does not vary); a calibration set with constant or near-constant behaviour features
    (:func:`near_constant_features` with the fit's pooled scale), or covering a
    different behaviour range than the test set (more than 25 % of the test rows outside
    the calibration min-max of a feature; :func:`check_calibration`); and a fraction at
    which neither decoder beats the constant prediction (then "shared beats ridge" means
    nothing; the column ``above_constant`` says which decoders beat it).

    **What is resampled.** Only the alignment of the held-out subject's behaviour (for the
    p-values); each subject is held out once. **Unit of inference.** Subjects: the table
    has one score per held-out subject, method and fraction; compare methods with a
    paired test across subjects (not across samples); the p-values are per subject.

    **Constant baseline** (``method="constant"``): the calibration mean of the target,
    predicted for every test row (the R^2 of "knowing nothing"; slightly negative because
    the test mean differs from the calibration mean).

    Note that with ``n_shared`` equal to the number of behaviour features the frozen axes
    constrain nothing, and the shared decoder differs from the ridge decoder only through
    its metric and penalty selection.

    Parameters
    ----------
    model : ShaReD
        Template (cloned; not modified).
    neural, behavior, groups
        As in :meth:`ShaReD.fit`; at least 2 subjects.
    calibration_fractions : sequence of float in (0, 1)
    test_fraction : float in (0, 1), default 0.3
        ``max(calibration_fractions) + test_fraction`` must not exceed 1.
    subjects : sequence of int or None
        Subjects to hold out (default all).
    target : {"behavior", "latents"}
    ridge_alphas : array-like or None
        Scale-free grid of the ridge decoder (default the ShaReD default grid).
    n_perm : int, default 0
        Circular-shift permutations per held-out subject (0: no p-values).
    min_shift : int or None
        Minimum shift in samples (default as in
        :func:`sharedrep.inference.permutation.default_min_shift`).
    level : float in (0, 1), default 0.05
        Significance level used only to warn when the permutation test cannot reach it.
    random_state : int, SeedSequence, Generator or None
        Seeds the shifts (one child seed per held-out subject).
    n_jobs : int
        Parallel jobs over held-out subjects.
    progress : bool

    Returns
    -------
    pandas.DataFrame
        Tidy: ``subject``, ``fraction``, ``n_calibration``, ``calibration_unit``,
        ``n_test``, ``method`` (``"shared"``, ``"ridge"`` or ``"constant"``), ``r2``,
        ``above_constant`` (the decoder's R^2 exceeds the constant prediction's; False for
        the constant rows and where ``r2`` is NaN), ``p_value`` (NaN without
        permutations, for the constant rows and where ``r2`` is NaN), ``n_shifts``
        (circular shifts actually used for the subject; 0 without permutations).
        ``df.attrs``: ``target``, ``test_fraction``, ``n_perm`` (as requested),
        ``n_shifts`` (dict subject -> shifts used), ``level``.
    """
    _check_model(model)
    n_jobs = _check_n_jobs(n_jobs, model)
    if target not in ("behavior", "latents"):
        raise ValueError(f"target must be 'behavior' or 'latents'; got {target!r}")
    try:
        fractions = [float(f) for f in np.atleast_1d(calibration_fractions)]
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"calibration_fractions must be numbers in (0, 1); got {calibration_fractions!r}"
        ) from exc
    if not fractions or not all(0.0 < f < 1.0 for f in fractions):
        raise ValueError(
            f"calibration_fractions must be numbers in (0, 1); got {calibration_fractions!r}"
        )
    if not (isinstance(test_fraction, numbers.Real) and 0.0 < test_fraction < 1.0):
        raise ValueError(f"test_fraction must be a number in (0, 1); got {test_fraction!r}")
    if max(fractions) + test_fraction > 1.0 + 1e-12:
        raise ValueError(
            f"max(calibration_fractions)={max(fractions)} + test_fraction={test_fraction} "
            "exceeds 1: calibration and test trials would overlap"
        )
    Xs, Ys, gs = _validate_data(model, neural, behavior, groups)
    S = len(Xs)
    if S < 2:
        raise ValueError(f"transfer_score holds out one subject at a time: need >= 2, got {S}")
    if subjects is None:
        subjects = list(range(S))
    else:
        subjects = [int(s) for s in np.atleast_1d(subjects)]
        for s in subjects:
            if not 0 <= s < S:
                raise IndexError(f"subject {s} is out of range: there are {S} subjects")
    for s, (X, g) in enumerate(zip(Xs, gs, strict=True)):
        if g is not None and segments(X.shape[0], g)[-1] + 1 < 2:
            raise ValueError(f"subject {s}: a single trial cannot be split into calibration/test")
    n_perm = _check_count(n_perm, "n_perm", 0)
    if not (isinstance(level, numbers.Real) and 0.0 < level < 1.0):
        raise ValueError(f"level must be a number in (0, 1); got {level!r}")
    min_shift = _check_min_shift(min_shift, [X.shape[0] for X in Xs])
    lags = model.get_params().get("lags", 0)
    shifts = {}
    seeds = _seed_sequence(random_state).spawn(len(subjects))
    for s, seed in zip(subjects, seeds, strict=True):
        if n_perm == 0:
            shifts[s] = np.zeros(0, dtype=np.int64)
            continue
        try:
            cand = circular_shift_candidates(Xs[s].shape[0], gs[s], min_shift, lags)
        except ValueError as exc:
            raise ValueError(f"subject {s}: {exc}") from None
        shifts[s] = draw_shifts([cand], n_perm, seed)[0][:, 0]
        _warn_few_shifts(s, cand.size, n_perm, level)
    tasks = [
        delayed(_transfer_one)(
            model, Xs, Ys, gs, s, fractions, test_fraction, target, ridge_alphas, shifts[s]
        )
        for s in subjects
    ]
    results = _progress_map(tasks, n_jobs, progress, "held-out subjects")
    for _, caught in results:
        for message, category in caught:
            warnings.warn(message, category, stacklevel=2)
    df = pd.DataFrame([row for rows, _ in results for row in rows])
    df.attrs.update(
        target=target,
        test_fraction=float(test_fraction),
        n_perm=n_perm,
        n_shifts={int(s): int(len(shifts[s])) for s in subjects},
        level=float(level),
    )
    return df


def _warn_few_shifts(s: int, n_available: int, n_perm: int, level: float) -> None:
    """Warn when fewer distinct shifts than ``n_perm`` exist, and when the smallest
    achievable p-value ``1 / (1 + n_shifts)`` exceeds ``level``."""
    n_used = min(n_available, n_perm)
    if n_available < n_perm:
        warnings.warn(
            f"held-out subject {s}: only {n_available} distinct circular shifts exist "
            f"(n_perm={n_perm} requested); all {n_available} are used (column n_shifts)",
            UserWarning,
            stacklevel=3,
        )
    p_min = 1.0 / (1.0 + n_used)
    if p_min > level:
        warnings.warn(
            f"held-out subject {s}: with {n_used} circular shifts the smallest achievable "
            f"p-value is {p_min:.3g} > level {level}: this permutation test cannot reach "
            "significance",
            UserWarning,
            stacklevel=3,
        )
