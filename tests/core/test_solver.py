"""The solver: sufficient statistics, ridge paths, fold solutions, kernel vs primal form.

The independent multi-subject reference of the whole closed form is in
``test_reference.py``; the float32 data pass in ``test_float32.py``.
"""

import numpy as np
import pytest
import scipy.linalg as sla
from sklearn.base import clone

from sharedrep import simulate
from sharedrep.core import _lapack, data_pass, solver
from sharedrep.core.backends import get_backend
from sharedrep.core.dual import KernelData, KernelFoldSolution


def test_sufficient_stats_add_over_rows():
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((50, 4)), rng.standard_normal((50, 3))
    whole = solver.SufficientStats.from_arrays(X, Y)
    parts = solver.SufficientStats.from_arrays(X[:20], Y[:20]) + (
        solver.SufficientStats.from_arrays(X[20:], Y[20:])
    )
    rest = whole - solver.SufficientStats.from_arrays(X[:20], Y[:20])
    for name in ("n", "sx", "sy", "xx", "xy", "yy"):
        np.testing.assert_allclose(getattr(parts, name), getattr(whole, name), atol=1e-12)
        np.testing.assert_allclose(
            getattr(rest, name),
            getattr(solver.SufficientStats.from_arrays(X[20:], Y[20:]), name),
            atol=1e-12,
        )


@pytest.mark.parametrize("form", ["primal", "dual"])
def test_the_form_of_a_subject_is_explicit(form):
    d = simulate(n_subjects=1, n_samples=300, n_units=6, seed=2)
    prep = data_pass.subject_statistics(
        d.neural[0], d.behavior[0], d.groups[0], np.array([0, 1]), 3, form=form
    )
    assert solver.is_kernel(prep.stats) == (form == "dual")
    assert isinstance(prep.stats, KernelData) == (form == "dual")


@pytest.mark.parametrize("band", [False, True])
@pytest.mark.parametrize("q, n_alphas", [(1, 5), (3, 4), (40, 3), (40, 4), (120, 35)])
def test_ridge_path_matches_direct_solves(q, n_alphas, band, monkeypatch):
    # one Cholesky per alpha below 4 alphas, one shared tridiagonal reduction from 4 on
    # (a reduction to a band for wide matrices: made to apply here with band=True)
    if band:
        monkeypatch.setattr(_lapack, "BAND_MIN_Q", 3)
    rng = np.random.default_rng(q + n_alphas)
    A = rng.standard_normal((q + 10, q))
    G = A.T @ A
    if q > 3:  # a constant (zeroed) column, as standardisation leaves it
        G[2], G[:, 2] = 0.0, 0.0
    B = rng.standard_normal((q, 6))
    alphas = np.logspace(-3, 2, n_alphas)
    got = solver.ridge_path(G, float(q + 10), alphas, B)
    for a, P in zip(alphas, got, strict=True):
        ref = np.linalg.solve(G + a * (q + 10) * np.eye(q), B)
        np.testing.assert_allclose(P, ref, rtol=1e-9, atol=1e-12 * np.abs(ref).max())


@pytest.mark.parametrize("units, band_min_q", [(60, 100), (210, None)])
def test_band_reduction_gives_the_tridiagonal_selections_and_scores(
    units, band_min_q, monkeypatch
):
    # wide designs (q >= 800 by default) reduce each fold's Gram matrix to a band instead
    # of a tridiagonal matrix: the same model selection and CV scores to 1e-8
    from sharedrep import ShaReD

    d = simulate(n_subjects=3, n_samples=2000, n_units=units, n_shared=2, lag=2, seed=7)
    model = ShaReD(n_shared="auto", lags=3, cv=4, alphas=np.logspace(-4, 3, 8), private=False)
    q = 4 * units
    if band_min_q is not None:
        monkeypatch.setattr(_lapack, "BAND_MIN_Q", band_min_q)
    assert q >= _lapack.BAND_MIN_Q
    calls = []
    reduce = _lapack.band_reduce
    monkeypatch.setattr(_lapack, "band_reduce", lambda *a, **k: calls.append(1) or reduce(*a, **k))
    banded = clone(model).fit(d.neural, d.behavior, groups=d.groups)
    assert len(calls) >= 3 * 4  # every subject's every fold
    monkeypatch.setattr(_lapack, "BAND_MIN_Q", 10**9)
    tridiagonal = clone(model).fit(d.neural, d.behavior, groups=d.groups)
    assert (banded.alpha_, banded.n_shared_) == (tridiagonal.alpha_, tridiagonal.n_shared_)
    for key in ("fold_scores", "mean_score", "r2_subject_dim"):
        np.testing.assert_allclose(
            banded.cv_results_[key], tridiagonal.cv_results_[key], rtol=1e-8, atol=1e-10
        )
    np.testing.assert_allclose(banded.shared_axes_, tridiagonal.shared_axes_, atol=1e-8)
    for a, b in zip(banded.encoders_, tridiagonal.encoders_, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-8 * np.abs(b).max())


@pytest.mark.parametrize("form", ["primal", "dual"])
def test_fold_solution_refuses_other_alphas_and_scales(form):
    d = simulate(n_subjects=1, n_samples=400, n_units=10, seed=1)
    prep = get_backend("numpy").statistics(
        d.neural, d.behavior, d.groups, np.array([0]), 3, form=form
    )[0]
    err = solver.cv_errors(
        [prep.stats],
        [prep.chunks],
        np.ones(1),
        np.array([0.1, 1.0]),
        1,
        "correlation",
        0.0,
        keep_solutions=True,
    )
    sol = err["solutions"][0][0]
    p = d.behavior[0].shape[1]
    if form == "primal":
        assert sol.P.shape == (2, 10, p) and sol.std.gram is None
    else:
        assert isinstance(sol, KernelFoldSolution) and sol.W.shape[::2] == (2, p)
    T = np.eye(p)
    with pytest.raises(ValueError, match="alpha 0.5 was not solved"):
        sol.fold(0.5, T, None)
    fold = sol.fold(1.0, T, None)
    with pytest.raises(ValueError, match="solved for alpha 1.0 only"):
        fold.solve(np.ones(p), np.array([0.1]))
    with pytest.raises(ValueError, match="unscaled behaviour"):
        fold.solve(np.full(p, 2.0), np.array([1.0]))


def test_stacked_axes_equal_scipy_generalized_eigh_one_by_one():
    rng = np.random.default_rng(7)
    p, k = 6, 3
    A = rng.standard_normal((p, p))
    Cm = A @ A.T + 0.5 * np.eye(p)
    Ms = np.stack([B @ B.T for B in rng.standard_normal((9, p, p))])
    V, rho = solver.solve_axes_many(Ms, Cm, k)
    for i, M in enumerate(Ms):
        r, W = sla.eigh(M, Cm, subset_by_index=[p - k, p - 1])
        r, W = r[::-1], W[:, ::-1]
        W = W * np.sign(W[np.argmax(np.abs(W), axis=0), np.arange(k)])
        np.testing.assert_allclose(rho[i], r, rtol=1e-12)
        np.testing.assert_allclose(V[i], W, atol=1e-11)
        np.testing.assert_allclose(V[i].T @ Cm @ V[i], np.eye(k), atol=1e-12)
        one_V, one_rho = solver.solve_axes(M, Cm, k)
        np.testing.assert_array_equal(one_V, V[i])  # one problem = one of the stack


def test_singular_behaviour_metric_is_a_clear_error():
    Cm = np.diag([1.0, 1.0, 0.0])
    with pytest.raises(ValueError, match="behaviour metric"):
        solver.solve_axes_many(np.eye(3)[None], Cm, 1)


def test_axes_under_a_stack_of_metrics_equal_each_metric_alone():
    # the shrinkage grid of the CV is one stacked solve: each metric's axes are exactly
    # those it gives alone (identity metric included), and a singular one is an error
    rng = np.random.default_rng(11)
    p, k = 5, 2
    A = rng.standard_normal((p, p))
    C = A @ A.T
    metrics = [solver.behavior_metric(C, "correlation", s) for s in (0.0, 1e-3, 0.1)]
    Cms = np.stack([*metrics, np.eye(p)])
    Ms = np.stack([B @ B.T for B in rng.standard_normal((7, p, p))])
    V, rho = solver.solve_axes_many(Ms, Cms, k)
    assert V.shape == (4, 7, p, k) and rho.shape == (4, 7, k)
    for i, Cm in enumerate(Cms):
        one_V, one_rho = solver.solve_axes_many(Ms, Cm, k)
        np.testing.assert_array_equal(V[i], one_V)
        np.testing.assert_array_equal(rho[i], one_rho)
    with pytest.raises(ValueError, match="behaviour metric"):
        solver.solve_axes_many(Ms, np.stack([Cms[0], np.diag([1.0, 1.0, 1.0, 1.0, 0.0])]), k)


def _random_chunks(rng, rows: int, q: int, p: int, n: int = 5) -> list:
    """``n`` chunks of statistics of random rows (q neural, p behaviour columns)."""
    return [
        solver.SufficientStats.from_arrays(
            rng.standard_normal((rows, q)), rng.standard_normal((rows, p))
        )
        for _ in range(n)
    ]


def test_fold_training_statistics_formed_lazily_equal_the_subtraction():
    rng = np.random.default_rng(8)
    chunks = _random_chunks(rng, 40, 9, 2)
    train = np.array([True, False, True, False, True])
    fold = solver.subject_fold(chunks, train, ~train)
    assert isinstance(fold.train.xx, solver.Difference)
    direct = solver.total(chunks) - chunks[1] - chunks[3]
    np.testing.assert_array_equal(np.asarray(fold.train.xx), direct.xx)
    np.testing.assert_array_equal(fold.train.xx.rows(slice(3, 7)), direct.xx[3:7])
    np.testing.assert_array_equal(fold.train.xy, direct.xy)
    assert fold.train.n == direct.n
    ysc = np.array([1.3, 0.7])
    eager = solver.standardize(direct, ysc)
    lazy = solver.standardize(fold.train, ysc)
    np.testing.assert_array_equal(lazy.gram, eager.gram)  # the same numbers, bit for bit
    np.testing.assert_array_equal(lazy.cross, eager.cross)
    assert lazy.gram.flags.f_contiguous
    np.testing.assert_array_equal(lazy.gram, lazy.gram.T)  # exactly symmetric, as X'X is


def test_cv_fold_solves_release_the_gram_and_score_like_the_direct_formula():
    rng = np.random.default_rng(9)
    chunks = _random_chunks(rng, 60, 12, 3)
    train = np.array([True, True, False, True, True])
    fold = solver.subject_fold(chunks, train, ~train)
    alphas = np.logspace(-3, 2, 6)
    ysc = np.array([0.8, 1.1, 1.9])
    std, _ = fold.solve(ysc, alphas)
    assert std.gram is None  # reduced in place, then released
    V = np.linalg.qr(rng.standard_normal((3, 2)))[0]
    Vs = np.stack([V] * alphas.size)
    V_all = np.concatenate(list(Vs), axis=1)
    A_all = np.concatenate([P @ V for P in fold.P], axis=1)
    ref = solver.heldout_errors(std, ysc, A_all, V_all, fold.test)
    got = fold.errors(Vs, V_all, ysc)
    for g, r in zip(got[:2], ref[:2], strict=True):
        np.testing.assert_allclose(g, r, rtol=1e-10, atol=1e-12)
    assert got[2] == pytest.approx(ref[2], rel=1e-12)


def test_moment_errors_stacked_equal_one_subject_at_a_time():
    """Several subjects' held-out errors in one stacked computation equal the
    per-subject ones (as the reduced folds of many subjects are scored)."""
    rng = np.random.default_rng(8)
    n_alpha, p, k = 3, 4, 2
    helds, rs, tests = [], [], []
    for _ in range(3):
        A = rng.standard_normal((n_alpha, p, p))
        helds.append((A @ A.transpose(0, 2, 1), rng.standard_normal((n_alpha, p, p)),
                      rng.standard_normal((n_alpha, p))))  # fmt: skip
        rs.append(rng.standard_normal((n_alpha, p)))
        Yt = rng.standard_normal((int(rng.integers(20, 40)), p)) + 1.0
        empty = (np.zeros(0), Yt.sum(0), np.zeros((0, 0)), np.zeros((0, p)))
        tests.append(solver.SufficientStats(float(len(Yt)), *empty, Yt.T @ Yt))
    Vs = rng.standard_normal((n_alpha, p, k))
    V_all = np.concatenate(list(Vs), axis=1)
    y_scale = rng.uniform(0.5, 2.0, p)
    sse, sst, sst_b = solver.moment_errors_stacked(helds, rs, tests, Vs, V_all, y_scale)
    for s in range(3):
        e, t, tb = solver.moment_errors(helds[s], rs[s], tests[s], Vs, V_all, y_scale)
        np.testing.assert_allclose(sse[s], e, rtol=1e-13, atol=1e-12)
        np.testing.assert_allclose(sst[s], t, rtol=1e-13)
        assert sst_b[s] == pytest.approx(tb, rel=1e-14)
    assert sse.shape == sst.shape == (3, n_alpha * k)
    # several sets of axes (one per metric shrinkage) at once: each as scored alone
    Vss = np.stack([Vs, rng.standard_normal((n_alpha, p, k))])
    V_alls = np.stack([np.concatenate(list(v), axis=1) for v in Vss])
    moments = solver.stack_moments(helds, rs, tests)
    sse_m, sst_m, sst_bm = solver.stacked_errors(moments, Vss, V_alls, y_scale)
    assert sse_m.shape == sst_m.shape == (3, 2, n_alpha * k)
    for i in range(2):
        e, t, tb = solver.stacked_errors(moments, Vss[i], V_alls[i], y_scale)
        np.testing.assert_allclose(sse_m[:, i], e, rtol=1e-13, atol=1e-12)
        np.testing.assert_allclose(sst_m[:, i], t, rtol=1e-13)
        np.testing.assert_array_equal(sst_bm, tb)


@pytest.mark.parametrize("n", [1, 2, 3, 8, 1023, 1024])
def test_column_medians_equal_numpys_median(n):
    """The preconditioning centre's median is numpy's, bit for bit: odd and even counts,
    ties, scales far from 1, a column with a NaN (NaN) and a Fortran-ordered input (left
    as it was)."""
    rng = np.random.default_rng(n)
    A = rng.standard_normal((n, 5)) * np.array([1e-8, 1.0, 1e8, 1.0, 1.0])
    A[:, 3] = np.round(A[:, 3])  # ties
    A[n // 2, 4] = np.nan
    F = np.asfortranarray(A)
    before = F.copy()
    np.testing.assert_array_equal(solver.column_medians(F), np.median(A, axis=0))
    np.testing.assert_array_equal(F, before)
    assert np.isnan(solver.column_medians(F)[4])
