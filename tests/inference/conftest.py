"""Fixtures shared by the tests of sharedrep.inference."""

import pytest

from sharedrep import simulate


@pytest.fixture(scope="module")
def small():
    """Three simulated subjects with trial ids (300 samples, 8 units, 4 features, k=2)."""
    return simulate(
        n_subjects=3, n_samples=300, n_units=8, n_behavior=4, n_shared=2, trial_length=15, seed=3
    )
