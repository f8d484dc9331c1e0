"""Lever and other analog traces stored as NPY or CSV with their own time base.

Supported layouts
-----------------
``.npy``
    A numeric array ``(T,)`` or ``(T, k)`` with ``k <= T`` (a ``(k, T)`` array, as
    MATLAB users often save, is refused rather than read as one sample). Times come
    from ``timestamps=`` (an array or the path of a ``.npy`` with ``T`` times), from
    ``time_column=`` (the index of the column holding times), or from
    ``sampling_rate=`` (+ ``start_time``).
``.csv`` / ``.tsv`` / ``.txt``
    A header row, then one row per sample (``.txt``: the delimiter is detected).
    Times come from the column named ``time_column`` (default: the first of
    ``"time"``, ``"timestamp"``, ``"timestamps"``, ``"t"``, ``"time_s"``, optionally
    with a unit, e.g. ``"time (s)"``; a column such as ``"time_ms"`` or ``"time (ms)"``
    holds milliseconds and is converted to seconds), or from ``timestamps=`` /
    ``sampling_rate=`` when the file has no time column. All other columns (or
    ``columns=``) are values; header names are stripped of surrounding spaces and must
    then be unique.
    A pandas default index saved with the data (an unnamed first column, read as
    ``"Unnamed: 0"``, holding ``0, 1, ..., T-1``) is dropped.

Pickled ``.npy`` files are refused (``allow_pickle=False``). May import
:mod:`sharedrep.utils` and :mod:`sharedrep.data`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from sharedrep.data.io._common import (
    DataFormatError,
    Traces,
    check_file,
    check_timestamps,
    load_npy,
)

__all__ = ["read_trace", "read_lever"]

_TIME_NAMES = ("time", "timestamp", "timestamps", "t", "time_s")
#: A time column's name: one of _TIME_NAMES, optionally with its unit (s or ms).
_TIME_HEADER = re.compile(
    r"(?P<name>time|timestamps?|t)"
    r"(?:[ _]*(?:\(|\[)?\s*(?P<unit>s|sec|seconds|ms|msec)\s*(?:\)|\])?)?",
    re.IGNORECASE,
)


def _time_header_scale(name: str) -> float | None:
    """Seconds per unit of a column whose name says it holds times, else None."""
    m = _TIME_HEADER.fullmatch(name.strip())
    if m is None:
        return None
    return 1e-3 if (m.group("unit") or "").lower() in ("ms", "msec") else 1.0


def _numeric_2d(a: np.ndarray, source: str) -> np.ndarray:
    if a.dtype.kind not in "biuf":
        raise DataFormatError(f"{source}: values must be numeric, got dtype {a.dtype}")
    a = a.astype(np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise DataFormatError(f"{source}: expected a (T,) or (T, k) array, got shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise DataFormatError(f"{source}: no samples (shape {a.shape})")
    if a.shape[1] > a.shape[0]:
        raise DataFormatError(
            f"{source}: shape {a.shape} has more columns than samples; time must run "
            "along the first axis, (T,) or (T, k): save the transposed array (a.T)"
        )
    return a


def _is_default_index(df: pd.DataFrame, col: str) -> bool:
    """Whether ``col`` is a pandas default index written by ``DataFrame.to_csv``."""
    if col != "Unnamed: 0":
        return False
    v = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64)
    return bool(np.array_equal(v, np.arange(len(df))))


def read_trace(
    path: str | os.PathLike,
    *,
    timestamps=None,
    sampling_rate: float | None = None,
    start_time: float = 0.0,
    time_column: str | int | None = None,
    columns=None,
    names=None,
    units: str | list[str] = "a.u.",
) -> Traces:
    """Read a lever / analog trace with its own time base.

    Parameters
    ----------
    path : str or os.PathLike
        ``.npy``, ``.csv`` or ``.tsv`` file (see module docstring).
    timestamps : array_like or str or os.PathLike, optional
        Sample times in seconds (or the path of a ``.npy`` holding them).
    sampling_rate : float, optional
        Hz; times ``start_time + arange(T) / sampling_rate`` when no other time base.
    start_time : float, default 0.0
        Seconds; used with ``sampling_rate``.
    time_column : str or int, optional
        CSV: name of the time column; NPY: index of the time column.
    columns : list of str or int, optional
        Value columns to keep (CSV names, or NPY indices of the file's columns, the time
        column counted, as in the default names ``<stem>_<index>``); default: all but the time
        column (a pandas default index column ``"Unnamed: 0"`` holding ``0..T-1`` is
        dropped).
    names : list of str, optional
        Feature names (default: CSV headers, or ``"<file stem>"`` /
        ``"<stem>_<j>"`` for NPY).
    units : str or list of str, default "a.u."
        Physical unit(s) of the values (e.g. ``"mm"``, ``"V"``).

    Returns
    -------
    Traces
        ``values`` (T, k) float64 and strictly increasing ``timestamps`` (T,) in s.

    Raises
    ------
    FileNotFoundError
        Missing file (or missing timestamps file).
    DataFormatError
        Unsupported suffix, unreadable/truncated file, duplicate column names (after
        stripping surrounding spaces), non-numeric values, empty data, a ``.npy``
        array with more columns than samples (transposed), length mismatch
        between values and times, non-monotonic or non-finite times, or values that are
        all NaN.
    ValueError
        Contradictory options (no time base, or several).
    """
    p = check_file(path, "trace file")
    src = str(p)
    suffix = p.suffix.lower()
    if suffix == ".npy":
        a, ts, col_names = _read_npy_trace(p, time_column, columns)
    elif suffix in _TABLE_SEPARATORS:
        no_base = timestamps is None and sampling_rate is None
        a, ts, col_names = _read_table_trace(p, time_column, columns, need_time=no_base)
    else:
        raise DataFormatError(f"{src}: unsupported trace file type {suffix!r} (use .npy or .csv)")
    ts = _time_base(ts, timestamps, sampling_rate, start_time, a.shape[0], src)
    check_timestamps(ts, src)
    _check_some_finite(a, col_names, src)
    if names is not None:
        names = [str(n) for n in names]
        if len(names) != a.shape[1]:
            raise ValueError(f"{src}: {a.shape[1]} value columns but {len(names)} names")
        col_names = names
    unit_list = [units] * a.shape[1] if isinstance(units, str) else [str(u) for u in units]
    return Traces(values=a, names=list(col_names), units=unit_list, timestamps=ts, source=src)


#: Column separator of each table suffix; None: detected (``.txt``).
_TABLE_SEPARATORS = {".csv": ",", ".tsv": "\t", ".txt": None}


def _npy_time_column(a: np.ndarray, time_column, src: str) -> int | None:
    """Index (in ``0..k-1``) of the time column of a (T, k) array, or None."""
    if time_column is None:
        return None
    if not isinstance(time_column, (int, np.integer)):
        raise ValueError("for .npy files time_column must be a column index")
    if not -a.shape[1] <= time_column < a.shape[1] or a.shape[1] < 2:
        raise DataFormatError(
            f"{src}: time_column {time_column} out of range for {a.shape[1]} columns"
        )
    return int(time_column) % a.shape[1]


def _read_npy_trace(p: Path, time_column, columns) -> tuple:
    """Values (T, k), times (T,) s or None, and column names of a ``.npy`` trace.

    Value columns are ``columns`` (indices of the file's columns) or all but the time
    column; they are named ``<stem>`` (a single column, no time column) or
    ``<stem>_<index>``.
    """
    src = str(p)
    a = _numeric_2d(load_npy(p, "trace"), src)
    tc = _npy_time_column(a, time_column, src)
    ts = None if tc is None else a[:, tc]
    keep = [j for j in range(a.shape[1]) if j != tc]
    if columns is not None:  # indices of the file's columns, like the names
        idx = [int(c) for c in columns]
        if any(not 0 <= i < a.shape[1] for i in idx) or tc in idx:
            raise DataFormatError(
                f"{src}: columns {idx} must be indices of value columns of the file "
                f"(0..{a.shape[1] - 1}"
                + (f", not the time column {tc})" if tc is not None else ")")
            )
        keep = idx
    col_names = [p.stem] if a.shape[1] == 1 and tc is None else [f"{p.stem}_{j}" for j in keep]
    return a[:, keep], ts, col_names


def _load_table(p: Path, time_column, columns) -> pd.DataFrame:
    """A CSV / TSV / TXT trace as a frame with stripped header names, without a pandas
    default index column (unless it is asked for as time or value column)."""
    src = str(p)
    sep = _TABLE_SEPARATORS[p.suffix.lower()]
    try:
        df = pd.read_csv(p, sep=sep, encoding="utf-8", engine="c" if sep else "python")
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise DataFormatError(
            f"{src}: cannot parse as CSV ({type(err).__name__}: {err})"
        ) from None
    if df.shape[0] == 0:
        raise DataFormatError(f"{src}: CSV has a header but no rows")
    hdr = [str(c).strip() for c in df.columns]
    _check_unique_headers([str(c) for c in df.columns], hdr, src)
    df.columns = hdr
    first = hdr[0]
    if _is_default_index(df, first) and first != str(time_column):
        if columns is None or first not in [str(c) for c in columns]:
            df = df.drop(columns=first)
    return df


def _check_unique_headers(raw: list[str], stripped: list[str], src: str) -> None:
    """Refuse header names ``raw`` that coincide once stripped (``stripped``)."""
    dup = [h for h in dict.fromkeys(stripped) if stripped.count(h) > 1]
    if dup:
        clash = [r for r, h in zip(raw, stripped, strict=True) if h in dup]
        raise DataFormatError(
            f"{src}: duplicate column name(s) {dup}: headers {clash} are equal once "
            "surrounding spaces are stripped; rename them"
        )


def _table_time_column(hdr: list[str], time_column, src: str, need_time: bool) -> str | None:
    """Name of the time column: ``time_column``, else the first header that names
    times (see :data:`_TIME_HEADER`); None if there is none and none is needed."""
    if time_column is not None:
        if str(time_column) not in hdr:
            raise DataFormatError(f"{src}: no time column {time_column!r} (have {hdr})")
        return str(time_column)
    tcol = next((c for c in hdr if _time_header_scale(c) is not None), None)
    if tcol is None and need_time:
        raise DataFormatError(
            f"{src}: no time column (looked for {list(_TIME_NAMES)}); pass "
            "time_column=, timestamps= or sampling_rate="
        )
    return tcol


def _read_table_trace(p: Path, time_column, columns, *, need_time: bool) -> tuple:
    """Values (T, k), times (T,) s or None, and column names of a CSV / TSV / TXT
    trace; a time column in milliseconds is converted to seconds."""
    src = str(p)
    df = _load_table(p, time_column, columns)
    hdr = list(df.columns)
    tcol = _table_time_column(hdr, time_column, src, need_time)
    vcols = [c for c in hdr if c != tcol] if columns is None else [str(c) for c in columns]
    missing = [c for c in vcols if c not in hdr]
    if missing:
        raise DataFormatError(f"{src}: column(s) {missing} not found (have {hdr})")
    if not vcols:
        raise DataFormatError(f"{src}: no value columns besides the time column")
    ts = None
    try:
        if tcol is not None:
            ts = pd.to_numeric(df[tcol]).to_numpy(dtype=np.float64)
            ts = ts * (_time_header_scale(tcol) or 1.0)  # milliseconds -> seconds
        a = np.column_stack([pd.to_numeric(df[c]).to_numpy(dtype=np.float64) for c in vcols])
    except (TypeError, ValueError) as err:
        raise DataFormatError(f"{src}: non-numeric values ({err})") from None
    return a, ts, vcols


def _time_base(ts, timestamps, sampling_rate, start_time: float, T: int, src: str) -> np.ndarray:
    """The sample times (T,) in s from exactly one source: the file's time column
    ``ts``, ``timestamps`` (array or ``.npy`` path) or ``sampling_rate``."""
    given = [x is not None for x in (ts, timestamps, sampling_rate)]
    if sum(given) > 1:
        raise ValueError(f"{src}: give exactly one time base (time column, timestamps, rate)")
    if timestamps is not None:
        if isinstance(timestamps, (str, os.PathLike)):
            tp = Path(timestamps)
            ts = load_npy(tp, "timestamps").astype(np.float64).ravel()
            tsrc = str(tp)
        else:
            ts = np.asarray(timestamps, dtype=np.float64)
            tsrc = src
        if ts.shape != (T,):
            raise DataFormatError(f"{src}: {T} samples but {ts.size} timestamps in {tsrc}")
        return ts
    if sampling_rate is not None:
        if not (np.isfinite(sampling_rate) and sampling_rate > 0):
            raise ValueError(f"sampling_rate must be > 0 Hz, got {sampling_rate!r}")
        return start_time + np.arange(T) / float(sampling_rate)
    if ts is None:
        raise ValueError(f"{src}: no time base; pass timestamps=, sampling_rate= or time_column=")
    return ts


def _check_some_finite(a: np.ndarray, col_names: list, src: str) -> None:
    """Refuse value columns of ``a`` (T, k) that hold no finite value."""
    if not np.isfinite(a).any(axis=0).all():
        bad = [col_names[j] for j in np.flatnonzero(~np.isfinite(a).any(axis=0))]
        raise DataFormatError(f"{src}: column(s) {bad} contain no finite value")


#: Alias of :func:`read_trace` for lever position files.
read_lever = read_trace
