"""Design matrices: lag embedding that respects trial boundaries.

The lag-embedded neural design of one subject is

.. math::

    \\tilde X[t] = [X[t - l_1], X[t - l_2], \\dots, X[t - l_L]]

for the lags :math:`l_1, \\dots, l_L` (in samples). A lag :math:`l > 0` means that neural
activity at :math:`t - l` predicts behaviour at :math:`t` (neural activity leads); a
negative lag means it follows. A row :math:`t` is kept only if every sample of its window
exists, lies in the same trial as :math:`t` and is finite; windows are never wrapped
around the recording edges or across trial boundaries.

Columns are ordered lag-major: column ``i * N + u`` holds unit ``u`` at lag ``lags[i]``.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["as_lags", "segments", "valid_rows", "lag_embed", "run_bounds"]


#: most lags an int ``lags`` may stand for: the lag-embedded design has ``n_units`` columns
#: per lag and the statistics ``(n_units * n_lags)^2`` entries, so far fewer are usable;
#: the bound only keeps a mistyped int from allocating its lags (8 MiB at most)
MAX_INT_LAGS = 10**6


def as_lags(lags, *, n_samples: int | None = None) -> np.ndarray:
    """Normalise a ``lags`` specification to an integer array.

    Parameters
    ----------
    lags : int or sequence of int
        An int ``L >= 0`` means lags ``0, 1, ..., L``; a negative int ``L`` means
        ``L, ..., 0``. A sequence gives the lags explicitly (unique integers, in samples).
    n_samples : int, optional
        Samples of the longest recording: lags whose window (the lags and lag 0) spans
        more than ``n_samples - 1`` samples fit no recording and are refused.

    Returns
    -------
    lags : ndarray of int, shape (n_lags,)

    Raises
    ------
    ValueError
        Repeated or no lags, lags that fit no recording of ``n_samples`` samples, or an
        int ``L`` with more than :data:`MAX_INT_LAGS` lags; all before any allocation.
    TypeError
        Lags that are not integers.
    """
    if isinstance(lags, numbers.Integral) and not isinstance(lags, bool):
        lags = int(lags)
        _check_span(f"lags={lags}", abs(lags), n_samples)
        if abs(lags) + 1 > MAX_INT_LAGS:
            raise ValueError(
                f"lags={lags} means {abs(lags) + 1} lags (every lag from 0 to {lags}); at "
                f"most {MAX_INT_LAGS} are supported (each lag adds a column per unit): give "
                "fewer lags, or the lags wanted as a sequence of ints"
            )
        out = np.arange(0, lags + 1) if lags >= 0 else np.arange(lags, 1)
        return out.astype(np.int64)
    try:
        arr = np.asarray(lags)
    except Exception as exc:  # pragma: no cover - defensive
        raise TypeError(f"lags must be an int or a sequence of ints; got {lags!r}") from exc
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"lags must be an int or a non-empty 1-D sequence of ints; got {lags!r}")
    if not np.issubdtype(arr.dtype, np.integer):
        if (
            np.issubdtype(arr.dtype, np.floating)
            and np.all(np.isfinite(arr))
            and np.all(arr == np.round(arr))
        ):
            arr = arr.astype(np.int64)
        else:
            raise TypeError(f"lags must be integers (in samples); got {lags!r}")
    if np.unique(arr).size != arr.size:
        raise ValueError(f"lags must be unique; got {arr.tolist()}")
    arr = arr.astype(np.int64)
    _check_span(f"lags {arr.tolist()}", int(max(arr.max(), 0)) - int(min(arr.min(), 0)), n_samples)
    return arr


def _check_span(what: str, span: int, n_samples: int | None) -> None:
    """Refuse lags whose window (lag 0 included) spans more samples than any recording.

    Row ``t`` needs ``t`` and every ``t - lag`` in ``[0, T)``: some row exists only when
    ``max(lags, 0) - min(lags, 0) <= T - 1``.
    """
    if n_samples is not None and span > n_samples - 1:
        raise ValueError(
            f"{what} span {span} samples but the longest recording has {n_samples} "
            f"samples: no lag window fits (the lags, with lag 0, may span at most "
            f"{max(n_samples - 1, 0)} samples)"
        )


def segments(n_samples: int, groups=None) -> np.ndarray:
    """Contiguous segment index of each sample.

    A new segment starts wherever the trial id changes from one sample to the next, so a
    trial id that reappears later starts a new segment (windows never join them).

    Parameters
    ----------
    n_samples : int
    groups : array-like of shape (n_samples,) or None
        Trial id of each sample. ``None`` means one segment.

    Returns
    -------
    seg : ndarray of int, shape (n_samples,)
    """
    if groups is None:
        return np.zeros(n_samples, dtype=np.int64)
    g = np.asarray(groups)
    change = np.empty(n_samples, dtype=bool)
    change[:1] = False
    change[1:] = g[1:] != g[:-1]
    return np.cumsum(change, dtype=np.int64)


def valid_rows(n_samples: int, lags, groups=None, finite=None) -> np.ndarray:
    """Rows whose whole lag window exists, stays in one trial and is finite.

    Parameters
    ----------
    n_samples : int
        Number of samples ``T``.
    lags : int or sequence of int
        See :func:`as_lags`.
    groups : array-like of shape (T,), optional
        Trial ids; windows never cross a change of trial id.
    finite : array-like of bool, shape (T,), optional
        Samples usable as neural input (e.g. not NaN). Rows whose window contains an
        unusable sample are dropped.

    Returns
    -------
    rows : ndarray of int, shape (T',)
        Sorted indices ``t`` of the kept rows; ``T' <= T``.
    """
    lags = as_lags(lags)
    seg = segments(n_samples, groups)
    t = np.arange(n_samples)
    ok = np.ones(n_samples, dtype=bool)
    for lag in lags:
        src = t - lag
        inside = (src >= 0) & (src < n_samples)
        ok &= inside
        srcc = np.clip(src, 0, max(n_samples - 1, 0))
        ok &= seg[srcc] == seg
        if finite is not None:
            ok &= np.asarray(finite, dtype=bool)[srcc]
    return np.flatnonzero(ok)


def lag_embed(X: np.ndarray, lags, rows: np.ndarray, *, center=None, out=None) -> np.ndarray:
    """Build the lag-embedded design for the given rows.

    Parameters
    ----------
    X : ndarray of shape (T, N)
        Neural activity of one subject.
    lags : int or sequence of int
        See :func:`as_lags`.
    rows : ndarray of int, shape (T',)
        Output rows, typically from :func:`valid_rows` (possibly reordered).
    center : ndarray of shape (N,), optional
        Subtracted from every unit while copying (numerical preconditioning).
    out : ndarray of shape (T', N * n_lags), optional
        Written in place when given. When its dtype is narrower than that of ``X``
        (float32 for float64 data), each value is centred in the precision of ``X`` and
        rounded once.

    Returns
    -------
    Xe : ndarray of shape (T', N * n_lags)
        ``Xe[i, j * N + u] = X[rows[i] - lags[j], u] - center[u]``.
    """
    lags = as_lags(lags)
    X = np.asarray(X)
    n_units = X.shape[1]
    if out is None:
        out = np.empty((rows.size, n_units * lags.size), dtype=np.float64)
    runs = _runs(rows, n_units) if center is not None else None
    for j, lag in enumerate(lags):
        block = out[:, j * n_units : (j + 1) * n_units]
        if runs is not None:  # consecutive rows: centre while copying, one pass
            for a, b in runs:
                start = rows[a] - lag
                np.subtract(X[start : start + b - a], center, out=block[a:b])
            continue
        if center is not None and block.dtype != np.result_type(X, center):
            np.subtract(X[rows - lag], center, out=block)  # centred first, rounded once
            continue
        np.take(X, rows - lag, axis=0, out=block)
        if center is not None:
            block -= center
    return out


_MIN_RUN = 32  # mean run length from which rows are copied as slices
# ... and mean values per run: a slice copy per run costs a call each (measured, 4000
# rows x 3 lags, runs of 48 rows: 20 units 1.9 ms in slices vs 1.3 ms by one take per
# lag; 64 units 4.1 vs 5.1 ms; 20 units in runs of 198 rows 0.9 vs 1.3 ms)
_MIN_RUN_VALUES = 2048


def run_bounds(rows: np.ndarray) -> np.ndarray:
    """Positions where the runs of consecutive values of ``rows`` start, and its length.

    Parameters
    ----------
    rows : ndarray of int, shape (n,)
        Row indices in any order; a run is a stretch where each value is the previous
        plus one.

    Returns
    -------
    bounds : ndarray of int, shape (n_runs + 1,)
        Run ``r`` is ``rows[bounds[r]:bounds[r + 1]]``; ``[0]`` when ``rows`` is empty.
    """
    rows = np.asarray(rows)
    if rows.size == 0:
        return np.zeros(1, dtype=np.int64)
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    return np.concatenate(([0], breaks, [rows.size])).astype(np.int64)


def _runs(rows: np.ndarray, n_units: int):
    """``(start, stop)`` positions of the runs of consecutive values in ``rows``, or None
    when the runs are too short on average (rows, or rows times units) for slice copies
    to pay."""
    if rows.size == 0:
        return None
    bounds = run_bounds(rows)
    n_runs = bounds.size - 1
    if rows.size < _MIN_RUN * n_runs or rows.size * n_units < _MIN_RUN_VALUES * n_runs:
        return None
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True))
