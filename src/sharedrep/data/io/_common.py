"""Shared pieces of the readers: the error type, lazy optional imports, path checks,
``.npy`` loading and the :class:`Traces` container. Imports only numpy and the standard
library.

Nothing here imports an optional dependency at module import time.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType

import numpy as np

__all__ = [
    "DataFormatError",
    "Traces",
    "MAX_SPAN_RATIO",
    "check_dir",
    "check_file",
    "check_time_base",
    "check_timestamps",
    "load_npy",
    "require",
]

_NPY_MAGIC = b"\x93NUMPY"


class DataFormatError(ValueError):
    """A data file exists but cannot be used: wrong type, truncated, corrupted, or
    lacking the expected content.

    The message always names the file and says what is wrong. Missing files raise
    :class:`FileNotFoundError` instead; a missing optional dependency raises
    :class:`ImportError` naming the extra to install.
    """


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import an optional dependency, or fail with an installation hint.

    Parameters
    ----------
    module : str
        Importable module name, e.g. ``"pynwb"``.
    extra : str
        The ``sharedrep`` extra that provides it, e.g. ``"nwb"``.
    purpose : str
        What the module is needed for (used in the message).

    Returns
    -------
    module : ModuleType
        The imported module.

    Raises
    ------
    ImportError
        If the module cannot be imported; the message says
        ``pip install "sharedrep[<extra>]"``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"{purpose} needs the optional package '{module}', which is not installed. "
            f'Install it with: pip install "sharedrep[{extra}]"'
        ) from err


def _existing(path: str | os.PathLike, what: str) -> Path:
    """``path`` as a :class:`~pathlib.Path`; FileNotFoundError naming ``what`` if absent."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{what} not found: {p}")
    return p


def check_file(path: str | os.PathLike, what: str = "file") -> Path:
    """Return ``path`` as a :class:`~pathlib.Path` after checking it is a readable file.

    Parameters
    ----------
    path : str or os.PathLike
        Path to check.
    what : str
        Description used in messages (e.g. ``"NWB file"``).

    Returns
    -------
    path : pathlib.Path

    Raises
    ------
    FileNotFoundError
        If nothing exists at ``path``.
    DataFormatError
        If ``path`` is a directory or an empty file.
    """
    p = _existing(path, what)
    if p.is_dir():
        raise DataFormatError(f"{p}: expected a {what} but found a directory")
    if p.stat().st_size == 0:
        raise DataFormatError(f"{p}: {what} is empty (0 bytes)")
    return p


def check_dir(path: str | os.PathLike, what: str = "folder") -> Path:
    """Return ``path`` as a :class:`~pathlib.Path` after checking it is a directory.

    Parameters
    ----------
    path : str or os.PathLike
        Folder to check.
    what : str
        Description used in messages (e.g. ``"suite2p plane folder"``).

    Returns
    -------
    path : pathlib.Path

    Raises
    ------
    FileNotFoundError
        If the folder does not exist.
    DataFormatError
        If ``path`` is a file, not a folder.
    """
    p = _existing(path, what)
    if not p.is_dir():
        raise DataFormatError(f"{p}: expected a {what} (directory) but found a file")
    return p


@dataclass(eq=False)
class Traces:
    """Time series read from a behaviour file (lever, analog channel, pose).

    Attributes
    ----------
    values : numpy.ndarray, shape (T, p), float64
        Samples; NaN marks missing samples (e.g. low-likelihood pose points that were
        not interpolated).
    names : list of str, length p
        Feature names (pose: ``"<bodypart>_x"``, ``"<bodypart>_y"``).
    units : list of str, length p
        Physical unit of each feature (``"pixels"``, ``"mm"``, ``"V"``, ``"a.u."``).
    timestamps : numpy.ndarray, shape (T,), float64, or None
        Sample times in seconds, strictly increasing; None when the file has no time
        base and none was given (pose files indexed by video frame).
    source : str
        Path of the file the traces were read from.
    quality : numpy.ndarray, shape (T, p), or None
        Per-sample quality (pose likelihood / score) before thresholding, if any.
    info : dict
        Reader-specific details (scorer, number of interpolated samples, ...).
    """

    values: np.ndarray
    names: list[str]
    units: list[str]
    timestamps: np.ndarray | None
    source: str
    quality: np.ndarray | None = None
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.values = np.asarray(self.values, dtype=np.float64)
        if self.values.ndim == 1:
            self.values = self.values[:, None]
        if self.values.ndim != 2:
            raise DataFormatError(f"{self.source}: traces must be 2-D (T, p)")
        t, p = self.values.shape
        if len(self.names) != p or len(self.units) != p:
            raise DataFormatError(
                f"{self.source}: {p} trace columns but {len(self.names)} names and "
                f"{len(self.units)} units"
            )
        if self.timestamps is not None:
            self.timestamps = np.asarray(self.timestamps, dtype=np.float64)
            if self.timestamps.shape != (t,):
                raise DataFormatError(
                    f"{self.source}: {t} samples but {self.timestamps.size} timestamps"
                )
            check_timestamps(self.timestamps, self.source)

    @property
    def n_samples(self) -> int:
        """Number of samples ``T``."""
        return int(self.values.shape[0])

    def with_timestamps(self, timestamps: np.ndarray) -> Traces:
        """Return a copy with the given time base.

        Parameters
        ----------
        timestamps : array_like, shape (T,)
            Sample times in seconds, strictly increasing.

        Returns
        -------
        Traces

        Raises
        ------
        DataFormatError
            If the length differs from ``T`` or the times are not strictly increasing.
        """
        ts = np.asarray(timestamps, dtype=np.float64)
        if ts.shape != (self.n_samples,):
            raise DataFormatError(
                f"{self.source}: {self.n_samples} samples but {ts.size} timestamps given"
            )
        return replace(self, timestamps=ts)


def check_timestamps(ts: np.ndarray, source: str, what: str = "timestamps") -> None:
    """Check that ``ts`` is a 1-D finite strictly increasing time vector.

    Parameters
    ----------
    ts : numpy.ndarray, shape (T,)
        Times in seconds.
    source : str
        File (or object) name used in the message.
    what : str
        Name of the array used in the message.

    Raises
    ------
    DataFormatError
        Naming the first offending index.
    """
    if ts.ndim != 1:
        raise DataFormatError(f"{source}: {what} must be 1-D, got shape {ts.shape}")
    if ts.size == 0:
        raise DataFormatError(f"{source}: {what} is empty")
    bad = ~np.isfinite(ts)
    if bad.any():
        raise DataFormatError(
            f"{source}: {what} contains {int(bad.sum())} non-finite value(s) "
            f"(first at index {int(np.argmax(bad))})"
        )
    d = np.diff(ts)
    if (d <= 0).any():
        i = int(np.argmax(d <= 0))
        raise DataFormatError(
            f"{source}: {what} are not strictly increasing "
            f"(index {i + 1}: {float(ts[i + 1])!r} after {float(ts[i])!r})"
        )


#: Behaviour whose times span over this many times the imaging frames' (or under
#: 1/this), or that shares under 1/this of the shorter span with them, is refused:
#: times in milliseconds read as seconds span 1000 times as long.
MAX_SPAN_RATIO = 100.0


def check_time_base(times: np.ndarray, frame_times: np.ndarray, what: str, imaging: str) -> None:
    """Refuse behaviour times that cannot be on the clock of the imaging frames.

    Times in another unit (milliseconds read as seconds span 1000 times as long) or on
    another clock would be paired silently with the wrong frames. A behaviour clock
    that merely starts earlier or later than the frames, or covers a superset of them
    (up to :data:`MAX_SPAN_RATIO` times as long), is accepted.

    Parameters
    ----------
    times : numpy.ndarray, shape (T_b,)
        Behaviour sample times (s), strictly increasing.
    frame_times : numpy.ndarray, shape (T,)
        Imaging frame (neural sample) times (s), strictly increasing.
    what : str
        The behaviour source, named first in the message (its file, and series).
    imaging : str
        The imaging data (file and session) named in the message.

    Raises
    ------
    DataFormatError
        The behaviour spans over :data:`MAX_SPAN_RATIO` times the frames' time (its
        times in milliseconds?) or under ``1 / MAX_SPAN_RATIO`` of it (the frame times
        in milliseconds?), or the two share under ``1 / MAX_SPAN_RATIO`` of the shorter
        span (different clocks). The message gives both time ranges and the remedy.
    """
    if times.ndim != 1 or frame_times.ndim != 1 or min(times.size, frame_times.size) < 2:
        return  # nothing to compare (the shapes are checked where the times are used)
    b0, b1 = float(times[0]), float(times[-1])
    f0, f1 = float(frame_times[0]), float(frame_times[-1])
    span_b, span_f = b1 - b0, f1 - f0
    if span_b <= 0 or span_f <= 0:
        return
    ratio, overlap = span_b / span_f, min(b1, f1) - max(b0, f0)
    head = f"{what}: its times run from {b0:.6g} to {b1:.6g}"
    frames = f"the imaging frames of {imaging} ({f0:.6g} to {f1:.6g} s)"
    if ratio > MAX_SPAN_RATIO:
        raise DataFormatError(
            f"{head}, {ratio:.0f} times the {span_f:.6g} s of {frames}: are they in "
            "milliseconds? Give times in seconds (read_trace converts a CSV time column "
            "named 'time_ms' or 'time (ms)'); behaviour that really spans that much "
            "longer than the imaging: keep only its part around the imaging"
        )
    if ratio < 1.0 / MAX_SPAN_RATIO:
        raise DataFormatError(
            f"{head}, only 1/{1.0 / ratio:.0f} of the {span_f:.6g} s of {frames}: are "
            "the frame times in milliseconds? Give both in seconds"
        )
    if overlap < min(span_b, span_f) / MAX_SPAN_RATIO:
        shared = "no time" if overlap <= 0 else f"only {overlap:.3g} s"
        raise DataFormatError(
            f"{head} and {frames}: they share {shared}, so they are on different "
            "clocks; give the behaviour times on the imaging's clock (e.g. subtract "
            "the offset between the two acquisition systems)"
        )


def load_npy(path: str | os.PathLike, what: str = "array") -> np.ndarray:
    """Load a non-pickled ``.npy`` file, mapping every failure to DataFormatError.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.npy`` file.
    what : str
        Description for messages (e.g. ``"suite2p F"``).

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    DataFormatError
        A directory, an empty file, no NumPy signature, a pickled, truncated or
        corrupt array.
    """
    return read_npy_checked(check_file(path, f"{what} file"), what)


def read_npy_checked(p: Path, what: str) -> np.ndarray:
    """Load the ``.npy`` file ``p`` after checking its NumPy signature, never unpickling.

    Parameters
    ----------
    p : pathlib.Path
        An existing file.
    what : str
        Description for messages.

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    DataFormatError
        No NumPy signature, a pickled (object) array, or any failure of
        :func:`numpy.load`. Object arrays whose content is known to be plain data
        (suite2p's ``ops.npy`` / ``stat.npy``) are read by
        :func:`sharedrep.data.io._safe_pickle.load_object_npy` instead.
    """
    with open(p, "rb") as fh:
        if fh.read(6) != _NPY_MAGIC:
            raise DataFormatError(f"{p}: not a NumPy .npy file (bad magic bytes)")
    try:
        return np.load(p, allow_pickle=False)
    except Exception as err:  # truncated/corrupt: ValueError, EOFError, OSError, pickle...
        raise DataFormatError(f"{p}: cannot read {what} ({type(err).__name__}: {err})") from None
