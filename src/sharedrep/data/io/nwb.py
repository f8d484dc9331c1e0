"""Neurodata Without Borders (NWB) reading and writing via ``pynwb`` (+ ``ndx-pose``).

:func:`read_nwb` reads a file as a sequence of steps (choose and read the neural series,
choose and read the behaviour series, trials, stimulation, metadata) and
:func:`write_nwb` writes one as the reverse steps. ``pynwb`` and ``ndx-pose`` are
optional (``pip install "sharedrep[nwb]"``) and are imported only when these functions
run. May import :mod:`sharedrep.utils` and :mod:`sharedrep.data` (session,
preprocessing, the other readers).

What :func:`read_nwb` looks for
-------------------------------
neural
    By default the ``RoiResponseSeries`` inside a ``DfOverF`` interface, else inside a
    ``Fluorescence`` interface, else anywhere (raw traces before deconvolved / neuropil
    ones); several series that rank equally (e.g. one per imaging plane) are refused,
    not guessed. If the file has none, the ``Units`` table (spike times binned with
    ``bin_size``; bins outside a unit's ``obs_intervals`` are NaN for that unit, with a
    warning). Pass ``neural="<name or path>"`` or ``neural="units"`` to choose.
    ROIs that the ROI table marks as non-cells (columns ``iscell``, ``accepted``,
    ``keep``, ``rejected``) are left out unless ``cells_only=False``. Values are
    ``data * conversion + offset``; times are ``timestamps``, else
    ``starting_time + k / rate``.
behaviour
    By default every ``PoseEstimationSeries`` (ndx-pose) and every plain
    ``TimeSeries``/``SpatialSeries`` (not images, electrical, optogenetic or ROI
    series) in ``acquisition`` or in the behaviour processing module (``behavior`` or
    ``behaviour``, in any case; two such modules are refused), each resampled onto the
    neural timestamps. Pass ``behavior=[names]`` to choose
    (a ``PoseEstimation`` name selects all its series) or ``behavior=[]`` for none.
    Columns: 1-D series keep their name; 2-D series become ``<name>_x``,
    ``<name>_y`` (pose/spatial) or ``<name>_0``, ``<name>_1``, ... Only series whose
    column names clash (e.g. ``paw`` in two cameras) are prefixed with the name of
    their container: ``cam_top_paw_x``, ``cam_side_paw_x``; the others keep theirs.
trials
    The ``trials`` table (scalar columns); refused when no trial overlaps the neural
    time range (the two are then on different clocks).
stimulation
    Interval tables whose name contains "stim" or "opto" and every
    ``OptogeneticSeries`` (runs of non-zero power become intervals); as for trials, a
    table or series none of whose intervals overlaps the neural time range is refused.
metadata
    The ``Subject`` fields, file-level fields, and the day / stage / population that
    :func:`write_nwb` stores (as JSON after ``"sharedrep:"`` in ``NWBFile.notes``).
    ``subject=`` replaces the file's ``subject_id`` (with a warning), except an id that
    differs from it only by case, spaces, separators or leading zeros (refused as a
    typo).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from sharedrep.data.io._common import (
    DataFormatError,
    check_file,
    check_time_base,
    check_timestamps,
    require,
)
from sharedrep.data.io.nwb_header import (
    CELL_FLAGS,
    behaviour_modules,
    cell_flag,
    interface_rank,
)
from sharedrep.data.io.pose import (
    DEFAULT_MAX_GAP,
    DEFAULT_MIN_LIKELIHOOD,
    clean_pose,
    is_hdf5,
)
from sharedrep.data.io.results import to_jsonable
from sharedrep.data.preprocess import resample
from sharedrep.data.session import Session
from sharedrep.utils.files import atomic_write
from sharedrep.utils.validation import fold_subject

__all__ = ["read_nwb", "write_nwb"]

_NOTES_PREFIX = "sharedrep:"
_SUBJECT_FIELDS = ("species", "sex", "age", "genotype", "strain", "description", "weight")
# columns an NWB TimeIntervals table cannot hold: its own columns / attributes and the
# keyword arguments of hdmf's add_interval / add_row
_RESERVED_COLUMNS = frozenset(
    {
        "id",
        "tags",
        "tags_index",
        "timeseries",
        "timeseries_index",
        "description",
        "colnames",
        "object_id",
        "namespace",
        "neurodata_type",
        "data",
        "enforce_unique_id",
        "check_ragged",
    }
)
_READER_KEYS = {
    "source",
    "format",
    "neural_source",
    "behavior_sources",
    "pose_quality",
    "behavior_resampling",
    "roi_selection",
    "nwb",
    "subject",
}


def _bad_name(name: str) -> bool:
    """True for names that hdmf refuses as object names ('/' or ':', '.', '..', '')."""
    return "/" in name or ":" in name or name in ("", ".", "..")


def _pynwb():
    pynwb = require("pynwb", "nwb", "Reading and writing NWB files")
    try:  # registers the ndx-pose classes; without it pose series are still readable
        import ndx_pose  # noqa: F401
    except ImportError:  # pragma: no cover
        pass
    return pynwb


def _logical_path(obj) -> str:
    names = []
    o = obj
    while o is not None and getattr(o, "parent", None) is not None:
        names.append(o.name)
        o = o.parent
    return "/".join(reversed(names))


def _container_name(obj) -> str:
    """Name of the object holding ``obj`` (camera / interface / module), for prefixes."""
    parent = getattr(obj, "parent", None)
    if parent is None:
        return "series"
    if getattr(parent, "parent", None) is None:  # the NWBFile itself
        return "acquisition"
    return str(parent.name)


def _h5_location(obj) -> str:
    data = getattr(obj, "data", None)
    name = getattr(data, "name", None)
    return name if isinstance(name, str) else ""


def _ntype(obj) -> str:
    return str(getattr(obj, "neurodata_type", type(obj).__name__))


def _series_times(ts, n: int, src: str) -> np.ndarray:
    """Sample times (n,) in seconds of a series: its ``timestamps``, else
    ``starting_time + k / rate``; refused unless finite and strictly increasing."""
    path = _display_path(ts)
    stamps = ts.timestamps
    if stamps is not None:
        t = np.asarray(stamps[:], dtype=np.float64)
    else:
        rate = ts.rate
        if rate is None or not rate > 0:
            raise DataFormatError(f"{src}: series {path!r} has neither timestamps nor a rate")
        t0 = ts.starting_time or 0.0
        t = t0 + np.arange(n) / float(rate)
    if t.shape != (n,):
        raise DataFormatError(f"{src}: series {path!r} has {n} samples but {t.size} timestamps")
    try:
        check_timestamps(t, src, f"timestamps of series {path!r}")
    except DataFormatError as err:
        raise DataFormatError(
            f"{err}; NWB sample times must be finite and strictly increasing: correct the "
            "file (or choose other series with neural= / behavior=)"
        ) from None
    return t


def _series_data(ts, src: str) -> np.ndarray:
    raw = np.asarray(ts.data[:])
    if raw.dtype.kind not in "biuf":
        raise DataFormatError(f"{src}: series {ts.name!r} is not numeric (dtype {raw.dtype})")
    conv = float(getattr(ts, "conversion", 1.0) or 1.0)
    off = float(getattr(ts, "offset", 0.0) or 0.0)
    a = raw.astype(np.float64) * conv + off
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise DataFormatError(
            f"{src}: series {ts.name!r} has {a.ndim}-D data; expected (T,) or (T, k)"
        )
    return a


def _scalar_columns(df: pd.DataFrame) -> pd.DataFrame:
    keep = []
    for c in df.columns:
        col = df[c]
        if col.dtype == object:
            ok = col.map(
                lambda v: v is None or isinstance(v, (str, bytes, int, float, bool, np.generic))
            ).all()
            if not ok:
                continue
            df[c] = col.map(lambda v: v.decode() if isinstance(v, bytes) else v)
        keep.append(c)
    return df[keep]


def _file_path(obj) -> str:
    """Path of a series in the file (``acquisition/lever``, ``processing/behavior/...``),
    from its data set; ``""`` when unknown (an object not read from a file)."""
    loc = _h5_location(obj)
    return loc[: -len("/data")].strip("/") if loc.endswith("/data") else ""


def _display_path(obj) -> str:
    """Path of a series for messages: in the file (:func:`_file_path`), else logical."""
    return _file_path(obj) or _logical_path(obj)


def _resolve(spec: str, candidates: list, src: str, what: str):
    """The candidate named ``spec``: its name, its path below the processing modules
    (``behavior/BehavioralTimeSeries/lever``) or its path in the file
    (``acquisition/lever``, ``processing/behavior/...``), or a path's tail."""
    spec = spec.strip("/")
    if "/" in spec:  # a path: exact matches first
        exact = [o for o in candidates if spec in (_logical_path(o), _file_path(o))]
        if len(exact) == 1:
            return exact[0]
    hits = [
        o
        for o in candidates
        if o.name == spec
        or spec in (_logical_path(o), _file_path(o))
        or _logical_path(o).endswith("/" + spec)
    ]
    if not hits:
        avail = sorted({_display_path(o) for o in candidates})
        raise DataFormatError(f"{src}: no {what} named {spec!r} (available: {avail})")
    if len(hits) > 1:
        raise DataFormatError(
            f"{src}: {what} name {spec!r} is ambiguous: "
            f"{[_display_path(o) for o in hits]}; give one of these paths"
        )
    return hits[0]


def read_nwb(
    path: str | os.PathLike,
    *,
    neural: str | None = None,
    behavior: list[str] | None = None,
    bin_size: float | None = None,
    time_range: tuple[float, float] | None = None,
    cells_only: bool = True,
    stimulation: str | list[str] | bool | None = None,
    min_confidence: float | None = DEFAULT_MIN_LIKELIHOOD,
    max_gap: int = DEFAULT_MAX_GAP,
    resample_method: str = "linear",
    extrapolate: str = "error",
    subject: str | None = None,
    session_id: str | None = None,
    day: int | None = None,
    stage: str | None = None,
    population: str | None = None,
) -> Session:
    """Read one NWB file into a :class:`~sharedrep.Session`.

    See the module docstring for what is found by default.

    Parameters
    ----------
    path : str or os.PathLike
        ``.nwb`` file (HDF5).
    neural : str, optional
        Name or path of the neural series (e.g. ``"RoiResponseSeries"`` or
        ``"ophys/Fluorescence/RoiResponseSeries"``), or ``"units"`` for binned spikes.
    behavior : list of str, optional
        Names/paths of behaviour series (``TimeSeries``, ``SpatialSeries``,
        ``PoseEstimationSeries``, or a ``PoseEstimation`` for all its body parts);
        default: auto-discovery; ``[]``: none.
    bin_size : float, optional
        Bin width in seconds for spike units (required when neural data are spikes).
        When the ``Units`` table has ``obs_intervals``, a unit's bins are NaN (not 0
        spikes) unless one of its observation intervals covers the bin (its part inside
        the binning range); a warning and ``metadata["bins_outside_obs_intervals"]``
        (unit id -> number of such bins) say how many.
    time_range : (float, float), optional
        Start and stop (seconds) of the spike-binning time base. Bins are half-open
        ``[t_k, t_k + bin_size)`` starting at ``start`` (a spike on an edge ``t_k``, up
        to float64 rounding, counts in the bin that starts there), and the range is
        half-open: spikes with ``start <= t < stop`` are counted, so a spike at exactly
        ``stop`` is not (when the range is not a whole number of bins, the last bin ends
        at ``stop``). Default: the closed range from the first to the last spike (or
        trial boundary); the grid then gets one more bin when the last spike falls
        exactly on a bin edge, so that every spike is counted exactly once.
    cells_only : bool, default True
        Keep only the ROIs that the ROI table's classification columns mark as cells
        (``iscell`` of suite2p, ``accepted`` / ``keep`` / ``rejected`` of CaImAn;
        names compared case-insensitively); False: every ROI of the series. The
        columns and counts are recorded in ``metadata["roi_selection"]``.
    stimulation : str or list of str or bool, optional
        Interval table / ``OptogeneticSeries`` names; None: auto; False: none.
    min_confidence : float or None, default 0.6
        Pose points with lower confidence become NaN (see
        :func:`sharedrep.data.io.pose.clean_pose`).
    max_gap : int, default 5
        Longest run of missing pose samples (in pose frames) to interpolate.
    resample_method : {"linear", "nearest", "mean"}, default "linear"
        How behaviour is put on the neural time base
        (:func:`sharedrep.data.preprocess.resample`; recorded with ``extrapolate`` in
        ``metadata["behavior_resampling"]``). ``"linear"`` takes each behaviour
        series' value at the frame times; ``"mean"`` averages the samples around each
        frame (for fast signals such as a 1 kHz lever).
    extrapolate : {"error", "nan", "nearest"}, default "error"
        Behaviour that does not cover the neural time range: raise, NaN, or hold the
        edge value.
    subject, session_id : str, optional
        Override ``subject.subject_id`` / ``session_id`` of the file. A ``subject``
        other than the file's ``subject_id`` is used with a warning; one that differs
        from it only by case, spaces, separators or leading zeros is refused (a typo).
    day, stage, population : optional
        Override the values stored by :func:`write_nwb` (else None).

    Returns
    -------
    Session
        ``neural`` (T, N) float64 in the series' unit (dF/F, a.u., or spike counts
        per bin), ``timestamps`` (T,) seconds, ``behavior`` (T, p) resampled. Values
        are ``data * conversion + offset`` and times ``timestamps``, else
        ``starting_time + k / rate``, as NWB defines them.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    DataFormatError
        Not HDF5/NWB, truncated or corrupted, no neural data, a requested series or
        table missing or ambiguous, several neural series equally likely by default
        (e.g. one per imaging plane: choose with ``neural=``), neural data stored as
        (ROIs, frames), no ROI marked as a cell (with ``cells_only``), timestamps not
        strictly increasing, spikes without ``bin_size``, behaviour not covering the
        neural time range (with ``extrapolate="error"``), no trial (or no interval of a
        stimulation table or ``OptogeneticSeries``) overlapping the neural time range,
        two behaviour processing modules (e.g. ``behavior`` and ``Behaviour``, with
        ``behavior=None``), ``obs_intervals`` that are not finite ``start <= stop``
        pairs, no subject id, a ``subject`` that differs from the file's only by case,
        spaces, separators or leading zeros, pose with all confidences below threshold,
        or an empty session.
    ImportError
        ``pynwb`` is not installed (``pip install "sharedrep[nwb]"``).
    """
    p = check_file(path, "NWB file")
    if not is_hdf5(p):
        raise DataFormatError(f"{p}: not an NWB file (NWB files are HDF5; no HDF5 signature)")
    if bin_size is not None and not (np.isfinite(bin_size) and bin_size > 0):
        raise ValueError(f"bin_size must be > 0 seconds, got {bin_size!r}")
    pynwb = _pynwb()
    with _open_nwb(p, pynwb) as nwb:
        try:
            return _extract(
                nwb,
                str(p),
                pynwb,
                neural=neural,
                behavior=behavior,
                bin_size=bin_size,
                time_range=time_range,
                cells_only=cells_only,
                stimulation=stimulation,
                min_confidence=min_confidence,
                max_gap=max_gap,
                resample_method=resample_method,
                extrapolate=extrapolate,
                overrides=dict(
                    subject=subject,
                    session_id=session_id,
                    day=day,
                    stage=stage,
                    population=population,
                ),
            )
        except DataFormatError:
            raise
        except Exception as err:  # corrupt datasets surface while reading
            raise DataFormatError(
                f"{p}: error while reading NWB content ({type(err).__name__}: {err})"
            ) from None


@contextlib.contextmanager
def _open_nwb(p: Path, pynwb):
    """Open ``p`` read-only and yield its ``NWBFile``; failures to open or read it
    become :class:`DataFormatError`. The file is closed on exit."""
    try:
        io = pynwb.NWBHDF5IO(str(p), mode="r", load_namespaces=_has_new_namespaces(p, pynwb))
    except Exception as err:  # h5py/hdmf raise many types on corrupt files
        raise DataFormatError(f"{p}: cannot open as NWB ({type(err).__name__}: {err})") from None
    try:
        try:
            nwb = io.read()
        except Exception as err:
            raise DataFormatError(
                f"{p}: not a readable NWB file ({type(err).__name__}: {err})"
            ) from None
        yield nwb
    finally:
        try:
            io.close()
        except Exception:  # pragma: no cover - closing a broken file
            pass


def _has_new_namespaces(p: Path, pynwb) -> bool:
    """Whether ``p`` caches a namespace (an NWB extension) that ``pynwb`` has not loaded.

    Only then must the file be opened with ``load_namespaces=True``: pynwb skips every
    cached namespace whose name it has already loaded (``core``, ``hdmf-common``,
    ``ndx-pose`` once imported, ...), so for the others that option reads the same
    objects, after copying the type map and resolving every cached specification again
    (measured: about 35 ms of a 0.2 s read of a simulated session). Names that cannot be
    read count as new: the full open then reports what is wrong.
    """
    try:
        cached = pynwb.NWBHDF5IO.get_namespaces(path=str(p))
    except Exception:  # h5py/hdmf raise many types on corrupt files
        return True
    return not set(cached) <= set(pynwb.available_namespaces())


def _pynwb_types() -> dict:
    """The pynwb classes the reader tells series apart by, imported when reading."""
    from pynwb.base import TimeSeries
    from pynwb.behavior import SpatialSeries
    from pynwb.ecephys import ElectricalSeries, SpikeEventSeries
    from pynwb.image import ImageSeries, IndexSeries
    from pynwb.misc import AnnotationSeries, IntervalSeries
    from pynwb.ogen import OptogeneticSeries
    from pynwb.ophys import RoiResponseSeries

    return {
        "TimeSeries": TimeSeries,
        "SpatialSeries": SpatialSeries,
        "OptogeneticSeries": OptogeneticSeries,
        "RoiResponseSeries": RoiResponseSeries,
        # series never taken as behaviour by auto-discovery
        "not_behaviour": (
            RoiResponseSeries,
            ImageSeries,
            IndexSeries,
            ElectricalSeries,
            SpikeEventSeries,
            OptogeneticSeries,
            AnnotationSeries,
            IntervalSeries,
        ),
    }


def _extract(
    nwb,
    src: str,
    pynwb,
    *,
    neural,
    behavior,
    bin_size,
    time_range,
    cells_only,
    stimulation,
    min_confidence,
    max_gap,
    resample_method,
    extrapolate,
    overrides,
) -> Session:
    """Build the session of an opened NWB file: neural, behaviour, tables, metadata."""
    types = _pynwb_types()
    objs = sorted(nwb.objects.values(), key=_logical_path)
    series = [o for o in objs if isinstance(o, types["TimeSeries"])]
    meta: dict = {"source": src, "format": "nwb"}
    x, t, unit_ids, neural_obj, extent = _read_neural(
        nwb,
        series,
        src,
        meta,
        types,
        neural=neural,
        bin_size=bin_size,
        time_range=time_range,
        cells_only=cells_only,
    )
    chosen = _choose_behaviour(objs, series, neural_obj, behavior, src, types, nwb.processing)
    resample_kw = dict(method=resample_method, extrapolate=extrapolate)
    beh = _read_behaviour(
        chosen,
        t,
        extent,
        src,
        types,
        named=behavior is not None,
        pose_kw=dict(min_likelihood=min_confidence, max_gap=max_gap),
        resample_kw=resample_kw,
    )
    if beh["sources"]:
        meta["behavior_sources"] = beh["sources"]
        meta["behavior_resampling"] = resample_kw
    if beh["quality"]:
        meta["pose_quality"] = beh["quality"]
    trials = _read_trials(nwb, t, src, meta["neural_source"])
    stim = _stimulation(
        nwb, series, src, stimulation, types["OptogeneticSeries"], t, meta["neural_source"]
    )
    stored = _stored_notes(nwb, meta)
    subj_meta = _subject_metadata(nwb)
    meta["subject"] = subj_meta
    meta["nwb"] = _file_metadata(nwb)
    dtypes = stored.get("column_dtypes")
    if isinstance(dtypes, dict):  # nullable Int64 / boolean columns written as float
        trials = _restore_dtypes(trials, dtypes.get("trials"))
        stim = _restore_dtypes(stim, dtypes.get("stimulation"))
    if behavior is None:  # a file written by write_nwb: restore the original column order
        _restore_behaviour_order(beh, stored.get("behavior_names"))
    subject_id = _subject_id(overrides["subject"], subj_meta.get("subject_id"), src)
    cols = beh["cols"]
    try:
        return Session(
            subject=str(subject_id),
            neural=x,
            timestamps=t,
            unit_ids=unit_ids,
            behavior=np.column_stack(cols) if cols else None,
            behavior_names=beh["names"] if cols else None,
            behavior_units=beh["units"] if cols else None,
            trials=trials,
            stimulation=stim,
            metadata=meta,
            **_session_fields(nwb, stored, overrides),
        )
    except (TypeError, ValueError) as err:
        raise DataFormatError(f"{src}: {err}") from None


def _read_trials(nwb, t: np.ndarray, src: str, neural_source: str) -> pd.DataFrame | None:
    """The scalar columns of the ``trials`` table (None when it has no rows).

    Refused when no trial overlaps the neural time range ``t`` (the trials and the
    neural series are then on different clocks); a warning names the trials that lie
    entirely outside it (they hold no neural sample).
    """
    if nwb.trials is None or len(nwb.trials) == 0:
        return None
    trials = _scalar_columns(nwb.trials.to_dataframe())
    _check_overlap(trials, t, src, neural_source, what="trials", where="intervals/trials, ")
    return trials


def _check_overlap(
    df: pd.DataFrame, t: np.ndarray, src: str, neural_source: str, *, what, where, rows="rows"
) -> None:
    """Refuse intervals (``start_time``, ``stop_time`` of ``df``) none of which overlaps
    the neural time range ``t`` (they are then on another clock); warn naming those
    (by ``rows``) that lie entirely outside it (they hold no neural sample). ``what``
    names the intervals, ``where`` (with its separator) their table in the refusal."""
    st = pd.to_numeric(df["start_time"], errors="coerce").to_numpy(dtype=np.float64)
    sp = pd.to_numeric(df["stop_time"], errors="coerce").to_numpy(dtype=np.float64)
    outside = (sp <= t[0]) | (st > t[-1])  # NaN times are refused by Session
    span = f"{t[0]:.6g}..{t[-1]:.6g} s of {neural_source!r}"
    if outside.all():
        raise DataFormatError(
            f"{src}: none of the {outside.size} {what} ({where}"
            f"{np.nanmin(st):.6g}..{np.nanmax(sp):.6g} s) overlaps the neural time range "
            f"({span}): their times are on different clocks (e.g. a series without its "
            "starting_time); correct the times in the file"
        )
    if outside.any():
        out = np.flatnonzero(outside)
        warnings.warn(
            f"{src}: {out.size} of {outside.size} {what} ({rows} {out[:10].tolist()}"
            f"{' ...' if out.size > 10 else ''}) lie outside the neural time range "
            f"({span}) and hold no neural sample",
            UserWarning,
            stacklevel=5,
        )


def _read_neural(
    nwb, series, src, meta: dict, types, *, neural, bin_size, time_range, cells_only
) -> tuple:
    """Neural data (T, N), times (T,), unit ids (N,), the series read (None for spike
    units) and the recording's extent (first, last time in s; for spike units binned in
    a ``time_range``, the whole recording), as :func:`read_nwb`'s options say; what was
    read is recorded in ``meta``."""
    nts = _choose_neural(nwb, series, src, neural, types["RoiResponseSeries"])
    if nts == "units":
        x, t, unit_ids, outside, extent = _bin_units(nwb, src, bin_size, time_range)
        meta.update(neural_source="units", neural_kind="spike counts per bin", bin_size=bin_size)
        if outside is not None:
            _report_unobserved(outside, unit_ids, src, meta)
        return x, t, unit_ids, None, extent
    if bin_size is not None:
        raise ValueError("bin_size applies only to spike Units, not to a TimeSeries")
    x, t, unit_ids, cells = _read_roi_series(nts, src, cells_only)
    meta.update(
        neural_source=_logical_path(nts), neural_kind=_ntype(nts), neural_unit=str(nts.unit)
    )
    if cells is not None:
        meta["roi_selection"] = cells
    return x, t, unit_ids, nts, (float(t[0]), float(t[-1])) if t.size else (0.0, 0.0)


# --------------------------------------------------------------------------- neural


def _roi_priority(series) -> tuple[int, int]:
    """Sort key of a ``RoiResponseSeries``: ``DfOverF`` before ``Fluorescence`` before
    other interfaces, then raw traces before derived ones (deconvolved, neuropil, ...).

    suite2p's NWB export stores Fluorescence, Neuropil and Deconvolved all as
    Fluorescence-type interfaces, hence the look at the interface's name.
    """
    parent = _ntype(series.parent) if series.parent is not None else ""
    return interface_rank(parent, str(getattr(series.parent, "name", "")))


def _nonempty_units(nwb):
    """The file's ``Units`` table, or None when it has none or an empty one."""
    return nwb.units if nwb.units is not None and len(nwb.units) > 0 else None


def _choose_neural(nwb, series: list, src: str, neural, roi_type):
    """The neural series to read, or ``"units"`` for the spike ``Units`` table."""
    if neural == "units":
        if _nonempty_units(nwb) is None:
            raise DataFormatError(
                f"{src}: neural='units' but the file has no (non-empty) Units table"
            )
        return "units"
    if neural is not None:
        return _resolve(str(neural), series, src, "neural series")
    rrs = sorted(
        (o for o in series if isinstance(o, roi_type)),
        key=lambda o: (_roi_priority(o), _logical_path(o)),
    )
    if rrs:
        return _only_first_choice(rrs, src)
    if _nonempty_units(nwb) is not None:
        return "units"
    raise DataFormatError(
        f"{src}: no neural data found (no RoiResponseSeries in DfOverF/Fluorescence "
        "and no spike Units table)"
    )


def _only_first_choice(rrs: list, src: str):
    """The first of the sorted ``RoiResponseSeries`` ``rrs``; refused when others rank
    as high (several planes, or several series in one interface): never a guess."""
    first = _roi_priority(rrs[0])
    tied = [o for o in rrs if _roi_priority(o) == first]
    if len(tied) > 1:
        paths = [_display_path(o) for o in tied]
        raise DataFormatError(
            f"{src}: {len(tied)} neural series could be read by default: {paths} (e.g. "
            "one per imaging plane); choose one with neural='<path>' (study file: "
            'neural = "<path>")'
        )
    return rrs[0]


def _spike_times(units, src: str) -> tuple[np.ndarray, np.ndarray]:
    """All spike times (s) of a ``Units`` table and the unit index (row) of each."""
    st = np.asarray(units.spike_times.data[:], dtype=np.float64)
    ends = np.asarray(units.spike_times_index.data[:], dtype=np.int64)
    if ends.size != len(units) or (ends.size and ends[-1] != st.size):
        raise DataFormatError(f"{src}: Units spike_times index is inconsistent")
    counts_per_unit = np.diff(np.r_[0, ends])
    if np.any(counts_per_unit < 0):
        raise DataFormatError(f"{src}: Units spike_times index is not monotonic")
    return st, np.repeat(np.arange(ends.size), counts_per_unit)


def _binning_range(nwb, st: np.ndarray, time_range, src: str) -> tuple[float, float]:
    """Start and stop (s) of the binning time base: ``time_range``, else the span of
    the spikes and trials."""
    if time_range is None:
        lo = [st.min()] if st.size else []
        hi = [st.max()] if st.size else []
        if nwb.trials is not None and len(nwb.trials):
            lo.append(float(np.min(nwb.trials.start_time.data[:])))
            hi.append(float(np.max(nwb.trials.stop_time.data[:])))
        if not lo:
            raise DataFormatError(f"{src}: Units table has no spikes")
        t_start, t_stop = float(min(lo)), float(max(hi))
    else:
        t_start, t_stop = map(float, time_range)
    if not t_stop > t_start:
        raise DataFormatError(f"{src}: empty time range {t_start}..{t_stop} s for binning")
    return t_start, t_stop


def _recording_extent(nwb, st: np.ndarray, src: str) -> tuple[float, float] | None:
    """First and last time (s) of the spikes ``st`` and trials: the whole recording;
    None when they give no extent (no spikes and no trials, or a single time)."""
    try:
        return _binning_range(nwb, st, None, src)
    except DataFormatError:
        return None


#: How close (in bins) a spike time may be to a bin edge and still count as on the edge:
#: ``(t - start) / bin_size`` carries float64 rounding (0.3 s / 0.1 s = 2.9999999999999996),
#: so a spike exactly on an edge would otherwise fall into the bin before it.
_EDGE_TOLERANCE = 1e-9


def _bin_index(st: np.ndarray, t_start: float, bin_size: float) -> np.ndarray:
    """Bin of each spike time ``st`` (s) on the grid ``t_start + k * bin_size``.

    Bins are half-open ``[t_k, t_k + bin_size)``; a spike within :data:`_EDGE_TOLERANCE`
    of a bin (plus the float64 rounding of ``st`` and ``t_start``, which grows with their
    magnitude) below an edge goes to the bin that starts at that edge.

    Returns
    -------
    ndarray of int64, same shape as ``st``
    """
    rounding = 4 * np.finfo(np.float64).eps * (np.abs(st) + abs(t_start)) / bin_size
    return np.floor((st - t_start) / bin_size + _EDGE_TOLERANCE + rounding).astype(np.int64)


def _bin_units(nwb, src: str, bin_size, time_range) -> tuple:
    """Spike counts per bin of the ``Units`` table; NaN in the bins outside a unit's
    ``obs_intervals`` (:func:`_unobserved_bins`).

    Returns
    -------
    counts : ndarray of shape (T, N)
        Spikes per bin and unit (float64), NaN where the unit was not observed.
    t : ndarray of shape (T,)
        Bin centres in seconds.
    unit_ids : ndarray of shape (N,)
        The ids of the ``Units`` rows.
    outside : ndarray of shape (N,) or None
        Bins per unit outside its ``obs_intervals``; None when the table has none.
    extent : (float, float)
        First and last time (s) of the spikes and trials: the recording, whatever
        ``time_range`` bins of it (the ``time_range`` when they give no extent).
    """
    if bin_size is None:
        raise DataFormatError(
            f"{src}: neural data are spike Units; pass bin_size= (seconds) to bin them"
        )
    units = _nonempty_units(nwb)
    st, lab = _spike_times(units, src)
    n_units = len(units)
    t_start, t_stop = _binning_range(nwb, st, time_range, src)
    whole = None if time_range is None else _recording_extent(nwb, st, src)
    extent = whole or (t_start, t_stop)  # the window stands for a recording without one
    if time_range is None:  # closed [first, last]: the grid includes the last spike
        nb = int(_bin_index(np.array([t_stop]), t_start, bin_size)[0]) + 1
        ok = (st >= t_start) & (st <= t_stop)
    else:  # half-open [start, stop): a spike at exactly stop is not counted
        nb = max(1, int(np.ceil((t_stop - t_start) / bin_size - _EDGE_TOLERANCE)))
        ok = (st >= t_start) & (st < t_stop)
    # bins are half-open [t_k, t_k + bin_size); the clip only guards rounding at the end
    b = np.minimum(_bin_index(st[ok], t_start, bin_size), nb - 1)
    counts = np.bincount(lab[ok] * nb + b, minlength=n_units * nb)
    x = counts.reshape(n_units, nb).T.astype(np.float64)
    t = t_start + (np.arange(nb) + 0.5) * bin_size
    lo = t_start + np.arange(nb) * bin_size
    unobserved = _unobserved_bins(units, lo, np.minimum(lo + bin_size, t_stop), bin_size, src)
    ids = np.asarray(units.id.data[:])
    if unobserved is None:
        return x, t, ids, None, extent
    x[unobserved] = np.nan
    return x, t, ids, unobserved.sum(axis=0), extent


def _unobserved_bins(units, lo: np.ndarray, hi: np.ndarray, bin_size: float, src: str):
    """(T, N) mask of the bins ``[lo, hi]`` (the part of each bin inside the binning
    range) not inside one of the unit's ``obs_intervals`` (touching intervals are
    joined); None when the ``Units`` table has no ``obs_intervals`` column. Refused
    unless the intervals are finite ``start <= stop`` pairs."""
    if getattr(units, "obs_intervals", None) is None:
        return None
    iv = np.asarray(units.obs_intervals.data[:], dtype=np.float64).reshape(-1, 2)
    ends = np.asarray(units.obs_intervals_index.data[:], dtype=np.int64)
    starts = np.r_[0, ends[:-1]]
    if ends.size != len(units) or (ends.size and ends[-1] != len(iv)) or np.any(ends < starts):
        raise DataFormatError(
            f"{src}: the index of units/obs_intervals does not match the Units table; "
            "correct the file"
        )
    bad = ~np.isfinite(iv).all(axis=1) | (iv[:, 1] < iv[:, 0])
    if bad.any():
        row = int(np.searchsorted(ends, np.flatnonzero(bad)[0], side="right"))
        raise DataFormatError(
            f"{src}: units/obs_intervals of unit {_plain(units.id.data[row])!r} (row "
            f"{row}) holds {iv[bad][0].tolist()}, not a finite (start, stop) pair with "
            "start <= stop; correct the file"
        )
    tol = _EDGE_TOLERANCE * bin_size
    return np.column_stack(
        [~_inside(iv[a:b], lo, hi, tol) for a, b in zip(starts, ends, strict=True)]
    )


def _inside(intervals: np.ndarray, lo: np.ndarray, hi: np.ndarray, tol: float) -> np.ndarray:
    """Whether each ``[lo, hi]`` lies inside the union of ``intervals`` (k, 2); ends
    within ``tol`` of each other count as touching."""
    merged: list[list[float]] = []
    for a, b in intervals[np.argsort(intervals[:, 0], kind="stable")]:
        if merged and a <= merged[-1][1] + tol:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    if not merged:
        return np.zeros(lo.shape, dtype=bool)
    m = np.asarray(merged)
    j = np.searchsorted(m[:, 0], lo + tol, side="right") - 1
    return (j >= 0) & (m[np.maximum(j, 0), 1] >= hi - tol)


def _report_unobserved(outside: np.ndarray, unit_ids: np.ndarray, src: str, meta: dict):
    """Record (``meta["bins_outside_obs_intervals"]``, unit id -> bins) and warn about
    the units with bins outside their ``obs_intervals`` (those bins are NaN)."""
    some = np.flatnonzero(outside)
    meta["bins_outside_obs_intervals"] = {_plain(unit_ids[j]): int(outside[j]) for j in some}
    if not some.size:
        return
    listed = ", ".join(f"unit {_plain(unit_ids[j])!r}: {int(outside[j])}" for j in some[:10])
    warnings.warn(
        f"{src}: {some.size} of {outside.size} spike units have bins outside their "
        f"obs_intervals (Units table; bins per unit: {listed}"
        f"{' ...' if some.size > 10 else ''}): those bins are NaN, not 0 spikes (fit with "
        'nan_policy="omit", or drop those samples: session.mask_samples(session.'
        "nonfinite_samples()); study file: drop_nonfinite = true)",
        UserWarning,
        stacklevel=5,
    )


def _plain(value):
    """A numpy scalar as the Python value (ids for metadata and messages)."""
    return value.item() if isinstance(value, np.generic) else value


def _roi_labels(table) -> np.ndarray:
    """Unit labels of a ROI table: its ``unit_label`` column (written by
    :func:`write_nwb`; numbers keep their type, others become str), else its ids."""
    if "unit_label" not in table.colnames:
        return np.asarray(table.id.data[:])
    labels = np.asarray(table["unit_label"].data[:])
    if labels.dtype.kind not in "iuf":
        labels = np.asarray([str(v) for v in labels], dtype=object)
    return labels


def _read_roi_series(nts, src: str, cells_only: bool) -> tuple:
    """Data (T, N), timestamps (T,) s, unit ids (N,) and the cell selection (a dict for
    the metadata, or None) of a neural ``TimeSeries``; the ids come from its ``rois``
    region when it has one, else ``0..N-1``. With ``cells_only``, only the ROIs that the
    ROI table's classification columns mark as cells are kept (:func:`_cell_flags`)."""
    x = _series_data(nts, src)
    rois = getattr(nts, "rois", None)
    if rois is None:
        return x, _series_times(nts, x.shape[0], src), np.arange(x.shape[1]), None
    idx = np.asarray(rois.data[:], dtype=np.int64)
    labels = _roi_labels(rois.table)
    _check_roi_columns(nts, x, idx, labels.size, src)
    t = _series_times(nts, x.shape[0], src)
    flags = _cell_flags(rois.table, src, strict=cells_only)
    if not flags:
        return x, t, labels[idx], None
    is_cell = np.logical_and.reduce([f[idx] for f in flags.values()])
    table = _logical_path(rois.table)
    selection = {
        "roi_table": table,
        "columns": sorted(flags),
        "n_rois": int(idx.size),
        "n_cells": int(is_cell.sum()),
        "cells_only": bool(cells_only),
    }
    if not cells_only:
        return x, t, labels[idx], selection
    if not is_cell.any():
        raise DataFormatError(
            f"{src}: no ROI of {_logical_path(nts)!r} is marked as a cell by the columns "
            f"{sorted(flags)} of {table!r}; pass cells_only=False to read all {idx.size} ROIs"
        )
    return x[:, is_cell], t, labels[idx][is_cell], selection


def _check_roi_columns(nts, x: np.ndarray, idx: np.ndarray, n_rows: int, src: str) -> None:
    """Refuse a neural series whose columns are not its ``rois`` (data stored as
    (ROIs, frames) by mistake, or a region pointing outside its ROI table)."""
    path = _display_path(nts)
    if idx.size and (idx.min() < 0 or idx.max() >= n_rows):
        raise DataFormatError(
            f"{src}: the rois region of {path!r} points outside its ROI table "
            f"({n_rows} rows); correct the file"
        )
    if idx.size == x.shape[1]:
        return
    if idx.size == x.shape[0]:
        raise DataFormatError(
            f"{src}: data of {path!r} have shape {x.shape} for {idx.size} ROIs: stored as "
            "(ROIs, frames), transposed; NWB stores them as (frames, ROIs): write the "
            "series again with the data transposed"
        )
    raise DataFormatError(
        f"{src}: {path!r} has {x.shape[1]} columns but its rois region lists {idx.size} "
        "ROIs; correct the file"
    )


def _cell_flags(table, src: str, *, strict: bool = True) -> dict:
    """``{column: is-cell mask (n_rows,)}`` of the columns of a ROI table that classify
    its ROIs (:data:`~sharedrep.data.io.nwb_header.CELL_FLAGS`). A column that is not
    one number or boolean per ROI is refused when the classification selects the ROIs
    (``strict``: ``cells_only=True``); otherwise (every ROI is read) it is left out of
    the recorded selection, with a warning."""
    flags = {}
    for c in map(str, table.colnames):
        if c.lower() not in CELL_FLAGS:
            continue
        flag = cell_flag(c, table[c].data[:], len(table))
        where = (
            f"{src}: column {c!r} of the ROI table {_logical_path(table)!r} is not one "
            "flag per ROI"
        )
        if flag is None and strict:
            raise DataFormatError(f"{where}; pass cells_only=False to read every ROI")
        if flag is None:
            warnings.warn(
                # _cell_flags < _read_roi_series < _read_neural < _extract < read_nwb
                f"{where}; ignored (cells_only=False reads every ROI)",
                UserWarning,
                stacklevel=6,
            )
            continue
        flags[c] = flag
    return flags


# --------------------------------------------------------------------------- behaviour


def _choose_behaviour(
    objs: list, series: list, neural_obj, behavior, src: str, types, modules
) -> list:
    """The behaviour series to read: those named in ``behavior`` (a ``PoseEstimation``
    gives all its series, by name), else those found by discovery (in the behaviour
    module among the processing ``modules``, :func:`_behaviour_module`)."""
    if behavior is None:
        module = _behaviour_module(modules or {}, src)
        return [o for o in series if o is not neural_obj and _is_discovered(o, types, module)]
    if isinstance(behavior, str):
        behavior = [behavior]
    pose_containers = [o for o in objs if _ntype(o) == "PoseEstimation"]
    chosen = []
    for spec in behavior:
        hit = _resolve(str(spec), series + pose_containers, src, "behaviour series")
        if _ntype(hit) == "PoseEstimation":
            chosen.extend(sorted(hit.pose_estimation_series.values(), key=lambda s: s.name))
        else:
            chosen.append(hit)
    return chosen


def _behaviour_module(names, src: str) -> str | None:
    """The processing module searched for behaviour: the one named ``behavior`` or
    ``behaviour`` in any case (None when there is none); two such are refused."""
    found = behaviour_modules(names)
    if len(found) > 1:
        raise DataFormatError(
            f"{src}: {len(found)} processing modules may hold the behaviour: "
            f"{['processing/' + n for n in found]}; choose the series with "
            "behavior=[...] (study file: behavior = [...]), or merge the modules in the file"
        )
    return found[0] if found else None


def _is_discovered(series, types, module: str | None) -> bool:
    """Whether auto-discovery takes ``series`` as behaviour: every pose series, and the
    plain series in ``acquisition`` or in the behaviour processing ``module``."""
    if _ntype(series) == "PoseEstimationSeries":
        return True
    if isinstance(series, types["not_behaviour"]):
        return False
    loc = _h5_location(series)
    return loc.startswith("/acquisition/") or (
        module is not None and loc.startswith(f"/processing/{module}/")
    )


def _clean_pose_series(
    o, v: np.ndarray, tt: np.ndarray, src: str, pose_kw: dict
) -> tuple[np.ndarray, dict]:
    """Positions (T, k) of a ``PoseEstimationSeries`` with times ``tt`` (T,) cleaned by
    its confidence (:func:`~sharedrep.data.io.pose.clean_pose`; gaps counted in frames
    from the times), and the cleaning report."""
    conf = getattr(o, "confidence", None)
    conf = None if conf is None else np.asarray(conf[:], dtype=np.float64)
    if conf is not None and conf.shape != (v.shape[0],):
        raise DataFormatError(f"{src}: confidence of {o.name!r} has the wrong length")
    cleaned, info = clean_pose(
        v[:, None, :],
        None if conf is None else conf[:, None],
        bodyparts=[o.name],
        source=f"{src} ({_logical_path(o)})",
        timestamps=tt,
        **pose_kw,
    )
    return cleaned[:, 0, :], info


def _series_column_names(o, n_cols: int, spatial: bool) -> list[str]:
    """Column names of a series: its name (1 column), ``<name>_x/_y/_z`` (pose or
    spatial, up to 3 columns), else ``<name>_0, <name>_1, ...``."""
    if n_cols == 1:
        return [o.name]
    if spatial and n_cols <= 3:
        return [f"{o.name}_{c}" for c in "xyz"[:n_cols]]
    return [f"{o.name}_{j}" for j in range(n_cols)]


def _behaviour_values(o, src: str) -> np.ndarray:
    """Values (T, k) of a behaviour series; refused when it has more columns than
    samples (data stored as (columns, samples), transposed)."""
    v = _series_data(o, src)
    if v.shape[1] > v.shape[0]:
        raise DataFormatError(
            f"{src}: behaviour series {_display_path(o)!r} has data of "
            f"shape {v.shape}: more columns than samples, so stored as (columns, "
            "samples), transposed; NWB stores time on the first axis: write the series "
            "again with the data transposed"
        )
    return v


def _read_behaviour(
    chosen: list, t: np.ndarray, extent, src: str, types, *, named: bool, pose_kw, resample_kw
) -> dict:
    """Read the behaviour series and resample them onto the neural time base ``t``.

    Each series' times are first checked against the recording ``extent`` or the
    time base ``t`` (:func:`_check_behaviour_times`).

    Returns a dict with ``cols`` (list of (T, k_i) arrays), ``names`` and ``units``
    (one per column), ``sources`` (column -> series path) and ``quality`` (series
    path -> pose-cleaning report).
    """
    cols, units_, quality, raw_names = [], [], {}, []
    for o in chosen:
        try:
            v = _behaviour_values(o, src)
        except DataFormatError as err:
            if named:  # asked for by name: an error
                raise
            warnings.warn(  # found by discovery: the other series are still read
                f"{err}; not used as behaviour (choose series with behavior=[...])",
                UserWarning,
                stacklevel=4,
            )
            continue
        tt = _series_times(o, v.shape[0], src)
        is_pose = _ntype(o) == "PoseEstimationSeries"
        if is_pose:
            v, quality[_logical_path(o)] = _clean_pose_series(o, v, tt, src, pose_kw)
        spatial = is_pose or isinstance(o, types["SpatialSeries"])
        nm = _series_column_names(o, v.shape[1], spatial)
        name = f"behaviour series {_logical_path(o)!r}"
        _check_behaviour_times(tt, extent, t, f"{src}: {name}", src)
        try:
            cols.append(resample(v, tt, t, name=name, **resample_kw))
        except ValueError as err:
            raise DataFormatError(f"{src}: {err}") from None
        raw_names.append((o, nm))
        units_.extend([str(o.unit)] * len(nm))
    names = _unique_column_names(raw_names, src)
    paths = [_logical_path(o) for o, nm in raw_names for _ in nm]
    sources = dict(zip(names, paths, strict=True))
    return {"cols": cols, "names": names, "units": units_, "sources": sources, "quality": quality}


def _check_behaviour_times(tt: np.ndarray, extent, t: np.ndarray, what: str, src: str) -> None:
    """Refuse behaviour times ``tt`` (T_b,) s that are on the clock of neither the whole
    neural recording ``extent`` (first, last time, s) nor the time base ``t`` (T,) s
    (:func:`sharedrep.data.io._common.check_time_base`). Either one is enough: spikes
    binned in a short ``time_range`` of a long recording may come with behaviour that
    spans the recording or only the window. When both fail, the error is the one of
    the whole recording."""
    try:
        check_time_base(tt, np.asarray(extent, dtype=np.float64), what, src)
    except DataFormatError as whole:
        try:
            check_time_base(tt, t, what, src)
        except DataFormatError:
            raise whole from None


def _unique_column_names(raw_names: list, src: str) -> list[str]:
    """Flat column names; names that clash (same body part in two ``PoseEstimation``,
    etc.) get their container's name as a prefix, the others are kept."""
    flat = [n for _, nm in raw_names for n in nm]
    clash = {n for n in flat if flat.count(n) > 1}
    if not clash:
        return flat
    flat = []
    for o, nm in raw_names:
        if clash.intersection(nm):
            flat.extend(f"{_container_name(o)}_{n}" for n in nm)
        else:
            flat.extend(nm)
    if len(set(flat)) != len(flat):
        raise DataFormatError(f"{src}: behaviour series names are not unique: {flat}")
    return flat


def _restore_behaviour_order(beh: dict, order) -> None:
    """Put the behaviour columns back in the order :func:`write_nwb` recorded (in place);
    nothing when ``order`` is not a list of the same names."""
    names = beh["names"]
    if not (isinstance(order, list) and sorted(order) == sorted(names) and beh["cols"]):
        return
    beh_all = np.column_stack(beh["cols"])
    pos = [names.index(n) for n in order]
    beh["cols"] = [beh_all[:, pos]]
    beh["units"] = [beh["units"][i] for i in pos]
    beh["names"] = list(order)


# --------------------------------------------------------------------------- metadata


def _stored_notes(nwb, meta: dict) -> dict:
    """What :func:`write_nwb` stored as JSON in ``notes`` (``{}`` if nothing); its
    ``metadata`` entry, or other notes as ``meta["notes"]``, go into ``meta``."""
    stored: dict = {}
    notes = nwb.notes
    if isinstance(notes, str) and notes.startswith(_NOTES_PREFIX):
        try:
            stored = json.loads(notes[len(_NOTES_PREFIX) :])
        except json.JSONDecodeError:
            stored = {}
        if not isinstance(stored, dict):
            stored = {}
    elif notes:
        meta["notes"] = str(notes)
    meta.update(stored.get("metadata", {}) if isinstance(stored.get("metadata"), dict) else {})
    return stored


def _subject_metadata(nwb) -> dict:
    """The ``Subject`` fields that are set (numbers kept, others as str)."""
    subj = nwb.subject
    out = {}
    if subj is not None:
        for f in ("subject_id",) + _SUBJECT_FIELDS:
            v = getattr(subj, f, None)
            if v is not None:
                out[f] = v if isinstance(v, (int, float)) else str(v)
    return out


def _file_metadata(nwb) -> dict:
    """File-level fields of the ``NWBFile`` (identifier, description, start time, ...)."""
    start = nwb.session_start_time
    return {
        "identifier": str(nwb.identifier),
        "session_description": str(nwb.session_description),
        "session_start_time": start.isoformat() if start is not None else None,
        "experimenter": [str(e) for e in (nwb.experimenter or [])],
        "lab": nwb.lab,
        "institution": nwb.institution,
        "experiment_description": nwb.experiment_description,
    }


def _subject_id(given, stored, src: str) -> str:
    """The session's subject: ``given`` (``read_nwb(subject=)``), else the file's
    ``subject_id`` (``stored``).

    A ``given`` id that differs from the file's only by case, spaces, separators or
    leading zeros (:func:`~sharedrep.utils.validation.fold_subject`) is refused as a
    typo; another id is used, with a warning that it replaces the file's.
    """
    if not given:
        if not stored:
            raise DataFormatError(f"{src}: the file has no subject.subject_id; pass subject=")
        return str(stored)
    given = str(given)
    if not stored or given == str(stored):
        return given
    text = f"{src}: subject={given!r} differs from the file's subject_id {str(stored)!r}"
    if fold_subject(given) == fold_subject(stored):
        raise DataFormatError(
            f"{text} (general/subject/subject_id) only by case, spaces, separators or "
            f"leading zeros; did you mean {str(stored)!r}? (pass the file's id, or "
            "correct the file)"
        )
    warnings.warn(
        f"{text} (general/subject/subject_id); the session is labelled {given!r}",
        UserWarning,
        stacklevel=4,
    )
    return given


def _session_fields(nwb, stored: dict, overrides: dict) -> dict:
    """``session_id``, ``day``, ``stage`` and ``population``: the caller's overrides,
    else the file's session id / what :func:`write_nwb` stored."""
    return {
        "session_id": overrides["session_id"] or nwb.session_id or str(nwb.identifier),
        "day": overrides["day"] if overrides["day"] is not None else stored.get("day"),
        "stage": overrides["stage"] or stored.get("stage"),
        "population": overrides["population"] or stored.get("population"),
    }


def _stimulation(
    nwb, series, src, spec, OptogeneticSeries, t, neural_source
) -> pd.DataFrame | None:
    """Stimulation intervals: the chosen interval tables plus the runs of non-zero
    power of the chosen ``OptogeneticSeries``, sorted by start time (None if none).

    Each table / series is refused when none of its intervals overlaps the neural time
    range ``t`` (another clock); a warning names those that lie outside it.
    """
    if spec is False:
        return None
    tables, sers = _stimulation_sources(nwb, series, src, spec, OptogeneticSeries)
    named = [
        (_interval_frame(tab), f"stimulation intervals of 'intervals/{tab.name}'", "rows")
        for tab in tables
        if len(tab) != 0
    ]
    for o in sers:
        pulses = _optogenetic_intervals(o, src)
        if pulses is not None:
            named.append((pulses, f"light pulses of {_display_path(o)!r}", "pulses"))
    for df, what, rows in named:
        _check_overlap(df, t, src, neural_source, what=what, where="", rows=rows)
    frames = [df for df, _, _ in named]
    if not frames:
        return None
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values("start_time", kind="stable").reset_index(drop=True)


def _stimulation_sources(nwb, series, src, spec, OptogeneticSeries) -> tuple[list, list]:
    """The interval tables and ``OptogeneticSeries`` named in ``spec``; with ``spec``
    None, the tables whose name contains "stim" or "opto" and every optogenetic series."""
    intervals = {
        k: v
        for k, v in (nwb.intervals or {}).items()
        if k not in ("trials", "epochs", "invalid_times")
    }
    opto = [o for o in series if isinstance(o, OptogeneticSeries)]
    if spec is None:
        tables = [v for k, v in intervals.items() if re.search("stim|opto", k, re.IGNORECASE)]
        return tables, opto
    specs = [spec] if isinstance(spec, str) else list(spec)
    tables, sers = [], []
    for s in specs:
        if s in intervals:
            tables.append(intervals[s])
            continue
        try:
            sers.append(_resolve(s, opto, src, "stimulation table or OptogeneticSeries"))
        except DataFormatError:
            raise DataFormatError(
                f"{src}: no stimulation intervals table or OptogeneticSeries named "
                f"{s!r} (intervals: {sorted(intervals)}, optogenetic series: "
                f"{[o.name for o in opto]})"
            ) from None
    return tables, sers


def _interval_frame(tab) -> pd.DataFrame:
    """Scalar columns of an interval table, with a ``source`` column (its name) added
    as third column when it has none."""
    df = _scalar_columns(tab.to_dataframe()).reset_index(drop=True)
    if "source" not in df.columns:
        df.insert(2, "source", tab.name)
    return df


def _optogenetic_intervals(o, src: str) -> pd.DataFrame | None:
    """The runs of non-zero power of an ``OptogeneticSeries`` as intervals (start,
    stop in s, source, peak power and its unit); None when the light is never on.

    A run ends at the next sample's time, or one median sample step after its last
    sample at the end of the series.
    """
    v = _series_data(o, src)
    tt = _series_times(o, v.shape[0], src)
    on = np.nan_to_num(v.max(axis=1)) > 0
    if not on.any():
        return None
    starts = np.flatnonzero(on & ~np.r_[False, on[:-1]])
    stops = np.flatnonzero(on & ~np.r_[on[1:], False])
    dt = float(np.median(np.diff(tt))) if tt.size > 1 else 0.0
    stop_t = np.where(stops + 1 < tt.size, tt[np.minimum(stops + 1, tt.size - 1)], tt[stops] + dt)
    power = [float(v[a : b + 1].max()) for a, b in zip(starts, stops, strict=True)]
    return pd.DataFrame(
        {
            "start_time": tt[starts],
            "stop_time": stop_t,
            "source": o.name,
            "power": power,
            "power_unit": str(o.unit),
        }
    )


# --------------------------------------------------------------------------- writing


def _column_values(col: pd.Series) -> tuple[list, str]:
    """Plain Python values of one table column and the NWB type they are written as.

    Nullable integer / boolean columns (``Int64``, ``boolean``) holding NA are written
    as float with NaN for NA (their dtype is restored by :func:`read_nwb`); missing
    strings are written as ``""``.
    """
    na = col.isna().to_numpy()
    is_bool = pd.api.types.is_bool_dtype(col)
    if (is_bool or pd.api.types.is_integer_dtype(col)) and na.any():
        return [np.nan if m else float(v) for v, m in zip(col, na, strict=True)], "float"
    if is_bool:
        return [bool(v) for v in col], "bool"
    if pd.api.types.is_integer_dtype(col):
        return [int(v) for v in col], "int"
    if pd.api.types.is_float_dtype(col):
        return [np.nan if m else float(v) for v, m in zip(col, na, strict=True)], "float"
    return ["" if m else str(v) for v, m in zip(col, na, strict=True)], "str"


def _nullable_dtypes(df: pd.DataFrame) -> dict:
    """``{column: dtype}`` of the pandas nullable integer / boolean columns of ``df``."""
    return {
        str(c): str(df[c].dtype)
        for c in df.columns
        if isinstance(df[c].dtype, pd.api.extensions.ExtensionDtype)
        and (pd.api.types.is_integer_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c]))
    }


def _restore_dtypes(df: pd.DataFrame | None, dtypes) -> pd.DataFrame | None:
    """Give back the nullable dtypes that :func:`write_nwb` recorded (see ``notes``)."""
    if df is None or not isinstance(dtypes, dict):
        return df
    out = df.copy()
    for c, dt in dtypes.items():
        if c in out.columns:
            try:
                out[c] = out[c].astype(dt)
            except (TypeError, ValueError):  # not what write_nwb wrote: keep as read
                pass
    return out


def _add_table_rows(table, df: pd.DataFrame, add, label: str) -> None:
    extra = [c for c in df.columns if c not in ("start_time", "stop_time")]
    for c in map(str, extra):
        if c in _RESERVED_COLUMNS:
            why, alt = "the name is reserved by NWB/hdmf", f"{table.name.rstrip('s')}_{c}"
        elif _bad_name(c):
            why = "NWB names may not contain '/' or ':' nor be '', '.' or '..'"
            alt = re.sub("[/:]", "_", c).strip(".") or "value"
        else:
            continue
        raise ValueError(
            f"{label}: {table.name} column {c!r} cannot be written to NWB ({why}); "
            f"rename it, e.g. to {alt!r}"
        )
    values = {c: _column_values(df[c])[0] for c in extra}
    for c in extra:
        table.add_column(name=str(c), description=f"{c} (from sharedrep)")
    idx = df.index
    use_ids = pd.api.types.is_integer_dtype(idx) and idx.is_unique and (idx >= 0).all()
    for i in range(len(df)):
        row = {c: values[c][i] for c in extra}
        if use_ids:
            row["id"] = int(idx[i])
        add(
            start_time=float(df["start_time"].iloc[i]),
            stop_time=float(df["stop_time"].iloc[i]),
            **row,
        )


def write_nwb(
    session: Session,
    path: str | os.PathLike,
    overwrite: bool = False,
    *,
    session_start_time: datetime | None = None,
    description: str | None = None,
    neural_unit: str | None = None,
) -> Path:
    """Export a session to a valid NWB file (atomically).

    Layout: neural activity as ``processing/ophys/DfOverF/RoiResponseSeries`` with a
    ``PlaneSegmentation`` whose ids are the unit ids (placeholder pixel masks; ids
    that are not non-negative integers are kept in a ``unit_label`` column, as
    integers, floats or strings like the ids), each behaviour column as a
    ``TimeSeries`` in ``processing/behavior`` sharing the neural timestamps, the
    trials table, stimulation as the ``stimulation`` intervals table, the subject as
    ``Subject``, and day / stage / population plus JSON-serialisable metadata as JSON
    in ``notes``. Nullable integer / boolean table columns (``Int64``, ``boolean``)
    with missing values are stored as float with NaN, their dtype in ``notes``.
    :func:`read_nwb` reads it back to an equal session.

    Parameters
    ----------
    session : Session
    path : str or os.PathLike
        Destination ``.nwb`` file.
    overwrite : bool, default False
        Replace an existing file.
    session_start_time : datetime, optional
        Default: ``metadata["nwb"]["session_start_time"]`` if present, else now (UTC).
    description : str, optional
        ``session_description``.
    neural_unit : str, optional
        Unit of the neural series (default ``metadata["neural_unit"]`` or ``"a.u."``).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    ValueError
        Behaviour names or trials / stimulation column names that NWB forbids
        (containing ``/`` or ``:``), or table columns whose names NWB/hdmf reserves
        (``id``, ``tags``, ``timeseries``, ``description``, ``colnames``,
        ``object_id``, ``data``, ...): they are refused, not renamed; rename them.
    ImportError
        ``pynwb`` is not installed.
    """
    if not isinstance(session, Session):
        raise TypeError(f"expected a Session, got {type(session).__name__}")
    p = Path(path)
    if p.exists() and not overwrite:
        raise FileExistsError(
            f"{p} already exists; pass overwrite=True (CLI: --force) to replace it"
        )
    pynwb = _pynwb()
    _check_behaviour_names(session)
    nwbfile = _new_nwbfile(pynwb, session, session_start_time, description)
    rrs = _add_neural(nwbfile, session, neural_unit)
    _add_behaviour(pynwb, nwbfile, session, rrs)
    _add_interval_tables(nwbfile, session)

    def _w(tmp: Path) -> None:
        with pynwb.NWBHDF5IO(str(tmp), mode="w") as io:
            io.write(nwbfile)

    return atomic_write(p, _w, overwrite=overwrite)


def _check_behaviour_names(session: Session) -> None:
    """Refuse behaviour names that cannot be NWB object names."""
    bad = [n for n in session.behavior_names if _bad_name(n)]
    if bad:
        raise ValueError(
            f"{session._label}: behaviour names {bad} cannot be NWB object names "
            "(no '/' or ':', not empty, '.' or '..'); rename them"
        )


def _dict_entry(md: dict, key: str) -> dict:
    """``md[key]`` when it is a dict, else ``{}``."""
    return md.get(key, {}) if isinstance(md.get(key), dict) else {}


def _jsonable_metadata(md: dict) -> dict:
    """The metadata entries worth storing in ``notes``: JSON-serialisable ones that are
    not written elsewhere by the reader (source, subject, NWB fields, ...)."""
    keep = {}
    for k, v in md.items():
        if k in _READER_KEYS:
            continue
        try:
            json.dumps(to_jsonable(v), allow_nan=False)
        except (TypeError, ValueError):
            continue
        keep[k] = to_jsonable(v)
    return keep


def _notes_payload(session: Session) -> dict:
    """What ``notes`` stores for :func:`read_nwb`: day / stage / population, the
    behaviour column order, metadata and the nullable dtypes of the tables."""
    return {
        "day": session.day,
        "stage": session.stage,
        "population": session.population,
        "behavior_names": list(session.behavior_names),
        "metadata": _jsonable_metadata(session.metadata),
        "column_dtypes": {
            "trials": _nullable_dtypes(session.trials),
            "stimulation": _nullable_dtypes(session.stimulation),
        },
    }


def _new_nwbfile(pynwb, session: Session, session_start_time, description):
    """An ``NWBFile`` holding the session's file-level fields, subject and notes."""
    from pynwb.file import Subject

    md = session.metadata
    nwb_md = _dict_entry(md, "nwb")
    if session_start_time is None:
        iso = nwb_md.get("session_start_time")
        session_start_time = datetime.fromisoformat(iso) if iso else datetime.now(UTC)
    subj_md = _dict_entry(md, "subject")
    subj_kw = {k: str(subj_md[k]) for k in _SUBJECT_FIELDS if subj_md.get(k) is not None}
    return pynwb.NWBFile(
        session_description=description
        or nwb_md.get("session_description")
        or f"sharedrep session {session.session_id}",
        identifier=str(uuid.uuid4()),
        session_start_time=session_start_time,
        session_id=session.session_id,
        subject=Subject(subject_id=session.subject, **subj_kw),
        notes=_NOTES_PREFIX + json.dumps(_notes_payload(session)),
    )


def _imaging_plane(nwbfile, session: Session):
    """A placeholder microscope, optical channel and imaging plane for the ROIs."""
    from pynwb.ophys import OpticalChannel

    device = nwbfile.create_device(name="Microscope", description="acquisition device")
    channel = OpticalChannel(name="OpticalChannel", description="unknown", emission_lambda=np.nan)
    rate = session.sampling_rate
    return nwbfile.create_imaging_plane(
        name="ImagingPlane",
        optical_channel=channel,
        description="imaging plane",
        device=device,
        excitation_lambda=np.nan,
        indicator=str(session.metadata.get("indicator", "unknown")),
        location=session.population or "unknown",
        imaging_rate=float(rate) if np.isfinite(rate) else 0.0,
    )


def _roi_kwargs(ids: np.ndarray, i: int, int_ids: bool) -> dict:
    """How unit ``i`` is stored: as the ROI id (non-negative integers), else in the
    ``unit_label`` column as int, float or str like the id."""
    if int_ids:
        return {"id": int(ids[i])}
    if ids.dtype.kind == "i":  # negative integer ids: stored as integers
        return {"unit_label": int(ids[i])}
    if ids.dtype.kind == "f":
        return {"unit_label": float(ids[i])}
    return {"unit_label": str(ids[i])}


def _add_neural(nwbfile, session: Session, neural_unit):
    """Write the ROIs (placeholder masks, one per unit) and the neural activity as
    ``processing/ophys/DfOverF/RoiResponseSeries``; return that series."""
    from pynwb.ophys import DfOverF, ImageSegmentation

    plane = _imaging_plane(nwbfile, session)
    ophys = nwbfile.create_processing_module(name="ophys", description="neural activity")
    seg = ImageSegmentation()
    ophys.add(seg)
    ps = seg.create_plane_segmentation(
        name="PlaneSegmentation", description="units (placeholder masks)", imaging_plane=plane
    )
    ids = session.unit_ids
    int_ids = ids.dtype.kind in "iu" and (ids >= 0).all()
    if not int_ids:
        ps.add_column(name="unit_label", description="sharedrep unit id")
    for i in range(session.n_units):
        ps.add_roi(pixel_mask=[(0, 0, 0.0)], **_roi_kwargs(ids, i, int_ids))
    dff = DfOverF(name="DfOverF")
    ophys.add(dff)
    region = ps.create_roi_table_region(
        region=list(range(session.n_units)), description="all units"
    )
    return dff.create_roi_response_series(
        name="RoiResponseSeries",
        data=session.neural,
        rois=region,
        unit=neural_unit or str(session.metadata.get("neural_unit", "a.u.")),
        timestamps=session.timestamps,
    )


def _add_behaviour(pynwb, nwbfile, session: Session, rrs) -> None:
    """Each behaviour column as a ``TimeSeries`` in ``processing/behavior``, sharing
    the timestamps of the neural series ``rrs``."""
    if not session.n_behavior:
        return
    beh = nwbfile.create_processing_module(name="behavior", description="behaviour")
    for j, (n, u) in enumerate(zip(session.behavior_names, session.behavior_units, strict=True)):
        beh.add(pynwb.TimeSeries(name=n, data=session.behavior[:, j], unit=u, timestamps=rrs))


def _add_interval_tables(nwbfile, session: Session) -> None:
    """The trials table and the stimulation intervals (``intervals/stimulation``)."""
    from pynwb.epoch import TimeIntervals

    if len(session.trials):
        nwbfile.trials = TimeIntervals(name="trials", description="trials")
        _add_table_rows(
            nwbfile.trials, session.trials, nwbfile.trials.add_interval, session._label
        )
    if len(session.stimulation):
        ti = TimeIntervals(name="stimulation", description="stimulation intervals")
        _add_table_rows(ti, session.stimulation, ti.add_interval, session._label)
        nwbfile.add_time_intervals(ti)
