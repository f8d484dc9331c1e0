"""Statistical behaviour of the ShaReD estimator against ground truth and independent maths."""

import warnings

import numpy as np
import pytest
from scipy.linalg import subspace_angles
from sklearn.linear_model import RidgeCV

from model_checks import assert_close_models
from sharedrep import ShaReD, simulate
from sharedrep.core import solver
from sharedrep.core.cv import make_chunks


def max_angle(a, b):
    """Largest principal angle between the column spaces of ``a`` and ``b``, in degrees."""
    return float(np.degrees(subspace_angles(a, b)).max())


@pytest.fixture(scope="module")
def hard_data():
    # 8 subjects of 10-20 units, weak signal, few samples: pooling is needed
    return simulate(
        n_subjects=8,
        n_samples=300,
        n_units=(10, 20),
        n_behavior=12,
        n_shared=2,
        snr=0.2,
        trial_length=40,
        seed=0,
    )


def test_recovery_pooled_beats_single_subjects(hard_data):
    d = hard_data
    m = ShaReD(n_shared=2, cv=5).fit(d.neural, d.behavior, groups=d.groups)
    pooled = max_angle(m.shared_axes_, d.shared_axes)
    single = [
        max_angle(
            ShaReD(n_shared=2, cv=5)
            .fit(d.neural[s], d.behavior[s], groups=[d.groups[s]])
            .shared_axes_,
            d.shared_axes,
        )
        for s in range(d.n_subjects)
    ]
    assert pooled < 15.0
    # each subject alone is far worse: typical error at least twice the pooled one
    assert np.median(single) > 2 * pooled
    assert np.mean(np.asarray(single) > pooled) >= 0.75


def _inv_sqrt(C):
    w, U = np.linalg.eigh(C)
    return U @ np.diag(w**-0.5) @ U.T


@pytest.mark.parametrize("seed", [1, 2])
def test_single_subject_equals_cca(seed):
    d = simulate(n_subjects=1, n_samples=3000, n_units=15, n_behavior=6, n_shared=2, seed=seed)
    X, Y = d.neural[0], d.behavior[0]
    Xc = X - X.mean(0)
    Yc = (Y - Y.mean(0)) / Y.std(0)
    # independent CCA: SVD of the whitened cross-covariance
    K = _inv_sqrt(Xc.T @ Xc) @ (Xc.T @ Yc) @ _inv_sqrt(Yc.T @ Yc)
    _, s, Vt = np.linalg.svd(K)
    cca_dirs = _inv_sqrt(Yc.T @ Yc) @ Vt.T[:, :2]
    m = ShaReD(n_shared=2, alpha=1e-10, cv=None, shrinkage=0.0).fit(X, Y)
    assert max_angle(m.shared_axes_, cca_dirs) < 1.0
    # each axis individually, and the canonical correlations squared
    for j in range(2):
        assert max_angle(m.shared_axes_[:, [j]], cca_dirs[:, [j]]) < 1.0
    np.testing.assert_allclose(m.eigenvalues_, s[:2] ** 2, rtol=1e-6)


@pytest.mark.parametrize("seed", [1, 2])
def test_single_subject_equals_reduced_rank_regression(seed):
    d = simulate(n_subjects=1, n_samples=3000, n_units=15, n_behavior=6, n_shared=2, seed=seed)
    X, Y = d.neural[0], d.behavior[0]
    Xc = X - X.mean(0)
    Yc = (Y - Y.mean(0)) / Y.std(0)
    # independent RRR: principal axes of the OLS fitted values
    B = np.linalg.lstsq(Xc, Yc, rcond=None)[0]
    _, _, Wt = np.linalg.svd(Xc @ B, full_matrices=False)
    rrr_dirs = Wt[:2].T
    m = ShaReD(n_shared=2, alpha=1e-10, cv=None, behavior_metric="variance").fit(X, Y)
    assert max_angle(m.shared_axes_, rrr_dirs) < 1.0
    np.testing.assert_allclose(m.shared_axes_.T @ m.shared_axes_, np.eye(2), atol=1e-10)


@pytest.fixture(scope="module")
def small_data():
    return simulate(n_subjects=4, n_samples=600, n_units=(8, 14), n_shared=2, seed=3)


@pytest.mark.parametrize("cv", [None, 4])
def test_invariances(small_data, cv):
    d = small_data
    rng = np.random.default_rng(0)
    kw = dict(n_shared=2, alpha=None if cv else 0.1, cv=cv, lags=2)
    ref = ShaReD(**kw).fit(d.neural, d.behavior, groups=d.groups)

    perm = [rng.permutation(X.shape[1]) for X in d.neural]
    permuted = [X[:, p] for X, p in zip(d.neural, perm, strict=True)]
    scaled = [X * rng.uniform(0.01, 100, X.shape[1]) for X in d.neural]
    offset_x = [X + rng.normal(0, 1e3, X.shape[1]) for X in d.neural]
    offset_y = [Y + rng.normal(0, 50, Y.shape[1]) for Y in d.behavior]
    # units of measurement: activity in volts or in huge counts, behaviour in km
    tiny_x = [X * 1e-7 for X in d.neural]
    huge_x = [X * 1e7 for X in d.neural]
    tiny_y = [Y * 1e-12 for Y in d.behavior]
    order = [2, 0, 3, 1]
    cases = {
        "permute units": (permuted, d.behavior, d.groups),
        "rescale units": (scaled, d.behavior, d.groups),
        "offset neural": (offset_x, d.behavior, d.groups),
        "offset behaviour": (d.neural, offset_y, d.groups),
        "tiny neural units": (tiny_x, d.behavior, d.groups),
        "huge neural units": (huge_x, d.behavior, d.groups),
        "tiny behaviour units": (d.neural, tiny_y, d.groups),
        "reorder subjects": (
            [d.neural[i] for i in order],
            [d.behavior[i] for i in order],
            [d.groups[i] for i in order],
        ),
    }
    for name, (X, Y, g) in cases.items():
        m = ShaReD(**kw).fit(X, Y, groups=g)
        assert m.alpha_ == ref.alpha_, name
        np.testing.assert_allclose(m.shared_axes_, ref.shared_axes_, atol=1e-7, err_msg=name)
    # permuted units: the encoder rows follow the units
    m = ShaReD(**kw).fit(permuted, d.behavior, groups=d.groups)
    for s, p in enumerate(perm):
        n = d.neural[s].shape[1]
        idx = np.concatenate([lag * n + p for lag in range(3)])
        np.testing.assert_allclose(m.encoders_[s], ref.encoders_[s][idx], atol=1e-7)


def test_cv_selects_alpha_close_to_oracle():
    # many units, few training samples: the oracle alpha is clearly inside the grid
    d = simulate(
        n_subjects=4, n_samples=3200, n_units=60, n_shared=2, snr=0.3, trial_length=40, seed=5
    )
    n_train = 320
    Xtr = [X[:n_train] for X in d.neural]
    Ytr = [Y[:n_train] for Y in d.behavior]
    gtr = [g[:n_train] for g in d.groups]
    Xte = [X[n_train:] for X in d.neural]
    Yte = [Y[n_train:] for Y in d.behavior]
    m = ShaReD(n_shared=2, cv=5).fit(Xtr, Ytr, groups=gtr)
    alphas = m.cv_results_["alphas"]
    test = np.array(
        [ShaReD(n_shared=2, alpha=a, cv=None).fit(Xtr, Ytr).score(Xte, Yte) for a in alphas]
    )
    oracle = alphas[np.argmax(test)]
    assert 1e-4 < oracle < 1e3  # the oracle is interior: the test is informative
    assert abs(np.log10(m.alpha_) - np.log10(oracle)) <= 1.0
    assert test[list(alphas).index(m.alpha_)] >= test.max() - 0.02
    # far too little or too much regularisation is clearly worse
    assert test.max() - min(test[0], test[-1]) > 0.02


def _leaky_cv_r2(stats, chunks, alpha, k):
    """CV where the axes see all the data and only encoders are refit (leakage)."""
    w = np.full(len(stats), 1 / len(stats))
    full = solver.fit_from_stats(
        [solver.total(s) for s in stats], w, alpha, k, "correlation", 0.01
    )
    err = solver.cv_errors(
        stats, chunks, w, np.array([alpha]), k, "correlation", 0.01, axes=full.axes
    )
    return (1 - err["sse"].sum(axis=(0, 2)) / err["sst"].sum(axis=(0, 2)))[0]


def test_no_leakage_on_null_data():
    # behaviour unrelated to neural activity, many units per sample: overfitting is easy
    d = simulate(
        n_subjects=6, n_samples=300, n_units=40, n_behavior=8, snr=0.0, trial_length=30, seed=11
    )
    m = ShaReD(n_shared=2, alpha=1e-3, cv=5).fit(d.neural, d.behavior, groups=d.groups)
    honest = m.cv_results_["r2_dim"][0]
    assert m.explained_[0] > 0.2  # in-sample fit is inflated
    assert np.all(honest < 0.02)  # held-out score is not
    # the same folds with axes fitted on all data would show an inflated score
    prep = [
        m._prepare(X, Y, g, m.lags_, 5, s, 0)
        for s, (X, Y, g) in enumerate(zip(d.neural, d.behavior, d.groups, strict=True))
    ]
    leaky = _leaky_cv_r2([p.stats for p in prep], [p.chunks for p in prep], 1e-3, 2)
    assert leaky[0] > honest[0] + 0.02


@pytest.mark.parametrize(
    "rows",
    [np.arange(3, 100), np.r_[np.arange(40, 60), np.arange(75, 90), np.arange(140, 200)]],
    ids=["whole", "missing stretches"],
)
def test_blocked_folds_have_gaps_and_cover_rows(rows):
    ch = make_chunks(rows, 4, gap=3)
    for f in range(4):
        test = np.concatenate(
            [
                ch.order[a:b]
                for c, (a, b) in enumerate(zip(ch.bounds[:-1], ch.bounds[1:], strict=True))
                if ch.test_mask(f)[c]
            ]
        )
        train = np.concatenate(
            [
                ch.order[a:b]
                for c, (a, b) in enumerate(zip(ch.bounds[:-1], ch.bounds[1:], strict=True))
                if ch.train_mask(f)[c]
            ]
        )
        t_test, t_train = rows[test], rows[train]
        assert np.intersect1d(t_test, t_train).size == 0
        dist = np.abs(t_train[:, None] - t_test[None, :]).min()
        assert dist > 3  # a gap of 3 samples on each side of the held-out block
        # contiguous held-out blocks of nearly equal numbers of kept rows
        assert abs(t_test.size - rows.size / 4) < 1
        assert np.array_equal(np.sort(test), np.arange(test.min(), test.max() + 1))
    folds = ch.fold[np.searchsorted(ch.bounds, np.arange(rows.size), side="right") - 1]
    assert set(folds) == {0, 1, 2, 3}


def test_blocked_folds_when_the_start_of_a_recording_is_missing():
    d = simulate(n_subjects=2, n_samples=1000, n_units=8, n_behavior=3, seed=3)
    Y = [B.copy() for B in d.behavior]
    Y[0][:250] = np.nan  # a quarter of a recording unusable: no fold may be empty
    m = ShaReD(n_shared=1, cv=4, nan_policy="omit").fit(d.neural, Y)
    kept = ShaReD(n_shared=1, cv=4).fit(
        [d.neural[0][250:], d.neural[1]], [d.behavior[0][250:], Y[1]]
    )
    assert m.alpha_ == kept.alpha_
    np.testing.assert_allclose(m.shared_axes_, kept.shared_axes_, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_a_huge_value_in_a_dropped_row_changes_nothing(backend):
    """A row dropped for missing behaviour may hold anything: the preconditioning centre
    (a median) stays in the bulk, so no unit loses its variance to cancellation."""
    # torch: tensors, whose centres are taken on the device
    as_input = pytest.importorskip("torch").as_tensor if backend == "torch" else np.asarray
    d = simulate(n_subjects=2, n_samples=600, n_units=6, n_behavior=3, n_shared=1, seed=3)
    X, Y = [x.copy() for x in d.neural], [y.copy() for y in d.behavior]
    Y[0][100] = np.nan
    kw = dict(n_shared=1, alpha=1.0, cv=None, nan_policy="omit", backend=backend)
    ref = ShaReD(**kw).fit([as_input(x) for x in X], Y, groups=d.groups)
    X[0][100, 2] = 1e30
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no unit may be reported constant
        m = ShaReD(**kw).fit([as_input(x) for x in X], Y, groups=d.groups)
    np.testing.assert_allclose(m.encoders_[0], ref.encoders_[0], rtol=1e-9, atol=1e-12)


def test_lags_recover_a_known_neural_lead():
    d = simulate(
        n_subjects=6,
        n_samples=800,
        n_units=(10, 16),
        n_shared=2,
        lag=3,
        smoothness=0.5,
        trial_length=80,
        seed=4,
    )
    fits = {
        lags: ShaReD(n_shared=2, cv=5, lags=lags).fit(d.neural, d.behavior, groups=d.groups)
        for lags in (0, 5, (3,))
    }
    score = {
        k: m.cv_results_["mean_score"][m.cv_results_["best_index"][0], -1] for k, m in fits.items()
    }
    assert score[5] > score[0] + 0.2
    assert score[(3,)] > score[0] + 0.2
    assert max_angle(fits[5].shared_axes_, d.shared_axes) < 10
    assert max_angle(fits[(3,)].shared_axes_, d.shared_axes) < 10
    # the encoder weight concentrates on lag 3
    A = fits[5].encoders_[0].reshape(6, -1, 2)
    assert np.argmax(np.sum(A**2, axis=(1, 2))) == 3
    # transform returns rows L..T-1 for lags 0..L
    Z, rows = fits[5].transform(d.neural[0], 0, return_rows=True)
    np.testing.assert_array_equal(rows, np.arange(5, 800))
    Z, rows = fits[5].transform(d.neural[0], 0, groups=d.groups[0], return_rows=True)
    assert Z.shape == (800 - 10 * 5, 2) and rows.size == Z.shape[0]


def _r2(z, zh):
    return 1 - np.sum((z - zh) ** 2) / np.sum((z - z.mean(0)) ** 2)


@pytest.mark.parametrize("seed", [7, 8, 10])
def test_add_subject_beats_per_subject_decoder(seed):
    d = simulate(
        n_subjects=9,
        n_samples=1000,
        n_units=(25, 40),
        n_shared=2,
        snr=0.5,
        trial_length=25,
        seed=seed,
    )
    train, new = d.subset(range(8)), d.subset([8])
    m = ShaReD(n_shared=2, cv=5).fit(train.neural, train.behavior, groups=train.groups)
    X, Y, g = new.neural[0], new.behavior[0], new.groups[0]
    n_cal = 100  # 10% of the samples (4 trials)
    idx = m.add_subject(X[:n_cal], Y[:n_cal], groups=g[:n_cal])
    assert idx == 8 and m.n_subjects_ == 9 and len(m.encoders_) == 9
    ridge = RidgeCV(alphas=np.logspace(-3, 4, 15)).fit(X[:n_cal], Y[:n_cal])
    # decode the encoded part of held-out behaviour (its projection on the true axes)
    W, Yt = d.shared_axes, Y[n_cal:]
    r2_shared = _r2(Yt @ W, m.predict(X[n_cal:], idx) @ W)
    r2_ridge = _r2(Yt @ W, ridge.predict(X[n_cal:]) @ W)
    assert r2_shared > r2_ridge + 0.05
    # the latents of the new subject match its true latents
    Z = m.transform(X[n_cal:], idx)
    zt = new.latents[0][n_cal:]
    coef = np.linalg.lstsq(np.c_[Z, np.ones(len(Z))], zt, rcond=None)[0]
    assert _r2(zt, np.c_[Z, np.ones(len(Z))] @ coef) > 0.5


def test_private_components_find_subject_specific_encoding():
    d = simulate(
        n_subjects=5,
        n_samples=1500,
        n_units=20,
        n_shared=2,
        n_private=1,
        snr=2.0,
        n_neural_private=2,
        seed=8,
    )
    m = ShaReD(n_shared=2, cv=5).fit(d.neural, d.behavior, groups=d.groups)
    assert max_angle(m.shared_axes_, d.shared_axes) < 15
    for s in range(d.n_subjects):
        pc = m.private_[s]
        assert pc.behavior_rank >= 1
        assert pc.behavior_explained > 0
        # the private axis (in scaled behaviour units, residual metric) points at the truth
        truth = d.private_axes[s]
        resid = truth - m.shared_axes_ @ np.linalg.lstsq(m.shared_axes_, truth, rcond=None)[0]
        assert max_angle(pc.behavior_axes[:, :1], resid) < 45
        # neural-private: behaviour-unrelated factors dominate the residual neural variance
        assert pc.neural_explained[0] > pc.neural_explained[3]
    # with no private encoding, the chosen rank is mostly 0
    d0 = simulate(n_subjects=5, n_samples=1500, n_units=20, n_shared=2, snr=2.0, seed=8)
    m0 = ShaReD(n_shared=2, cv=5).fit(d0.neural, d0.behavior, groups=d0.groups)
    assert sum(pc.behavior_rank for pc in m0.private_) <= 2


def test_subject_weight_zero_equals_dropping_the_subject(small_data):
    d = small_data
    w = ShaReD(n_shared=2, alpha=0.1, cv=None, subject_weights=[1, 1, 0, 1]).fit(
        d.neural, d.behavior
    )
    keep = [0, 1, 3]
    ref = ShaReD(n_shared=2, alpha=0.1, cv=None).fit(
        [d.neural[i] for i in keep], [d.behavior[i] for i in keep]
    )
    np.testing.assert_allclose(w.shared_axes_, ref.shared_axes_, atol=1e-8)


def test_subject_weight_zero_takes_no_part_in_the_selection(small_data):
    d = small_data
    rng = np.random.default_rng(0)
    # subject 2 replaced by a long pure-noise recording: with weight 0 it must not count
    X = [*d.neural[:2], rng.standard_normal((4000, 40)), d.neural[3]]
    Y = [*d.behavior[:2], rng.standard_normal((4000, d.behavior[0].shape[1])), d.behavior[3]]
    G = [*d.groups[:2], np.repeat(np.arange(200), 20), d.groups[3]]
    kw = dict(n_shared="auto", cv=4, random_state=0, lags=2)
    w = ShaReD(subject_weights=[1, 1, 0, 1], **kw).fit(X, Y, groups=G)
    keep = [0, 1, 3]
    ref = ShaReD(**kw).fit([X[i] for i in keep], [Y[i] for i in keep], groups=[G[i] for i in keep])
    assert (w.alpha_, w.n_shared_) == (ref.alpha_, ref.n_shared_)
    np.testing.assert_allclose(
        w.cv_results_["mean_score"], ref.cv_results_["mean_score"], atol=1e-10
    )
    np.testing.assert_allclose(w.cv_results_["r2_dim"], ref.cv_results_["r2_dim"], atol=1e-10)
    # equal weights: the plain pooled score
    a = ShaReD(subject_weights=[2, 2, 2, 2], **kw).fit(X, Y, groups=G)
    b = ShaReD(**kw).fit(X, Y, groups=G)
    np.testing.assert_array_equal(a.cv_results_["mean_score"], b.cv_results_["mean_score"])


def test_auto_n_shared_finds_true_dimension():
    for k_true in (1, 3):
        d = simulate(n_subjects=6, n_samples=1000, n_units=20, n_shared=k_true, seed=k_true)
        m = ShaReD(n_shared="auto", cv=5, selection="one_se").fit(
            d.neural, d.behavior, groups=d.groups
        )
        assert m.n_shared_ == k_true
        assert max_angle(m.shared_axes_, d.shared_axes) < 10


def test_predict_and_score_are_consistent(small_data):
    d = small_data
    m = ShaReD(n_shared=2, alpha=0.1, cv=None).fit(d.neural, d.behavior)
    Yh = m.predict(d.neural[1], 1)
    Y = d.behavior[1]
    r2 = 1 - np.sum(((Y - Yh) / m.behavior_scale_) ** 2) / np.sum(
        ((Y - Y.mean(0)) / m.behavior_scale_) ** 2
    )
    assert m.score([d.neural[1]], [d.behavior[1]], subjects=[1]) == pytest.approx(r2)
    # latents from behaviour and from neural activity agree on encoded data
    z = m.transform_behavior(Y, subject=1)
    zh = m.transform(d.neural[1], 1)
    assert np.corrcoef(z[:, 0], zh[:, 0])[0, 1] > 0.8
    # V' Cm V = I
    np.testing.assert_allclose(
        m.shared_axes_.T @ m.metric_ @ m.shared_axes_, np.eye(2), atol=1e-10
    )


@pytest.mark.parametrize("by_trial", [True, False])
def test_private_components_reuse_the_cv_fold_solutions(monkeypatch, by_trial):
    # the private cross-validation reuses the main CV's ridge solutions (exact algebra);
    # it must give the model that factorising every fold again gives
    d = simulate(
        n_subjects=4, n_samples=900, n_units=(12, 25), n_shared=2, n_private=1, snr=2.0, seed=3
    )
    groups = d.groups if by_trial else None
    kw = dict(n_shared="auto", cv=4, lags=1 if not by_trial else 0, random_state=0)
    calls = []
    fold = solver.FoldSolution.fold
    monkeypatch.setattr(
        solver.FoldSolution, "fold", lambda self, *a: calls.append(1) or fold(self, *a)
    )
    reused = ShaReD(**kw).fit(d.neural[:3], d.behavior[:3], groups=groups and groups[:3])
    n_reused = len(calls)
    reused.add_subject(d.neural[3], d.behavior[3], groups=groups and groups[3])
    assert n_reused == 3 * 4 and len(calls) > n_reused  # every subject's folds, add_subject's
    monkeypatch.setattr(solver, "_worth_keeping", lambda *a: False)
    calls.clear()
    again = ShaReD(**kw).fit(d.neural[:3], d.behavior[:3], groups=groups and groups[:3])
    again.add_subject(d.neural[3], d.behavior[3], groups=groups and groups[3])
    assert not calls
    assert sum(pc.behavior_rank for pc in again.private_) >= 1  # something to compare
    assert_close_models(again, reused, rtol=1e-10)


def test_add_subject_counts_only_trials_with_usable_samples():
    # calibration of 3 trials, the last aborted (shorter than the lag window): 2 folds
    d = simulate(n_subjects=3, n_samples=400, n_units=8, n_behavior=3, trial_length=40, seed=0)
    m = ShaReD(n_shared=2, lags=3).fit(d.neural[:2], d.behavior[:2], groups=d.groups[:2])
    g = np.repeat([0, 1, 2], [40, 40, 3])
    s = m.add_subject(d.neural[2][:83], d.behavior[2][:83], groups=g)
    ref = ShaReD(n_shared=2, lags=3).fit(d.neural[:2], d.behavior[:2], groups=d.groups[:2])
    s_ref = ref.add_subject(d.neural[2][:80], d.behavior[2][:80], groups=g[:80])
    np.testing.assert_allclose(m.encoders_[s], ref.encoders_[s_ref], rtol=1e-10, atol=1e-12)
