"""Held-out coefficients of determination (R^2) shared by the package.

One definition of a held-out R^2 for every caller: the pooled R^2 over features in given
units (transfer, baselines) and the R^2 of each column. It imports only numpy.
"""

from __future__ import annotations

import numpy as np

__all__ = ["pooled_r2", "r2_per_column"]


def pooled_r2(Y: np.ndarray, Y_hat: np.ndarray, scale) -> float:
    """Pooled R^2 over all features in ``scale`` units, SST about the mean of ``Y``.

    .. math::

        R^2 = 1 - \\frac{\\sum_{t,j} ((Y_{tj} - \\hat Y_{tj}) / c_j)^2}
                        {\\sum_{t,j} ((Y_{tj} - \\bar Y_j) / c_j)^2}

    Rows of ``Y`` with a non-finite value (missing behaviour) are not scored.

    Parameters
    ----------
    Y, Y_hat : ndarray of shape (n, p)
        Observed and predicted values on the held-out rows.
    scale : ndarray of shape (p,) or float
        Units ``c`` of the features (e.g. the training standard deviations).

    Returns
    -------
    float
        NaN when the scored rows have no variance.
    """
    ok = np.all(np.isfinite(Y), axis=1)
    Y, Y_hat = Y[ok], Y_hat[ok]
    E = (Y - Y_hat) / scale
    C = (Y - Y.mean(axis=0)) / scale
    sst = float(np.sum(C**2))
    return 1.0 - float(np.sum(E**2)) / sst if sst > 0 else float("nan")


def r2_per_column(Y: np.ndarray, Y_hat: np.ndarray) -> np.ndarray:
    """R^2 of every column, ``1 - SSE_j / SST_j`` with SST about the column mean of ``Y``.

    Parameters
    ----------
    Y, Y_hat : ndarray of shape (n, p)

    Returns
    -------
    ndarray of shape (p,)
        ``-inf``/NaN (with a numpy warning) for a constant column, as the plain formula.
    """
    sst = np.sum((Y - Y.mean(axis=0)) ** 2, axis=0)
    return 1.0 - np.sum((Y - Y_hat) ** 2, axis=0) / sst
