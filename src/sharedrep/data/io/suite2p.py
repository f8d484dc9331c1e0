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

Multi-plane recordings
----------------------
Each plane folder (``plane0``, ``plane1``, ...) is read as one recording with its own
frames; ``ops["fs"]`` is suite2p's rate per plane (the volume rate, as suite2p's
documentation asks). The ``combined`` folder puts the ROIs of all planes on one frame
axis; it is refused when suite2p padded a plane with fewer frames with zeros.

May import :mod:`sharedrep.utils` and :mod:`sharedrep.data`.
"""

from __future__ import annotations

import math
import numbers
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
        neuropil_coef: float | None = None,
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
        neuropil_coef : float, optional
            Neuropil coefficient (see :func:`sharedrep.data.preprocess.dff`); default
            the one suite2p ran with (``ops["neucoeff"]``), else 0.7 (suite2p's default).
            The coefficient used is in ``metadata["neuropil_coef"]``.
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

        Raises
        ------
        DataFormatError
            Frame times of the wrong length, an unknown frame rate, dF/F undefined, a
            behaviour trace whose times are not on the frames' clock (e.g. spanning
            over 100 times as long: times in milliseconds), or one not covering the
            frame times (see :func:`~sharedrep.data.io.build_session`).
        """
        t = self.timestamps() if timestamps is None else np.asarray(timestamps, float)
        if t.shape != (self.n_frames,):
            raise DataFormatError(
                f"{self.path}: {self.n_frames} frames but {np.size(t)} frame timestamps"
            )
        if neuropil_coef is None:
            neuropil_coef = _neucoeff(self.ops, self.path)
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


def _neucoeff(ops: dict, source: str) -> float:
    """suite2p's neuropil coefficient ``ops["neucoeff"]`` (0.7 without ``ops``)."""
    value = ops.get("neucoeff", 0.7)
    try:
        coef = float(value)
    except (TypeError, ValueError):
        coef = math.nan
    if not (math.isfinite(coef) and 0 <= coef <= 1.5):
        raise DataFormatError(
            f"{source}: ops['neucoeff'] = {value!r} is not a neuropil coefficient (suite2p's "
            "default is 0.7); pass neuropil_coef= explicitly"
        )
    return coef


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
        Missing folder or required file; a suite2p output folder whose plane
        subfolders hold the files (the message names them).
    DataFormatError
        Files that are not ``.npy``, truncated or corrupted, shapes that disagree
        (F vs Fneu vs iscell vs stat), non-finite fluorescence, no frames, no ROI
        left after selection, or an ``ops.npy``/``stat.npy`` whose pickle names
        anything but NumPy arrays, scalars, dtypes and plain data (the message names
        the refused ``module.name``). Also files that would be misread: an
        ``iscell.npy`` that is not ``(n_rois, 2)`` = flag 0/1, probability in [0, 1]
        (e.g. swapped columns); ``ops["nframes"]`` other than the frames of F.npy; an
        F.npy holding several recordings (``ops["frames_per_folder"]``); ROIs whose F
        and Fneu are exactly 0 in the last frame (the zero padding of suite2p's
        ``combined`` folder: read the plane folders).
    """
    d = check_dir(path, "suite2p plane folder")
    src = str(d)
    _check_not_suite2p_root(d)
    F, Fneu = _read_fluorescence(d)
    n_roi = F.shape[0]
    isc = _read_iscell(d, n_roi, needed=cells_only or min_cell_prob is not None)
    ops = _read_ops(d) if allow_pickle else {}
    stat = _read_stat(d, n_roi) if allow_pickle else None
    fs = _frame_rate(ops, d / "ops.npy")
    _check_ops_frames(ops, F.shape[1], d / "ops.npy")
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
    _check_no_zero_padding(F, Fneu, d)
    return F, Fneu


def _check_not_suite2p_root(d: Path) -> None:
    """Refuse a folder without ``F.npy`` whose subfolders (``plane0``, ``plane1``,
    ``combined``) hold one, naming them."""
    if (d / "F.npy").exists():
        return
    planes = sorted(
        (q.name for q in d.iterdir() if (q / "F.npy").is_file()),
        key=lambda n: (not n.startswith("plane"), len(n), n),  # plane2 before plane10
    )
    if planes:
        raise FileNotFoundError(
            f"{d}: no F.npy here; it is in the subfolder(s) {planes}: give one plane "
            f"folder, e.g. {d / planes[0]} (each plane is read as its own recording)"
        )


def _check_no_zero_padding(F: np.ndarray, Fneu: np.ndarray, d: Path) -> None:
    """Refuse ROIs whose F and Fneu are exactly 0 in the last frame: the zeros suite2p's
    ``combined`` folder appends to planes that have fewer frames than the others."""
    pad = np.flatnonzero((F[:, -1] == 0) & (Fneu[:, -1] == 0))
    if pad.size == 0:
        return
    zero = (F[pad[0]] == 0) & (Fneu[pad[0]] == 0)
    n = F.shape[1] - int(np.flatnonzero(~zero)[-1]) - 1 if (~zero).any() else F.shape[1]
    raise DataFormatError(
        f"{d}: F.npy and Fneu.npy are exactly 0 in the last frame of {pad.size} ROI(s) "
        f"(ROI {int(pad[0])}: its last {n} frame(s)), the padding of suite2p's 'combined' "
        "folder for planes with fewer frames; read each plane folder (plane0, plane1, "
        "...) on its own"
    )


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
    if isc.ndim == 2 and isc.shape[1] == 1:
        isc = isc[:, 0]
    if isc.ndim == 1:
        isc = np.column_stack([isc, np.full(isc.size, np.nan)])
    if isc.ndim != 2 or isc.shape[0] != n_roi:
        raise DataFormatError(
            f"{isc_path}: shape {isc.shape} does not match {n_roi} ROIs in F.npy"
        )
    if isc.shape[1] != 2:
        raise DataFormatError(
            f"{isc_path}: {isc.shape[1]} columns; suite2p's iscell.npy has 2 "
            "(is-cell flag 0/1, classifier probability)"
        )
    _check_iscell_values(isc, isc_path)
    return isc


def _check_iscell_values(isc: np.ndarray, isc_path: Path) -> None:
    """Refuse an is-cell flag (column 0) other than 0/1 and probabilities (column 1)
    outside [0, 1]: swapped columns, or a probability saved as the flag."""
    flag, prob = isc[:, 0], isc[:, 1]
    bad = flag[~np.isin(flag, (0.0, 1.0))]
    if bad.size:
        raise DataFormatError(
            f"{isc_path}: the is-cell flag (first column) holds values other than 0 and 1 "
            f"(e.g. {float(bad[0])!r}); suite2p writes (n_rois, 2) = flag, probability: "
            "are the columns swapped? Save it as np.column_stack([flag, probability])"
        )
    out = prob[(prob < 0) | (prob > 1)]
    if out.size:
        raise DataFormatError(
            f"{isc_path}: the classifier probability (second column) holds "
            f"{float(out[0])!r}, outside [0, 1]; suite2p writes (n_rois, 2) = flag, "
            "probability"
        )


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


def _check_ops_frames(ops: dict, n_frames: int, ops_path: Path) -> None:
    """Refuse an ``ops.npy`` whose frame counts contradict the ``n_frames`` of F.npy:
    ``nframes`` of another run, or ``frames_per_folder`` of several recordings that
    suite2p processed together (their frames would be timed as one recording)."""
    nf = ops.get("nframes")
    if isinstance(nf, numbers.Real) and np.isfinite(nf) and int(nf) != n_frames:
        raise DataFormatError(
            f"{ops_path}: ops['nframes'] = {int(nf)} but F.npy has {n_frames} frames: "
            "the files come from different suite2p runs, or F.npy was cut; use the plane "
            "folder as suite2p wrote it"
        )
    per = np.ravel(ops.get("frames_per_folder", []))
    per = [int(x) for x in per if isinstance(x, numbers.Real) and x > 0]
    if len(per) > 1:
        raise DataFormatError(
            f"{ops_path}: ops['frames_per_folder'] = {per}: F.npy holds {len(per)} "
            "recordings that suite2p processed together, which frame times from "
            "ops['fs'] would join into one; split F.npy and Fneu.npy at these frame "
            "counts into one plane folder per recording (for one recording split across "
            "folders, read it with allow_pickle=False and give its frame times)"
        )


def _roi_selection(isc: np.ndarray, cells_only: bool, min_cell_prob) -> np.ndarray:
    """Boolean mask (n_rois,) of the kept ROIs: probability ``>= min_cell_prob`` if
    given, else the is-cell flag if ``cells_only``, else all."""
    if min_cell_prob is not None:
        return isc[:, 1] >= min_cell_prob
    if cells_only:
        return isc[:, 0] > 0.5
    return np.ones(isc.shape[0], dtype=bool)
