"""The shared ridge, fold builder and held-out R^2 (sharedrep.core.ridge, .cv, .metrics)."""

import numpy as np
import pytest
import scipy.linalg as sla
from sklearn.model_selection import GroupKFold, KFold

from sharedrep.core.cv import block_folds, fold_splits
from sharedrep.core.metrics import pooled_r2, r2_per_column
from sharedrep.core.ridge import ridge_cv, ridge_fit, standardize_columns


def _data(n=60, d=5, p=3, seed=0):
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, d)) * np.arange(1, d + 1) + 2.0
    Y = Z @ rng.normal(size=(d, p)) + rng.normal(size=(n, p))
    return Z, Y


@pytest.mark.parametrize("solver", ["svd", "normal"])
def test_ridge_fit_matches_the_normal_equations(solver):
    Z, Y = _data()
    a = 0.3
    fit = ridge_fit(Z, Y, a, constant="unit", solver=solver)
    Zs = (Z - Z.mean(axis=0)) / Z.std(axis=0)
    B = sla.solve(Zs.T @ Zs + a * Z.shape[0] * np.eye(Z.shape[1]), Zs.T @ (Y - Y.mean(axis=0)))
    np.testing.assert_allclose(fit.coef, B, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fit.predict(Z), Zs @ B + Y.mean(axis=0), rtol=1e-10)


def test_constant_column_gets_zero_weight():
    Z, Y = _data()
    Z[:, 2] = 7.0
    fit = ridge_fit(Z, Y, 0.1)
    assert np.isinf(fit.scale[2])
    moved = Z.copy()
    moved[:, 2] = -3.0
    np.testing.assert_array_equal(fit.predict(moved), fit.predict(Z))


def test_ridge_cv_selects_the_smallest_pooled_error():
    Z, Y = _data(n=80)
    alphas = np.array([1e-3, 1e-1, 10.0])
    splits = fold_splits(block_folds(80, 4, edges="kfold"))
    fit, mse = ridge_cv(Z, Y, alphas, splits)
    sse = [
        sum(np.sum((Y[te] - ridge_fit(Z[tr], Y[tr], a).predict(Z[te])) ** 2) for tr, te in splits)
        for a in alphas
    ]
    np.testing.assert_allclose(mse, np.array(sse) / (80 * 3), rtol=1e-10)
    assert fit.alpha == alphas[int(np.argmin(sse))]
    fit, mse = ridge_cv(Z, Y, alphas, None)
    assert mse is None and fit.alpha == 1.0


def test_block_folds_placements():
    n = 23
    kf = block_folds(n, 4, edges="kfold")
    for f, (_, te) in enumerate(KFold(4).split(np.zeros(n))):
        assert np.all(kf[te] == f)
    rounded = block_folds(n, 4)
    assert np.all(np.diff(rounded) >= 0) and set(rounded) == {0, 1, 2, 3}
    g = np.repeat([5, 3, 9, 1, 7], [3, 6, 2, 5, 4])
    contiguous = block_folds(g.size, 2, g)
    assert contiguous.tolist() == [0] * 11 + [1] * 9  # trials in order of appearance
    balanced = block_folds(g.size, 2, g, trials="balanced")
    for f, (_, te) in enumerate(GroupKFold(2).split(np.zeros(g.size), groups=g)):
        assert np.all(balanced[te] == f)
    with pytest.raises(ValueError, match="5 trials but cv=6 folds"):
        block_folds(g.size, 6, g)


def test_held_out_r2():
    Y = np.array([[1.0, 2.0], [2.0, 0.0], [3.0, 1.0], [np.nan, 1.0]])
    Yh = np.array([[1.5, 1.5], [2.0, 0.5], [2.5, 1.0], [0.0, 0.0]])
    scale = np.array([1.0, 2.0])
    ok = Y[:3]
    expected = 1 - np.sum(((ok - Yh[:3]) / scale) ** 2) / np.sum(((ok - ok.mean(0)) / scale) ** 2)
    assert pooled_r2(Y, Yh, scale) == pytest.approx(expected)
    assert np.isnan(pooled_r2(np.ones((3, 2)), np.ones((3, 2)), 1.0))
    np.testing.assert_allclose(r2_per_column(ok, Yh[:3]), [0.75, 0.75])


@pytest.mark.parametrize("constant", ["zero_weight", "unit"])
def test_constant_rule_is_each_columns_own_and_scale_free(constant):
    """A unit in tiny physical units, or next to a column with a large offset, keeps its
    weight: predictions do not change when a column is rescaled or another is offset."""
    Z, Y = _data()
    ref = ridge_fit(Z, Y, 1e-3, constant=constant).predict(Z)
    tiny, offset = np.ones(Z.shape[1]), np.zeros(Z.shape[1])
    tiny[0], offset[-1] = 1e-13, 1e8
    for changed in (Z * tiny, Z + offset):
        np.testing.assert_allclose(
            ridge_fit(changed, Y, 1e-3, constant=constant).predict(changed), ref, rtol=1e-6
        )
    mean, scale = standardize_columns(Z * tiny, constant)
    assert np.all(np.isfinite(scale)) and scale[0] < 1e-12
    flat = np.c_[Z, np.full(len(Z), 1e8), np.zeros(len(Z))]  # constants, large and zero
    _, scale = standardize_columns(flat, constant)
    assert np.all(scale[-2:] == (np.inf if constant == "zero_weight" else 1.0))
