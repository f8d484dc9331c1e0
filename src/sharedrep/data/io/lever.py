"""Lever and other analog traces stored as NPY or CSV with their own time base.

Supported layouts
-----------------
``.npy``
    A numeric array ``(T,)`` or ``(T, k)``. Times come from ``timestamps=`` (an array
    or the path of a ``.npy`` with ``T`` times), from ``time_column=`` (the index of
    the column holding times), or from ``sampling_rate=`` (+ ``start_time``).
``.csv`` / ``.tsv`` / ``.txt``
    A header row, then one row per sample (``.txt``: the delimiter is detected).
    Times come from the column named ``time_column`` (default: the first of
    ``"time"``, ``"timestamp"``, ``"timestamps"``, ``"t"``, ``"time_s"``, optionally
    with a unit, e.g. ``"time (s)"``; a column such as ``"time_ms"`` or ``"time (ms)"``
    holds milliseconds and is converted to seconds), or from ``timestamps=`` /
    ``sampling_rate=`` when the file has no time column. All other columns (or
    ``columns=``) are values; header names are stripped of surrounding spaces.
    A pandas default index saved with the data (an unnamed first column, read as
    ``"Unnamed: 0"``, holding ``0, 1, ..., T-1``) is dropped.

Pickled ``.npy`` files are refused (``allow_pickle=False``).
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


_NPY_MAGIC = b"\x93NUMPY"


def load_npy(path: Path, what: str = "array") -> np.ndarray:
    """Load a non-pickled ``.npy`` file, mapping every failure to DataFormatError.

    Parameters
    ----------
    path : pathlib.Path
    what : str
        Description for messages.

    Returns
    -------
    numpy.ndarray
    """
    p = check_file(path, f"{what} file")
    with open(p, "rb") as fh:
        if fh.read(6) != _NPY_MAGIC:
            raise DataFormatError(f"{p}: not a NumPy .npy file (bad magic bytes)")
    try:
        return np.load(p, allow_pickle=False)
    except Exception as err:  # truncated/corrupt: ValueError, EOFError, OSError, ...
        raise DataFormatError(f"{p}: cannot read {what} ({type(err).__name__}: {err})") from None


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
        Unsupported suffix, unreadable/truncated file, non-numeric values, empty
        data, length mismatch between values and times, non-monotonic or non-finite
        times, or values that are all NaN.
    ValueError
        Contradictory options (no time base, or several).
    """
    p = check_file(path, "trace file")
    src = str(p)
    suffix = p.suffix.lower()
    ts = None
    if suffix == ".npy":
        a = _numeric_2d(load_npy(p, "trace"), src)
        if time_column is not None:
            if not isinstance(time_column, (int, np.integer)):
                raise ValueError("for .npy files time_column must be a column index")
            if not -a.shape[1] <= time_column < a.shape[1] or a.shape[1] < 2:
                raise DataFormatError(
                    f"{src}: time_column {time_column} out of range for {a.shape[1]} columns"
                )
            tc = int(time_column) % a.shape[1]
            ts = a[:, tc]
            keep = [j for j in range(a.shape[1]) if j != tc]
        else:
            tc, keep = None, list(range(a.shape[1]))
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
        a = a[:, keep]
    elif suffix in (".csv", ".tsv", ".txt"):
        sep = {".tsv": "\t", ".csv": ","}.get(suffix)  # .txt: sniffed
        try:
            df = pd.read_csv(p, sep=sep, encoding="utf-8", engine="c" if sep else "python")
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as err:
            raise DataFormatError(
                f"{src}: cannot parse as CSV ({type(err).__name__}: {err})"
            ) from None
        if df.shape[0] == 0:
            raise DataFormatError(f"{src}: CSV has a header but no rows")
        hdr = [str(c).strip() for c in df.columns]
        df.columns = hdr
        if _is_default_index(df, hdr[0]) and hdr[0] != str(time_column):
            if columns is None or hdr[0] not in [str(c) for c in columns]:
                df = df.drop(columns=hdr[0])
                hdr = hdr[1:]
        tcol = None
        if time_column is not None:
            if str(time_column) not in hdr:
                raise DataFormatError(f"{src}: no time column {time_column!r} (have {hdr})")
            tcol = str(time_column)
        else:
            tcol = next((c for c in hdr if _time_header_scale(c) is not None), None)
            if tcol is None and timestamps is None and sampling_rate is None:
                raise DataFormatError(
                    f"{src}: no time column (looked for {list(_TIME_NAMES)}); pass "
                    "time_column=, timestamps= or sampling_rate="
                )
        vcols = [c for c in hdr if c != tcol] if columns is None else [str(c) for c in columns]
        missing = [c for c in vcols if c not in hdr]
        if missing:
            raise DataFormatError(f"{src}: column(s) {missing} not found (have {hdr})")
        if not vcols:
            raise DataFormatError(f"{src}: no value columns besides the time column")
        try:
            if tcol is not None:
                ts = pd.to_numeric(df[tcol]).to_numpy(dtype=np.float64)
                ts = ts * (_time_header_scale(tcol) or 1.0)  # milliseconds -> seconds
            a = np.column_stack([pd.to_numeric(df[c]).to_numpy(dtype=np.float64) for c in vcols])
        except (TypeError, ValueError) as err:
            raise DataFormatError(f"{src}: non-numeric values ({err})") from None
        col_names = vcols
    else:
        raise DataFormatError(f"{src}: unsupported trace file type {suffix!r} (use .npy or .csv)")

    T = a.shape[0]
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
    elif sampling_rate is not None:
        if not (np.isfinite(sampling_rate) and sampling_rate > 0):
            raise ValueError(f"sampling_rate must be > 0 Hz, got {sampling_rate!r}")
        ts = start_time + np.arange(T) / float(sampling_rate)
    elif ts is None:
        raise ValueError(f"{src}: no time base; pass timestamps=, sampling_rate= or time_column=")
    check_timestamps(ts, src)
    if not np.isfinite(a).any(axis=0).all():
        bad = [col_names[j] for j in np.flatnonzero(~np.isfinite(a).any(axis=0))]
        raise DataFormatError(f"{src}: column(s) {bad} contain no finite value")
    if names is not None:
        names = [str(n) for n in names]
        if len(names) != a.shape[1]:
            raise ValueError(f"{src}: {a.shape[1]} value columns but {len(names)} names")
        col_names = names
    unit_list = [units] * a.shape[1] if isinstance(units, str) else [str(u) for u in units]
    return Traces(values=a, names=list(col_names), units=unit_list, timestamps=ts, source=src)


#: Alias of :func:`read_trace` for lever position files.
read_lever = read_trace
