"""Calibration and power of the circular-shift permutation test (docs/method.md, section 3).

Under a true null (``simulate(..., snr=0)``: no relation between neural activity and
behaviour) the p-value of the first shared dimension must be uniform: the fraction below
0.05 over many null datasets must lie in the binomial 99% interval. Models use a fixed
alpha and k so that each refit takes milliseconds; the permutation test still refits
the whole pipeline (standardisation, axes, encoders, cross-validation) every time.
"""

import numpy as np
import pytest
from scipy import stats as sps

from sharedrep import ShaReD, simulate
from sharedrep.inference.permutation import permutation_test

SMALL = dict(n_subjects=3, n_samples=300, n_units=8, n_behavior=4, n_shared=1, trial_length=15)


def first_dim_pvalues(n_datasets, n_perm, snr, seed0, model=None, **kw):
    model = model or ShaReD(n_shared=1, alpha=1.0, cv=5, private=False)
    params = {**SMALL, **kw}
    out = []
    for i in range(n_datasets):
        d = simulate(snr=snr, seed=seed0 + i, **params)
        res = permutation_test(
            model, d.neural, d.behavior, d.groups, n_perm=n_perm, random_state=i, progress=False
        )
        out.append(res.p_values[0])
    return np.array(out)


def binomial_99(n, level=0.05):
    lo, hi = sps.binom.interval(0.99, n, level)
    return lo / n, hi / n


def test_null_pvalues_roughly_uniform_fast():
    # 19 permutations: p takes the values k/20 and P(p <= 0.05) = 1/20 exactly under the null
    p = first_dim_pvalues(30, 19, snr=0.0, seed0=1000)
    lo, hi = binomial_99(p.size)
    frac = float(np.mean(p <= 0.05))
    assert lo <= frac <= hi, f"fraction of null p <= 0.05 is {frac:.3f}, 99% interval [{lo}, {hi}]"
    # loose check of the whole distribution: P(p <= 0.5) = 1/2
    lo, hi = binomial_99(p.size, 0.5)
    assert lo <= np.mean(p <= 0.5) <= hi


@pytest.mark.slow
def test_null_pvalues_calibrated_200_datasets():
    p = first_dim_pvalues(200, 99, snr=0.0, seed0=2000)
    lo, hi = binomial_99(p.size)
    frac = float(np.mean(p <= 0.05))
    assert lo <= frac <= hi, f"fraction of null p <= 0.05 is {frac:.3f}, 99% interval [{lo}, {hi}]"
    assert sps.kstest(p, "uniform").pvalue > 0.001


@pytest.mark.slow
def test_null_pvalues_calibrated_with_cv_selection():
    # the complete pipeline, alpha chosen by cross-validation in every refit
    model = ShaReD(n_shared=1, cv=5, private=False, alphas=np.logspace(-2, 2, 5))
    p = first_dim_pvalues(100, 49, snr=0.0, seed0=3000, model=model)
    lo, hi = binomial_99(p.size)
    frac = float(np.mean(p <= 0.05))
    assert lo <= frac <= hi, f"fraction of null p <= 0.05 is {frac:.3f}, 99% interval [{lo}, {hi}]"


def test_power_weak_signal():
    # a real but weak shared signal: detected in most datasets
    # encoding units have a population R^2 of only 0.1 / 1.1 = 9%
    p = first_dim_pvalues(8, 39, snr=0.1, seed0=4000)
    assert np.mean(p < 0.05) >= 0.75, p
