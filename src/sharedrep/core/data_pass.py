"""The data pass: one subject's arrays reduced to what the fit needs, in the chosen form.

Plans the kept rows and CV chunks (:func:`sharedrep.core.solver.plan_subject`), then either
computes the chunk sufficient statistics (primal form, :mod:`sharedrep.core.solver`) or keeps
the lag-embedded rows (kernel form, :mod:`sharedrep.core.dual`). It is the one module that
knows both forms: it may import ``utils`` and the core modules ``design``, ``cv``, ``solver``
and ``dual`` (neither of which imports it).
"""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np

from sharedrep.core import neural_cache, solver
from sharedrep.core.design import lag_embed
from sharedrep.core.dual import KernelData, use_kernel

__all__ = ["subject_statistics", "check_precision_range"]

#: rows of one reduced-precision block product (``solver._F32_BLOCK``, the most rows
#: ``lagged_gram`` multiplies at once): its entries are sums of at most this many products
_BLOCK_ROWS = solver._F32_BLOCK
_RANGE_READ_BYTES = 2**22  # rows read per block when measuring the spreads


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
        everything after them are float64. When the statistics show an overflow or
        squares at underflow level, the data's spreads about the centres are checked
        against what float32 products can hold (:func:`check_precision_range`; no extra
        pass over ordinary data).
    form : {"primal", "dual", "auto"}
        ``"dual"`` (or ``"auto"`` with more lagged columns than kept rows) keeps the
        lag-embedded rows as :class:`sharedrep.core.dual.KernelData` (float64) instead of
        computing the ``q x q`` statistics; see :mod:`sharedrep.core.dual`.

    Returns
    -------
    SubjectData

    Raises
    ------
    ValueError
        With float32 (primal form), when a unit or behaviour feature varies too much or
        too little about its centre for float32 products (see
        :func:`check_precision_range`).

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
        reduced = np.dtype(dtype) != np.float64  # overflow is checked below, by name
        plan = (rows, chunks.order, chunks.bounds, chunks.fold, chunks.exclude, x_center)
        reusable = not reduced and gram is None
        neural = neural_cache.find_pass(X, lags, plan) if reusable else None
        if neural is not None:  # the same rows of the same activity: X'X is known
            parts = np.split(ordered, chunks.bounds[1:-1])
            data = solver.behavior_statistics(Xsrc, Y, lags, parts, (x_center, y_center), neural)
        else:
            with np.errstate(over="ignore", invalid="ignore") if reduced else nullcontext():
                data = solver.chunk_statistics(
                    Xsrc,
                    Y,
                    lags,
                    ordered,
                    chunks.bounds,
                    x_center,
                    y_center,
                    gram=gram,
                    dtype=dtype,
                )
            if reusable:
                neural_cache.keep_pass(X, lags, plan, [(st.n, st.sx, st.xx) for st in data])
        if reduced and _out_of_range(data, np.finfo(dtype)):
            check_precision_range(
                Xsrc, Y, rows, lags, x_center, y_center, dtype=dtype, subject=subject
            )
    if n_folds:
        solver.check_folds(chunks, subject)
    return solver.SubjectData(rows, chunks, data, np.tile(x_center, lags.size), y_center)


def _out_of_range(stats: list, info: np.finfo) -> bool:
    """Whether reduced-precision chunk statistics may have overflowed or underflowed.

    Cheap (the ``q + p`` diagonal sums of squares): a product can only overflow if a
    sum of squares does (Cauchy-Schwarz), which is then not finite; a column whose
    squares underflow has a mean square below the smallest normal number. Either one
    sends the data to the exact check :func:`check_precision_range`.
    """
    n = max(sum(st.n for st in stats), 1.0)
    for part in ("xx", "yy"):
        squares = sum(np.diag(getattr(st, part)) for st in stats)
        if not (np.all(np.isfinite(squares)) and np.all(squares / n >= info.tiny)):
            return True
    return False


def check_precision_range(X, Y, rows, lags, x_center, y_center, *, dtype, subject=None):
    """Refuse data whose centred products ``dtype`` (float32) cannot hold.

    The reduced-precision pass centres every value in float64, rounds it once to
    ``dtype`` and multiplies blocks of at most ``_BLOCK_ROWS`` (4096) rows in ``dtype``.
    With ``m`` the largest ``|value - centre|`` of a column over the rows the pass reads:

    * overflow: an entry of a block product is a sum of at most 4096 products of size at
      most ``m^2``; it stays finite when ``4096 m^2 < finfo(dtype).max``, i.e.
      ``m < sqrt(max / 4096)`` (about 2.9e17 for float32);
    * underflow: when ``m^2 < finfo(dtype).tiny`` (the smallest normal number, about
      1.2e-38 for float32, so ``m`` below about 1.1e-19) every square of the column is
      subnormal or flushed to zero: a varying column would look constant or keep only a
      few digits. Columns that float64 also finds constant (``m^2`` at most
      ``solver._CONSTANT_TOL`` times the centre squared, see
      :func:`sharedrep.core.solver.column_scales`) are left to that rule.

    Parameters
    ----------
    X : ndarray (T, N)
        Neural activity (non-finite samples already replaced when they are omitted).
    Y : ndarray (T, p)
        Behaviour.
    rows : ndarray of int (n,)
        Kept rows; ``X`` is read at ``rows - lag`` for every lag, ``Y`` at ``rows``.
    lags : ndarray of int (n_lags,)
    x_center, y_center : ndarray (N,), (p,)
        Centres subtracted before rounding.
    dtype : numpy dtype
        Precision of the products.
    subject : int, optional
        Index used in error messages.

    Raises
    ------
    ValueError
        Naming the subject, the array and its columns, with the remedies
        (``dtype="float64"`` or rescaling).
    """
    info = np.finfo(dtype)
    high = float(np.sqrt(info.max / _BLOCK_ROWS))
    low = float(np.sqrt(info.tiny))
    read = np.zeros(X.shape[0], dtype=bool)
    for lag in lags:
        read[rows - lag] = True
    for name, A, used, center in (
        ("neural", X, np.flatnonzero(read), x_center),
        ("behavior", Y, rows, y_center),
    ):
        spread = _spread(A, used, center)
        what = "units" if name == "neural" else "features"
        big = np.flatnonzero(spread >= high)
        if big.size:
            raise ValueError(
                f"subject {subject}: dtype={info.dtype.name!r} cannot represent this data's "
                f"products: {name} {what} {_first(big)} vary by up to "
                f"{spread[big].max():.3g} about their means, beyond {high:.2g} (sums of "
                f"{_BLOCK_ROWS} {info.dtype.name} products would overflow); use "
                "dtype='float64' or rescale the data (e.g. to unit variance)"
            )
        tol = np.sqrt(solver._CONSTANT_TOL) * np.abs(center)
        small = np.flatnonzero((spread < low) & (spread > tol))
        if small.size:
            raise ValueError(
                f"subject {subject}: dtype={info.dtype.name!r} cannot represent this data's "
                f"products: {name} {what} {_first(small)} vary by at most "
                f"{spread[small].max():.3g} about their means, below {low:.2g} (their "
                f"{info.dtype.name} squares would lose their digits or flush to zero); use "
                "dtype='float64' or rescale the data (e.g. to unit variance)"
            )


def _spread(A: np.ndarray, rows: np.ndarray, center: np.ndarray) -> np.ndarray:
    """Largest ``|A[rows] - center|`` of every column, read in blocks of a few MiB."""
    out = np.zeros(A.shape[1])
    step = max(1, _RANGE_READ_BYTES // (8 * max(1, A.shape[1])))
    for start in range(0, rows.size, step):
        block = np.abs(A[rows[start : start + step]] - center)
        np.maximum(out, block.max(axis=0), out=out)
    return out


def _first(columns: np.ndarray, n: int = 10) -> str:
    """Up to ``n`` column indices, with ``...`` when there are more."""
    return str(columns[:n].tolist()) + ("..." if columns.size > n else "")
