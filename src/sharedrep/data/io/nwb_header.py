"""What an NWB file holds, read through ``h5py`` without loading its data arrays.

:func:`read_nwb_header` opens the HDF5 file directly (no ``pynwb``) and reads only
scalar fields, attributes, data set shapes and the ROI classification columns (one
flag per ROI): the labels :func:`~sharedrep.data.io.write_nwb` stores (subject,
session id, day, stage, population), the file's identifier and description, the
neural series :func:`~sharedrep.data.io.read_nwb` would choose by default (its path,
shape, rate or timestamp count, how many of its ROIs are cells) and the behaviour
series it would discover (names, shapes, column names). It is what ``sharedrep
validate --shallow`` and ``load_study(population=..., stage=...)`` use to learn a
session's labels without reading the session.

The choice rules are those of :mod:`sharedrep.data.io.nwb`; the type hierarchy
(is a type a ``TimeSeries``, a ``SpatialSeries``, ...) comes from the specifications
cached in the file, else from the core NWB types. Where the file does not decide a
field exactly (an extension type the hierarchy does not know, spike units whose
number of bins needs the spike times) the field is ``None``, never a guess.

``h5py`` is optional (``pip install "sharedrep[nwb]"``) and imported only when a
header is read. May import :mod:`sharedrep.utils` and :mod:`sharedrep.data`.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sharedrep.data.io._common import DataFormatError, check_file, require
from sharedrep.data.io.pose import is_hdf5

__all__ = ["NWBHeader", "SeriesHeader", "read_nwb_header"]

_NOTES_PREFIX = "sharedrep:"  # as in sharedrep.data.io.nwb
#: Parent types of the core (and ndx-pose) series types: the type hierarchy used when
#: the file caches no specification.
_CORE_TYPES = {
    "TimeSeries": None,
    "SpatialSeries": "TimeSeries",
    "RoiResponseSeries": "TimeSeries",
    "OptogeneticSeries": "TimeSeries",
    "ImageSeries": "TimeSeries",
    "ImageMaskSeries": "ImageSeries",
    "OpticalSeries": "ImageSeries",
    "TwoPhotonSeries": "ImageSeries",
    "OnePhotonSeries": "ImageSeries",
    "IndexSeries": "TimeSeries",
    "ElectricalSeries": "TimeSeries",
    "SpikeEventSeries": "ElectricalSeries",
    "AnnotationSeries": "TimeSeries",
    "IntervalSeries": "TimeSeries",
    "PoseEstimationSeries": "SpatialSeries",
}
#: Series never taken as behaviour by auto-discovery (and their subtypes), as in nwb.py.
_NOT_BEHAVIOUR = (
    "RoiResponseSeries",
    "ImageSeries",
    "IndexSeries",
    "ElectricalSeries",
    "SpikeEventSeries",
    "OptogeneticSeries",
    "AnnotationSeries",
    "IntervalSeries",
)
_TOP_CONTAINERS = ("acquisition", "analysis", "stimulus/presentation", "stimulus/templates")
#: Words that mark derived traces in the name of a ``RoiResponseSeries``' interface
#: (compared case-insensitively as substrings): deconvolved, neuropil, spikes, events.
#: Both readers rank such series after raw traces (suite2p's NWB export stores
#: Fluorescence, Neuropil and Deconvolved all as Fluorescence-type interfaces).
DERIVED_TRACES = ("deconv", "neuropil", "spks", "spike", "event")
#: Columns of a ROI table that classify the ROIs (names compared case-insensitively):
#: a true value marks a cell, except in ``rejected`` where it marks a non-cell. suite2p
#: writes ``iscell`` (the probability as a second column), CaImAn ``accepted``,
#: ``keep`` and ``rejected``.
CELL_FLAGS = {"iscell": True, "accepted": True, "keep": True, "rejected": False}
#: Names of the processing module searched for behaviour (compared case-insensitively):
#: NWB's ``behavior``, or the British spelling.
BEHAVIOUR_MODULES = ("behavior", "behaviour")


def is_derived(interface_name: str) -> bool:
    """Whether an interface named ``interface_name`` holds derived traces (one of
    :data:`DERIVED_TRACES` occurs in it, any case)."""
    name = interface_name.lower()
    return any(w in name for w in DERIVED_TRACES)


def interface_rank(interface_type: str, interface_name: str) -> tuple[int, int]:
    """Sort key of a ``RoiResponseSeries`` by the interface holding it (type and name;
    lower first), the rule of both readers: ``DfOverF`` before ``Fluorescence`` before
    other interfaces, then raw traces before derived ones (:func:`is_derived`)."""
    kind = {"DfOverF": 0, "Fluorescence": 1}.get(interface_type, 2)
    return kind, int(is_derived(interface_name))


def behaviour_modules(names) -> list[str]:
    """The processing modules among ``names`` that discovery searches for behaviour
    (:data:`BEHAVIOUR_MODULES` in any case), sorted; more than one is ambiguous."""
    return sorted(str(n) for n in names if str(n).casefold() in BEHAVIOUR_MODULES)


@dataclass(frozen=True)
class SeriesHeader:
    """One series of the file, from its attributes and data set shape.

    ``path`` is its place in the file (``processing/behavior/lever``), ``logical_path``
    the one :func:`~sharedrep.data.io.read_nwb` reports (``behavior/lever``);
    ``shape`` the shape of its ``data``; ``rate`` (Hz) when it has a ``starting_time``
    with a rate, else ``n_timestamps`` the length of its ``timestamps``.
    """

    path: str
    name: str
    neurodata_type: str
    shape: tuple[int, ...]
    dtype_kind: str
    unit: str | None = None
    rate: float | None = None
    n_timestamps: int | None = None

    @property
    def logical_path(self) -> str:
        return _logical_path(self.path)


@dataclass(frozen=True)
class NWBHeader:
    """Labels and shapes of an NWB file (see :func:`read_nwb_header`).

    Attributes
    ----------
    path : Path
    subject : str or None
        ``Subject.subject_id``.
    session_id : str or None
        The file's ``session_id``, else its identifier (as :func:`read_nwb`).
    identifier, session_description : str or None
    day : int or None
    stage, population : str or None
        What :func:`~sharedrep.data.io.write_nwb` stored in ``notes`` (else None).
    neural_source : str or None
        The neural series :func:`read_nwb` would read (``"ophys/DfOverF/..."``), or
        ``"units"``; None when the file has none or several that rank equally (which
        :func:`read_nwb` refuses to choose between).
    neural : SeriesHeader or None
        That series (None for units).
    n_samples, n_units : int or None
        Shape of the neural data; ``n_samples`` is None for spike units (it depends on
        ``bin_size`` and the spike times). When the ROI table classifies the ROIs
        (:data:`CELL_FLAGS`), ``n_units`` counts those marked as cells when the
        header was read with ``cells_only=True`` (the default, as :func:`read_nwb`),
        every ROI otherwise (None when :func:`read_nwb` would refuse the columns).
    behavior : tuple of SeriesHeader or None
        The behaviour series discovered by default (in ``acquisition`` and in the
        processing module ``behavior``, any case, or ``behaviour``); None when the
        file's types do not decide which series are behaviour, or when two processing
        modules may hold the behaviour (which :func:`read_nwb` refuses).
    behavior_names : tuple of str or None
        Their column names, in the order :func:`read_nwb` returns them.
    stored : dict
        Everything :func:`~sharedrep.data.io.write_nwb` stored as JSON in ``notes``
        (``{}`` for other files).
    """

    path: Path
    subject: str | None = None
    session_id: str | None = None
    identifier: str | None = None
    session_description: str | None = None
    day: int | None = None
    stage: str | None = None
    population: str | None = None
    neural_source: str | None = None
    neural: SeriesHeader | None = None
    n_samples: int | None = None
    n_units: int | None = None
    behavior: tuple[SeriesHeader, ...] | None = None
    behavior_names: tuple[str, ...] | None = None
    stored: dict = field(default_factory=dict, repr=False, compare=False)


def read_nwb_header(
    path: str | os.PathLike, *, neural: str | None = None, cells_only: bool = True
) -> NWBHeader:
    """Read the labels and shapes of an NWB file without loading its data arrays.

    Only scalar fields, attributes, data set shapes and the ROI classification columns
    (one flag per ROI) are read (through ``h5py``), so it takes milliseconds whatever
    the size of the recording.

    Parameters
    ----------
    path : str or os.PathLike
        ``.nwb`` file (HDF5).
    neural : str, optional
        As in :func:`~sharedrep.data.io.read_nwb`: a series name or path, or
        ``"units"``; default: the series ``read_nwb`` chooses by default. A name that
        does not match exactly one series leaves the neural fields None.
    cells_only : bool, default True
        As in :func:`~sharedrep.data.io.read_nwb`: ``n_units`` counts only the ROIs
        that the ROI table's classification columns (:data:`CELL_FLAGS`) mark as
        cells; False counts every ROI of the series.

    Returns
    -------
    NWBHeader

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    DataFormatError
        Not an HDF5 / NWB file, or truncated or corrupted (the message names the file).
    ImportError
        ``h5py`` is not installed (``pip install "sharedrep[nwb]"``).
    """
    p = check_file(path, "NWB file")
    if not is_hdf5(p):
        raise DataFormatError(f"{p}: not an NWB file (NWB files are HDF5; no HDF5 signature)")
    h5py = require("h5py", "nwb", "Reading NWB file headers")
    try:
        with h5py.File(p, "r") as f:
            if _text(f.attrs.get("neurodata_type")) != "NWBFile":
                raise DataFormatError(f"{p}: an HDF5 file but not an NWB file (no NWBFile root)")
            return _header(f, p, h5py, neural, cells_only)
    except DataFormatError:
        raise
    except Exception as err:  # h5py raises OSError, KeyError, ... on corrupt files
        raise DataFormatError(
            f"{p}: cannot read the NWB header ({type(err).__name__}: {err})"
        ) from None


def _header(f, p: Path, h5py, neural, cells_only: bool) -> NWBHeader:
    """Build the header of the open file ``f``."""
    stored = _stored_notes(_scalar(f, "general/notes"))
    types = _type_hierarchy(f, h5py)
    series = _series(f, h5py, types)
    fields = _neural_fields(f, series, types, neural, cells_only)
    neural_obj = fields.get("neural")
    modules = behaviour_modules(f["processing"].keys() if "processing" in f else ())
    behaviour = None if len(modules) > 1 else _behaviour(series, neural_obj, types, modules)
    identifier = _scalar(f, "identifier")
    day = stored.get("day")
    return NWBHeader(
        path=p,
        subject=_scalar(f, "general/subject/subject_id"),
        session_id=_scalar(f, "general/session_id") or identifier,
        identifier=identifier,
        session_description=_scalar(f, "session_description"),
        day=day if isinstance(day, int) and not isinstance(day, bool) else None,
        stage=_str_or_none(stored.get("stage")),
        population=_str_or_none(stored.get("population")),
        behavior=None if behaviour is None else tuple(s for s, _ in behaviour),
        behavior_names=None if behaviour is None else _column_names(behaviour, stored),
        stored=stored,
        **fields,
    )


# --------------------------------------------------------------------------- small readers


def _text(value) -> str | None:
    """A string attribute / scalar as ``str`` (bytes decoded); None for anything else."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value if isinstance(value, str) else None


def _str_or_none(value) -> str | None:
    return None if value is None else str(value)


def _scalar(f, name: str) -> str | None:
    """A scalar string data set of the file (``identifier``, ``general/notes``), or None."""
    ds = f.get(name)
    if ds is None or not hasattr(ds, "shape") or ds.shape != ():
        return None
    return _text(ds[()])


def _stored_notes(notes: str | None) -> dict:
    """The JSON that :func:`write_nwb` stored after ``"sharedrep:"`` in ``notes``."""
    if not notes or not notes.startswith(_NOTES_PREFIX):
        return {}
    try:
        stored = json.loads(notes[len(_NOTES_PREFIX) :])
    except json.JSONDecodeError:
        return {}
    return stored if isinstance(stored, dict) else {}


# --------------------------------------------------------------------------- type hierarchy


def _spec_types(node, out: dict) -> None:
    """Collect ``type_def -> type_inc`` of a parsed specification (in place)."""
    if isinstance(node, dict):
        for prefix in ("neurodata_type", "data_type"):  # NWB / hdmf-common spelling
            name = node.get(f"{prefix}_def")
            if isinstance(name, str):
                out[name] = node.get(f"{prefix}_inc")
        for v in node.values():
            _spec_types(v, out)
    elif isinstance(node, list):
        for v in node:
            _spec_types(v, out)


def _type_hierarchy(f, h5py) -> dict:
    """``type -> parent type`` from the specifications cached in the file, on top of
    the core types (the cached ones win)."""
    types = dict(_CORE_TYPES)
    specs = f.get("specifications")
    if not isinstance(specs, h5py.Group):
        return types
    for namespace in specs.values():
        for version in namespace.values() if isinstance(namespace, h5py.Group) else ():
            for ds in version.values() if isinstance(version, h5py.Group) else ():
                text = _text(ds[()]) if isinstance(ds, h5py.Dataset) and ds.shape == () else None
                types.update(_parsed_spec(text) if text else {})
    return types


@functools.lru_cache(maxsize=256)
def _parsed_spec(text: str) -> dict:
    """``type -> parent type`` defined by one cached specification text (``{}`` when
    it is not JSON); cached, as every file of a study carries the same ones."""
    out: dict = {}
    try:
        _spec_types(json.loads(text), out)
    except json.JSONDecodeError:
        return {}
    return out


def _is_a(ntype: str, base: str, types: dict) -> bool | None:
    """Whether ``ntype`` is ``base`` or a subtype of it; None when unknown."""
    seen = set()
    while ntype is not None and ntype not in seen:
        if ntype == base:
            return True
        if ntype not in types:
            return None
        seen.add(ntype)
        ntype = types[ntype]
    return False


# --------------------------------------------------------------------------- series


def _logical_path(path: str) -> str:
    """The path :func:`read_nwb` names objects by: below the processing modules
    (``ophys/DfOverF/RoiResponseSeries``), the name for acquisition / stimulus."""
    path = path.strip("/")
    for top in ("processing", *_TOP_CONTAINERS):
        if path.startswith(top + "/"):
            return path[len(top) + 1 :]
    return path


def _series_header(path: str, group, h5py) -> SeriesHeader | None:
    """The header of the series group at ``path`` (None when it has no data set)."""
    data = group.get("data")
    if not isinstance(data, h5py.Dataset):
        return None
    rate, n_stamps = None, None
    start = group.get("starting_time")
    if isinstance(start, h5py.Dataset) and "rate" in start.attrs:
        rate = float(start.attrs["rate"])
    stamps = group.get("timestamps")
    if isinstance(stamps, h5py.Dataset) and len(stamps.shape) == 1:
        n_stamps = int(stamps.shape[0])
    return SeriesHeader(
        path=path,
        name=path.rsplit("/", 1)[-1],
        neurodata_type=_text(group.attrs.get("neurodata_type")) or "",
        shape=tuple(int(n) for n in data.shape),
        dtype_kind=data.dtype.kind,
        unit=_text(data.attrs.get("unit")),
        rate=rate,
        n_timestamps=n_stamps,
    )


def _series(f, h5py, types: dict) -> list[tuple[SeriesHeader, bool | None]]:
    """Every group whose type is (or may be: None) a ``TimeSeries``, sorted by logical
    path as :func:`read_nwb` sorts the file's objects."""
    found: list = []

    def visit(name: str, obj) -> None:
        if not isinstance(obj, h5py.Group) or name.startswith(("specifications", "general")):
            return
        ntype = _text(obj.attrs.get("neurodata_type"))
        if ntype is None:
            return
        is_ts = _is_a(ntype, "TimeSeries", types)
        if is_ts is not False:
            header = _series_header(name, obj, h5py)
            if header is not None:
                found.append((header, is_ts))

    f.visititems(visit)
    return sorted(found, key=lambda item: item[0].logical_path)


def _parent_type(f, path: str) -> tuple[str, str]:
    """Type and name of the group holding ``path``."""
    parent_path = path.rpartition("/")[0]
    parent = f.get(parent_path) if parent_path else None
    ntype = _text(parent.attrs.get("neurodata_type")) if parent is not None else None
    return ntype or "", parent_path.rpartition("/")[2]


def _roi_priority(f, s: SeriesHeader) -> tuple[int, int]:
    """Sort key of the series ``s`` by the interface holding it (:func:`interface_rank`,
    as nwb._roi_priority)."""
    return interface_rank(*_parent_type(f, s.path))


def _units_count(f) -> int | None:
    """Rows of the ``Units`` table (None when there is none or it is empty)."""
    units = f.get("units")
    ids = units.get("id") if units is not None and hasattr(units, "get") else None
    n = int(ids.shape[0]) if ids is not None and len(ids.shape) == 1 else 0
    return n or None


def _matches(spec: str, s: SeriesHeader) -> bool:
    spec = spec.strip("/")
    return (
        s.name == spec or spec in (s.path, s.logical_path) or s.logical_path.endswith("/" + spec)
    )


def _choose_neural(f, series: list, types: dict, neural) -> SeriesHeader | str | None:
    """The neural series :func:`read_nwb` would read, ``"units"``, or None (none, or
    not decidable from the file)."""
    if neural == "units":
        return "units" if _units_count(f) else None
    if neural is not None:
        return _named_neural(series, str(neural).strip("/"))
    roi = [(s, _is_a(s.neurodata_type, "RoiResponseSeries", types)) for s, _ in series]
    if any(is_roi is None for _, is_roi in roi):
        return None  # an unknown type might be a RoiResponseSeries
    rrs = sorted(
        (s for s, is_roi in roi if is_roi),
        key=lambda s: (_roi_priority(f, s), s.logical_path),
    )
    if len(rrs) > 1 and _roi_priority(f, rrs[0]) == _roi_priority(f, rrs[1]):
        return None  # read_nwb refuses to choose (e.g. one series per imaging plane)
    if rrs:
        return rrs[0]
    return "units" if _units_count(f) else None


def _named_neural(series: list, spec: str) -> SeriesHeader | None:
    """The one time series that ``neural=spec`` names (its full or logical path, else a
    unique match of :func:`_matches`), or None."""
    candidates = [s for s, is_ts in series if is_ts]
    exact = [s for s in candidates if "/" in spec and spec in (s.path, s.logical_path)]
    hits = exact if len(exact) == 1 else [s for s in candidates if _matches(spec, s)]
    return hits[0] if len(hits) == 1 else None


def _neural_fields(f, series: list, types: dict, neural, cells_only: bool) -> dict:
    """``neural_source``, ``neural``, ``n_samples`` and ``n_units`` of the header
    (``cells_only``: as in :func:`read_nwb_header`)."""
    chosen = _choose_neural(f, series, types, neural)
    if chosen is None:
        return {}
    if chosen == "units":
        return {"neural_source": "units", "n_units": _units_count(f)}
    shape = chosen.shape
    n_units = shape[1] if len(shape) == 2 else 1 if len(shape) == 1 else None
    if n_units is not None:
        n_units = _n_kept(f, chosen, n_units, cells_only)
    return {
        "neural_source": chosen.logical_path,
        "neural": chosen,
        "n_samples": shape[0] if shape else None,
        "n_units": n_units,
    }


def _roi_table(f, s: SeriesHeader):
    """The ROI table (group) of a series' ``rois`` region, or None."""
    rois = f.get(f"{s.path}/rois")
    ref = rois.attrs.get("table") if rois is not None else None
    return f[ref] if ref is not None else None


def cell_flag(column: str, values, n_rows: int) -> np.ndarray | None:
    """The is-cell mask (n_rows,) that the ROI-table column ``column`` (a key of
    :data:`CELL_FLAGS`, any case) with ``values`` gives; None when it is not one
    number or boolean per ROI."""
    v = np.asarray(values)
    v = v[:, 0] if v.ndim == 2 else v  # suite2p: (is cell, probability)
    if v.dtype.kind not in "biuf" or v.shape != (n_rows,):
        return None
    flag = np.nan_to_num(v.astype(np.float64)) > 0.5
    return flag if CELL_FLAGS[column.lower()] else ~flag


def _n_kept(f, s: SeriesHeader, n_columns: int, cells_only: bool) -> int | None:
    """How many of the ``n_columns`` ROIs of the series :func:`read_nwb` keeps: all
    of them, or with ``cells_only`` those marked as cells when its ROI table
    classifies them; None when ``read_nwb`` would refuse the table's classification
    columns (with ``cells_only``; without it every ROI is read, whatever they hold)."""
    if not cells_only:
        return n_columns
    table = _roi_table(f, s)
    names = [c for c in table if c.lower() in CELL_FLAGS] if table is not None else []
    if not names:
        return n_columns
    is_cell = np.ones(len(table["id"]), dtype=bool)
    for c in names:
        flag = cell_flag(c, table[c][()], is_cell.size)
        if flag is None:
            return None
        is_cell &= flag
    idx = np.asarray(f[f"{s.path}/rois"][()], dtype=np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= is_cell.size):
        return None
    return int(is_cell[idx].sum())


# --------------------------------------------------------------------------- behaviour


def _discovered(s: SeriesHeader, is_ts, types: dict, modules: list) -> bool | None:
    """Whether auto-discovery takes ``s`` as behaviour (None: undecidable); ``modules``:
    the behaviour processing module (:func:`behaviour_modules`), or none."""
    if s.neurodata_type == "PoseEstimationSeries":
        return True
    if not s.path.startswith(("acquisition/", *(f"processing/{m}/" for m in modules))):
        return False
    if is_ts is None:
        return None
    excluded = [_is_a(s.neurodata_type, t, types) for t in _NOT_BEHAVIOUR]
    if any(excluded):
        return False
    return None if None in excluded else True


def _columns(s: SeriesHeader, types: dict) -> list[str] | None:
    """Column names of a behaviour series (as nwb._series_column_names); None for
    series :func:`read_nwb` skips (not numeric, not 1-D or 2-D)."""
    if s.dtype_kind not in "biuf" or len(s.shape) not in (1, 2):
        return None
    n_cols = 1 if len(s.shape) == 1 else s.shape[1]
    if n_cols == 1:
        return [s.name]
    spatial = _is_a(s.neurodata_type, "SpatialSeries", types)
    if spatial and n_cols <= 3:
        return [f"{s.name}_{c}" for c in "xyz"[:n_cols]]
    return [f"{s.name}_{j}" for j in range(n_cols)]


def _behaviour(series: list, neural_obj, types: dict, modules: list) -> list | None:
    """``[(series, column names)]`` of the behaviour found by discovery (in the
    behaviour processing module ``modules``, or none); None when the file's types do
    not decide it."""
    out = []
    for s, is_ts in series:
        if s is neural_obj:
            continue
        taken = _discovered(s, is_ts, types, modules)
        if taken is None:
            return None
        cols = _columns(s, types) if taken else None
        if cols is not None:
            out.append((s, cols))
    return out


def _container(s: SeriesHeader) -> str:
    """The container name used as prefix of clashing column names (nwb._container_name)."""
    parent = s.path.rpartition("/")[0]
    return "acquisition" if parent in _TOP_CONTAINERS else parent.rpartition("/")[2]


def _column_names(behaviour: list, stored: dict) -> tuple[str, ...] | None:
    """Flat column names: clashing ones prefixed by their container, then the order
    :func:`write_nwb` recorded (when it lists the same names)."""
    flat = [n for _, cols in behaviour for n in cols]
    clash = {n for n in flat if flat.count(n) > 1}
    if clash:
        flat = [
            f"{_container(s)}_{n}" if clash.intersection(cols) else n
            for s, cols in behaviour
            for n in cols
        ]
        if len(set(flat)) != len(flat):
            return None  # read_nwb refuses such a file
    order = stored.get("behavior_names")
    if isinstance(order, list) and sorted(order) == sorted(flat) and flat:
        return tuple(order)
    return tuple(flat)
