"""suite2p plane folders (``F.npy``, ``Fneu.npy``, ``iscell.npy``, ``ops.npy``, ``stat.npy``).

Security note
-------------
suite2p stores ``ops.npy`` (a dict) and ``stat.npy`` (an array of dicts) as *pickled*
object arrays, and an ordinary unpickler can execute code named in the file.
:func:`read_suite2p` reads these two files with a restricted unpickler
(:func:`sharedrep.data.io._safe_pickle.load_object_npy`) that rebuilds only NumPy
arrays, scalars and dtypes and plain data (dicts, lists, numbers, strings, dates); a
file naming anything else is refused with a :class:`DataFormatError` naming the file
and the refused type, and nothing of it runs. ``allow_pickle=False`` skips ``ops`` and
``stat`` altogether (the frame rate must then be given). ``F.npy``, ``Fneu.npy`` and
``iscell.npy`` are always loaded without pickle.

May import :mod:`sharedrep.utils` and :mod:`sharedrep.data`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sharedrep.data.io._common import (
    DataFormatError,
    Traces,
    check_dir,
    load_npy,
)
from sharedrep.data.io._safe_pickle import load_object_npy
from sharedrep.data.io.assemble import build_session
from sharedrep.data.preprocess import dff as _dff
from sharedrep.data.preprocess import merge_boutons as _merge_boutons
from sharedrep.data.session import Session

__all__ = ["Suite2pPlane", "read_suite2p"]


@dataclass(eq=False)
class Suite2pPlane:
    """The ROIs of one suite2p plane.

    Attributes
    ----------
    F, Fneu : numpy.ndarray, shape (T, N), float64
        ROI and neuropil fluorescence (a.u.), time along axis 0 (transposed from
        suite2p's ``(N, T)``), for the selected ROIs only.
    roi_ids : numpy.ndarray, shape (N,), int
        Index of each selected ROI in suite2p's ROI list (stable across re-reads).
    cell_prob : numpy.ndarray, shape (N,), float
        Classifier probability (``iscell[:, 1]``), NaN if unavailable.
    sampling_rate : float or None
        Frame rate ``ops["fs"]`` in Hz (per plane), None if unknown.
    ops : dict
        suite2p options (empty if not loaded).
    stat : list of dict or None
        Per-ROI statistics for the selected ROIs (None if not loaded).
    path : str
        Plane folder.
    """

    F: np.ndarray
    Fneu: np.ndarray
    roi_ids: np.ndarray
    cell_prob: np.ndarray
    sampling_rate: float | None
    path: str
    ops: dict = field(default_factory=dict)
    stat: list | None = None

    @property
    def n_frames(self) -> int:
        """Number of frames ``T``."""
        return int(self.F.shape[0])

    def timestamps(self, start_time: float = 0.0) -> np.ndarray:
        """Frame times from the frame rate.

        Parameters
        ----------
        start_time : float, default 0.0
            Time of the first frame, seconds.

        Returns
        -------
        numpy.ndarray, shape (T,)
            ``start_time + arange(T) / sampling_rate`` in seconds.

        Raises
        ------
        DataFormatError
            If the frame rate is unknown (no ``ops.npy``).
        """
        if not self.sampling_rate:
            raise DataFormatError(
                f"{self.path}: frame rate unknown (no ops.npy, ops['fs'] missing, or "
                "allow_pickle=False); pass frame times as to_session(timestamps=...) "
                "(e.g. np.arange(n_frames) / rate; study file: frame_rate or frame_times)"
            )
        return start_time + np.arange(self.n_frames) / self.sampling_rate

    def to_session(
        self,
        *,
        subject: str,
        timestamps=None,
        behavior: list[Traces] | tuple = (),
        neuropil_coef: float = 0.7,
        baseline_window_s: float = 60.0,
        baseline_percentile: float = 8.0,
        bouton_threshold: float | None = None,
        trials=None,
        stimulation=None,
        resample_method: str = "linear",
        extrapolate: str = "error",
        **fields,
    ) -> Session:
        """dF/F of the ROIs (optionally merged into axons) plus behaviour, as a Session.

        Parameters
        ----------
        subject : str
            Subject id.
        timestamps : array_like, shape (T,), optional
            Frame times in seconds (e.g. from the microscope's frame TTLs); default
            :meth:`timestamps`.
        behavior : list of Traces
            Behaviour sources resampled onto the frame times.
        neuropil_coef : float, default 0.7
            Neuropil coefficient (see :func:`sharedrep.data.preprocess.dff`).
        baseline_window_s, baseline_percentile : float
            Running-percentile baseline (default 60 s, 8th percentile).
        bouton_threshold : float, optional
            If given, merge boutons with :func:`sharedrep.data.preprocess.merge_boutons`
            at this correlation threshold (e.g. 0.7); unit ids become axon indices and
            ``metadata["bouton_labels"]`` maps each ROI id to its axon.
        trials, stimulation : pandas.DataFrame, optional
        resample_method, extrapolate : str
            See :func:`sharedrep.data.preprocess.resample`.
        **fields
            Other Session fields (``session_id``, ``day``, ``stage``, ``population``,
            ``metadata``).

        Returns
        -------
        Session
        """
        t = self.timestamps() if timestamps is None else np.asarray(timestamps, float)
        if t.shape != (self.n_frames,):
            raise DataFormatError(
                f"{self.path}: {self.n_frames} frames but {np.size(t)} frame timestamps"
            )
        # the frames' own rate when their times are given (ops['fs'] may differ)
        rate = (
            float(1.0 / np.median(np.diff(t)))
            if timestamps is not None and t.size > 1
            else self.sampling_rate or float(1.0 / np.median(np.diff(t)))
        )
        try:
            x = _dff(
                self.F,
                sampling_rate=rate,
                window_s=baseline_window_s,
                percentile=baseline_percentile,
                neuropil=self.Fneu,
                neuropil_coef=neuropil_coef,
            )
        except ValueError as err:
            raise DataFormatError(f"{self.path}: {err}") from None
        ids = self.roi_ids
        meta = dict(fields.pop("metadata", None) or {})
        meta.update(
            source=self.path,
            format="suite2p",
            neural_kind="dF/F",
            neuropil_coef=neuropil_coef,
            baseline_window_s=baseline_window_s,
            baseline_percentile=baseline_percentile,
        )
        if bouton_threshold is not None:
            x, labels = _merge_boutons(x, bouton_threshold)
            meta["bouton_labels"] = {int(r): int(a) for r, a in zip(ids, labels, strict=True)}
            meta["bouton_threshold"] = bouton_threshold
            ids = np.arange(x.shape[1])
        return build_session(
            x,
            t,
            subject=subject,
            behavior=behavior,
            unit_ids=ids,
            trials=trials,
            stimulation=stimulation,
            resample_method=resample_method,
            extrapolate=extrapolate,
            source=self.path,
            metadata=meta,
            **fields,
        )


def _load_pickled(p: Path, what: str):
    """Load a pickled suite2p object array, running no code; see the security note."""
    return load_object_npy(p, what)


def read_suite2p(
    path: str | os.PathLike,
    *,
    cells_only: bool = True,
    min_cell_prob: float | None = None,
    allow_pickle: bool = True,
) -> Suite2pPlane:
    """Read a suite2p plane folder (``.../suite2p/plane0``).

    Parameters
    ----------
    path : str or os.PathLike
        Plane folder holding ``F.npy`` and ``Fneu.npy`` (``(N, T)`` float),
        ``iscell.npy`` (``(N, 2)``: is-cell flag, probability), and optionally
        ``ops.npy`` and ``stat.npy``.
    cells_only : bool, default True
        Keep only ROIs classified as cells (``iscell[:, 0] > 0.5``).
    min_cell_prob : float, optional
        Keep ROIs with classifier probability ``>= min_cell_prob`` instead.
    allow_pickle : bool, default True
        Read ``ops.npy``/``stat.npy`` at all. They are pickled by suite2p, but are
        always read with the restricted unpickler of the module security note, never
        one that can run code from the file; False skips them (the frame rate must
        then be given).

    Returns
    -------
    Suite2pPlane

    Raises
    ------
    FileNotFoundError
        Missing folder or required file.
    DataFormatError
        Files that are not ``.npy``, truncated or corrupted, shapes that disagree
        (F vs Fneu vs iscell vs stat), non-finite fluorescence, no frames, no ROI
        left after selection, or an ``ops.npy``/``stat.npy`` whose pickle names
        anything but NumPy arrays, scalars, dtypes and plain data (the message names
        the refused ``module.name``).
    """
    d = check_dir(path, "suite2p plane folder")
    src = str(d)
    if not (d / "F.npy").exists() and (d / "plane0" / "F.npy").exists():
        raise FileNotFoundError(
            f"{d}: no F.npy here; did you mean the plane folder {d / 'plane0'}?"
        )
    F, Fneu = _read_fluorescence(d)
    n_roi = F.shape[0]
    isc = _read_iscell(d, n_roi, needed=cells_only or min_cell_prob is not None)
    ops = _read_ops(d) if allow_pickle else {}
    stat = _read_stat(d, n_roi) if allow_pickle else None
    fs = _frame_rate(ops, d / "ops.npy")
    keep = _roi_selection(isc, cells_only, min_cell_prob)
    if not keep.any():
        raise DataFormatError(f"{src}: no ROI passes the cell selection ({n_roi} ROIs)")
    Fk = F[keep].T.astype(np.float64)
    Nk = Fneu[keep].T.astype(np.float64)
    for name, a in (("F.npy", Fk), ("Fneu.npy", Nk)):
        if not np.all(np.isfinite(a)):
            raise DataFormatError(f"{d / name}: contains NaN or inf")
    return Suite2pPlane(
        F=Fk,
        Fneu=Nk,
        roi_ids=np.flatnonzero(keep),
        cell_prob=isc[keep, 1],
        sampling_rate=fs,
        path=src,
        ops=ops,
        stat=None if stat is None else [stat[i] for i in np.flatnonzero(keep)],
    )


def _read_fluorescence(d: Path) -> tuple[np.ndarray, np.ndarray]:
    """``F.npy`` and ``Fneu.npy`` of a plane folder, both (n_rois, n_frames), checked
    to be numeric, of the same shape and not empty."""
    F = load_npy(d / "F.npy", "suite2p F")
    Fneu = load_npy(d / "Fneu.npy", "suite2p Fneu")
    for name, a in (("F.npy", F), ("Fneu.npy", Fneu)):
        if a.dtype.kind not in "biuf" or a.ndim != 2:
            raise DataFormatError(
                f"{d / name}: expected a numeric (n_rois, n_frames) array, got {a.dtype} {a.shape}"
            )
    if F.shape != Fneu.shape:
        raise DataFormatError(f"{d}: F.npy has shape {F.shape} but Fneu.npy has {Fneu.shape}")
    if F.shape[0] == 0 or F.shape[1] == 0:
        raise DataFormatError(f"{d}: F.npy is empty (shape {F.shape})")
    return F, Fneu


def _read_iscell(d: Path, n_roi: int, *, needed: bool) -> np.ndarray:
    """``iscell.npy`` as (n_rois, 2) float64: is-cell flag, probability (NaN when the
    file has one column). Without the file: all cells, probability NaN, unless it is
    ``needed`` for the cell selection."""
    isc_path = d / "iscell.npy"
    if not isc_path.exists():
        if needed:
            raise FileNotFoundError(f"{isc_path} not found (needed for cell selection)")
        return np.column_stack([np.ones(n_roi), np.full(n_roi, np.nan)])
    isc = load_npy(isc_path, "suite2p iscell")
    if isc.dtype.kind not in "biuf":
        raise DataFormatError(f"{isc_path}: expected a numeric array, got {isc.dtype}")
    isc = isc.astype(np.float64)
    if isc.ndim == 1:
        isc = np.column_stack([isc, np.full(isc.size, np.nan)])
    if isc.ndim != 2 or isc.shape[0] != n_roi:
        raise DataFormatError(
            f"{isc_path}: shape {isc.shape} does not match {n_roi} ROIs in F.npy"
        )
    return isc


def _read_ops(d: Path) -> dict:
    """The pickled ``ops.npy`` dict of a plane folder, ``{}`` when there is none."""
    p = d / "ops.npy"
    if not p.exists():
        return {}
    o = _load_pickled(p, "suite2p ops")
    try:
        ops = o.item() if isinstance(o, np.ndarray) else o
    except ValueError:
        ops = None
    if not isinstance(ops, dict):
        raise DataFormatError(f"{p}: expected a pickled dict")
    return ops


def _read_stat(d: Path, n_roi: int) -> list | None:
    """The per-ROI dicts of the pickled ``stat.npy``, None when there is none."""
    p = d / "stat.npy"
    if not p.exists():
        return None
    s = _load_pickled(p, "suite2p stat")
    if not isinstance(s, np.ndarray) or s.ndim != 1 or s.shape[0] != n_roi:
        raise DataFormatError(
            f"{p}: expected {n_roi} ROI dicts, got {getattr(s, 'shape', type(s).__name__)}"
        )
    if not all(isinstance(x, dict) for x in s):
        raise DataFormatError(f"{p}: entries are not dicts")
    return list(s)


def _frame_rate(ops: dict, ops_path: Path) -> float | None:
    """``ops["fs"]`` in Hz as a positive float, None when absent."""
    fs = ops.get("fs")
    if fs is None:
        return None
    try:
        fs = float(fs)
    except (TypeError, ValueError):
        raise DataFormatError(f"{ops_path}: ops['fs'] is not a number: {fs!r}") from None
    if not (np.isfinite(fs) and fs > 0):
        raise DataFormatError(f"{ops_path}: ops['fs'] must be > 0 Hz, got {fs!r}")
    return fs


def _roi_selection(isc: np.ndarray, cells_only: bool, min_cell_prob) -> np.ndarray:
    """Boolean mask (n_rois,) of the kept ROIs: probability ``>= min_cell_prob`` if
    given, else the is-cell flag if ``cells_only``, else all."""
    if min_cell_prob is not None:
        return isc[:, 1] >= min_cell_prob
    if cells_only:
        return isc[:, 0] > 0.5
    return np.ones(isc.shape[0], dtype=bool)
