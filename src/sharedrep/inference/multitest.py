"""Multiple-testing corrections: family-wise error (Holm) and false discovery rate (BH).

Both take an array of p-values of any shape, ignore non-finite entries (they stay NaN in
the output: an untestable hypothesis is never counted as rejected or accepted) and return
adjusted p-values of the same shape, to be compared with the nominal level.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import false_discovery_control

__all__ = ["benjamini_hochberg", "holm"]


def holm(p_values) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (family-wise error); NaN stay NaN.

    With the ``m`` finite p-values sorted increasingly, ``p~_(i) = max_{j <= i}
    min(1, (m - j + 1) p_(j))``. Rejecting ``p~ <= level`` controls the probability of
    any false rejection at ``level`` under arbitrary dependence.
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if ok.size == 0:
        return out
    order = ok[np.argsort(p.flat[ok], kind="stable")]
    scaled = np.minimum(1.0, (order.size - np.arange(order.size)) * p.flat[order])
    out.flat[order] = np.maximum.accumulate(scaled)
    return out


def benjamini_hochberg(p_values) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values); NaN entries stay NaN.

    ``q_(i) = min_{j >= i} p_(j) m / j`` over the ``m`` finite p-values
    (:func:`scipy.stats.false_discovery_control`, method ``"bh"``). Rejecting
    ``q <= fdr`` controls the false discovery rate at ``fdr`` for independent or positively
    dependent tests.
    """
    p = np.asarray(p_values, dtype=float)
    q = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if np.any(ok):
        q[ok] = false_discovery_control(np.clip(p[ok], 0.0, 1.0), method="bh")
    return q
