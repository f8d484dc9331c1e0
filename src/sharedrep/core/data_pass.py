"""The data pass: one subject's arrays reduced to what the fit needs, in the chosen form.

Plans the kept rows and CV chunks (:func:`sharedrep.core.solver.plan_subject`), then either
computes the chunk sufficient statistics (primal form, :mod:`sharedrep.core.solver`) or keeps
the lag-embedded rows (kernel form, :mod:`sharedrep.core.dual`). It is the one module that
knows both forms: it may import ``utils`` and the core modules ``design``, ``cv``, ``solver``
and ``dual`` (neither of which imports it).
"""

from __future__ import annotations

import numpy as np

from sharedrep.core import solver
from sharedrep.core.design import lag_embed
from sharedrep.core.dual import KernelData, use_kernel

__all__ = ["subject_statistics"]


def subject_statistics(
    X: np.ndarray,
    Y: np.ndarray,
    groups,
    lags: np.ndarray,
    n_folds: int,
    *,
    gap: int = 0,
    folds_by_trial: bool = True,
    random_state=None,
    nan_policy: str = "raise",
    subject=None,
    gram=None,
    dtype=np.float64,
    form: str = "primal",
) -> solver.SubjectData:
    """Lag-embed one subject and compute the statistics of its CV chunks in one pass.

    Parameters
    ----------
    X : ndarray (T, N)
        Neural activity (float64; validated).
    Y : ndarray (T, p)
        Behaviour.
    groups : ndarray (T,) or None
        Trial ids: lag windows never cross trials; folds hold out whole trials.
    lags : ndarray of int (n_lags,)
    n_folds : int
        Number of CV folds; 0 for a single chunk (no cross-validation).
    gap : int
        Edge gap of blocked folds (see :func:`sharedrep.core.cv.make_chunks`).
    folds_by_trial : bool
        Use ``groups`` for the folds (otherwise blocked folds; lag windows still
        respect ``groups``).
    random_state : int or None
        Random assignment of trials to folds.
    nan_policy : {"raise", "omit"}
        With ``"omit"``, samples with non-finite behaviour and lag windows with a
        non-finite neural sample are dropped.
    subject : int, optional
        Index used in error messages.
    gram : callable, optional
        ``gram(Z) -> Z' Z`` for a block of augmented rows (a backend hook; the blocks'
        products are summed in float64); numpy by default.
    dtype : {np.float64, np.float32}
        Precision of the data pass (lag embedding and products). With float32 the data
        are centred in float64, rounded once, multiplied in float32 row blocks (at most
        4096 samples) and the block products summed in float64; the statistics and
        everything after them are float64.
    form : {"primal", "dual", "auto"}
        ``"dual"`` (or ``"auto"`` with more lagged columns than kept rows) keeps the
        lag-embedded rows as :class:`sharedrep.core.dual.KernelData` (float64) instead of
        computing the ``q x q`` statistics; see :mod:`sharedrep.core.dual`.

    Returns
    -------
    SubjectData

    Notes
    -----
    The rows of each chunk are gathered (lag embedding, centring) into a buffer of
    about 1 MiB and multiplied there, block after block: the data are read once and
    the full embedded design is never formed, so the pass costs little more than the
    Gram products themselves.
    """
    rows, chunks, x_center, y_center = solver.plan_subject(
        X,
        Y,
        groups,
        lags,
        n_folds,
        gap=gap,
        folds_by_trial=folds_by_trial,
        random_state=random_state,
        nan_policy=nan_policy,
        subject=subject,
    )
    ordered = rows[chunks.order]
    Xsrc = np.where(np.isfinite(X), X, 0.0) if nan_policy == "omit" else X
    if use_kernel(form, X.shape[1] * lags.size, ordered.size):
        data = KernelData(
            lag_embed(Xsrc, lags, ordered, center=x_center), Y[ordered] - y_center, chunks.bounds
        )
    else:
        data = solver.chunk_statistics(
            Xsrc, Y, lags, ordered, chunks.bounds, x_center, y_center, gram=gram, dtype=dtype
        )
    if n_folds:
        solver.check_folds(chunks, subject)
    return solver.SubjectData(rows, chunks, data, np.tile(x_center, lags.size), y_center)
