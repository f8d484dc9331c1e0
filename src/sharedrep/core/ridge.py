"""Ridge regression with the ShaReD penalty convention, and its cross-validated selection.

The one ridge of the package outside the ShaReD solver: baselines and unit-level encoding
models (:mod:`sharedrep.inference.transfer`, :mod:`sharedrep.inference.encoding`) call it.
Columns of the design are standardised on the training rows, outputs are centred, and the
scale-free penalty ``a`` is multiplied by the number of training rows, as in
:class:`sharedrep.core.estimator.ShaReD`. It imports only numpy (folds come from
:func:`sharedrep.core.cv.block_folds`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["RidgeFit", "ridge_fit", "ridge_cv", "standardize_columns"]

CONSTANT_RULES = ("zero_weight", "unit")
_CONSTANT_REL = 1e-12  # std / |mean| at or below which a column is constant


def standardize_columns(Z: np.ndarray, constant: str = "zero_weight"):
    """Column means and scales of ``Z`` (n, d) for ``Zs = (Z - mean) / scale``.

    A column counts as constant when its standard deviation is at most ``1e-12`` times
    the magnitude of its own mean (rounding level for a column of one repeated value;
    exactly 0 for a column of zeros). The rule is the column's own and scale-free: a
    unit recorded in amperes (standard deviation ``1e-13``) or next to a column with a
    large offset is not mistaken for a constant.

    Parameters
    ----------
    Z : ndarray of shape (n, d)
    constant : {"zero_weight", "unit"}
        What a constant column becomes. ``"zero_weight"``: its scale is ``inf`` (so
        ``Zs`` is 0 and the column gets no weight). ``"unit"``: its scale is 1.

    Returns
    -------
    mean, scale : ndarray of shape (d,)
    """
    if constant not in CONSTANT_RULES:
        raise ValueError(f"constant must be one of {CONSTANT_RULES}; got {constant!r}")
    mean = Z.mean(axis=0)
    scale = Z.std(axis=0)
    flat = scale <= _CONSTANT_REL * np.abs(mean)
    scale[flat] = np.inf if constant == "zero_weight" else 1.0
    return mean, scale


@dataclass(frozen=True)
class RidgeFit:
    """A fitted ridge map ``Y_hat = ((Z - mean) / scale) @ coef + y_mean``.

    Attributes
    ----------
    mean, scale : ndarray of shape (d,)
        Column standardisation of the design (training rows).
    coef : ndarray of shape (d, p)
        Weights on the standardised design.
    y_mean : ndarray of shape (p,)
        Training mean of the outputs (the intercept).
    alpha : float
        Scale-free penalty; ``alpha * n`` was added to the Gram matrix.
    """

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    y_mean: np.ndarray
    alpha: float

    def predict(self, Z: np.ndarray) -> np.ndarray:
        """Predictions ``(n', p)`` for the design rows ``Z`` (n', d)."""
        return ((Z - self.mean) / self.scale) @ self.coef + self.y_mean


def _column_scaling(Z, constant, standardize):
    """``(mean, scale)``: standardised columns, or only centred ones (scale 1)."""
    if standardize:
        return standardize_columns(Z, constant)
    return Z.mean(axis=0), np.ones(Z.shape[1])


def _svd_pieces(Z, Y, constant, standardize=True):
    """``(mean, scale, Vt, s, U' Yc, y_mean)`` of ``Zs = U diag(s) Vt`` (thin SVD)."""
    mean, scale = _column_scaling(Z, constant, standardize)
    y_mean = Y.mean(axis=0)
    U, s, Vt = np.linalg.svd((Z - mean) / scale, full_matrices=False)
    return mean, scale, Vt, s, U.T @ (Y - y_mean), y_mean


def ridge_fit(
    Z: np.ndarray,
    Y: np.ndarray,
    alpha: float,
    *,
    constant: str = "zero_weight",
    solver: str = "svd",
    standardize: bool = True,
) -> RidgeFit:
    """Ridge regression of ``Y`` on the standardised columns of ``Z`` at one penalty.

    With ``Zs = (Z - mean) / scale`` and ``Yc = Y - y_mean`` (training means), the weights
    solve :math:`(Z_s^\\top Z_s + a n I) B = Z_s^\\top Y_c`, i.e.
    :math:`B = V \\operatorname{diag}(s / (s^2 + a n)) U^\\top Y_c` for the thin SVD
    :math:`Z_s = U \\operatorname{diag}(s) V^\\top`.

    Parameters
    ----------
    Z : ndarray of shape (n, d)
        Design (e.g. lag-embedded activity); rows are samples.
    Y : ndarray of shape (n, p)
        Outputs.
    alpha : float
        Scale-free penalty ``a`` (> 0).
    constant : {"zero_weight", "unit"}
        Rule for constant columns, see :func:`standardize_columns`.
    solver : {"svd", "normal"}
        ``"svd"``: through the thin SVD of ``Zs`` (the form used on a grid of penalties).
        ``"normal"``: the ``d x d`` normal equations solved by LAPACK (cheaper for many
        outputs and few columns).
    standardize : bool, default True
        ``False``: the columns are only centred (``scale = 1``), for a design already
        standardised once by the caller.

    Returns
    -------
    RidgeFit
    """
    if solver == "svd":
        mean, scale, Vt, s, UtY, y_mean = _svd_pieces(Z, Y, constant, standardize)
        coef = Vt.T @ ((s / (s**2 + alpha * Z.shape[0]))[:, None] * UtY)
        return RidgeFit(mean, scale, coef, y_mean, float(alpha))
    if solver != "normal":
        raise ValueError(f"solver must be 'svd' or 'normal'; got {solver!r}")
    mean, scale = _column_scaling(Z, constant, standardize)
    y_mean = Y.mean(axis=0)
    Zs = (Z - mean) / scale
    G = Zs.T @ Zs + alpha * Zs.shape[0] * np.eye(Zs.shape[1])
    coef = np.linalg.solve(G, Zs.T @ (Y - y_mean))
    return RidgeFit(mean, scale, coef, y_mean, float(alpha))


def _path_sse(Z, Y, alphas, splits, constant, standardize) -> tuple[np.ndarray, int]:
    """Held-out sum of squared errors of every alpha, pooled over the folds, and the
    number of held-out rows (one SVD per fold for the whole grid)."""
    sse = np.zeros(alphas.size)
    n_held = 0
    for tr, te in splits:
        mean, scale, Vt, s, UtY, y_mean = _svd_pieces(Z[tr], Y[tr], constant, standardize)
        P = ((Z[te] - mean) / scale) @ Vt.T
        for i, a in enumerate(alphas):
            d = s / (s**2 + a * tr.size)
            pred = (P * d) @ UtY + y_mean
            sse[i] += float(np.sum((Y[te] - pred) ** 2))
        n_held += te.size
    return sse, n_held


def ridge_cv(
    Z: np.ndarray,
    Y: np.ndarray,
    alphas: np.ndarray,
    splits,
    *,
    constant: str = "zero_weight",
    default_alpha: float = 1.0,
    standardize: bool = True,
):
    """Ridge with the penalty chosen by cross-validation, refitted on all rows.

    For every fold ``(train, test)`` the standardisation and the SVD are computed on the
    training rows; the held-out error of penalty ``a`` is
    :math:`\\sum_f \\lVert Y_{te} - \\hat Y_{te}(a) \\rVert_F^2` and the selected ``a``
    minimises it (the first on ties, so sort ``alphas``). The model is then refitted on
    all rows at that penalty (:func:`ridge_fit`).

    Parameters
    ----------
    Z : ndarray of shape (n, d)
    Y : ndarray of shape (n, p)
    alphas : ndarray of shape (n_alphas,)
        Candidate scale-free penalties.
    splits : list of (train, test) index arrays, or None
        Inner folds (e.g. from :func:`sharedrep.core.cv.block_folds`). ``None``: no
        selection; ``default_alpha`` is used with a grid of several values, the only value
        otherwise.
    constant : {"zero_weight", "unit"}
        Rule for constant columns, see :func:`standardize_columns`.
    default_alpha : float, default 1.0
    standardize : bool, default True
        ``False``: columns are only centred, in every fold and in the refit (for a
        design standardised once by the caller).

    Returns
    -------
    fit : RidgeFit
        The refit at the selected penalty (``fit.alpha``).
    cv_mse : ndarray of shape (n_alphas,) or None
        Pooled held-out mean squared error per candidate,
        ``sse / (n_held_out * p)``; ``None`` without splits.
    """
    if splits is None:
        alpha = default_alpha if alphas.size > 1 else float(alphas[0])
        return ridge_fit(Z, Y, alpha, constant=constant, standardize=standardize), None
    sse, n_held = _path_sse(Z, Y, alphas, splits, constant, standardize)
    alpha = float(alphas[int(np.argmin(sse))])
    fit = ridge_fit(Z, Y, alpha, constant=constant, standardize=standardize)
    return fit, sse / (n_held * Y.shape[1])
