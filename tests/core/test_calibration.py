"""Shrinkage chosen by CV, the candidate decoders of a new subject, run-time warnings."""

import warnings

import numpy as np
import pytest
from scipy.linalg import subspace_angles

from sharedrep import ShaReD, simulate
from sharedrep.core import calibration, solver
from sharedrep.core.cv import block_folds
from sharedrep.core.ridge import ridge_cv


def max_angle(a, b):
    return float(np.degrees(subspace_angles(a, b)).max())


def _r2(Y, Yh):
    return 1.0 - np.sum((Y - Yh) ** 2) / np.sum((Y - Y.mean(axis=0)) ** 2)


# ----------------------------------------------------------------------------- shrinkage
def test_selected_shrinkage_recovers_axes_as_well_as_the_best_fixed_value():
    # shared axes in low-variance behaviour directions: shrinking the metric towards the
    # identity pulls the axes to high-variance directions (the old default 0.01 cost angle)
    grid = (0.0, 1e-3, 1e-2, 1e-1)
    auto_angles, fixed_angles = [], []
    for seed in range(3):
        d = simulate(
            n_subjects=5,
            n_samples=1500,
            n_units=15,
            n_behavior=10,
            behavior_anisotropy=100.0,
            shared_variance=0.01,
            seed=seed,
        )
        fit = {
            sh: ShaReD(n_shared=2, cv=5, shrinkage=sh, random_state=0).fit(
                d.neural, d.behavior, d.groups
            )
            for sh in (*grid, "auto")
        }
        angles = {sh: max_angle(m.shared_axes_, d.shared_axes) for sh, m in fit.items()}
        assert fit["auto"].shrinkage_ in grid
        assert list(fit["auto"].cv_results_["shrinkages"]) == list(grid)
        auto_angles.append(angles["auto"])
        fixed_angles.append([angles[sh] for sh in grid])
        # chosen by CV: within CV noise of the best fixed value, far from the worst
        assert angles["auto"] <= min(angles[sh] for sh in grid) + 0.5
        assert angles["auto"] < angles[0.1]
    fixed = np.array(fixed_angles)
    assert np.mean(auto_angles) < fixed[:, grid.index(1e-2)].mean()


def test_fixed_shrinkage_is_used_as_given():
    d = simulate(n_subjects=3, n_samples=600, n_behavior=6, seed=1)
    m = ShaReD(n_shared=2, cv=4, shrinkage=0.05).fit(d.neural, d.behavior, d.groups)
    assert m.shrinkage_ == 0.05
    np.testing.assert_array_equal(m.cv_results_["shrinkages"], [0.05])


def test_auto_shrinkage_without_cv_is_zero_unless_the_covariance_is_singular():
    d = simulate(n_subjects=3, n_samples=600, n_behavior=6, seed=2)
    m = ShaReD(n_shared=2, alpha=1.0, cv=None).fit(d.neural, d.behavior)
    assert m.shrinkage_ == 0.0
    # a behaviour feature that is a copy of another: singular covariance
    behavior = [np.column_stack([Y, Y[:, 0]]) for Y in d.behavior]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m2 = ShaReD(n_shared=2, alpha=1.0, cv=None).fit(d.neural, behavior)
    assert m2.shrinkage_ > 0
    np.testing.assert_allclose(
        m2.shared_axes_.T @ m2.metric_ @ m2.shared_axes_, np.eye(2), atol=1e-8
    )
    # with CV the fit never rests on the singular metric
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m3 = ShaReD(n_shared=2, cv=3).fit(d.neural, behavior, d.groups)
    assert m3.shrinkage_ > 0
    np.testing.assert_allclose(
        m3.shared_axes_.T @ m3.metric_ @ m3.shared_axes_, np.eye(2), atol=1e-8
    )


# ----------------------------------------------------------------------------- warnings
def test_warns_when_n_shared_equals_the_number_of_features():
    d = simulate(n_subjects=3, n_samples=600, n_behavior=3, n_shared=2, seed=4)
    with pytest.warns(UserWarning, match="constrain nothing"):
        m = ShaReD(n_shared=3, cv=4).fit(d.neural, d.behavior, d.groups)
    assert m.diagnostics_["n_shared_equals_features"]


def test_warns_about_constant_behaviour_features_naming_the_subject():
    d = simulate(n_subjects=3, n_samples=600, n_behavior=5, seed=5)
    behavior = [Y.copy() for Y in d.behavior]
    behavior[1][:, 3] = 2.5
    with pytest.warns(UserWarning, match=r"subject 1: behaviour feature\(s\) \[3\] are constant"):
        m = ShaReD(n_shared=2, cv=3).fit(d.neural, behavior, d.groups)
    assert m.diagnostics_["constant_behavior"] == {1: [3]}


def test_warns_when_no_shared_dimension_beats_its_mean_for_a_fixed_k():
    d = simulate(n_subjects=3, n_samples=600, n_behavior=5, snr=0.0, seed=6)
    with pytest.warns(UserWarning, match="no shared dimension is predicted better"):
        m = ShaReD(n_shared=2, cv=4).fit(d.neural, d.behavior, d.groups)
    assert not m.diagnostics_["shared_beats_mean"]


# ----------------------------------------------------------------------------- new subject
def _independent_candidate_sse(Z, Y, folds, alphas, Pi, scale):
    """Held-out SSE of the candidates computed directly on the rows (no statistics)."""
    shared = np.zeros(alphas.size)
    own = np.zeros(alphas.size)
    comb = np.zeros((alphas.size, alphas.size))
    sst = 0.0
    for train, test in folds:
        mx, sx = Z[train].mean(0), Z[train].std(0)
        my = Y[train].mean(0)
        Zt, Zh = (Z[train] - mx) / sx, (Z[test] - mx) / sx
        Yt, Yh = (Y[train] - my) / scale, (Y[test] - my) / scale
        n = train.size
        P = [np.linalg.solve(Zt.T @ Zt + a * n * np.eye(Z.shape[1]), Zt.T @ Yt) for a in alphas]
        for i, Pa in enumerate(P):
            shared[i] += np.sum((Yh - Zh @ Pa @ Pi) ** 2)
            own[i] += np.sum((Yh - Zh @ Pa) ** 2)
            for j, Pb in enumerate(P):
                W = Pa @ Pi + Pb @ (np.eye(Pi.shape[0]) - Pi)
                comb[i, j] += np.sum((Yh - Zh @ W) ** 2)
        sst += np.sum((Yh - Yh.mean(0)) ** 2)
    return shared, own, comb, sst


def test_candidate_errors_match_a_direct_computation():
    rng = np.random.default_rng(0)
    n, q, p = 300, 6, 4
    Z = rng.standard_normal((n, q)) @ rng.standard_normal((q, q)) + 3.0
    Y = Z[:, :p] @ rng.standard_normal((p, p)) + rng.standard_normal((n, p)) + 1.0
    scale = Y.std(0) * 1.3
    V = np.linalg.qr(rng.standard_normal((p, 2)))[0]
    Pi = calibration.projector(V, np.eye(p))
    alphas = np.array([1e-3, 0.1, 1.0])
    folds = [(np.r_[0:200], np.r_[200:300]), (np.r_[100:300], np.r_[0:100])]
    errors = calibration.CandidateErrors(alphas, np.zeros(3), np.zeros(3), np.zeros((3, 3)))
    for train, test in folds:
        fold = solver.PrimalFold(
            solver.SufficientStats.from_arrays(Z[train], Y[train]),
            solver.SufficientStats.from_arrays(Z[test], Y[test]),
        )
        std, _ = fold.solve(scale, alphas)
        errors.add_fold(fold.P, Pi, calibration.heldout_moments(std, scale, fold.test))
    shared, own, comb, sst = _independent_candidate_sse(Z, Y, folds, alphas, Pi, scale)
    np.testing.assert_allclose(errors.shared, shared, rtol=1e-9)
    np.testing.assert_allclose(errors.own, own, rtol=1e-9)
    np.testing.assert_allclose(errors.combined, comb, rtol=1e-9)
    assert errors.sst == pytest.approx(sst, rel=1e-12)
    choice = calibration.choose(errors)
    best = min(shared.min(), own.min(), comb.min())
    assert 1.0 - best / sst == pytest.approx(max(choice.scores.values()), rel=1e-9)


def _private_feature_data(seed):
    # the new animal encodes a behaviour feature outside the shared axes
    d = simulate(
        n_subjects=5,
        n_samples=1600,
        n_units=30,
        n_behavior=6,
        n_shared=2,
        n_private=2,
        snr=2.0,
        seed=seed,
    )
    return d


def test_new_animal_never_loses_to_its_own_ridge_beyond_cv_noise():
    gaps = []
    for seed in range(3):
        d = _private_feature_data(seed)
        m = ShaReD(n_shared=2, cv=5, random_state=0).fit(
            d.neural[:4], d.behavior[:4], d.groups[:4]
        )
        X, Y, g = d.neural[4], d.behavior[4], d.groups[4]
        cal, test = g < np.median(np.unique(g)), g >= np.median(np.unique(g))
        new, s = m.with_subject(X[cal], Y[cal], g[cal])
        assert new.subject_decoders_[s] in calibration.CANDIDATES
        assert set(new.subject_cv_scores_[s]) == set(calibration.CANDIDATES)
        r2_auto = _r2(Y[test], new.predict(X[test], s, g[test], through="auto"))
        r2_shared = _r2(Y[test], new.predict(X[test], s, g[test], through="shared"))
        # independent per-animal ridge: the one ridge-with-CV helper, same calibration rows
        labels = block_folds(int(cal.sum()), 5, g[cal])
        splits = [(np.flatnonzero(labels != f), np.flatnonzero(labels == f)) for f in range(5)]
        ridge, _ = ridge_cv(X[cal], Y[cal], np.logspace(-4, 3, 15), splits)
        r2_ridge = _r2(Y[test], ridge.predict(X[test]))
        gaps.append(r2_auto - r2_ridge)
        # the private feature makes the pure shared read-out lose to the animal's own decoder
        assert r2_shared < r2_ridge
    assert min(gaps) > -0.02


def test_with_subject_leaves_the_model_unchanged_and_add_subject_agrees():
    d = _private_feature_data(7)
    m = ShaReD(n_shared=2, cv=4, random_state=0).fit(d.neural[:3], d.behavior[:3], d.groups[:3])
    before = (m.n_subjects_, len(m.encoders_), len(m.subject_decoders_))
    new, s = m.with_subject(d.neural[3], d.behavior[3], d.groups[3])
    assert (m.n_subjects_, len(m.encoders_), len(m.subject_decoders_)) == before
    assert new.n_subjects_ == m.n_subjects_ + 1 and s == m.n_subjects_
    s2 = m.add_subject(d.neural[3], d.behavior[3], d.groups[3])
    assert s2 == s
    np.testing.assert_allclose(
        m.predict(d.neural[3], s, d.groups[3]), new.predict(d.neural[3], s, d.groups[3])
    )


def test_through_shared_is_the_pure_shared_readout_and_own_needs_an_added_subject():
    d = _private_feature_data(8)
    m = ShaReD(n_shared=2, cv=4, random_state=0).fit(d.neural[:3], d.behavior[:3], d.groups[:3])
    s = m.add_subject(d.neural[3], d.behavior[3], d.groups[3])
    Z = m.transform(d.neural[3], s, d.groups[3])
    expected = (Z @ m.shared_axes_.T @ m.metric_) * m.behavior_scale_ + m.behavior_means_[s]
    np.testing.assert_allclose(m.predict(d.neural[3], s, d.groups[3], through="shared"), expected)
    # subjects of the fit: "auto" is the shared read-out; "own" does not exist
    np.testing.assert_array_equal(
        m.predict(d.neural[0], 0, d.groups[0]),
        m.predict(d.neural[0], 0, d.groups[0], through="shared"),
    )
    with pytest.raises(ValueError, match="subject 0 was part of the fit"):
        m.predict(d.neural[0], 0, through="own")
    with pytest.raises(ValueError, match="through must be"):
        m.predict(d.neural[0], 0, through="private")
