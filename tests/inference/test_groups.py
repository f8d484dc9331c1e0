"""Group comparison by relabelling subjects (sharedrep.inference.groups)."""

import numpy as np
import pytest

from sharedrep import ShaReD, simulate
from sharedrep.inference.groups import compare_groups

FAST = dict(alpha=1.0, cv=5, private=False)


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
    # 4 + 4 subjects: the observed split and its mirror are the 2 most extreme of 70
    assert res.p_min == pytest.approx(2 / 70)
    assert res.p_value_mean == pytest.approx(res.p_min)
    assert res.p_values[0] == pytest.approx(res.p_min)
    assert res.testable and res.reason == "" and res.n_subjects == (4, 4)
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
    from sharedrep.inference import groups

    seen = []
    real = groups._quiet_fit

    def spy(model, *args):
        seen.append(model.get_params()["n_shared"])
        return real(model, *args)

    monkeypatch.setattr(groups, "_quiet_fit", spy)
    m = ShaReD(n_shared="auto", max_shared=3, **FAST)
    res = compare_groups(
        m, _data(eight, range(4)), m, _data(eight, range(4, 8)), n_perm=5, progress=False
    )
    k = len(res.angles)
    # first the fit of all subjects that chooses k (the template's own "auto"), then the
    # 8 single-subject fits of the subspace test, then the observed split's two
    # pseudo-group fits and two per relabelling, all with that k
    assert seen[0] == "auto"
    X, Y, g = _data(eight, range(8))
    assert k == ShaReD(n_shared="auto", max_shared=3, **FAST).fit(X, Y, groups=g).n_shared_
    refits = seen[9:]
    assert len(refits) == 2 * (res.n_perm + 1) and set(refits) == {k}


@pytest.fixture(scope="module")
def auto_k_groups():
    """3 + 3 subjects whose own auto fits select k = 3 (A) and k = 1 (B)."""
    kw = dict(n_subjects=3, n_samples=300, n_units=10, n_behavior=5, trial_length=15, snr=3)
    a = simulate(n_shared=3, seed=1, **kw)
    b = simulate(n_shared=1, seed=51, **kw)
    return a, b


def test_auto_k_observed_statistic_is_the_refit_of_the_observed_split(auto_k_groups):
    # n_shared="auto", alpha=None: the observed difference used to come from each group's
    # own auto fit (own k, own alpha) while every split, the observed one included, was
    # refitted with n_shared=k (alpha reselected); the observed value was then not among
    # the exact null values and p could be 0 < p_min
    a, b = auto_k_groups
    m = ShaReD(n_shared="auto", alpha=None, cv=3, private=False)
    res = compare_groups(m, a, m, b, n_perm=500, random_state=0, progress=False)
    assert res.exact and res.n_perm == 20
    assert np.array_equal(res.splits[0], [1, 1, 1, 0, 0, 0])  # the observed split
    np.testing.assert_array_equal(res.difference, res.null_difference[0])
    assert res.similarity == res.null_similarity[0]
    np.testing.assert_array_equal(res.difference, res.score_a - res.score_b)
    for p in (*res.p_values, res.p_value_mean, res.p_similarity, res.p_subspace):
        assert res.p_min - 1e-12 <= p <= 1


def test_auto_k_observed_statistic_matches_the_split_refit_monte_carlo(auto_k_groups):
    from sharedrep.inference.groups import _common_scale, _group_fit

    a, b = auto_k_groups
    m = ShaReD(n_shared="auto", alpha=None, cv=3, private=False)
    res = compare_groups(m, a, m, b, n_perm=10, random_state=0, progress=False)
    assert not res.exact and res.p_min == pytest.approx(1 / 11)
    k = res.difference.size
    Xs, Ys, gs = a.neural + b.neural, a.behavior + b.behavior, a.groups + b.groups
    observed = np.r_[np.ones(3, bool), np.zeros(3, bool)]
    diff, sim = _group_fit(m, m, Xs, Ys, gs, observed, k, _common_scale(Ys))
    np.testing.assert_allclose(res.difference, diff, rtol=1e-8, atol=1e-12)
    assert res.similarity == pytest.approx(sim, rel=1e-8)
    for p in (*res.p_values, res.p_value_mean, res.p_similarity, res.p_subspace):
        assert res.p_min - 1e-12 <= p <= 1


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


# --------------------------------------------------------------------------- p-values
def test_relabelling_p_counts_nan_null_as_extreme_and_nan_observed_as_nan():
    from sharedrep.inference.groups import _relabelling_p

    null = np.array([[0.1], [np.nan], [-0.3], [0.05]])
    # |null| >= 0.2: -0.3, and the NaN counts as extreme (a failed refit is no evidence)
    assert _relabelling_p(np.array([0.2]), null, False, "abs")[0] == pytest.approx(3 / 5)
    assert _relabelling_p(np.array([0.2]), null, True, "abs")[0] == pytest.approx(2 / 4)
    # a NaN observed statistic has no p-value (a comparison with NaN would give the minimum)
    assert np.isnan(_relabelling_p(np.array([np.nan]), null, False, "abs")[0])
    assert _relabelling_p(0.5, np.array([0.6, 0.4, np.nan]), True, "less") == pytest.approx(2 / 3)
    assert _relabelling_p(0.5, np.array([0.6, 0.4, np.nan]), True, "greater") == pytest.approx(
        2 / 3
    )


def _nan_r2_calls(monkeypatch, calls):
    """Make ``_heldout_r2`` return NaN on the given call numbers (0: group A's fit)."""
    from sharedrep.inference import groups

    real, count = groups._heldout_r2, [0]

    def fake(model, k):
        i = count[0]
        count[0] += 1
        out = real(model, k)
        return np.full_like(out, np.nan) if calls(i) else out

    monkeypatch.setattr(groups, "_heldout_r2", fake)


def test_nan_observed_score_is_not_testable_and_has_no_p(eight, monkeypatch):
    _nan_r2_calls(monkeypatch, lambda i: i == 0)  # group A's observed fit
    m = ShaReD(n_shared=1, **FAST)
    res = compare_groups(
        m, _data(eight, range(4)), m, _data(eight, range(4, 8)), n_perm=100, progress=False
    )
    assert np.isnan(res.difference[0])
    assert np.isnan(res.p_values[0]) and np.isnan(res.p_value_mean)
    assert not res.testable
    assert res.reason.startswith("not testable: the observed difference is not finite")
    assert "group A: [nan]" in res.reason
    assert res.summary().attrs["reason"] == res.reason


def test_failed_null_refits_make_the_p_value_larger_not_smaller(eight, monkeypatch):
    _nan_r2_calls(monkeypatch, lambda i: i >= 2)  # every relabelled refit
    m = ShaReD(n_shared=1, **FAST)
    res = compare_groups(
        m, _data(eight, range(4)), m, _data(eight, range(4, 8)), n_perm=100, progress=False
    )
    assert np.isfinite(res.difference[0]) and np.all(np.isnan(res.null_difference))
    assert res.p_values[0] == 1.0 and res.p_value_mean == 1.0


def test_too_few_animals_or_relabellings_are_not_testable(eight):
    m = ShaReD(n_shared=1, **FAST)
    res = compare_groups(
        m, _data(eight, range(3)), m, _data(eight, range(3, 6)), n_perm=100, progress=False
    )
    # C(6, 3) = 20 splits, mirrored: the smallest p is 2/20 whatever the data
    assert res.exact and res.n_perm == 20 and res.p_min == pytest.approx(0.1)
    assert np.all(res.p_values >= res.p_min - 1e-12)
    assert not res.testable
    assert res.reason == (
        "not testable at the 5% level: n = 3 + 3 animals allow 20 relabellings, "
        "smallest achievable p = 0.1"
    )
    res = compare_groups(
        m,
        _data(eight, range(3)),
        m,
        _data(eight, range(3, 7)),
        n_perm=100,
        progress=False,
    )
    # 3 + 4: C(7, 3) = 35 splits, not mirrored: 1/35 < 0.05
    assert res.exact and res.p_min == pytest.approx(1 / 35) and res.testable
    res = compare_groups(
        m,
        _data(eight, range(4)),
        m,
        _data(eight, range(4, 8)),
        n_perm=9,
        random_state=0,
        progress=False,
    )
    assert not res.exact and res.p_min == pytest.approx(0.1) and not res.testable
    assert res.reason == (
        "not testable at the 5% level: n_perm = 9 relabellings, smallest achievable p = 0.1"
    )


# --------------------------------------------------------------------------- paired
def test_paired_relabellings_swap_the_two_recordings_of_each_animal():
    from sharedrep.inference.groups import _paired_relabellings

    splits, exact = _paired_relabellings(3, 100, random_state=0)
    assert exact and splits.shape == (8, 6)
    assert np.all(splits[:, :3] ^ splits[:, 3:])  # one recording of each animal in A
    assert len({tuple(r) for r in splits}) == 8
    assert any(np.array_equal(r, [1, 1, 1, 0, 0, 0]) for r in splits)  # the observed
    splits, exact = _paired_relabellings(6, 10, random_state=0)
    assert not exact and splits.shape == (10, 12)
    assert np.all(splits[:, :6] ^ splits[:, 6:])
    again, _ = _paired_relabellings(6, 10, random_state=0)
    assert np.array_equal(splits, again)


def test_paired_comparison_uses_the_pairing_that_the_unpaired_one_ignores():
    # 6 animals whose held-out R^2 differ a lot (4 to 24 units), each recorded twice; the
    # second recording is noisier in every animal: a consistent within-animal difference
    d = simulate(
        n_subjects=6,
        n_samples=200,
        n_units=(4, 24),
        n_behavior=4,
        n_shared=1,
        snr=0.5,
        trial_length=10,
        seed=8,
    )
    rng = np.random.default_rng(0)
    noisier = [X + 0.4 * X.std(axis=0) * rng.standard_normal(X.shape) for X in d.neural]
    a, b = (d.neural, d.behavior, d.groups), (noisier, d.behavior, d.groups)
    m = ShaReD(n_shared=1, alpha=1.0, cv=3, private=False)
    paired = compare_groups(m, a, m, b, n_perm=100, paired=True, progress=False)
    # all 2^6 swap patterns; the observed one and its mirror are the most extreme
    assert paired.paired and paired.exact and paired.n_perm == 64
    assert paired.difference[0] > 0
    assert paired.p_min == pytest.approx(2 / 64) and paired.testable
    assert paired.p_values[0] == pytest.approx(paired.p_min)
    # relabelling animals between groups mixes animal differences into the null
    unpaired = compare_groups(m, a, m, b, n_perm=19, random_state=0, progress=False)
    assert unpaired.difference[0] == pytest.approx(paired.difference[0])
    assert unpaired.p_values[0] > 0.2
    with pytest.raises(ValueError, match="paired=True needs the same animals"):
        compare_groups(m, a, m, (b[0][:5], b[1][:5], b[2][:5]), paired=True, progress=False)
