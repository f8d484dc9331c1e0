"""Intervals over mice: honest coverage with the few mice of a study.

The analyses' interval of a mean over mice (``_common.t_mean_ci``, a Student t interval)
must cover the true mean of simulated per-mouse values at its nominal 95% rate, within a
binomial tolerance, at 2 to 8 mice; the percentile bootstrap it replaced did not (about
50% with 2 mice, 75% with 3). Where the data cannot give an interval (fewer than 2
mice, equal values) the bounds are NaN and a reason says why, never ``[x, x]``. The lag
analysis keeps a percentile bootstrap of the peak-lag shift (a maximum, not a mean) but
gives none over fewer than 3 mice.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sharedrep.study._common import ci_text, t_mean_ci, ttest_p

N_SETS = 2000  # simulated data sets per coverage check
NOMINAL = 0.95
#: four binomial standard errors of a coverage measured over N_SETS data sets (~0.019)
TOL = 4 * math.sqrt(NOMINAL * (1 - NOMINAL) / N_SETS)


def _coverage(interval, draw, mean: float, n: int, seed: int) -> float:
    """Fraction of ``N_SETS`` data sets of ``n`` values whose interval holds ``mean``
    (a NaN interval counts as a miss)."""
    rng = np.random.default_rng(seed)
    data = draw(rng, (N_SETS, n))
    hits = 0
    for x in data:
        lo, hi = interval(x)[:2]
        hits += bool(lo <= mean <= hi)
    return hits / N_SETS


def _old_percentile_bootstrap(x, n_boot: int = 2000, ci: float = 0.95, seed: int = 0):
    """The interval the analyses reported before: percentile bootstrap of the mean."""
    a = np.asarray(x, dtype=float)
    rng = np.random.default_rng(seed)
    means = a[rng.integers(0, a.size, size=(n_boot, a.size))].mean(axis=1)
    return tuple(np.quantile(means, [(1 - ci) / 2, (1 + ci) / 2]))


def _normal(rng, size):
    return rng.normal(1.0, 2.0, size)


def _t3(rng, size):
    return 1.0 + rng.standard_t(3, size)


# --------------------------------------------------------------------------- coverage
@pytest.mark.parametrize("n", [2, 3, 5, 8])
def test_t_interval_covers_the_mean_of_normal_values_at_the_nominal_rate(n):
    cover = _coverage(t_mean_ci, _normal, 1.0, n, seed=n)
    assert abs(cover - NOMINAL) <= TOL, cover


@pytest.mark.parametrize("n", [3, 5])
def test_t_interval_does_not_under_cover_heavy_tailed_values(n):
    """t3 per-mouse values (infinite kurtosis): the t interval is conservative."""
    cover = _coverage(t_mean_ci, _t3, 1.0, n, seed=10 + n)
    assert cover >= NOMINAL - TOL, cover


def test_t_interval_on_integer_values_counts_equal_values_as_no_interval():
    """Integer per-mouse values (e.g. peak-lag shifts in frames, 0-3 frames): with 8 mice
    the interval covers at the nominal rate even though data sets whose mice all have
    the same value give no interval (counted as misses; the percentile bootstrap gave
    ``[x, x]`` there, which never holds the mean 1.4)."""

    def shifts(rng, size):
        return rng.choice([0.0, 1.0, 2.0, 3.0], size=size, p=[0.1, 0.5, 0.3, 0.1])

    cover = _coverage(t_mean_ci, shifts, 1.4, 8, seed=3)
    assert cover >= NOMINAL - TOL, cover


@pytest.mark.parametrize(("n", "at_most"), [(2, 0.60), (3, 0.82), (5, 0.88)])
def test_old_percentile_bootstrap_under_covers_with_few_mice(n, at_most):
    """Why the interval changed: the percentile bootstrap's "95%" holds the true mean of
    normal values in about 50% (2 mice), 75% (3) and 84% (5) of data sets."""
    n_sets = 600  # each interval draws 2000 resamples: fewer data sets, same verdict
    rng = np.random.default_rng(100 + n)
    data = _normal(rng, (n_sets, n))
    cover = np.mean([lo <= 1.0 <= hi for lo, hi in map(_old_percentile_bootstrap, data)])
    assert cover <= at_most, cover
    # the t interval on the same data sets is at the nominal rate
    t_cover = np.mean([t_mean_ci(x).low <= 1.0 <= t_mean_ci(x).high for x in data])
    assert t_cover >= NOMINAL - 4 * math.sqrt(NOMINAL * (1 - NOMINAL) / n_sets)


# --------------------------------------------------------------------------- definition
@pytest.mark.parametrize("n", [2, 3, 7])
@pytest.mark.parametrize("ci", [0.9, 0.95, 0.99])
def test_t_interval_is_scipys_one_sample_t_interval(n, ci):
    x = np.random.default_rng(n).lognormal(size=n)
    ref = stats.ttest_1samp(x, 0.0).confidence_interval(confidence_level=ci)
    got = t_mean_ci(x, ci=ci)
    np.testing.assert_allclose([got.low, got.high], [ref.low, ref.high], rtol=1e-12)
    assert got.reason == ""


def test_t_interval_excludes_zero_exactly_when_the_t_test_rejects():
    """The interval is the dual of the two-sided t-test the analyses report."""
    rng = np.random.default_rng(4)
    agree = []
    for k in range(300):
        x = rng.normal(0.6, 1.0, size=3 + k % 6)
        lo, hi, _ = t_mean_ci(x)
        p = ttest_p(x)
        if abs(p - 0.05) > 1e-9:
            agree.append((lo > 0 or hi < 0) == (p < 0.05))
    assert all(agree) and len(agree) > 290


def test_t_interval_is_deterministic_and_ignores_order_and_non_finite_values():
    x = np.array([0.3, -1.2, 2.5, 0.7])
    first = t_mean_ci(x)
    assert t_mean_ci(x) == first
    assert t_mean_ci(x[::-1]) == pytest.approx(first)
    assert t_mean_ci([0.3, np.nan, -1.2, np.inf, 2.5, 0.7]) == first
    assert first.low < np.mean(x) < first.high


# --------------------------------------------------------------------------- no interval
@pytest.mark.parametrize(
    ("x", "words"),
    [
        ([], "n = 0 mice"),
        ([1.5], "n = 1 mouse"),
        ([2.0, np.nan], "n = 1 mouse"),
        ([2.0, 2.0, 2.0], "the n = 3 mice have the same value"),
        ([1.0, 1.0 + 1e-17, 1.0], "the n = 3 mice have the same value"),
        ([0.0, 0.0], "the n = 2 mice have the same value"),
    ],
)
def test_no_interval_without_a_spread_to_measure(x, words):
    lo, hi, why = t_mean_ci(x)
    assert math.isnan(lo) and math.isnan(hi)
    assert why == f"not computable ({words})"
    assert ci_text(lo, hi, why) == f"95% CI not computable ({words})"


def test_ci_text_and_bad_level():
    assert ci_text(-0.1234, 0.5, label="t 95% CI") == "t 95% CI [-0.123, +0.5]"
    assert ci_text(math.nan, 1.0) == "95% CI not computable"
    for bad in (0, 1, 1.5, -0.2):
        with pytest.raises(ValueError, match="ci must be in"):
            t_mean_ci([1.0, 2.0, 3.0], ci=bad)


# --------------------------------------------------------------------------- analyses
def test_equal_per_mouse_changes_give_no_interval_in_selective_activation():
    """Three mice whose selectivity changes by exactly the same amount: no interval
    (the bootstrap gave [0.5, 0.5]), and the description says why."""
    from sharedrep.study.activation import _change_row, _describe, _summarise

    a = pd.DataFrame({"selectivity": [0.1, 0.4, 0.2]}, index=["m1", "m2", "m3"])
    b = a + 0.5
    common = list(a.index)
    row = _change_row("thal", "selectivity", a, b, common, first="novice", last="expert", seed=0)
    assert row["change"] == pytest.approx(0.5)
    assert math.isnan(row["ci_low"]) and math.isnan(row["ci_high"])
    assert row["ci_reason"] == "not computable (the n = 3 mice have the same value)"
    changes = pd.DataFrame([row])
    text = _describe(_summarise(changes, (0, 2), "cue_time"), (0, 2), "cue_time")
    assert "[t 95% CI not computable (the n = 3 mice have the same value)]" in text
    assert "Student t 95% CI" in text and "bootstrap" not in text
    # different changes: the t interval of the per-mouse changes
    b = a + pd.DataFrame({"selectivity": [0.3, 0.5, 0.9]}, index=common)
    row = _change_row("thal", "selectivity", a, b, common, first="novice", last="expert", seed=0)
    ref = t_mean_ci([0.3, 0.5, 0.9])
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((ref.low, ref.high))
    assert isinstance(row["ci_reason"], float) and math.isnan(row["ci_reason"])


def test_fraction_driven_interval_stays_within_0_and_1():
    from sharedrep.study.optogenetics import _fraction_ci

    out = _fraction_ci(np.array([0.0, 0.02, 0.01]))
    lo, hi = out["fraction_driven_ci"]
    assert lo == 0.0 and 0.01 < hi < 1 and out["fraction_driven_ci_reason"] == ""
    assert t_mean_ci([0.0, 0.02, 0.01]).low < 0  # clipped, not computed differently
    out = _fraction_ci(np.array([0.25]))
    assert all(map(math.isnan, out["fraction_driven_ci"]))
    assert out["fraction_driven_ci_reason"] == "not computable (n = 1 mouse)"


@pytest.fixture(scope="module")
def three_mice():
    from sharedrep.sim.learning_study import simulate_study

    return simulate_study(n_mice=3, days=(1, 14), trials_per_session=20, seed=2)


def test_learning_curves_report_the_t_interval_of_the_per_mouse_slopes(three_mice):
    from sharedrep.study import learning_curves
    from sharedrep.study.behavior import _slope

    r = learning_curves(three_mice.collection)
    table = r.table
    for metric, v in r.summary["metrics"].items():
        slopes = [
            _slope(d["day"].to_numpy(float), d[metric].to_numpy(float))
            for _, d in table.groupby("subject", sort=False)
        ]
        ref = t_mean_ci(slopes)
        np.testing.assert_allclose(v["ci"], [ref.low, ref.high])
        assert v["ci_reason"] == ref.reason
    assert "Student t 95% CI of the mean slope" in r.description
    assert "t 95% CI [" in r.description and "bootstrap" not in r.description


def test_n_boot_is_ignored_with_a_future_warning(three_mice):
    from sharedrep.study import learning_curves

    with pytest.warns(FutureWarning, match="n_boot is ignored"):
        r = learning_curves(three_mice.collection, n_boot=10)
    assert r.summary == learning_curves(three_mice.collection).summary


# --------------------------------------------------------------------------- lag shifts
def _profiles(rng, n_mice: int, peak: int, lags: np.ndarray) -> np.ndarray:
    """Per-mouse held-out R^2 profiles peaking near ``peak`` (frames)."""
    bump = np.exp(-((lags - peak - 0.5 * rng.standard_normal((n_mice, 1))) ** 2) / 4.5)
    return 0.1 * bump + 0.03 * rng.standard_normal((n_mice, lags.size))


def _shift(n_mice: int, seed: int, first_peak: int = 1, last_peak: int = 4):
    from sharedrep.study.timing import _shift_row

    lags = np.arange(-2, 8)
    rng = np.random.default_rng(seed)
    mice = [f"m{i}" for i in range(n_mice)]
    curves = {
        ("thal", "novice"): (mice, _profiles(rng, n_mice, first_peak, lags)),
        ("thal", "expert"): (mice, _profiles(rng, n_mice, last_peak, lags)),
    }
    rates = {("thal", "novice"): 10.0, ("thal", "expert"): 10.0}
    return _shift_row(
        "thal",
        "novice",
        "expert",
        curves,
        lags,
        rates,
        np.random.default_rng(0),
        500,
        [0.025, 0.975],
    )


def test_lag_shift_has_no_bootstrap_interval_over_two_mice():
    """A bootstrap over 2 mice spans about the range of the two (only 3 distinct
    resamples): no interval, whatever the data."""
    for seed in range(5):
        row = _shift(2, seed)
        assert all(math.isnan(row[k]) for k in ("ci_low", "ci_high", "ci_low_s", "ci_high_s"))
        assert row["ci_reason"].startswith("not computed (n = 2 mice: a percentile bootstrap")
        assert math.isfinite(row["shift"]) and math.isfinite(row["p_signflip"])


def test_lag_shift_bootstrap_interval_from_three_mice_is_deterministic():
    row = _shift(3, seed=1)
    assert row["ci_low"] <= row["ci_high"] and isinstance(row["ci_reason"], float)
    assert row["ci_low_s"] == pytest.approx(row["ci_low"] / 10.0)
    again = _shift(3, seed=1)
    assert (again["ci_low"], again["ci_high"]) == (row["ci_low"], row["ci_high"])


def test_two_mouse_lag_profiles_say_why_there_is_no_interval(two_mouse_null_lags):
    r = two_mouse_null_lags
    sh = r.summary["shifts"]["thalamus"]
    assert all(math.isnan(c) for c in (*sh["ci"], *sh["ci_s"])) and not sh["excludes_zero"]
    assert sh["ci_reason"].startswith("not computed (n = 2 mice")
    assert "[95% CI not computed (n = 2 mice" in r.description
    for v in r.summary["peaks"].values():
        assert all(map(math.isnan, v["ci"])) and v["ci_reason"].startswith("not computed")
