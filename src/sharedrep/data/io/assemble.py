"""Glue: build a :class:`~sharedrep.Session` from neural arrays plus behaviour files.

Used by :meth:`Suite2pPlane.to_session` and the study file loader; also handy for
custom pipelines. May import :mod:`sharedrep.utils` and :mod:`sharedrep.data`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from sharedrep.data.io._common import DataFormatError, Traces, check_file, check_time_base
from sharedrep.data.preprocess import resample
from sharedrep.data.session import Session

__all__ = ["build_session", "read_intervals"]


def read_intervals(path: str | os.PathLike, what: str = "intervals") -> pd.DataFrame:
    """Read a trials or stimulation table from CSV/TSV.

    Parameters
    ----------
    path : str or os.PathLike
        CSV (or ``.tsv``) with a header row including ``start_time`` and
        ``stop_time`` (seconds); other ``*_time`` columns are parsed as seconds.
    what : str
        Description used in messages (``"trials"``, ``"stimulation"``).

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    FileNotFoundError, DataFormatError
    """
    p = check_file(path, f"{what} table")
    if p.suffix.lower() not in (".csv", ".tsv", ".txt"):
        raise DataFormatError(f"{p}: unsupported {what} table type {p.suffix!r} (use .csv)")
    try:
        df = pd.read_csv(p, sep="\t" if p.suffix.lower() == ".tsv" else ",", encoding="utf-8")
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise DataFormatError(f"{p}: cannot parse {what} table ({type(err).__name__})") from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in ("start_time", "stop_time") if c not in df.columns]
    if missing:
        raise DataFormatError(
            f"{p}: {what} table lacks column(s) {missing} (have {list(df.columns)})"
        )
    for c in df.columns:
        if c.endswith("_time"):
            try:
                df[c] = pd.to_numeric(df[c]).astype(np.float64)
            except (TypeError, ValueError):
                raise DataFormatError(f"{p}: {what} column {c!r} is not numeric") from None
    if not (np.isfinite(df["start_time"]).all() and np.isfinite(df["stop_time"]).all()):
        raise DataFormatError(f"{p}: {what} table has missing start_time/stop_time values")
    return df


def build_session(
    neural,
    timestamps,
    *,
    subject: str,
    behavior: Sequence[Traces] = (),
    unit_ids=None,
    trials: pd.DataFrame | None = None,
    stimulation: pd.DataFrame | None = None,
    resample_method: str = "linear",
    extrapolate: str = "error",
    max_extrapolation: float | None = None,
    source: str = "session",
    **fields,
) -> Session:
    """Assemble a session: resample behaviour traces onto the neural time base.

    Parameters
    ----------
    neural : array_like, shape (T, N)
        Neural activity.
    timestamps : array_like, shape (T,)
        Neural sample times in seconds.
    subject : str
        Subject id.
    behavior : sequence of Traces
        Behaviour sources, each with its own timestamps; columns are concatenated in
        order (names must be unique across sources).
    unit_ids : array_like, shape (N,), optional
    trials, stimulation : pandas.DataFrame, optional
        See :class:`~sharedrep.Session`.
    resample_method, extrapolate, max_extrapolation
        Passed to :func:`sharedrep.data.preprocess.resample`.
    source : str
        Name used in error messages (usually the neural data file).
    **fields
        Other :class:`~sharedrep.Session` fields (``session_id``, ``day``, ``stage``,
        ``population``, ``metadata``).

    Returns
    -------
    Session
        Its metadata record each behaviour column's source file
        (``behavior_sources``) and how the traces were resampled
        (``behavior_resampling``: method, extrapolate, max_extrapolation).

    Raises
    ------
    DataFormatError
        Traces without timestamps, behaviour not covering the neural time range,
        duplicate feature names, or an invalid session (the message names the source).
        Behaviour times not on the clock of the neural ``timestamps``
        (:func:`~sharedrep.data.io._common.check_time_base`): spanning over 100 times
        as long (times in milliseconds read as seconds) or under 1/100 as long, or
        sharing almost no time with them (another clock); the message names the
        behaviour file, the session and both time ranges.
    """
    t = np.asarray(timestamps, dtype=np.float64)
    resample_kw = dict(
        method=resample_method, extrapolate=extrapolate, max_extrapolation=max_extrapolation
    )
    imaging = _session_label(source, subject, fields.get("session_id"))
    cols, names, units, sources = _resample_behaviour(behavior, t, resample_kw, imaging)
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise DataFormatError(f"{source}: behaviour name(s) {dup} occur in several sources")
    beh = np.column_stack(cols) if cols else None
    meta = dict(fields.pop("metadata", None) or {})
    if sources:
        meta.setdefault("behavior_sources", sources)
        meta.setdefault("behavior_resampling", resample_kw)
    try:
        return Session(
            subject=subject,
            neural=neural,
            timestamps=t,
            unit_ids=unit_ids,
            behavior=beh,
            behavior_names=names if cols else None,
            behavior_units=units if cols else None,
            trials=trials,
            stimulation=stimulation,
            metadata=meta,
            **fields,
        )
    except (TypeError, ValueError) as err:
        raise DataFormatError(f"{source}: {err}") from None


def _session_label(source: str, subject: str, session_id) -> str:
    """``source`` (the default ``"session"``: "the session") with the subject and
    session id, for messages."""
    ident = f"subject {subject!r}" + ("" if session_id is None else f", session {session_id!r}")
    return f"the session ({ident})" if source == "session" else f"{source} ({ident})"


def _resample_behaviour(
    behavior: Sequence[Traces], t: np.ndarray, resample_kw: dict, imaging: str
) -> tuple:
    """Resample each behaviour source onto the neural times ``t`` (T,) of ``imaging``
    (named in messages), after checking its times are on their clock
    (:func:`~sharedrep.data.io._common.check_time_base`).

    Returns
    -------
    cols : list of ndarray of shape (T, p_i)
        The resampled values of each source.
    names, units : list of str
        One per column, in source order.
    sources : dict
        Column name -> path of its source.
    """
    cols, names, units, sources = [], [], [], {}
    for tr in behavior:
        if tr.timestamps is None:
            raise DataFormatError(
                f"{tr.source}: has no time base; give its timestamps or frame rate"
            )
        check_time_base(tr.timestamps, t, tr.source, imaging)
        try:
            v = resample(
                tr.values, tr.timestamps, t, name=os.path.basename(tr.source), **resample_kw
            )
        except ValueError as err:
            raise DataFormatError(f"{tr.source}: {err}") from None
        cols.append(v)
        names.extend(tr.names)
        units.extend(tr.units)
        for n in tr.names:
            sources[n] = tr.source
    return cols, names, units, sources
