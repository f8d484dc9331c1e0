"""form="dual": kernel solves for subjects with more lagged columns than samples.

The dual form must give the primal model up to rounding: same alpha and k, axes,
encoders, CV scores and private components.
"""

import numpy as np
import pytest

from model_checks import assert_close_models
from sharedrep import ShaReD, simulate
from sharedrep.core import solver
from sharedrep.core.backends import get_backend
from sharedrep.core.dual import KernelData, KernelFoldSolution, use_kernel

RTOL = 1e-8


def assert_same(a, b, rtol=RTOL):
    assert_close_models(a, b, rtol)
    for ua, ub in zip(a.unit_scales_, b.unit_scales_, strict=True):
        np.testing.assert_allclose(ub, ua, rtol=1e-10)


@pytest.fixture(scope="module")
def wide():
    # 150 units x lags 0..1 = 300 columns per subject, 200 or 400 samples: q > n for two
    # of the three subjects, q < n for the third
    return simulate(
        n_subjects=3,
        n_samples=[200, 260, 900],
        n_units=150,
        n_behavior=5,
        seed=4,
        trial_length=20,
        snr=0.5,
    )


def test_auto_uses_the_kernel_form_where_columns_exceed_rows(wide):
    prep = get_backend("numpy").statistics(
        wide.neural, wide.behavior, wide.groups, np.array([0, 1]), 4, gap=1, form="auto"
    )
    kinds = [isinstance(p.stats, KernelData) for p in prep]
    assert kinds == [True, True, False]
    assert use_kernel("dual", 1, 10) and not use_kernel("primal", 10, 1)
    with pytest.raises(ValueError, match="form must be one of"):
        use_kernel("kernel", 1, 1)


@pytest.mark.parametrize("metric", ["correlation", "variance"])
def test_auto_and_dual_equal_primal(wide, metric):
    kw = dict(n_shared="auto", lags=1, cv=4, random_state=0, behavior_metric=metric)
    a = ShaReD(form="primal", **kw).fit(wide.neural, wide.behavior, groups=wide.groups)
    b = ShaReD(form="auto", **kw).fit(wide.neural, wide.behavior, groups=wide.groups)
    c = ShaReD(form="dual", **kw).fit(wide.neural, wide.behavior, groups=wide.groups)
    assert_same(a, b)
    assert_same(a, c)


def test_dual_with_constant_units_nan_and_long_alpha_grid(wide):
    X = [x.copy() for x in wide.neural]
    X[0][:, 5] = 2.0  # a constant unit
    X[1][30:33, 7] = np.nan
    kw = dict(
        n_shared=2,
        lags=1,
        cv=3,
        random_state=1,
        nan_policy="omit",
        alphas=np.logspace(-3, 3, 31),  # >= 30 alphas: one eigendecomposition per fold
    )
    with pytest.warns(UserWarning, match="constant"):
        a = ShaReD(form="primal", **kw).fit(X, wide.behavior, groups=wide.groups)
    with pytest.warns(UserWarning, match="constant"):
        b = ShaReD(form="dual", **kw).fit(X, wide.behavior, groups=wide.groups)
    assert_same(a, b)
    assert np.all(b.encoders_[0][[5, 155]] == 0.0)  # the constant unit, both lags


def test_cv_errors_and_fit_from_stats_accept_kernel_data(wide):
    be = get_backend("numpy")
    args = (wide.neural, wide.behavior, wide.groups, np.array([0]), 3)
    primal = be.statistics(*args, gap=0, form="primal")
    dual = be.statistics(*args, gap=0, form="dual")
    w = np.array([0.5, 0.3, 0.2])
    alphas = np.array([1e-2, 1.0, 30.0])
    ref = solver.cv_errors(
        [p.stats for p in primal], [p.chunks for p in primal], w, alphas, 3, "correlation", 0.05
    )
    got = solver.cv_errors(
        [p.stats for p in dual], [p.chunks for p in dual], w, alphas, 3, "correlation", 0.05
    )
    for key in ref:
        np.testing.assert_allclose(got[key], ref[key], rtol=1e-9, atol=1e-9)
    f1 = solver.fit_from_stats([solver.total(p.stats) for p in primal], w, 0.1, 2, "variance", 0)
    f2 = solver.fit_from_stats(
        [solver.subject_total(p.stats) for p in dual], w, 0.1, 2, "variance", 0
    )
    np.testing.assert_allclose(f2.axes, f1.axes, atol=1e-9)
    for e1, e2 in zip(f1.encoders, f2.encoders, strict=True):
        np.testing.assert_allclose(e2, e1, rtol=1e-8, atol=1e-10 * np.abs(e1).max())
    assert f2.standardized[0].gram is None


def test_add_subject_in_the_kernel_form(wide):
    kw = dict(n_shared=2, lags=1, cv=3, random_state=0, alphas=[0.01, 0.1, 1.0])
    a = ShaReD(form="primal", **kw).fit(wide.neural[1:], wide.behavior[1:], wide.groups[1:])
    b = ShaReD(form="auto", **kw).fit(wide.neural[1:], wide.behavior[1:], wide.groups[1:])
    a.add_subject(wide.neural[0], wide.behavior[0], groups=wide.groups[0])
    b.add_subject(wide.neural[0], wide.behavior[0], groups=wide.groups[0])
    assert a.subject_alphas_[-1] == b.subject_alphas_[-1]
    np.testing.assert_allclose(b.encoders_[-1], a.encoders_[-1], rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(
        b.predict(wide.neural[0], 2, groups=wide.groups[0]),
        a.predict(wide.neural[0], 2, groups=wide.groups[0]),
        rtol=1e-8,
        atol=1e-10,
    )


def test_form_validated_and_saved(wide, tmp_path):
    with pytest.raises(ValueError, match="form must be 'auto', 'primal' or 'dual'"):
        ShaReD(form="kernel").fit(wide.neural, wide.behavior)
    m = ShaReD(form="dual", n_shared=1, alpha=1.0, cv=None).fit(wide.neural, wide.behavior)
    m.save(tmp_path / "m")
    assert ShaReD.load(tmp_path / "m").get_params()["form"] == "dual"


def test_private_components_reuse_kernel_fold_solutions(monkeypatch):
    # the kernel-form private CV reuses the main CV's dual solutions and held-out kernels
    # (exact algebra); it must give what building every fold's kernels again gives.
    # (The kernel form is forced on subjects with fewer columns than rows: the private
    # encoding must be strong enough to be found.)
    d = simulate(n_subjects=3, n_samples=400, n_units=(12, 25), n_private=1, snr=2.0, seed=3)
    alphas = np.logspace(-2, 2, 5)  # kept solutions stay under 4 MiB per subject
    kw = dict(n_shared=2, lags=1, cv=4, random_state=0, form="dual", alphas=alphas)
    calls = []
    fold = KernelFoldSolution.fold
    monkeypatch.setattr(KernelFoldSolution, "fold", lambda s, *a: calls.append(1) or fold(s, *a))
    reused = ShaReD(**kw).fit(d.neural[:2], d.behavior[:2], groups=d.groups[:2])
    reused.add_subject(d.neural[2], d.behavior[2], groups=d.groups[2])
    assert len(calls) >= 2 * 4  # every fit subject's folds (and add_subject's)
    monkeypatch.setattr(solver, "_worth_keeping", lambda *a: False)
    calls.clear()
    again = ShaReD(**kw).fit(d.neural[:2], d.behavior[:2], groups=d.groups[:2])
    again.add_subject(d.neural[2], d.behavior[2], groups=d.groups[2])
    assert not calls
    assert sum(pc.behavior_rank for pc in again.private_) >= 1  # something to compare
    assert_same(again, reused, rtol=1e-10)


def test_private_components_with_or_without_the_final_fits_kernels(wide, monkeypatch):
    # the neural-private PCA of a kernel-form subject uses the final fit's solved
    # whole-data kernel when the fit kept it, and solves it again otherwise
    kw = dict(n_shared=2, lags=1, cv=4, random_state=0, form="dual")
    kept = ShaReD(**kw).fit(wide.neural, wide.behavior, groups=wide.groups)
    fit_from_stats, dropped = solver.fit_from_stats, []

    def without_kernels(*args, **kwargs):
        fit = fit_from_stats(*args, **kwargs)
        dropped.append(sum(k is not None for k in fit.kernels))
        fit.kernels = None
        return fit

    monkeypatch.setattr(solver, "fit_from_stats", without_kernels)
    again = ShaReD(**kw).fit(wide.neural, wide.behavior, groups=wide.groups)
    assert dropped == [3]  # every subject's kernel problem was dropped
    assert_same(kept, again, rtol=1e-12)
