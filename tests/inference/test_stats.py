"""Permutation test, subject bootstrap and group comparison (sharedrep.inference.stats)."""

import numpy as np
import pytest
from scipy.linalg import subspace_angles
from sklearn.exceptions import NotFittedError

from sharedrep import ShaReD, simulate
from sharedrep.inference.stats import (
    bootstrap_subjects,
    circular_shift_candidates,
    compare_groups,
    default_min_shift,
    draw_shifts,
    max_statistic_p_values,
    permutation_test,
)

FAST = dict(alpha=1.0, cv=5, private=False)


@pytest.fixture(scope="module")
def small():
    return simulate(
        n_subjects=3, n_samples=300, n_units=8, n_behavior=4, n_shared=2, trial_length=15, seed=3
    )


# --------------------------------------------------------------------------- shifts
def test_shift_candidates_whole_trials_and_min_shift():
    groups = np.repeat(np.arange(10), 20)  # 10 trials of 20 samples
    c = circular_shift_candidates(200, groups, min_shift=40)
    assert np.array_equal(c, np.arange(40, 161, 20))
    c = circular_shift_candidates(200, None, min_shift=30)
    assert c.min() == 30 and c.max() == 170 and c.size == 141
    # default: max(10% of T, longest trial, max|lag| + 1)
    assert default_min_shift(200, groups) == 20
    assert default_min_shift(1000, np.repeat(np.arange(50), 20)) == 100
    assert default_min_shift(50, None, lags=[0, 9]) == 10
    with pytest.raises(ValueError, match="shape"):
        default_min_shift(100, groups)
    with pytest.raises(ValueError, match="no circular shift"):
        circular_shift_candidates(40, np.repeat([0, 1], 20), min_shift=25)


def test_draw_shifts_distinct_and_exhaustive():
    a, b = np.array([10, 20, 30]), np.array([5, 6])
    shifts, exhaustive = draw_shifts([a, b], 10, random_state=0)
    assert exhaustive and shifts.shape == (6, 2)
    assert {tuple(r) for r in shifts} == {(x, y) for x in a for y in b}
    shifts, exhaustive = draw_shifts([np.arange(50), np.arange(40)], 300, random_state=1)
    assert not exhaustive and shifts.shape == (300, 2)
    assert len({tuple(r) for r in shifts}) == 300  # without replacement
    again, _ = draw_shifts([np.arange(50), np.arange(40)], 300, random_state=1)
    assert np.array_equal(shifts, again)


def test_permutation_test_exhaustive_with_few_trials(small):
    d = small.subset([0])  # 20 trials of 15 samples: 17 whole-trial shifts of >= 30
    r = permutation_test(
        ShaReD(n_shared=1, **FAST),
        d.neural,
        d.behavior,
        d.groups,
        n_perm=50,
        random_state=0,
        progress=False,
    )
    assert r.exhaustive and r.n_perm == 17 and r.null.shape == (17, 1)
    assert np.array_equal(np.sort(r.shifts[:, 0]), np.arange(30, 271, 15))
    assert r.p_values[0] >= 1 / 18


def test_max_statistic_p_values():
    obs = np.array([3.0, 1.0])
    null = np.array([[0.0, 2.0], [1.0, 0.5], [4.0, 0.0], [0.5, 0.2]])
    # null maxima 2, 1, 4, 0.5
    assert np.allclose(max_statistic_p_values(obs, null), [(1 + 1) / 5, (1 + 3) / 5])


# --------------------------------------------------------------------------- permutation
def test_permutation_test_structure_and_reproducibility(small):
    d = small
    model = ShaReD(n_shared=2, **FAST)
    r = permutation_test(
        model, d.neural, d.behavior, d.groups, n_perm=9, random_state=1, progress=False
    )
    assert r.observed.shape == (2,) and r.null.shape == (9, 2)
    assert r.p_values.shape == r.p_values_fwer.shape == (2,)
    assert np.all(r.p_values >= 1 / 10) and np.all(r.p_values <= 1)
    assert np.all(r.p_values_fwer >= r.p_values)
    assert r.shifts.shape == (9, 3)
    # whole-trial shifts of at least the default minimum
    assert np.all(r.shifts % 15 == 0)
    assert np.all(r.shifts >= 30) and np.all(r.shifts <= 270)
    # the observed statistic is the model's own CV score at the selected alpha
    ref = ShaReD(n_shared=2, **FAST).fit(d.neural, d.behavior, groups=d.groups)
    assert np.allclose(r.observed, ref.cv_results_["r2_dim"][0, :2])
    assert not hasattr(model, "shared_axes_")  # the template is not modified
    with pytest.raises(NotFittedError):
        model.transform(d.neural[0])
    r2 = permutation_test(
        model, d.neural, d.behavior, d.groups, n_perm=9, random_state=1, progress=False
    )
    assert np.array_equal(r.null, r2.null) and np.array_equal(r.shifts, r2.shifts)
    df = r.summary()
    assert list(df.columns) == [
        "dimension",
        "r2_heldout",
        "null_mean",
        "null_q95",
        "p_value",
        "p_value_fwer",
    ]


def test_permutation_test_n_jobs_does_not_change_results(small):
    d = small
    model = ShaReD(n_shared=1, **FAST)
    kw = dict(n_perm=4, random_state=7, progress=False)
    r1 = permutation_test(model, d.neural, d.behavior, d.groups, n_jobs=1, **kw)
    r2 = permutation_test(model, d.neural, d.behavior, d.groups, n_jobs=2, **kw)
    assert np.array_equal(r1.shifts, r2.shifts)
    assert np.allclose(r1.null, r2.null)


def test_permutation_test_detects_signal_with_cv_selection():
    d = simulate(
        n_subjects=3,
        n_samples=400,
        n_units=10,
        n_behavior=5,
        n_shared=1,
        snr=0.5,
        trial_length=20,
        seed=5,
    )
    model = ShaReD(n_shared="auto", cv=5, private=False, alphas=np.logspace(-2, 2, 5))
    r = permutation_test(
        model, d.neural, d.behavior, d.groups, n_perm=19, random_state=0, progress=False
    )
    assert r.p_values[0] == pytest.approx(1 / 20)
    assert r.p_values_fwer[0] == pytest.approx(1 / 20)
    assert r.null_alpha.shape == (19,)


def test_permutation_test_without_trial_ids(small):
    d = small
    r = permutation_test(
        ShaReD(n_shared=1, lags=2, **FAST),
        d.neural,
        d.behavior,
        None,
        n_perm=5,
        min_shift=50,
        random_state=0,
        progress=False,
    )
    assert np.all((r.shifts >= 50) & (r.shifts <= 250))
    assert r.min_shift == [50, 50, 50]


def test_permutation_test_validation(small):
    d = small
    m = ShaReD(n_shared=1, **FAST)
    with pytest.raises(ValueError, match="cv=None"):
        permutation_test(ShaReD(n_shared=1, alpha=1.0, cv=None), d.neural, d.behavior)
    with pytest.raises(ValueError, match="n_perm"):
        permutation_test(m, d.neural, d.behavior, n_perm=0)
    with pytest.raises(ValueError, match="min_shift"):
        permutation_test(m, d.neural, d.behavior, min_shift=200, progress=False)
    with pytest.raises(TypeError, match="ShaReD estimator"):
        permutation_test("model", d.neural, d.behavior)
    with pytest.raises(ValueError, match="subject 1"):
        permutation_test(m, d.neural, [d.behavior[0], d.behavior[1][:-1], d.behavior[2]])
    with pytest.raises(ValueError, match="n_jobs"):
        permutation_test(m, d.neural, d.behavior, n_jobs=0)
    with pytest.raises(TypeError, match="random_state"):
        permutation_test(m, d.neural, d.behavior, n_perm=2, random_state="a", progress=False)
    with pytest.raises(ValueError, match="subject 0"):
        # 2 trials only: no whole-trial shift of at least one trial
        permutation_test(
            m, [d.neural[0][:30]], [d.behavior[0][:30]], [np.repeat([0, 1], 15)], progress=False
        )


# --------------------------------------------------------------------------- bootstrap
def test_bootstrap_ci_contains_truth():
    d = simulate(
        n_subjects=8,
        n_samples=600,
        n_units=15,
        n_behavior=6,
        n_shared=1,
        snr=0.5,
        trial_length=30,
        seed=11,
    )
    model = ShaReD(n_shared=1, alpha=0.1, cv=5, private=False)
    b = bootstrap_subjects(
        model, d.neural, d.behavior, d.groups, n_boot=60, random_state=0, progress=False
    )
    full = b.model
    # truth in the full fit's standardised units, normalised like the fitted axis
    a = d.shared_axes[:, 0] * full.behavior_scale_
    a = a / np.sqrt(a @ full.metric_ @ a)
    a *= np.sign(a @ full.metric_ @ b.axes[:, 0])
    inside = (b.axes_ci[0, :, 0] <= a) & (a <= b.axes_ci[1, :, 0])
    assert inside.mean() >= 5 / 6, (b.axes_ci[:, :, 0], a)
    assert b.axes_boot.shape == (60, 6, 1) and b.score_boot.shape == (60, 1)
    assert b.score_ci[0, 0] <= b.score[0] <= b.score_ci[1, 0]
    assert b.score_ci[0, 0] > 0.1
    assert set(b.summary()["quantity"]) >= {"r2_heldout", "loading:feature_0"}


def test_bootstrap_alignment_removes_rotation():
    # two equal-variance shared dimensions: the axes are only defined up to rotation, so
    # without alignment the loadings would scatter; aligned, they stay close to the full fit
    d = simulate(
        n_subjects=6,
        n_samples=500,
        n_units=15,
        n_behavior=6,
        n_shared=2,
        snr=1.0,
        trial_length=25,
        seed=2,
    )
    b = bootstrap_subjects(
        ShaReD(n_shared=2, **FAST),
        d.neural,
        d.behavior,
        d.groups,
        n_boot=20,
        random_state=1,
        progress=False,
    )
    err = np.abs(b.axes_boot - b.axes[None]).max(axis=(1, 2))
    assert np.median(err) < 0.5 * np.abs(b.axes).max()


def test_bootstrap_validation(small):
    d = small
    m = ShaReD(n_shared=1, **FAST)
    with pytest.raises(ValueError, match="at least 2"):
        bootstrap_subjects(m, d.neural[:1], d.behavior[:1], n_boot=5)
    with pytest.raises(ValueError, match="ci"):
        bootstrap_subjects(m, d.neural, d.behavior, ci=1.5)
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_subjects(m, d.neural, d.behavior, n_boot=1)
    with pytest.warns(UserWarning, match="unreliable"):
        b = bootstrap_subjects(
            m, d.neural, d.behavior, d.groups, n_boot=3, random_state=0, progress=False
        )
    assert b.subjects.shape == (3, 3)


def test_bootstrap_subject_weights_follow_the_drawn_subjects(small):
    d = small
    w = np.array([3.0, 1.0, 0.5])
    m = ShaReD(n_shared=1, subject_weights=w, **FAST)
    with pytest.warns(UserWarning, match="unreliable"):  # 3 subjects
        b = bootstrap_subjects(
            m, d.neural, d.behavior, d.groups, n_boot=4, random_state=0, progress=False
        )
    for draw, V in zip(b.subjects, b.axes_boot, strict=True):
        alone = ShaReD(n_shared=1, subject_weights=w[draw], **FAST).fit(
            [d.neural[i] for i in draw], [d.behavior[i] for i in draw], [d.groups[i] for i in draw]
        )
        expected = (b.model.behavior_scale_ / alone.behavior_scale_) * alone.shared_axes_[:, 0]
        assert np.degrees(subspace_angles(V, expected[:, None]))[0] < 1e-6


# --------------------------------------------------------------------------- groups
@pytest.fixture(scope="module")
def eight():
    return simulate(
        n_subjects=8,
        n_samples=400,
        n_units=12,
        n_behavior=5,
        n_shared=1,
        snr=0.5,
        trial_length=20,
        seed=21,
    )


def _data(d, idx, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    neural = []
    for i in idx:
        X = d.neural[i]
        neural.append(X + noise * X.std(axis=0) * rng.standard_normal(X.shape))
    return neural, [d.behavior[i] for i in idx], [d.groups[i] for i in idx]


def test_compare_groups_null_not_detected(eight):
    m = ShaReD(n_shared=1, **FAST)
    res = compare_groups(
        m, _data(eight, range(4)), m, _data(eight, range(4, 8)), n_perm=100, progress=False
    )
    assert res.exact and res.n_perm == 70  # C(8, 4) splits enumerated
    assert res.p_value_mean > 0.05
    assert res.p_similarity > 0.05 and res.p_subspace > 0.05
    assert res.similarity > 0.8


def test_compare_groups_detects_score_difference(eight):
    m = ShaReD(n_shared=1, **FAST)
    res = compare_groups(
        m,
        _data(eight, range(4)),
        m,
        _data(eight, range(4, 8), noise=2.0),
        n_perm=100,
        progress=False,
    )
    assert res.difference[0] > 0.1
    assert res.p_value_mean <= 2 / 70 + 1e-12 and res.p_values[0] <= 0.05
    df = res.summary()
    assert list(df["dimension"]) == ["0", "mean"]


def test_compare_groups_detects_subspace_difference(eight):
    other = simulate(
        n_subjects=4,
        n_samples=400,
        n_units=12,
        n_behavior=5,
        n_shared=1,
        snr=0.5,
        trial_length=20,
        seed=99,
    )  # different shared axis
    m = ShaReD(n_shared=1, **FAST)
    res = compare_groups(
        m, _data(eight, range(4)), m, other, n_perm=20, random_state=0, progress=False
    )
    assert not res.exact and res.n_perm == 20
    assert res.p_subspace <= 1 / 21 + 1e-12
    assert res.angles[0] > 20 and res.similarity < 0.9


def test_compare_groups_null_fits_keep_the_observed_number_of_dimensions(eight, monkeypatch):
    from sharedrep.inference import stats

    seen = []
    real = stats._quiet_fit

    def spy(model, *args):
        seen.append(model.get_params()["n_shared"])
        return real(model, *args)

    monkeypatch.setattr(stats, "_quiet_fit", spy)
    m = ShaReD(n_shared="auto", max_shared=3, **FAST)
    res = compare_groups(
        m, _data(eight, range(4)), m, _data(eight, range(4, 8)), n_perm=5, progress=False
    )
    k = len(res.angles)
    null_fits = seen[8:]  # after the 8 single-subject fits of the subspace test
    assert len(null_fits) == 2 * res.n_perm and set(null_fits) == {k}


def test_compare_groups_validation(eight):
    m = ShaReD(n_shared=1, **FAST)
    a = _data(eight, range(4))
    with pytest.raises(ValueError, match="same model specification"):
        compare_groups(m, a, ShaReD(n_shared=1, alpha=2.0, cv=5, private=False), a)
    with pytest.raises(ValueError, match="behaviour features"):
        compare_groups(m, a, m, (a[0], [y[:, :3] for y in a[1]]))
    with pytest.raises(ValueError, match="at least 2 subjects"):
        compare_groups(m, _data(eight, [0]), m, a)
    with pytest.raises(TypeError, match="tuple"):
        compare_groups(m, a, m, "data")
    weighted = ShaReD(n_shared=1, subject_weights=[1, 1, 2, 2], **FAST)
    with pytest.raises(ValueError, match="subject_weights=None"):
        compare_groups(weighted, a, weighted, a)


def test_compare_groups_omits_samples_like_the_fits(eight):
    # a non-finite behaviour sample under nan_policy="omit" is the same as dropping it
    m = ShaReD(n_shared=1, nan_policy="omit", **FAST)
    neural, behavior, groups = _data(eight, range(8))
    with_nan = [Y.copy() for Y in behavior]
    with_nan[2][40, 0] = np.nan
    keep = np.arange(behavior[2].shape[0]) != 40
    dropped = (
        [X[keep] if s == 2 else X for s, X in enumerate(neural)],
        [Y[keep] if s == 2 else Y for s, Y in enumerate(behavior)],
        [g[keep] if s == 2 else g for s, g in enumerate(groups)],
    )

    def compare(data):
        X, Y, g = data
        return compare_groups(
            m,
            (X[:4], Y[:4], g[:4]),
            m,
            (X[4:], Y[4:], g[4:]),
            n_perm=10,
            random_state=0,
            progress=False,
        )

    a, b = compare((neural, with_nan, groups)), compare(dropped)
    assert np.isfinite(a.similarity)
    np.testing.assert_allclose(a.similarity, b.similarity, rtol=1e-9)
    np.testing.assert_allclose(a.difference, b.difference, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(a.p_values, b.p_values)
