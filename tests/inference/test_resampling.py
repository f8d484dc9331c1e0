"""Shared helpers of the resampling tests (``sharedrep.inference._resampling``)."""

import numpy as np

from sharedrep.inference._resampling import _upper_p


def test_upper_p_counts_ties_and_nan_nulls_as_extreme_and_keeps_nan_observed():
    null = np.array([[0.1, 0.5, 0.0], [0.3, np.nan, 0.0], [0.2, 0.1, np.nan]])
    observed = np.array([0.3, 0.2, np.nan])
    p = _upper_p(observed, null)
    # column 0: one tie (0.3) -> (1 + 1) / 4; column 1: 0.5 and the NaN -> 3 / 4
    np.testing.assert_array_equal(p[:2], [2 / 4, 3 / 4])
    assert np.isnan(p[2])  # never the smallest p for a value that could not be scored
    assert _upper_p(1.0, np.zeros(9)) == 0.1  # scalar: (1 + 0) / (1 + 9)
