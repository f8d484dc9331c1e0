"""Pose-estimation readers: DeepLabCut (``.h5`` / ``.csv``) and SLEAP (``.slp`` and
analysis ``.h5``).

All readers return :class:`~sharedrep.data.io.Traces` with one column per body part and
coordinate (``"<bodypart>_x"``, ``"<bodypart>_y"``), in pixels. Points whose likelihood
(DeepLabCut) or score (SLEAP) is below a threshold are set to NaN, and interior gaps of
at most ``max_gap`` frames are linearly interpolated (:func:`clean_pose`); longer gaps
stay NaN.

DeepLabCut column levels are taken by their names (``scorer``, ``individuals``,
``bodyparts``, ``coords``) when a file stores them in another order; multi-animal files
are read one ``individual`` at a time. A SLEAP analysis ``.h5`` given to
:func:`read_dlc` is refused with a pointer to :func:`read_sleap`.

DeepLabCut ``.h5`` files are pandas/PyTables HDF5 stores and need ``tables``
(``pip install "sharedrep[pose]"``); ``.csv`` files need nothing beyond pandas. SLEAP
files need ``sleap-io`` (same extra). May import :mod:`sharedrep.utils` and
:mod:`sharedrep.data`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from sharedrep.data.io._common import (
    DataFormatError,
    Traces,
    check_file,
    require,
)
from sharedrep.data.preprocess import interpolate_gaps

__all__ = ["clean_pose", "is_hdf5", "read_dlc", "read_sleap"]

#: DeepLabCut's default ``pcutoff``.
DEFAULT_MIN_LIKELIHOOD = 0.6
#: Default longest gap (frames) that is interpolated.
DEFAULT_MAX_GAP = 5

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
#: DeepLabCut's column levels, single- and multi-animal.
_DLC_LEVELS = (
    ("scorer", "bodyparts", "coords"),
    ("scorer", "individuals", "bodyparts", "coords"),
)
_DLC_COORDS = ("x", "y", "z", "likelihood")


def is_hdf5(path: str | os.PathLike) -> bool:
    """Whether the file carries the HDF5 signature (at offset 0, 512, 1024, ...).

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    bool
    """
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        off = 0
        while off + 8 <= size:
            fh.seek(off)
            if fh.read(8) == _HDF5_MAGIC:
                return True
            off = 512 if off == 0 else off * 2
    return False


def clean_pose(
    positions,
    likelihood,
    *,
    min_likelihood: float | None = DEFAULT_MIN_LIKELIHOOD,
    max_gap: int = DEFAULT_MAX_GAP,
    bodyparts=None,
    source: str = "pose",
    frames=None,
    timestamps=None,
) -> tuple[np.ndarray, dict]:
    """Likelihood thresholding and short-gap interpolation of pose tracks.

    Parameters
    ----------
    positions : array_like, shape (T, B, D)
        Coordinates (pixels) of ``B`` body parts in ``D`` dimensions.
    likelihood : array_like, shape (T, B), or None
        Per-point likelihood/score; None skips thresholding.
    min_likelihood : float or None, default 0.6
        Points with likelihood below this (or NaN) are set to NaN; None disables it.
    max_gap : int, default 5
        Longest run of missing frames that is linearly interpolated. Counted in video
        frames: with ``frames`` or ``timestamps``, frames absent from the rows (dropped
        from the file) count as missing (:func:`~sharedrep.data.preprocess.interpolate_gaps`).
    bodyparts : list of str, optional
        Names used in error messages.
    source : str
        File name used in error messages.
    frames : array_like, shape (T,), optional
        Video frame number of each row (integers, strictly increasing); default: the
        rows are consecutive frames.
    timestamps : array_like, shape (T,), optional
        Time of each row in seconds (strictly increasing); counts the frames of a gap
        when ``frames`` is not given, and the gaps are filled linearly in time.

    Returns
    -------
    positions : numpy.ndarray, shape (T, B, D), float64
        Cleaned copy (NaN where still missing).
    info : dict
        ``n_below_threshold`` (points), ``n_interpolated`` (values),
        ``fraction_missing`` (per body part, after cleaning).

    Raises
    ------
    DataFormatError
        If a body part has no point at or above ``min_likelihood`` (or no finite
        point at all); the message names the body parts and their best likelihood.
    """
    pos = np.array(positions, dtype=np.float64)
    if pos.ndim != 3:
        raise DataFormatError(f"{source}: positions must be (T, B, D), got {pos.shape}")
    T, B, D = pos.shape
    if T == 0 or B == 0:
        raise DataFormatError(f"{source}: no pose samples ({T} frames, {B} body parts)")
    names = list(bodyparts) if bodyparts is not None else [f"part{b}" for b in range(B)]
    n_low = 0
    if likelihood is not None and min_likelihood is not None:
        lk = np.asarray(likelihood, dtype=np.float64)
        if lk.shape != (T, B):
            raise DataFormatError(f"{source}: likelihood has shape {lk.shape}, expected {(T, B)}")
        low = ~(lk >= min_likelihood)  # NaN counts as low
        n_low = int(low.sum())
        all_low = np.flatnonzero(low.all(axis=0))
        if all_low.size:
            with np.errstate(all="ignore"):
                best = [
                    float(np.nanmax(lk[:, b])) if np.isfinite(lk[:, b]).any() else float("nan")
                    for b in all_low
                ]
            detail = ", ".join(
                f"{names[b]!r} (max {m:.3g})" for b, m in zip(all_low, best, strict=True)
            )
            raise DataFormatError(
                f"{source}: no frame has likelihood >= {min_likelihood} for body part(s) "
                f"{detail}; the tracking failed or min_likelihood is too high"
            )
        pos[low] = np.nan
    flat = pos.reshape(T, B * D)
    empty = np.flatnonzero(~np.isfinite(flat).any(axis=0))
    if empty.size:
        parts = sorted({names[j // D] for j in empty})
        raise DataFormatError(f"{source}: body part(s) {parts} have no finite coordinate")
    filled, n_interp = interpolate_gaps(flat, max_gap, frames=frames, timestamps=timestamps)
    pos = filled.reshape(T, B, D)
    frac = ~np.isfinite(pos).all(axis=2)
    info = {
        "n_below_threshold": n_low,
        "n_interpolated": int(n_interp),
        "fraction_missing": {names[b]: float(frac[:, b].mean()) for b in range(B)},
        "min_likelihood": min_likelihood,
        "max_gap": int(max_gap),
    }
    return pos, info


def _time_base(
    T: int, timestamps, frame_rate, start_time: float, source: str, frames=None
) -> np.ndarray | None:
    """Frame times (T,) in s from ``timestamps`` (one per row) or ``frame_rate``
    (``start_time + frame / frame_rate``, ``frame`` the frame numbers ``frames`` (T,) or,
    if None, the row positions); None without a time base."""
    if timestamps is not None and frame_rate is not None:
        raise ValueError("give either timestamps or frame_rate, not both")
    if timestamps is not None:
        ts = np.asarray(timestamps, dtype=np.float64)
        if ts.shape != (T,):
            raise DataFormatError(f"{source}: {T} frames but {ts.size} timestamps given")
        return ts
    if frame_rate is not None:
        if not (np.isfinite(frame_rate) and frame_rate > 0):
            raise ValueError(f"frame_rate must be > 0 Hz, got {frame_rate!r}")
        frame = np.arange(T) if frames is None else np.asarray(frames)
        return start_time + frame / float(frame_rate)
    return None


def _dlc_frame_numbers(index: pd.Index, source: str) -> np.ndarray | None:
    """The video frame numbers (T,) int64 in the index of a DeepLabCut table, or None
    when the index does not hold frame numbers (not integer-valued, e.g. image paths).

    Raises
    ------
    DataFormatError
        If the frame numbers are negative, duplicated or not increasing.
    """
    if isinstance(index, pd.MultiIndex) or index.dtype.kind not in "iuf":
        return None
    v = index.to_numpy(dtype=np.float64)
    if not (np.isfinite(v).all() and np.array_equal(v, np.round(v))):
        return None
    frames = v.astype(np.int64)
    if frames[0] < 0:
        raise DataFormatError(f"{source}: negative frame number {frames[0]} in the index")
    bad = np.flatnonzero(np.diff(frames) <= 0)
    if bad.size:
        i = int(bad[0]) + 1
        what = "duplicated" if frames[i] == frames[i - 1] else "decreasing"
        raise DataFormatError(
            f"{source}: frame numbers in the index must be strictly increasing; row {i} "
            f"has frame {frames[i]} after frame {frames[i - 1]} ({what})"
        )
    return frames


def _dlc_frame_to_traces(
    df: pd.DataFrame,
    source: str,
    *,
    individual,
    bodyparts,
    min_likelihood,
    max_gap,
    timestamps,
    frame_rate,
    start_time,
) -> Traces:
    """Traces of a DeepLabCut frame (MultiIndex columns, one row per video frame)."""
    df = _dlc_level_order(df)
    scorer, dims = _check_dlc_columns(df, source)
    sub, ind_name = _dlc_individual(df, individual, source)
    sub = sub.droplevel(0, axis=1)
    parts_all = [str(b) for b in dict.fromkeys(sub.columns.get_level_values(0))]
    parts = _check_bodyparts(bodyparts, parts_all, source)
    pos, lk = _dlc_arrays(sub, parts, dims, source)
    frames = _dlc_frame_numbers(df.index, source)
    cleaned, info = clean_pose(
        pos,
        lk,
        min_likelihood=min_likelihood,
        max_gap=max_gap,
        bodyparts=parts,
        source=source,
        frames=frames,
    )
    info.update(scorer=scorer, individual=ind_name, bodyparts=parts, coords=dims)
    ts = _time_base(sub.shape[0], timestamps, frame_rate, start_time, source, frames)
    return _pixel_traces(cleaned, lk, parts, dims, ts, source, info)


def _check_dlc_columns(df: pd.DataFrame, source: str) -> tuple[str, list[str]]:
    """Check the DeepLabCut column levels; return the scorer and the coordinates
    present among ``x``, ``y``, ``z``."""
    cols = df.columns
    if not isinstance(cols, pd.MultiIndex) or cols.nlevels not in (3, 4):
        raise DataFormatError(
            f"{source}: not DeepLabCut output (expected MultiIndex columns "
            "scorer/bodyparts/coords or scorer/individuals/bodyparts/coords)"
        )
    if df.shape[0] == 0:
        raise DataFormatError(f"{source}: DeepLabCut file has no frames")
    scorers = list(dict.fromkeys(cols.get_level_values(0)))
    if len(scorers) != 1:
        raise DataFormatError(f"{source}: expected one scorer, found {scorers}")
    coords_all = [str(c) for c in dict.fromkeys(cols.get_level_values(-1))]
    if "likelihood" not in coords_all or not {"x", "y"} <= set(coords_all):
        raise DataFormatError(
            f"{source}: coords level is {coords_all}, expected 'x', 'y', 'likelihood'"
        )
    _check_dlc_unique(cols, coords_all, source)
    return str(scorers[0]), [c for c in ("x", "y", "z") if c in coords_all]


def _check_dlc_unique(cols: pd.MultiIndex, coords_all: list[str], source: str) -> None:
    """Refuse columns that occur twice: equal tuples (HDF5) or the ``x.1``-style
    coordinates pandas makes of repeated CSV headers."""
    extra = [c for c in coords_all if c not in _DLC_COORDS]
    twice = [tuple(map(str, c)) for c in cols[cols.duplicated()]]
    if extra or twice:
        what = f"coords {extra}" if extra else f"column {twice[0]}"
        raise DataFormatError(
            f"{source}: {what}: a body part's columns occur more than once (pandas names "
            "a repeated CSV column 'x.1'); each body part of each individual must occur "
            "once, as DeepLabCut writes it"
        )


def _dlc_level_order(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with its column levels in DeepLabCut's order (scorer, [individuals,]
    bodyparts, coords) when they carry these names in another order."""
    names = [str(n).lower() for n in df.columns.names]
    for order in _DLC_LEVELS:
        if len(names) == len(order) and set(names) == set(order) and tuple(names) != order:
            return df.reorder_levels([names.index(n) for n in order], axis=1)
    return df


def _dlc_individual(df: pd.DataFrame, individual, source: str) -> tuple[pd.DataFrame, str | None]:
    """The columns of one animal (multi-animal files: ``individual``, required when
    there are several) and its name (None for single-animal files)."""
    cols = df.columns
    if cols.nlevels != 4:
        if individual is not None:
            raise ValueError(f"{source}: single-animal file; individual= does not apply")
        return df, None
    inds = [str(i) for i in dict.fromkeys(cols.get_level_values(1))]
    if individual is None:
        if len(inds) != 1:
            raise ValueError(
                f"{source}: multi-animal file with individuals {inds}; pass individual="
            )
        individual = inds[0]
    if str(individual) not in inds:
        raise DataFormatError(f"{source}: no individual {individual!r} (have {inds})")
    ind_name = str(individual)
    return df.xs(ind_name, axis=1, level=1), ind_name


def _check_bodyparts(bodyparts, available: list[str], source: str) -> list[str]:
    """The requested body parts (default: all available), checked to exist."""
    parts = available if bodyparts is None else [str(b) for b in bodyparts]
    missing = [b for b in parts if b not in available]
    if missing:
        raise DataFormatError(f"{source}: body part(s) {missing} not in file (have {available})")
    return parts


def _dlc_arrays(sub: pd.DataFrame, parts: list, dims: list, source: str) -> tuple:
    """Positions (T, B, D) in pixels and likelihoods (T, B) of the body parts."""
    T = sub.shape[0]
    pos = np.empty((T, len(parts), len(dims)))
    lk = np.empty((T, len(parts)))
    try:
        for b, bp in enumerate(parts):
            block = sub[bp]
            for d, c in enumerate(dims):
                pos[:, b, d] = pd.to_numeric(block[c]).to_numpy(dtype=np.float64)
            lk[:, b] = pd.to_numeric(block["likelihood"]).to_numpy(dtype=np.float64)
    except (KeyError, TypeError, ValueError) as err:
        raise DataFormatError(f"{source}: non-numeric or missing pose values ({err})") from None
    return pos, lk


def _pixel_traces(cleaned, quality, parts, dims, ts, source: str, info: dict) -> Traces:
    """Pose traces in pixels: columns ``<bodypart>_<coord>`` from cleaned positions
    (T, B, D), each with the quality (T, B) of its body part."""
    T = cleaned.shape[0]
    names = [f"{bp}_{c}" for bp in parts for c in dims]
    return Traces(
        values=cleaned.reshape(T, -1),
        names=names,
        units=["pixels"] * len(names),
        timestamps=ts,
        source=source,
        quality=np.repeat(quality, len(dims), axis=1),
        info=info,
    )


def _read_dlc_csv(p: Path) -> pd.DataFrame:
    try:
        with open(p, encoding="utf-8-sig") as fh:  # tolerate a byte-order mark
            head = [fh.readline() for _ in range(4)]
    except UnicodeDecodeError:
        raise DataFormatError(f"{p}: not a text CSV file (cannot decode as UTF-8)") from None
    first = [h.split(",")[0].strip().strip('"').lower() for h in head]
    if first[:1] != ["scorer"]:
        raise DataFormatError(
            f"{p}: not a DeepLabCut CSV (expected header rows 'scorer', 'bodyparts', "
            f"'coords'; first cell is {first[0]!r})"
        )
    nh = 4 if "individuals" in first[1:4] else 3
    if set(first[:nh]) != set(_DLC_LEVELS[nh - 3]):
        raise DataFormatError(
            f"{p}: DeepLabCut CSV header rows are {first[:nh]}, expected "
            f"{list(_DLC_LEVELS[nh - 3])} (no 'coords' row?)"
        )
    try:
        return pd.read_csv(p, header=list(range(nh)), index_col=0, encoding="utf-8-sig")
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise DataFormatError(f"{p}: cannot parse DeepLabCut CSV ({err})") from None


def _is_sleap_analysis(path: str | os.PathLike) -> bool:
    """Whether the file is a SLEAP analysis HDF5 file (datasets ``tracks`` and
    ``track_occupancy``); False when it cannot be opened or h5py is not installed."""
    try:
        import h5py
    except ImportError:
        return False
    try:
        with h5py.File(path, "r") as f:
            return "tracks" in f and "track_occupancy" in f
    except (OSError, ValueError):
        return False


def _read_dlc_h5(p: Path) -> pd.DataFrame:
    if not is_hdf5(p):
        raise DataFormatError(f"{p}: not an HDF5 file (no HDF5 signature)")
    if _is_sleap_analysis(p):
        raise DataFormatError(
            f"{p}: a SLEAP analysis HDF5 file (datasets 'tracks', 'track_occupancy'), not "
            "DeepLabCut output: read it with read_sleap (in a study file, give the .slp "
            "labels file as pose)"
        )
    require("tables", "pose", "Reading DeepLabCut .h5 files")
    try:
        with pd.HDFStore(p, mode="r") as store:
            keys = store.keys()
            if "/df_with_missing" in keys:
                key = "/df_with_missing"
            elif len(keys) == 1:
                key = keys[0]
            else:
                raise DataFormatError(
                    f"{p}: expected one pandas table (DeepLabCut key 'df_with_missing'), "
                    f"found keys {keys}"
                )
            df = store[key]
    except DataFormatError:
        raise
    except Exception as err:  # PyTables/HDF5 raise many types on corrupt files
        raise DataFormatError(
            f"{p}: cannot read as a DeepLabCut HDF5 file ({type(err).__name__}: {err})"
        ) from None
    if not isinstance(df, pd.DataFrame):
        raise DataFormatError(f"{p}: HDF5 store holds a {type(df).__name__}, not a DataFrame")
    return df


def read_dlc(
    path: str | os.PathLike,
    *,
    min_likelihood: float | None = DEFAULT_MIN_LIKELIHOOD,
    max_gap: int = DEFAULT_MAX_GAP,
    bodyparts=None,
    individual: str | None = None,
    timestamps=None,
    frame_rate: float | None = None,
    start_time: float = 0.0,
) -> Traces:
    """Read DeepLabCut predictions from ``.h5`` or ``.csv``.

    Parameters
    ----------
    path : str or os.PathLike
        ``.h5``/``.hdf5`` (pandas store, key ``df_with_missing``, MultiIndex columns
        ``scorer/bodyparts/coords``) or ``.csv`` (3 header rows, or 4 with
        ``individuals`` for multi-animal projects).
    min_likelihood : float or None, default 0.6
        Likelihood threshold (DeepLabCut's default ``pcutoff``); None keeps all points.
    max_gap : int, default 5
        Longest run of low-likelihood frames to interpolate linearly.
    bodyparts : list of str, optional
        Body parts to keep (default: all, file order).
    individual : str, optional
        Animal to read from a multi-animal file (required if it holds several).
    timestamps : array_like, shape (T,), optional
        Times in seconds of the file's ``T`` rows, in file order (e.g. camera TTLs).
    frame_rate : float, optional
        Camera rate in Hz, used if ``timestamps`` is not given:
        ``t = start_time + frame / frame_rate``, where ``frame`` is the video frame
        number in the file's index (first column of the CSV), so dropped rows or a
        video segment starting after frame 0 keep their times. If the index does not
        hold frame numbers (not integer-valued, e.g. image paths), the row position
        ``0..T-1`` is used instead.
    start_time : float, default 0.0
        Time of frame 0 in seconds (with ``frame_rate``).

    Returns
    -------
    Traces
        ``values`` (T, 2B) in pixels (one row per row of the file), ``names``
        ``"<bodypart>_x"``, ``"<bodypart>_y"``, ``quality`` the raw likelihoods,
        ``timestamps`` (T,) in s, None unless a time base is given.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    DataFormatError
        Wrong file type (a SLEAP analysis file included), truncated/corrupted file,
        unexpected columns, a body part's columns occurring twice, non-numeric
        values, no frames, frame numbers in the index that are negative, duplicated or
        not increasing, or a body part with every likelihood below the threshold.
    ImportError
        For ``.h5`` without PyTables installed.
    """
    p = check_file(path, "DeepLabCut file")
    suffix = p.suffix.lower()
    if suffix in (".h5", ".hdf5", ".hdf"):
        df = _read_dlc_h5(p)
    elif suffix == ".csv":
        df = _read_dlc_csv(p)
    else:
        raise DataFormatError(f"{p}: unknown DeepLabCut file type {suffix!r} (use .h5 or .csv)")
    return _dlc_frame_to_traces(
        df,
        str(p),
        individual=individual,
        bodyparts=bodyparts,
        min_likelihood=min_likelihood,
        max_gap=max_gap,
        timestamps=timestamps,
        frame_rate=frame_rate,
        start_time=start_time,
    )


def read_sleap(
    path: str | os.PathLike,
    *,
    track: str | None = None,
    min_score: float | None = None,
    max_gap: int = DEFAULT_MAX_GAP,
    bodyparts=None,
    video: int = 0,
    timestamps=None,
    frame_rate: float | None = None,
    start_time: float = 0.0,
) -> Traces:
    """Read SLEAP predictions and proofread labels (``.slp``, or an analysis HDF5 file)
    with ``sleap-io``.

    User-labelled (proofread) instances are read as well as predicted ones; where a
    frame holds both for the same animal (same track, or for untracked single-animal
    files, the same frame), the user instance is used, as in SLEAP. User instances
    have no scores: their points get score 1.0, so ``min_score`` never drops them.

    Parameters
    ----------
    path : str or os.PathLike
        SLEAP labels file (``.slp``), or the analysis HDF5 file SLEAP exports
        (datasets ``tracks``, ``track_occupancy``, ``point_scores``, ``node_names``,
        ``track_names``), stored in SLEAP's MATLAB order ``tracks`` (n_tracks, 2,
        n_nodes, n_frames) or in the order its ``dims`` attributes name (sleap-io);
        row ``k`` of an analysis file is video frame ``k`` (SLEAP's export of all
        frames). Its points without score (NaN) are user-labelled: score 1.0.
    track : str, optional
        Track (animal) to read; required if the file has several tracks. Untracked
        single-animal files are read if each frame has at most one instance.
    min_score : float, optional
        Point-score threshold below which points are set to NaN (None: keep all).
        Points of user instances have score 1.0.
    max_gap : int, default 5
        Longest run of missing frames to interpolate.
    bodyparts : list of str, optional
        Skeleton nodes to keep (default: all, skeleton order).
    video : int, default 0
        Video index within the labels file.
    timestamps : array_like, shape (T,), optional
        Frame times in seconds.
    frame_rate : float, optional
        Camera rate in Hz (if no ``timestamps``).
    start_time : float, default 0.0
        Time of frame 0 in seconds (with ``frame_rate``).

    Returns
    -------
    Traces
        ``values`` (T, 2B) pixels, one row per video frame from 0 to the last labelled
        frame; frames without an instance are NaN before gap interpolation;
        ``quality`` the point scores (1.0 for user instances).

    Raises
    ------
    FileNotFoundError, DataFormatError, ImportError
        Missing file; unreadable / non-SLEAP file, no instances, unknown track or
        body part; ``sleap-io`` not installed (``pip install "sharedrep[pose]"``).
    """
    p = check_file(path, "SLEAP file")
    labels = _load_sleap(p, video)
    nodes = [str(n) for n in labels.skeletons[0].node_names]
    tracks = [t.name for t in labels.tracks]
    try:
        arr, k = _sleap_instances(labels, p, video, tracks, track)
    except (DataFormatError, ValueError):
        raise
    except Exception as err:
        raise DataFormatError(
            f"{p}: cannot extract tracks ({type(err).__name__}: {err})"
        ) from None
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim != 4 or arr.shape[1] == 0:
        raise DataFormatError(f"{p}: SLEAP file has no instances (predicted or user-labelled)")
    arr = arr[:, k]  # (T, B, 3)
    if bodyparts is not None:
        parts = _check_bodyparts(bodyparts, nodes, str(p))
        arr = arr[:, [nodes.index(b) for b in parts]]
        nodes = parts
    pos, score = arr[..., :2], arr[..., 2]
    # a point without score is user-labelled (analysis files store NaN for them)
    score = np.where(np.isnan(score) & np.isfinite(pos).all(axis=-1), 1.0, score)
    if not np.isfinite(pos).any():
        raise DataFormatError(f"{p}: SLEAP file has no labelled or predicted points")
    cleaned, info = clean_pose(
        pos,
        score if min_score is not None else None,
        min_likelihood=min_score,
        max_gap=max_gap,
        bodyparts=nodes,
        source=str(p),
    )
    info.update(track=tracks[k] if tracks else None, bodyparts=nodes, coords=["x", "y"])
    ts = _time_base(cleaned.shape[0], timestamps, frame_rate, start_time, str(p))
    return _pixel_traces(cleaned, score, nodes, ["x", "y"], ts, str(p), info)


def _load_sleap(p: Path, video: int):
    """The ``sleap_io`` labels of a ``.slp`` or analysis HDF5 file, checked to hold
    labelled frames and the video ``video``."""
    if not is_hdf5(p):
        raise DataFormatError(f"{p}: not a SLEAP .slp file (no HDF5 signature)")
    sio = require("sleap_io", "pose", "Reading SLEAP files")
    try:
        if _is_sleap_analysis(p):  # axis order from the file's dims / transpose attrs
            labels = sio.load_analysis_h5(str(p), video=sio.Video(str(p), open_backend=False))
        else:
            labels = sio.load_slp(str(p), open_videos=False)
    except Exception as err:  # sleap-io / h5py raise many types on corrupt files
        raise DataFormatError(
            f"{p}: cannot read as a SLEAP file ({type(err).__name__}: {err})"
        ) from None
    if len(labels.videos) == 0 or len(labels.labeled_frames) == 0:
        raise DataFormatError(f"{p}: SLEAP file has no labelled frames")
    if not 0 <= video < len(labels.videos):
        raise ValueError(f"{p}: video index {video} out of range ({len(labels.videos)} videos)")
    return labels


def _sleap_instances(labels, p: Path, video: int, tracks: list, track) -> tuple:
    """The (T, n_instances, B, 3) array of x, y, score (user instances included) and
    the instance index of the chosen track (untracked files: at most one per frame)."""
    if tracks:
        arr = labels.numpy(video=video, return_confidence=True, user_instances=True)
        if track is None:
            if len(tracks) != 1:
                raise ValueError(f"{p}: file has tracks {tracks}; pass track=")
            return arr, 0
        if track in tracks:
            return arr, tracks.index(track)
        raise DataFormatError(f"{p}: no track {track!r} (have {tracks})")
    if track is not None:
        raise DataFormatError(f"{p}: file has no tracks; track={track!r} does not apply")
    arr = labels.numpy(video=video, untracked=True, return_confidence=True, user_instances=True)
    if arr.shape[1] > 1:
        raise DataFormatError(
            f"{p}: up to {arr.shape[1]} untracked instances per frame; run tracking in SLEAP first"
        )
    return arr, 0
