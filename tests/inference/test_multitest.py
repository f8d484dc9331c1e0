"""Multiple-testing corrections (sharedrep.inference.multitest)."""

import numpy as np
import pytest

from sharedrep.inference.multitest import benjamini_hochberg, holm


@pytest.mark.parametrize("correct", [holm, benjamini_hochberg])
@pytest.mark.parametrize(
    ("p", "message"),
    [
        ([-0.5, 0.2], r"got -0\.5 at position 0"),
        ([0.2, 1.7], r"got 1\.7 at position 1"),
        ([0.2, np.inf, -np.inf], r"got inf at position 1 \(and 1 more\)"),
        ([[0.1, 0.2], [0.3, -1e-9]], r"got -1e-09 at position \(1, 1\)"),
        (-0.1, r"got -0\.1$"),
    ],
)
def test_p_values_outside_unit_interval_are_refused(correct, p, message):
    # holm([-0.5, 0.2]) used to give [-1, 0.2]; benjamini_hochberg clipped silently
    with pytest.raises(ValueError, match=r"p-values must lie in \[0, 1\].*" + message):
        correct(p)


def test_nan_stays_allowed_and_nan_but_other_values_outside_are_not():
    for correct in (holm, benjamini_hochberg):
        with pytest.raises(ValueError, match=r"got 1\.5 at position 1$"):
            correct([np.nan, 1.5, 0.2])
    p = [0.01, np.nan, 0.04, 0.03]
    np.testing.assert_allclose(holm(p), [0.03, np.nan, 0.06, 0.06])
    np.testing.assert_allclose(benjamini_hochberg(p), [0.03, np.nan, 0.04, 0.04])
    assert np.all(np.isnan(holm([np.nan, np.nan])))
    assert np.all(np.isnan(benjamini_hochberg([np.nan])))
    # the bounds themselves are valid p-values
    np.testing.assert_allclose(holm([0.0, 1.0]), [0.0, 1.0])
    np.testing.assert_allclose(benjamini_hochberg([0.0, 1.0]), [0.0, 1.0])
