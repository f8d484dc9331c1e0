"""Calibration and power of the resampling tests (docs/statistics-calibration.md).

Under a true null (``simulate(..., snr=0)``: no relation between neural activity and
behaviour; or two groups of subjects drawn from one distribution) a p-value must be
uniform: the number of null datasets with ``p <= level`` is Binomial(n, level). Every
calibration check compares that count with bounds from :func:`scipy.stats.binom` chosen
so that a calibrated test fails with probability at most 1.5% (``RISK``), and a companion
check (:func:`test_the_fast_designs_tell_calibrated_from_inflated`) proves that the same
bounds let an inflated test (15% instead of 5%) pass with probability below 1%.

The fast checks (run by default, about 60 s of CPU together) use tiny problems and fixed
alpha and k, so that each refit takes milliseconds; every refit still runs the whole
pipeline (standardisation, axes, encoders, cross-validation). The ``slow`` checks use
more permutations and alpha chosen by cross-validation.
"""

import numpy as np
import pytest
from scipy import stats as sps

from parallel_calls import parallel_calls
from sharedrep import ShaReD, simulate
from sharedrep.inference.groups import compare_groups
from sharedrep.inference.permutation import permutation_test

# expected on null data: the observed fit finds nothing
pytestmark = pytest.mark.filterwarnings("ignore:no shared dimension:UserWarning")

#: Probability that a calibrated test exceeds the upper bound (the lower tail: half of it).
RISK = 0.01
#: Null datasets of the fast permutation check: enough to tell 5% from 15%.
N_NULL = 200
#: Null replicates of the fast group check (2 + 2 subjects, exact: 6 relabellings).
N_GROUPS = 100
#: A tiny problem: 2 subjects, 20 trials of 10 samples, 6 units, 3 features.
TINY = dict(n_subjects=2, n_samples=200, n_units=6, n_behavior=3, n_shared=1, trial_length=10)
SMALL = dict(n_subjects=3, n_samples=300, n_units=8, n_behavior=4, n_shared=1, trial_length=15)


def count_bounds(n: int, level: float, risk: float = RISK) -> tuple[int, int]:
    """``(lo, hi)`` for the count ``X ~ Binomial(n, level)`` of null p-values <= level.

    ``hi``: the smallest count with ``P(X > hi) <= risk``; ``lo``: the largest count with
    ``P(X < lo) <= risk / 2``. A calibrated test falls outside with probability at most
    ``1.5 * risk``.
    """
    return int(sps.binom.ppf(risk / 2, n, level)), int(sps.binom.isf(risk, n, level))


def assert_calibrated(p: np.ndarray, level: float, what: str) -> None:
    """The count of ``p <= level`` lies inside the binomial bounds of :func:`count_bounds`."""
    n = p.size
    k = int(np.sum(p <= level + 1e-12))
    lo, hi = count_bounds(n, level)
    assert lo <= k <= hi, (
        f"{what}: {k} of {n} null p-values <= {level:.3g} (rate {k / n:.3f}); a calibrated "
        f"test gives between {lo} and {hi} with probability >= {1 - 1.5 * RISK}"
    )


def test_the_fast_designs_tell_calibrated_from_inflated():
    # with N_NULL null datasets a calibrated 5% test fails the bounds with probability
    # <= 1.5% and a test that rejects 15% of null datasets passes them with probability < 1%
    lo, hi = count_bounds(N_NULL, 0.05)
    assert sps.binom.sf(hi, N_NULL, 0.05) + sps.binom.cdf(lo - 1, N_NULL, 0.05) <= 1.5 * RISK
    assert sps.binom.cdf(hi, N_NULL, 0.15) < RISK
    assert lo >= 1  # a test that never rejects fails too
    # the group check at level 1/3 (N_GROUPS replicates) catches a rate of 3/5
    lo, hi = count_bounds(N_GROUPS, 1 / 3)
    assert sps.binom.cdf(hi, N_GROUPS, 0.6) < RISK and lo >= 1


def first_dim_pvalues(n_datasets, n_perm, snr, seed0, model=None, problem=SMALL):
    # the datasets are independent and seeded: their tests run on every CPU
    model = model or ShaReD(n_shared=1, alpha=1.0, cv=5, private=False)
    calls = []
    for i in range(n_datasets):
        d = simulate(snr=snr, seed=seed0 + i, **problem)
        kwargs = dict(n_perm=n_perm, random_state=i, progress=False)
        calls.append((permutation_test, (model, d.neural, d.behavior, d.groups), kwargs))
    return np.array([res.p_values[0] for res in parallel_calls(calls)], dtype=float)


def test_permutation_null_calibrated_fast():
    # 19 permutations: p takes the values k/20 and P(p <= 0.05) = 1/20 exactly under the null
    model = ShaReD(n_shared=1, alpha=1.0, cv=3, private=False)
    p = first_dim_pvalues(N_NULL, 19, snr=0.0, seed0=1000, model=model, problem=TINY)
    assert_calibrated(p, 0.05, "permutation_test, fast null")
    # the middle of the distribution too: P(p <= 0.5) = 1/2
    assert_calibrated(p, 0.5, "permutation_test, fast null")


@pytest.mark.slow
def test_permutation_null_calibrated_200_datasets():
    p = first_dim_pvalues(N_NULL, 99, snr=0.0, seed0=2000)
    assert_calibrated(p, 0.05, "permutation_test, 99 permutations")
    assert sps.kstest(p, "uniform").pvalue > 0.001


@pytest.mark.slow
def test_permutation_null_calibrated_with_cv_selection():
    # the complete pipeline, alpha chosen by cross-validation in every refit
    model = ShaReD(n_shared=1, cv=5, private=False, alphas=np.logspace(-2, 2, 5))
    p = first_dim_pvalues(N_NULL, 19, snr=0.0, seed0=3000, model=model)
    assert_calibrated(p, 0.05, "permutation_test, alpha by cross-validation")


def test_power_weak_signal():
    # a real but weak shared signal: detected in most datasets
    # encoding units have a population R^2 of only 0.1 / 1.1 = 9%
    p = first_dim_pvalues(8, 39, snr=0.1, seed0=4000)
    assert np.mean(p < 0.05) >= 0.75, p


# --------------------------------------------------------------------------- groups
def group_null_pvalues(n_reps, per_group, n_perm, seed0, problem):
    """Score and subspace p-values of ``compare_groups`` on groups from one distribution."""
    model = ShaReD(n_shared=1, alpha=1.0, cv=3, private=False)
    calls = []
    for i in range(n_reps):
        d = simulate(snr=0.5, seed=seed0 + i, **{**problem, "n_subjects": 2 * per_group})
        a, b = d.subset(range(per_group)), d.subset(range(per_group, 2 * per_group))
        kwargs = dict(n_perm=n_perm, random_state=i, progress=False)
        calls.append((compare_groups, (model, a, model, b), kwargs))
    results = parallel_calls(calls)
    p_score = np.array([res.p_values[0] for res in results], dtype=float)
    p_subspace = np.array([res.p_subspace for res in results], dtype=float)
    return p_score, p_subspace


def test_group_comparison_null_calibrated_fast():
    # 2 + 2 subjects: the 6 splits form 3 pairs of mirror splits with the same |difference|
    # (and the same pseudo-F), so under the null P(p <= 1/3) = 1/3 exactly
    p_score, p_subspace = group_null_pvalues(N_GROUPS, 2, 100, seed0=5000, problem=TINY)
    assert set(np.round(p_score * 6).astype(int)) <= {2, 4, 6}
    assert_calibrated(p_score, 1 / 3, "compare_groups score test, 2 + 2 subjects")
    assert_calibrated(p_subspace, 1 / 3, "compare_groups subspace test, 2 + 2 subjects")


@pytest.mark.slow
def test_group_comparison_null_calibrated_at_5_percent():
    # 4 + 4 subjects, 19 random relabellings of the C(8, 4) = 70: P(p <= 0.05) <= 1/20
    p_score, p_subspace = group_null_pvalues(N_NULL, 4, 19, seed0=6000, problem=TINY)
    assert_calibrated(p_score, 0.05, "compare_groups score test, 4 + 4 subjects")
    assert_calibrated(p_subspace, 0.05, "compare_groups subspace test, 4 + 4 subjects")


@pytest.mark.slow
def test_paired_group_comparison_null_calibrated_at_5_percent():
    # 6 animals recorded twice, both recordings from one distribution (independent noise);
    # animals differ (4 to 16 units); 19 random within-animal swaps of the 2^6 = 64
    model = ShaReD(n_shared=1, alpha=1.0, cv=3, private=False)
    p = np.empty(N_NULL)
    for i in range(N_NULL):
        d = simulate(snr=0.5, seed=7000 + i, **{**TINY, "n_subjects": 6, "n_units": (4, 16)})
        rng = np.random.default_rng(i)
        rec = [
            [X + 0.3 * X.std(axis=0) * rng.standard_normal(X.shape) for X in d.neural]
            for _ in range(2)
        ]
        res = compare_groups(
            model,
            (rec[0], d.behavior, d.groups),
            model,
            (rec[1], d.behavior, d.groups),
            n_perm=19,
            random_state=i,
            paired=True,
            progress=False,
        )
        p[i] = res.p_values[0]
    assert_calibrated(p, 0.05, "compare_groups paired score test, 6 animals")
