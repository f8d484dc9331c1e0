"""Circular-shift permutation test and shift machinery (sharedrep.inference.permutation)."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from sharedrep import ShaReD, simulate
from sharedrep.core import neural_cache, solver
from sharedrep.inference.permutation import (
    circular_shift_candidates,
    default_min_shift,
    draw_shifts,
    max_statistic_p_values,
    permutation_test,
)

FAST = dict(alpha=1.0, cv=5, private=False)


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
    with pytest.warns(UserWarning) as caught:
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
    assert r.n_perm_requested == 50 and r.p_min == pytest.approx(1 / 18)
    assert any("only 17 distinct circular shifts" in str(w.message) for w in caught)
    # 1/18 > 0.05: no p-value can reach the 5% level
    assert any("0.0556 > level 0.05" in str(w.message) for w in caught) and not r.testable
    assert np.array_equal(np.sort(r.shifts[:, 0]), np.arange(30, 271, 15))
    assert r.p_values[0] >= 1 / 18


def test_max_statistic_p_values():
    obs = np.array([3.0, 1.0])
    null = np.array([[0.0, 2.0], [1.0, 0.5], [4.0, 0.0], [0.5, 0.2]])
    # null maxima 2, 1, 4, 0.5
    assert np.allclose(max_statistic_p_values(obs, null), [(1 + 1) / 5, (1 + 3) / 5])


def test_max_statistic_counts_a_nan_null_row_as_extreme_and_nan_observed_as_nan():
    obs = np.array([3.0, 1.0, np.nan])
    # row maxima: 2, +inf (a refit without a score in one dimension), 4, 0.5
    null = np.array([[0.0, 2.0, 0.1], [np.nan, 0.5, 0.2], [4.0, 0.0, 0.3], [0.5, 0.2, -0.1]])
    p = max_statistic_p_values(obs, null)
    np.testing.assert_allclose(p[:2], [(1 + 2) / 5, (1 + 3) / 5])
    assert np.isnan(p[2])  # never the smallest p
    with pytest.raises(ValueError, match="null must be"):
        max_statistic_p_values(obs[:2], null)


def test_p_values_count_nan_null_as_extreme_and_nan_observed_as_nan():
    from sharedrep.inference.permutation import _p_values

    null = np.array([[0.1, 0.1], [np.nan, np.nan], [0.3, 0.0], [0.05, 0.2]])
    p = _p_values(np.array([0.2, np.nan]), null)
    # 0.3 and the NaN are at least as extreme as 0.2: (1 + 2) / (1 + 4)
    assert p[0] == pytest.approx(3 / 5)
    assert np.isnan(p[1])


# --------------------------------------------------------------------------- testability
def _few_trials():
    """One subject of 6 trials of 50 samples (strong signal): 5 whole-trial shifts."""
    return simulate(
        n_subjects=1,
        n_samples=300,
        n_units=8,
        n_behavior=4,
        n_shared=1,
        trial_length=50,
        seed=0,
        snr=5,
    )


def test_permutation_test_says_when_it_cannot_reach_the_level():
    d = _few_trials()
    m = ShaReD(n_shared=1, alpha=1.0, cv=3, private=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = permutation_test(
            m, d.neural, d.behavior, d.groups, n_perm=200, random_state=0, progress=False
        )
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert any("only 5 distinct circular shifts exist (n_perm=200" in t for t in messages)
    assert any("cannot reach significance" in t for t in messages)
    assert r.n_perm == 5 and r.n_perm_requested == 200 and r.exhaustive
    assert r.p_min == pytest.approx(1 / 6) and r.level == 0.05
    assert r.p_values[0] == pytest.approx(r.p_min)  # as extreme as every shift
    assert not r.testable
    assert r.reason == (
        "not testable at the 5% level: only 5 distinct circular shifts exist "
        "(n_perm = 200 requested), smallest achievable p = 0.167"
    )
    attrs = r.summary().attrs
    assert attrs["testable"] is False and attrs["reason"] == r.reason
    assert attrs["p_min"] == r.p_min and attrs["n_perm"] == 5
    assert attrs["n_perm_requested"] == 200 and attrs["level"] == 0.05


def test_permutation_test_too_few_permutations_and_level(small):
    d = small.subset([0])  # 17 whole-trial shifts
    m = ShaReD(n_shared=1, **FAST)
    kw = dict(n_perm=9, random_state=0, progress=False)
    with pytest.warns(UserWarning, match="cannot reach significance") as caught:
        r = permutation_test(m, d.neural, d.behavior, d.groups, **kw)
    assert not any("distinct circular shifts" in str(w.message) for w in caught)
    assert r.n_perm == r.n_perm_requested == 9 and r.p_min == pytest.approx(0.1)
    assert not r.testable
    assert r.reason == (
        "not testable at the 5% level: n_perm = 9 circular shifts, smallest achievable p = 0.1"
    )
    # the same test at the 10% level can answer
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = permutation_test(m, d.neural, d.behavior, d.groups, level=0.1, **kw)
    assert not any("circular shifts" in str(w.message) for w in caught)
    assert r.testable and r.reason == "" and r.level == 0.1
    for bad in (0, 1.0, 1.5, True, "0.05"):
        with pytest.raises(ValueError, match="level must be a number in"):
            permutation_test(m, d.neural, d.behavior, d.groups, level=bad, **kw)


def test_nan_observed_statistic_is_not_testable(small, monkeypatch):
    from sharedrep.inference import permutation

    real, calls = permutation._heldout_r2, [0]

    def fake(model, k):
        calls[0] += 1
        out = real(model, k)
        return np.full_like(out, np.nan) if calls[0] == 1 else out  # the observed fit

    monkeypatch.setattr(permutation, "_heldout_r2", fake)
    d = small
    r = permutation_test(
        ShaReD(n_shared=1, **FAST),
        d.neural,
        d.behavior,
        d.groups,
        n_perm=19,
        random_state=0,
        progress=False,
    )
    assert np.isnan(r.p_values[0]) and np.isnan(r.p_values_fwer[0])
    assert not r.testable
    assert r.reason == "not testable: the observed held-out R^2 is not finite (dimension 0: nan)"


# --------------------------------------------------------------------------- permutation
@pytest.mark.filterwarnings("ignore:with .* circular shifts the smallest:UserWarning")
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


@pytest.mark.filterwarnings("ignore:with .* circular shifts the smallest:UserWarning")
def test_permutation_test_n_jobs_does_not_change_results(small):
    d = small
    model = ShaReD(n_shared=1, **FAST)
    kw = dict(n_perm=4, random_state=7, progress=False)
    r1 = permutation_test(model, d.neural, d.behavior, d.groups, n_jobs=1, **kw)
    r2 = permutation_test(model, d.neural, d.behavior, d.groups, n_jobs=2, **kw)
    assert np.array_equal(r1.shifts, r2.shifts)
    assert np.allclose(r1.null, r2.null)


def test_null_refits_reuse_the_neural_side_and_equal_fresh_refits(monkeypatch):
    """The refits take the observed fit's neural statistics and fold reductions
    (sharedrep.core.neural_cache): the null is that of refitting from scratch."""
    d = simulate(
        n_subjects=3, n_samples=600, n_units=12, n_behavior=4, n_shared=1, snr=0.5,
        trial_length=20, seed=8,
    )  # fmt: skip
    model = ShaReD(cv=4, lags=[0, 1], private=False, random_state=0)
    calls = []
    behavior_only = solver.behavior_statistics
    monkeypatch.setattr(
        solver, "behavior_statistics", lambda *a: calls.append(1) or behavior_only(*a)
    )
    kw = dict(n_perm=6, random_state=2, progress=False)
    reused = permutation_test(model, d.neural, d.behavior, d.groups, **kw)
    assert len(calls) == 6 * 3  # every null refit of every subject
    monkeypatch.setattr(neural_cache, "MAX_BYTES", 0)  # nothing kept: fresh refits
    fresh = permutation_test(model, d.neural, d.behavior, d.groups, **kw)
    assert len(calls) == 6 * 3
    np.testing.assert_array_equal(reused.null_alpha, fresh.null_alpha)
    np.testing.assert_allclose(reused.null, fresh.null, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(reused.p_values, fresh.p_values)
    np.testing.assert_array_equal(reused.observed, fresh.observed)


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
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = permutation_test(
            model, d.neural, d.behavior, d.groups, n_perm=19, random_state=0, progress=False
        )
    assert not any("circular shifts" in str(w.message) for w in caught)
    assert r.p_values[0] == pytest.approx(1 / 20)
    assert r.p_values_fwer[0] == pytest.approx(1 / 20)
    assert r.null_alpha.shape == (19,)
    # 19 shifts reach the 5% level exactly
    assert r.p_min == pytest.approx(1 / 20) and r.testable and r.reason == ""


@pytest.mark.filterwarnings("ignore:with .* circular shifts the smallest:UserWarning")
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


def test_summary_of_a_dimension_whose_null_is_all_nan_is_quiet():
    from sharedrep.inference.permutation import PermutationResult

    null = np.array([[0.1, np.nan], [0.2, np.nan]])
    res = PermutationResult(
        observed=np.array([0.3, np.nan]),
        null=null,
        p_values=np.array([1 / 3, np.nan]),
        p_values_fwer=np.array([1 / 3, np.nan]),
        shifts=np.zeros((2, 1), dtype=int),
        min_shift=[1],
        n_shared=2,
        alpha=1.0,
        null_alpha=np.ones(2),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = res.summary()
    assert np.isnan(df["null_mean"][1]) and df["null_mean"][0] == pytest.approx(0.15)
