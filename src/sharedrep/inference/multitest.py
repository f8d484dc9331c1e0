"""Multiple-testing corrections: family-wise error (Holm) and false discovery rate (BH).

Both take an array of p-values of any shape and return adjusted p-values of the same
shape, to be compared with the nominal level. NaN entries are ignored and stay NaN in the
output (an untestable hypothesis is never counted as rejected or accepted); any other
value outside ``[0, 1]`` (a negative number, a number above 1, an infinity) is refused
with a ``ValueError`` naming it and its position, never clipped or passed through.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import false_discovery_control

__all__ = ["benjamini_hochberg", "holm"]


def _check_p_values(p_values) -> np.ndarray:
    """``p_values`` as a float array; NaN allowed, anything else outside [0, 1] refused."""
    p = np.asarray(p_values, dtype=float)
    bad = ~np.isnan(p) & ~((p >= 0.0) & (p <= 1.0))
    if np.any(bad):
        where = np.argwhere(bad)
        first = tuple(int(i) for i in where[0])
        value = float(p[first])
        at = "" if p.ndim == 0 else f" at position {first[0] if p.ndim == 1 else first}"
        more = f" (and {len(where) - 1} more)" if len(where) > 1 else ""
        raise ValueError(
            f"p-values must lie in [0, 1] (NaN for an untestable hypothesis); got {value!r}"
            f"{at}{more}"
        )
    return p


def holm(p_values) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (family-wise error); NaN stay NaN.

    With the ``m`` non-NaN p-values sorted increasingly, ``p~_(i) = max_{j <= i}
    min(1, (m - j + 1) p_(j))``. Rejecting ``p~ <= level`` controls the probability of
    any false rejection at ``level`` under arbitrary dependence.

    Raises
    ------
    ValueError
        When a p-value other than NaN lies outside ``[0, 1]``.
    """
    p = _check_p_values(p_values)
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

    ``q_(i) = min_{j >= i} p_(j) m / j`` over the ``m`` non-NaN p-values
    (:func:`scipy.stats.false_discovery_control`, method ``"bh"``). Rejecting
    ``q <= fdr`` controls the false discovery rate at ``fdr`` for independent or positively
    dependent tests.

    Raises
    ------
    ValueError
        When a p-value other than NaN lies outside ``[0, 1]``.
    """
    p = _check_p_values(p_values)
    q = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if np.any(ok):
        q[ok] = false_discovery_control(p[ok], method="bh")
    return q
