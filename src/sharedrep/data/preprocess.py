"""Preprocessing of imaging and behaviour data before fitting.

Conventions: time runs along axis 0; arrays are ``(T, N)`` (samples x units) or
``(T, p)`` (samples x behaviour features); times are in seconds. No function modifies
its inputs in place. Layer ``data``: only numpy and scipy are used, and the module may
import nothing but ``sharedrep.utils`` and ``sharedrep.data``.

Contents
--------
- :func:`neuropil_subtract`, :func:`running_percentile`, :func:`dff`: fluorescence to
  dF/F with a running-percentile baseline.
- :func:`merge_boutons`: average the boutons of one axon (correlation clustering).
- :func:`resample`, :func:`interpolate_gaps`: put behaviour on the imaging time base.
- :func:`detect_movement_onsets`: movement onset from a lever trace after each cue.
- :func:`align_to_events`: trial windows around cue / movement onset.
- :func:`exclusion_mask`: frames to exclude (e.g. light artefacts during stimulation).
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = [
    "align_to_events",
    "detect_movement_onsets",
    "dff",
    "exclusion_mask",
    "interpolate_gaps",
    "merge_boutons",
    "neuropil_subtract",
    "resample",
    "running_percentile",
]

#: Default correlation threshold for merging boutons into axons (see :func:`merge_boutons`).
BOUTON_MERGE_THRESHOLD = 0.7


def _as_2d(x, name: str) -> tuple[np.ndarray, bool]:
    """Return ``x`` as a float64 2-D array and whether it was 1-D."""
    a = np.asarray(x)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got dtype {a.dtype}")
    a = a.astype(np.float64, copy=False)
    if a.ndim == 1:
        return a[:, None], True
    if a.ndim != 2:
        raise ValueError(f"{name} must be 1-D (T,) or 2-D (T, N), got shape {a.shape}")
    return a, False


def _as_times(t, name: str, *, strict: bool = True) -> np.ndarray:
    ts = np.asarray(t, dtype=np.float64)
    if ts.ndim != 1 or ts.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {ts.shape}")
    if not np.all(np.isfinite(ts)):
        raise ValueError(f"{name} contains non-finite values")
    if strict and ts.size > 1 and np.any(np.diff(ts) <= 0):
        i = int(np.argmax(np.diff(ts) <= 0))
        raise ValueError(
            f"{name} must be strictly increasing "
            f"(index {i + 1}: {float(ts[i + 1])!r} after {float(ts[i])!r})"
        )
    return ts


# --------------------------------------------------------------------------- dF/F


def neuropil_subtract(F, Fneu, coef: float = 0.7) -> np.ndarray:
    """Subtract scaled neuropil from ROI fluorescence: ``F - coef * Fneu``.

    Parameters
    ----------
    F : array_like, shape (T, N)
        Raw ROI fluorescence (a.u.).
    Fneu : array_like, shape (T, N)
        Neuropil fluorescence around each ROI (a.u.).
    coef : float, default 0.7
        Neuropil contamination coefficient (0.7 is the suite2p / common default for
        GCaMP somata; boutons are often analysed with the same value).

    Returns
    -------
    numpy.ndarray, shape (T, N), float64
        Neuropil-corrected fluorescence (a.u.).
    """
    f, _ = _as_2d(F, "F")
    fn, _ = _as_2d(Fneu, "Fneu")
    if f.shape != fn.shape:
        raise ValueError(f"F has shape {f.shape} but Fneu has shape {fn.shape}")
    if not np.isfinite(coef) or coef < 0:
        raise ValueError(f"neuropil coef must be a finite number >= 0, got {coef!r}")
    return f - coef * fn


def running_percentile(
    x, window: int, percentile: float = 8.0, *, step: int | None = None
) -> np.ndarray:
    """Running percentile along time (the slow baseline of a fluorescence trace).

    The percentile of the centred window ``[t - window//2, t + window//2]`` (edges
    padded with the nearest value) is evaluated every ``step`` samples and linearly
    interpolated in between; ``step=1`` evaluates it at every sample. Cost is
    ``O(T * N * window / step)``, memory is bounded by processing in chunks.

    Parameters
    ----------
    x : array_like, shape (T,) or (T, N)
        Traces.
    window : int
        Window length in samples (>= 1).
    percentile : float, default 8.0
        Percentile in [0, 100].
    step : int, optional
        Evaluation stride in samples; default ``max(1, window // 20)``.

    Returns
    -------
    numpy.ndarray, same shape as ``x``, float64
        Baseline.
    """
    a, was1d = _as_2d(x, "x")
    T, N = a.shape
    if T == 0:
        raise ValueError("x has no samples")
    window = int(window)
    if window < 1:
        raise ValueError(f"window must be >= 1 sample, got {window}")
    if not 0.0 <= percentile <= 100.0:
        raise ValueError(f"percentile must be in [0, 100], got {percentile!r}")
    step = max(1, window // 20) if step is None else int(step)
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    half = window // 2
    padded = np.pad(a, ((half, half), (0, 0)), mode="edge")
    centres = np.arange(0, T, step)
    if centres[-1] != T - 1:
        centres = np.append(centres, T - 1)
    win = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1, axis=0)
    # win[c] covers original samples c - half .. c + half; shape (T, N, w)
    vals = np.empty((centres.size, N))
    chunk = max(1, int(2e7 // max(1, N * (2 * half + 1))))
    for i in range(0, centres.size, chunk):
        c = centres[i : i + chunk]
        vals[i : i + chunk] = np.percentile(win[c], percentile, axis=-1)
    if centres.size == T:
        out = vals
    else:
        tt = np.arange(T)
        out = np.empty((T, N))
        for j in range(N):
            out[:, j] = np.interp(tt, centres, vals[:, j])
    return out[:, 0] if was1d else out


def dff(
    F,
    *,
    sampling_rate: float,
    window_s: float = 60.0,
    percentile: float = 8.0,
    neuropil=None,
    neuropil_coef: float = 0.7,
    step: int | None = None,
    return_baseline: bool = False,
):
    """dF/F with a running-percentile baseline: ``(F - F0) / F0``.

    ``F0`` is the ``percentile``-th percentile of the (neuropil-corrected) trace in a
    centred window of ``window_s`` seconds (:func:`running_percentile`). A low
    percentile of a long window tracks slow drift (bleaching, focus) while ignoring
    transients.

    Parameters
    ----------
    F : array_like, shape (T, N) or (T,)
        ROI fluorescence (a.u.).
    sampling_rate : float
        Frame rate in Hz.
    window_s : float, default 60.0
        Baseline window in seconds.
    percentile : float, default 8.0
        Baseline percentile.
    neuropil : array_like, shape like ``F``, optional
        Neuropil fluorescence; if given, ``F - neuropil_coef * neuropil`` is used.
    neuropil_coef : float, default 0.7
        Neuropil coefficient (see :func:`neuropil_subtract`).
    step : int, optional
        Baseline evaluation stride (see :func:`running_percentile`).
    return_baseline : bool, default False
        Also return ``F0``.

    Returns
    -------
    dff : numpy.ndarray, shape like ``F``, float64
        Relative fluorescence change (unitless).
    baseline : numpy.ndarray, shape like ``F``
        Only if ``return_baseline``: ``F0`` (a.u.).

    Raises
    ------
    ValueError
        If the baseline of any unit is not strictly positive (dF/F undefined); the
        message lists the unit indices. Lower ``neuropil_coef`` or add an offset.
    """
    f, was1d = _as_2d(F, "F")
    if neuropil is not None:
        nb, _ = _as_2d(neuropil, "neuropil")
        f = neuropil_subtract(f, nb, neuropil_coef)
    if not np.all(np.isfinite(f)):
        raise ValueError("F contains NaN or inf; dF/F needs finite fluorescence")
    if not (np.isfinite(sampling_rate) and sampling_rate > 0):
        raise ValueError(f"sampling_rate must be > 0 Hz, got {sampling_rate!r}")
    window = max(1, int(round(window_s * sampling_rate)))
    f0 = running_percentile(f, window, percentile, step=step)
    bad = np.flatnonzero((f0 <= 0).any(axis=0))
    if bad.size:
        shown = ", ".join(map(str, bad[:10])) + (" ..." if bad.size > 10 else "")
        raise ValueError(
            f"baseline F0 is <= 0 for {bad.size} unit(s) (indices {shown}); dF/F is "
            "undefined. Lower neuropil_coef or add a constant offset to F."
        )
    out = (f - f0) / f0
    if was1d:
        out, f0 = out[:, 0], f0[:, 0]
    return (out, f0) if return_baseline else out


# --------------------------------------------------------------------------- boutons


def merge_boutons(
    traces, threshold: float = BOUTON_MERGE_THRESHOLD, *, method: str = "average"
) -> tuple[np.ndarray, np.ndarray]:
    """Merge boutons that belong to the same axon by correlation clustering.

    Boutons of one axon carry the same action potentials, so their dF/F traces are
    highly correlated. Units are clustered hierarchically on the distance
    ``1 - r`` (Pearson correlation over time) and the tree is cut at distance
    ``1 - threshold``: with the default average linkage, a cluster's boutons have an
    average pairwise correlation of at least ``threshold`` (default 0.7, a common
    choice for long-range axons in layer 1; lower it to merge more aggressively).
    Each axon's trace is the mean of its boutons' traces.

    Parameters
    ----------
    traces : array_like, shape (T, N)
        Bouton dF/F traces (finite).
    threshold : float, default 0.7
        Correlation threshold in (-1, 1].
    method : {"average", "complete", "single"}, default "average"
        Linkage (``"complete"``: every pair >= threshold; ``"single"``: chained).

    Returns
    -------
    merged : numpy.ndarray, shape (T, K), float64
        One trace per axon, ``K <= N``.
    labels : numpy.ndarray, shape (N,), int
        Axon index of each bouton, numbered by first appearance (0 .. K-1).

    Notes
    -----
    Constant traces have undefined correlation; they are treated as uncorrelated with
    everything and stay single.
    """
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    x, _ = _as_2d(traces, "traces")
    T, N = x.shape
    if not np.all(np.isfinite(x)):
        raise ValueError("traces contain NaN or inf")
    if not -1.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (-1, 1], got {threshold!r}")
    if method not in ("average", "complete", "single"):
        raise ValueError(f"method must be 'average', 'complete' or 'single', got {method!r}")
    if N == 0 or T < 2:
        raise ValueError(f"need at least 2 samples and 1 unit, got shape {x.shape}")
    if N == 1:
        return x.copy(), np.zeros(1, dtype=int)
    xc = x - x.mean(axis=0)
    norms = np.sqrt((xc**2).sum(axis=0))
    z = np.zeros_like(xc)
    ok = norms > 0
    z[:, ok] = xc[:, ok] / norms[ok]
    r = np.clip(z.T @ z, -1.0, 1.0)
    d = 1.0 - r
    np.fill_diagonal(d, 0.0)
    d = (d + d.T) / 2
    tree = linkage(squareform(d, checks=False), method=method)
    raw = fcluster(tree, t=1.0 - threshold + 1e-12, criterion="distance")
    _, first = np.unique(raw, return_index=True)
    order = np.argsort(first)
    remap = np.empty(order.size, dtype=int)
    remap[order] = np.arange(order.size)
    labels = remap[np.searchsorted(np.unique(raw), raw)]
    K = order.size
    onehot = np.zeros((N, K))
    onehot[np.arange(N), labels] = 1.0
    merged = x @ (onehot / onehot.sum(axis=0))
    return merged, labels


# --------------------------------------------------------------------------- resampling


def interpolate_gaps(
    values, max_gap: int, *, timestamps=None, frames=None
) -> tuple[np.ndarray, int]:
    """Linearly interpolate interior runs of missing samples up to ``max_gap`` frames long.

    A run of non-finite samples is filled only if it has valid samples on both sides
    and spans at most ``max_gap`` frames; longer runs and runs at the edges stay NaN.

    The length of a run is the number of frames between the two valid samples that
    bracket it, so frames absent from the rows (dropped from a pose file, excluded)
    count as missing too:

    - with ``frames``: ``frames[after] - frames[before] - 1``;
    - else with ``timestamps``: ``round(span / dt) - 1``, where ``span`` is
      ``timestamps[after] - timestamps[before]`` and ``dt`` the frame interval,
      estimated as the median of ``diff(timestamps)`` (so fewer than half the intervals
      may hold dropped frames); at least the number of missing rows in the run;
    - else (rows are consecutive frames): the number of missing rows in the run.

    For consecutive frames all three give the number of missing rows.

    Parameters
    ----------
    values : array_like, shape (T,) or (T, p)
        Traces with NaN (or inf) marking missing samples; one row per sample.
    max_gap : int
        Longest run that is filled, in frames (sample intervals); 0 fills nothing.
    timestamps : array_like, shape (T,), optional
        Time of each row in seconds (finite, strictly increasing). Used as the
        interpolation abscissa (the fill is linear in time) and, without ``frames``,
        to count the frames in a run.
    frames : array_like, shape (T,), optional
        Frame number of each row (integer-valued, strictly increasing; e.g. the index
        of a DeepLabCut table with frames dropped). Counts the frames in a run, and is
        the interpolation abscissa when ``timestamps`` is not given.

    Returns
    -------
    filled : numpy.ndarray, same shape as ``values``, float64
        Copy with short gaps filled (other non-finite samples set to NaN).
    n_filled : int
        Number of samples (values) filled, over all columns.

    Raises
    ------
    ValueError
        If ``max_gap`` is negative, or ``timestamps`` / ``frames`` are not 1-D with one
        entry per row, not finite, not strictly increasing, or (``frames``) not
        integer-valued; the message names the array.
    TypeError
        If ``values``, ``timestamps`` or ``frames`` is not numeric.
    """
    a, was1d = _as_2d(values, "values")
    a = a.copy()
    max_gap = int(max_gap)
    if max_gap < 0:
        raise ValueError(f"max_gap must be >= 0, got {max_gap}")
    T = a.shape[0]
    ts = None if timestamps is None else _row_positions(timestamps, "timestamps", T)
    fr = None if frames is None else _row_positions(frames, "frames", T)
    if fr is not None and not np.array_equal(fr, np.round(fr)):
        i = int(np.flatnonzero(fr != np.round(fr))[0])
        raise ValueError(f"frames must be integer frame numbers (index {i}: {fr[i]!r})")
    x = ts if ts is not None else fr if fr is not None else np.arange(T, dtype=np.float64)
    dt = float(np.median(np.diff(ts))) if fr is None and ts is not None and T > 1 else None
    total = 0
    for j in range(a.shape[1]):
        col = a[:, j]
        miss = ~np.isfinite(col)
        if not miss.any():
            continue
        col[miss] = np.nan
        valid = np.flatnonzero(~miss)
        if valid.size == 0 or max_gap == 0:
            continue
        idx = np.flatnonzero(miss)
        idx = idx[(idx > valid[0]) & (idx < valid[-1])]  # interior missing rows
        if idx.size == 0:
            continue
        k = np.searchsorted(valid, idx)
        before, after = valid[k - 1], valid[k]  # valid rows bracketing each run
        length = (after - before - 1).astype(np.float64)  # missing rows in the run
        if fr is not None:
            length = fr[after] - fr[before] - 1
        elif dt is not None:
            length = np.maximum(length, np.round((ts[after] - ts[before]) / dt) - 1)
        fill = idx[length <= max_gap]
        if fill.size:
            col[fill] = np.interp(x[fill], x[valid], col[valid])
            total += int(fill.size)
    return (a[:, 0] if was1d else a), total


def _row_positions(v, name: str, T: int) -> np.ndarray:
    """``v`` as finite, strictly increasing float64 of shape ``(T,)`` (one per row)."""
    p = np.asarray(v)
    if p.shape != (T,):
        raise ValueError(f"{name} must have shape ({T},), one entry per row, got {p.shape}")
    if p.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got dtype {p.dtype}")
    return _as_times(p, name) if T else p.astype(np.float64)


def _interp_columns(t_src: np.ndarray, v: np.ndarray, t_tgt: np.ndarray) -> np.ndarray:
    """Linear interpolation of every column of ``v`` (NaN propagates from neighbours)."""
    n = t_src.size
    if n == 1:
        return np.repeat(v, t_tgt.size, axis=0)
    i = np.clip(np.searchsorted(t_src, t_tgt, side="right") - 1, 0, n - 2)
    w = np.clip((t_tgt - t_src[i]) / (t_src[i + 1] - t_src[i]), 0.0, 1.0)[:, None]
    lo, hi = v[i], v[i + 1]
    with np.errstate(invalid="ignore"):
        out = lo + w * (hi - lo)
    out = np.where(w == 0.0, lo, out)
    out = np.where(w == 1.0, hi, out)
    return out


def resample(
    values,
    t_source,
    t_target,
    *,
    method: str = "linear",
    max_extrapolation: float | None = None,
    extrapolate: str = "error",
    max_gap: float | None = None,
    name: str = "values",
) -> np.ndarray:
    """Resample a time series onto other timestamps (e.g. behaviour onto imaging frames).

    Parameters
    ----------
    values : array_like, shape (T_src,) or (T_src, p)
        Source samples; NaN marks missing samples and propagates to neighbouring
        target samples.
    t_source : array_like, shape (T_src,)
        Source times in seconds, strictly increasing.
    t_target : array_like, shape (T,)
        Target times in seconds (finite; usually the imaging frame times).
    method : {"linear", "nearest", "mean"}, default "linear"
        ``"linear"``: linear interpolation. ``"nearest"``: nearest source sample.
        ``"mean"``: average of the finite source samples falling within each target
        sample's interval (from the midpoint to the previous target time to the
        midpoint to the next one; the first and last intervals are symmetric about
        their target), falling back to linear interpolation where an interval holds
        none; use it to downsample fast signals (pose at 100 Hz onto imaging at
        30 Hz) without aliasing. A source sample on the boundary between two
        intervals (within ``1e-6`` median source sampling intervals, which absorbs
        floating-point rounding) counts with weight 1/2 in each of them, so the
        average is centred on its target: a linear trend is reproduced exactly
        whenever the source samples lie symmetrically about each target (e.g. a
        regular source whose rate is an integer or half-integer multiple of the
        target rate, on a common time grid); otherwise each average is centred
        within half a source sampling interval of its target.
    max_extrapolation : float, optional
        How far (seconds, finite and >= 0) a target may lie outside
        ``[t_source[0], t_source[-1]]`` and still get the edge value. Default: one
        median source sampling interval.
    extrapolate : {"error", "nan", "nearest"}, default "error"
        What to do with targets further outside: raise, set NaN, or use the edge value.
    max_gap : float, optional
        Longest interval (seconds) between consecutive source samples across which values
        are interpolated (or taken from the nearest sample). Targets inside a longer gap
        (dropped samples) are set to NaN, with a warning, instead of being made up; fit
        with ``nan_policy="omit"`` to leave them out. Default: 5 median source sampling
        intervals (timing jitter and a few dropped frames are interpolated).
    name : str
        Name used in error messages.

    Returns
    -------
    numpy.ndarray, shape (T,) or (T, p), float64

    Raises
    ------
    ValueError
        If targets lie outside the source range (with ``extrapolate="error"``); the
        message gives the source coverage and the number of targets outside it. Also
        if ``max_extrapolation`` is not a finite number >= 0 or ``max_gap`` is
        negative or NaN.
    """
    v, was1d = _as_2d(values, name)
    ts = _as_times(t_source, f"{name} timestamps")
    tt = np.asarray(t_target, dtype=np.float64)
    _check_resample_args(v, ts, tt, method, extrapolate, name)
    step = float(np.median(np.diff(ts))) if ts.size > 1 else 0.0
    if max_extrapolation is None:
        max_extrapolation = step
    elif not (np.isfinite(max_extrapolation) and max_extrapolation >= 0):
        raise ValueError(
            "max_extrapolation must be a finite number of seconds >= 0 (or None for one "
            f"median source sampling interval); got {max_extrapolation!r}"
        )
    if max_gap is None:
        max_gap = 5.0 * step
    if not max_gap >= 0:
        raise ValueError(f"max_gap must be a non-negative number of seconds; got {max_gap!r}")
    outside = _outside_source(ts, tt, max_extrapolation, extrapolate, name)
    if method == "nearest" or ts.size == 1:
        out = v[_nearest_source_index(ts, tt)]
    else:
        out = _interp_columns(ts, v, tt)
    averaged = np.zeros(out.shape, dtype=bool)
    if method == "mean" and tt.size > 1 and ts.size > 1:
        out, averaged = _interval_means(ts, v, tt, out, step)
    out = np.array(out, dtype=np.float64)
    if ts.size > 1:
        _blank_gaps(out, ts, tt, max_gap, ~averaged, name)
    if outside.any() and extrapolate == "nan":
        out[outside] = np.nan
    return out[:, 0] if was1d else out


def _check_resample_args(v, ts, tt, method: str, extrapolate: str, name: str) -> None:
    """Check the target times, the source length and the ``method``/``extrapolate`` names."""
    if tt.ndim != 1 or not np.all(np.isfinite(tt)):
        raise ValueError("target timestamps must be a finite 1-D array")
    if v.shape[0] != ts.size:
        raise ValueError(f"{name} has {v.shape[0]} samples but {ts.size} timestamps")
    if method not in ("linear", "nearest", "mean"):
        raise ValueError(f"method must be 'linear', 'nearest' or 'mean', got {method!r}")
    if extrapolate not in ("error", "nan", "nearest"):
        raise ValueError(f"extrapolate must be 'error', 'nan' or 'nearest', got {extrapolate!r}")


def _outside_source(ts, tt, max_extrapolation: float, extrapolate: str, name: str) -> np.ndarray:
    """Mask, shape (T,), of the targets more than ``max_extrapolation`` s outside the
    source range; raises when there are any and ``extrapolate == "error"``."""
    outside = (tt < ts[0] - max_extrapolation) | (tt > ts[-1] + max_extrapolation)
    if outside.any() and extrapolate == "error":
        raise ValueError(
            f"{name} covers {ts[0]:.6g}..{ts[-1]:.6g} s but {int(outside.sum())} of "
            f"{tt.size} target samples ({tt[outside].min():.6g}..{tt[outside].max():.6g} s) "
            f"lie outside it by more than {max_extrapolation:.3g} s; crop the session "
            "(Session.select_time) or pass extrapolate='nan'"
        )
    return outside


def _nearest_source_index(ts, tt) -> np.ndarray:
    """Index, shape (T,), of the source sample nearest each target (ties: the earlier)."""
    if ts.size == 1:
        return np.zeros(tt.size, dtype=int)
    j = np.clip(np.searchsorted(ts, tt), 1, ts.size - 1)
    return np.where(tt - ts[j - 1] <= ts[j] - tt, j - 1, j)


def _interval_means(ts, v, tt, fallback, step: float):
    """Weighted mean of the finite source samples in each target's interval.

    The intervals run between the midpoints of the sorted targets (the outer two are
    symmetric about their target). A source sample within ``tol`` seconds of an
    interval boundary (``tol = 1e-6 * step``, ``step`` the median source sampling
    interval in seconds, or a few units in the last place of the times if larger)
    has weight 1/2 in each of the two intervals, any other sample weight 1 in the
    interval holding it. ``fallback`` is used where an interval holds no finite
    sample. Returns the values, shape ``(T, p)`` like ``fallback``, and a boolean
    mask of the same shape, True where they are means.
    """
    order = np.argsort(tt, kind="stable")
    t_sorted = tt[order]
    mid = (t_sorted[1:] + t_sorted[:-1]) / 2
    edges = np.r_[
        t_sorted[0] - (mid[0] - t_sorted[0]), mid, t_sorted[-1] + (t_sorted[-1] - mid[-1])
    ]
    scale = max(abs(ts[0]), abs(ts[-1]), abs(edges[0]), abs(edges[-1]))
    tol = max(1e-6 * step, 64 * float(np.spacing(scale)))
    # only the source samples that can fall in an interval
    i0 = int(np.searchsorted(ts, edges[0] - tol, side="left"))
    i1 = int(np.searchsorted(ts, edges[-1] + tol, side="right"))
    t_in, v_in = ts[i0:i1], v[i0:i1]
    # Sample i's cumulative weight at an edge is 0 above it, 1/2 within tol of it and 1
    # below it; its weight in sorted interval k is the increase from edge k to k + 1:
    # 1/2 in each of the two intervals beside an edge it lies on, else 1 in the interval
    # holding it.
    first_half = np.searchsorted(edges + tol, t_in, side="left") - 1
    first_full = np.searchsorted(edges - tol, t_in, side="right") - 1
    split = first_full != first_half
    w_first = np.where(split, 0.5, 1.0)
    ok_first = (first_half >= 0) & (first_half < tt.size)
    ok_second = split & (first_full >= 0) & (first_full < tt.size)
    b1, w1 = first_half[ok_first], w_first[ok_first]
    b2 = first_full[ok_second]
    sums = np.empty((tt.size, v.shape[1]))
    counts = np.empty_like(sums)
    for c in range(v.shape[1]):
        fin = np.isfinite(v_in[:, c])
        x = np.where(fin, v_in[:, c], 0.0)
        # per-interval sums (not differences of a running total: no cancellation)
        sums[order, c] = np.bincount(b1, w1 * x[ok_first], minlength=tt.size) + np.bincount(
            b2, 0.5 * x[ok_second], minlength=tt.size
        )
        counts[order, c] = np.bincount(b1, w1 * fin[ok_first], minlength=tt.size) + np.bincount(
            b2, 0.5 * fin[ok_second], minlength=tt.size
        )
    has = counts > 0
    return np.where(has, sums / np.where(has, counts, 1), fallback), has


def _blank_gaps(out, ts, tt, max_gap, where, name) -> None:
    """NaN (in place, where ``where``) for targets strictly inside a gap longer than
    ``max_gap`` between consecutive source samples, with a warning."""
    j = np.clip(np.searchsorted(ts, tt, side="right"), 1, ts.size - 1)
    gap = ts[j] - ts[j - 1]
    inside = (gap > max_gap) & (tt > ts[j - 1]) & (tt < ts[j])
    blank = inside[:, None] & where
    if not blank.any():
        return
    out[blank] = np.nan
    widest = int(np.argmax(np.where(inside, gap, -np.inf)))
    warnings.warn(
        f"{name}: {int(blank.any(axis=1).sum())} target samples fall in gaps between source "
        f"samples longer than max_gap={max_gap:.3g} s (the longest: {gap[widest]:.3g} s "
        f"after {ts[j[widest] - 1]:.6g} s); they are set to NaN, not interpolated (fit with "
        "nan_policy='omit' to leave them out, or raise max_gap)",
        UserWarning,
        stacklevel=3,
    )


# --------------------------------------------------------------------------- events


def detect_movement_onsets(
    trace,
    timestamps,
    cue_times,
    *,
    threshold: float | None = None,
    n_sd: float = 5.0,
    baseline: tuple[float, float] = (-0.5, 0.0),
    search: tuple[float, float] = (0.0, 5.0),
    direction: str = "positive",
    min_duration: float = 0.0,
) -> np.ndarray:
    """Movement onset after each cue from a lever (or other 1-D movement) trace.

    For each cue at time ``c``: the baseline position is the median of the trace in
    ``[c + baseline[0], c + baseline[1])`` (the sample nearest ``c`` if that window is
    empty); the onset is the first time in ``[c + search[0], c + search[1]]`` at which
    the displacement from baseline (signed by ``direction``) reaches ``threshold`` and
    stays at or above it for ``min_duration`` seconds. The crossing time is linearly
    interpolated between the two samples around it.

    Parameters
    ----------
    trace : array_like, shape (T,)
        Lever position (any unit, e.g. mm or V).
    timestamps : array_like, shape (T,)
        Sample times in seconds, strictly increasing.
    cue_times : array_like, shape (n_trials,)
        Cue times in seconds; NaN gives a NaN onset.
    threshold : float, optional
        Displacement threshold in trace units. Default: ``n_sd`` times the robust
        standard deviation (1.4826 x median absolute deviation) of all baseline-window
        samples around their trial baseline.
    n_sd : float, default 5.0
        Multiplier for the automatic threshold.
    baseline : (float, float), default (-0.5, 0.0)
        Baseline window relative to the cue, seconds.
    search : (float, float), default (0.0, 5.0)
        Search window relative to the cue, seconds.
    direction : {"positive", "negative", "both"}, default "positive"
        Sign of the displacement that counts as movement (a push that increases the
        reading is "positive"; "both" uses the absolute displacement).
    min_duration : float, default 0.0
        Minimum time (seconds) the displacement must stay above threshold.

    Returns
    -------
    numpy.ndarray, shape (n_trials,), float64
        Onset times in seconds; NaN where no movement was found.
    """
    x = np.asarray(trace, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"trace must be 1-D, got shape {x.shape}")
    t = _as_times(timestamps, "timestamps")
    if t.size != x.size:
        raise ValueError(f"trace has {x.size} samples but timestamps has {t.size}")
    cues = np.atleast_1d(np.asarray(cue_times, dtype=np.float64))
    if direction not in ("positive", "negative", "both"):
        raise ValueError(f"direction must be 'positive', 'negative' or 'both', got {direction!r}")
    if not (baseline[0] < baseline[1] and search[0] < search[1]):
        raise ValueError("baseline and search windows must be (start, stop) with start < stop")

    bases = np.array(
        [_baseline_position(x, t, c, baseline) if np.isfinite(c) else np.nan for c in cues]
    )
    if threshold is None:
        threshold = n_sd * _baseline_robust_sd(x, t, cues, bases, baseline)
    if not (np.isfinite(threshold) and threshold > 0):
        raise ValueError(f"threshold must be > 0, got {threshold!r}")

    onsets = np.full(cues.size, np.nan)
    for k, (cue, base) in enumerate(zip(cues, bases, strict=True)):
        if np.isfinite(cue) and np.isfinite(base):
            displacement, lo = _search_displacement(x, t, cue, base, search, direction)
            onsets[k] = _first_crossing(t, displacement, lo, threshold, min_duration)
    return onsets


def _baseline_position(x: np.ndarray, t: np.ndarray, cue: float, baseline) -> float:
    """Median of the finite trace samples in the baseline window of ``cue`` (trace units).

    The sample nearest the cue (on a tie, the earlier one) when that window holds no
    finite sample.
    """
    lo, hi = np.searchsorted(t, [cue + baseline[0], cue + baseline[1]], side="left")
    seg = x[lo:hi]
    seg = seg[np.isfinite(seg)]
    if seg.size:
        return float(np.median(seg))
    return float(x[_nearest_source_index(t, np.array([cue]))[0]])


def _baseline_robust_sd(x, t, cues, bases, baseline) -> float:
    """Robust standard deviation (1.4826 x MAD, else the SD) of the baseline-window
    samples around their trial baseline, in trace units; raises when it is not > 0."""
    resid = []
    for cue, base in zip(cues, bases, strict=True):
        if not np.isfinite(cue):
            continue
        lo, hi = np.searchsorted(t, [cue + baseline[0], cue + baseline[1]], side="left")
        seg = x[lo:hi] - base
        resid.append(seg[np.isfinite(seg)])
    r = np.concatenate(resid) if resid else np.zeros(0)
    robust_sd = 1.4826 * np.median(np.abs(r - np.median(r))) if r.size else 0.0
    if robust_sd == 0 and r.size > 1:
        robust_sd = float(np.std(r))
    if not robust_sd > 0:
        raise ValueError(
            "cannot set an automatic threshold: the baseline windows are empty or "
            "constant; pass threshold= in trace units"
        )
    return robust_sd


def _search_displacement(x, t, cue, base, search, direction) -> tuple[np.ndarray, int]:
    """Displacement from ``base`` in the search window of ``cue``, signed by ``direction``.

    Returns the displacement (trace units, shape ``(hi - lo,)``, possibly empty) and the
    index ``lo`` of its first sample in ``t``.
    """
    lo = int(np.searchsorted(t, cue + search[0], side="left"))
    hi = int(np.searchsorted(t, cue + search[1], side="right"))
    d = x[lo:hi] - base
    if direction == "negative":
        d = -d
    elif direction == "both":
        d = np.abs(d)
    return d, lo


def _first_crossing(t, d, lo: int, threshold: float, min_duration: float) -> float:
    """Time (s) at which displacement ``d`` (starting at ``t[lo]``) first reaches
    ``threshold`` and stays there ``min_duration`` s, interpolated; NaN if never."""
    hi = lo + d.size
    above = np.where(np.isfinite(d), d >= threshold, False)
    for i in np.flatnonzero(above):
        if min_duration > 0:
            stop = int(np.searchsorted(t, t[lo + i] + min_duration, side="right"))
            if stop > hi or not above[i : stop - lo].all():
                continue
        j = lo + i
        if i > 0 and np.isfinite(d[i - 1]) and d[i - 1] < threshold:
            frac = (threshold - d[i - 1]) / (d[i] - d[i - 1])
            return t[j - 1] + frac * (t[j] - t[j - 1])
        return t[j]
    return np.nan


def align_to_events(
    data,
    timestamps,
    event_times,
    window: tuple[float, float] = (-1.0, 2.0),
    *,
    sampling_rate: float | None = None,
    method: str = "linear",
) -> tuple[np.ndarray, np.ndarray]:
    """Cut windows of data around events (cue, movement onset) on a common time axis.

    Parameters
    ----------
    data : array_like, shape (T, N) or (T,)
        Neural or behavioural samples.
    timestamps : array_like, shape (T,)
        Sample times in seconds, strictly increasing.
    event_times : array_like, shape (n_events,)
        Event times in seconds; NaN events give all-NaN windows.
    window : (float, float), default (-1.0, 2.0)
        Window relative to each event, seconds (inclusive, rounded to whole samples).
    sampling_rate : float, optional
        Rate of the relative time axis in Hz; default: ``1 / median(diff(timestamps))``.
    method : {"linear", "nearest"}, default "linear"
        How data are read at ``event + relative time``.

    Returns
    -------
    aligned : numpy.ndarray, shape (n_events, n_window, N) or (n_events, n_window)
        Data around each event (float64). Window samples more than half a sample
        interval outside the recording are NaN, so events near the edges keep their
        row (aligned with the trials table) but are partly NaN; so are window samples
        inside gaps of the recording longer than 5 sample intervals (e.g. excluded
        frames), which are not interpolated.
    rel_times : numpy.ndarray, shape (n_window,)
        Time of each window sample relative to the event, seconds.
    """
    x, was1d = _as_2d(data, "data")
    t = _as_times(timestamps, "timestamps")
    if t.size != x.shape[0]:
        raise ValueError(f"data has {x.shape[0]} samples but timestamps has {t.size}")
    ev = np.atleast_1d(np.asarray(event_times, dtype=np.float64))
    if ev.ndim != 1:
        raise ValueError("event_times must be 1-D")
    if not window[0] < window[1]:
        raise ValueError(f"window must be (start, stop) with start < stop, got {window!r}")
    if sampling_rate is None:
        if t.size < 2:
            raise ValueError("need >= 2 samples to infer the sampling rate")
        sampling_rate = 1.0 / float(np.median(np.diff(t)))
    if not (np.isfinite(sampling_rate) and sampling_rate > 0):
        raise ValueError(f"sampling_rate must be > 0, got {sampling_rate!r}")
    i0 = int(np.round(window[0] * sampling_rate))
    i1 = int(np.round(window[1] * sampling_rate))
    rel = np.arange(i0, i1 + 1) / sampling_rate
    ok = np.isfinite(ev)
    tq = (ev[ok, None] + rel[None, :]).ravel()
    out = np.full((ev.size, rel.size, x.shape[1]), np.nan)
    if tq.size:
        half = 0.5 / sampling_rate
        with warnings.catch_warnings():  # gaps give NaN windows, as documented
            warnings.filterwarnings("ignore", message="data: .* fall in gaps")
            vals = resample(
                x,
                t,
                tq,
                method="nearest" if method == "nearest" else "linear",
                max_extrapolation=half,
                extrapolate="nan",
                name="data",
            )
        out[ok] = vals.reshape(int(ok.sum()), rel.size, x.shape[1])
    return (out[..., 0] if was1d else out), rel


def exclusion_mask(
    timestamps,
    intervals,
    *,
    margin: float | tuple[float, float] = 0.0,
    frame_duration: float = 0.0,
) -> np.ndarray:
    """Frames to exclude because they overlap given intervals (plus a margin).

    Typical use: light artefacts of optogenetic stimulation leak into the imaging PMT,
    so frames acquired during stimulation (and shortly before/after, for the laser
    ramp and PMT recovery) are excluded.

    Parameters
    ----------
    timestamps : array_like, shape (T,)
        Frame start times in seconds.
    intervals : pandas.DataFrame or array_like, shape (n, 2)
        Intervals in seconds: a table with ``start_time``/``stop_time`` columns or
        ``(start, stop)`` rows.
    margin : float or (float, float), default 0.0
        Seconds added before and after each interval (finite, >= 0).
    frame_duration : float, default 0.0
        Acquisition time of one frame in seconds (finite, >= 0; e.g.
        ``1/frame_rate`` for a raster-scanned frame), so a frame counts as
        overlapping if any part of ``[t, t + frame_duration]`` falls in an interval.

    Returns
    -------
    numpy.ndarray, shape (T,), bool
        True for frames to exclude (pass to ``Session.mask_samples``).

    Raises
    ------
    ValueError
        If an interval is non-finite or has ``stop < start``, or ``margin`` or
        ``frame_duration`` is negative, NaN or infinite.
    """
    t = _as_times(timestamps, "timestamps")
    if hasattr(intervals, "columns"):
        missing = {"start_time", "stop_time"} - set(intervals.columns)
        if missing:
            raise ValueError(f"intervals table lacks column(s) {sorted(missing)}")
        iv = np.column_stack(
            [
                np.asarray(intervals["start_time"], dtype=np.float64),
                np.asarray(intervals["stop_time"], dtype=np.float64),
            ]
        )
    else:
        iv = np.asarray(intervals, dtype=np.float64).reshape(-1, 2)
    if not np.all(np.isfinite(iv)):
        raise ValueError("intervals contain non-finite times")
    if np.any(iv[:, 1] < iv[:, 0]):
        raise ValueError("intervals must have stop_time >= start_time")
    pair = np.asarray(margin, dtype=np.float64)
    if pair.ndim == 0:
        pair = np.r_[pair, pair]
    if pair.shape != (2,) or not (np.all(np.isfinite(pair)) and np.all(pair >= 0)):
        raise ValueError(
            "margin must be a finite number of seconds >= 0 or a (before, after) pair of "
            f"them; got {margin!r}"
        )
    before, after = float(pair[0]), float(pair[1])
    if not (np.isfinite(frame_duration) and frame_duration >= 0):
        raise ValueError(
            f"frame_duration must be a finite number of seconds >= 0; got {frame_duration!r}"
        )
    mask = np.zeros(t.size, dtype=bool)
    for s, e in iv:
        lo = np.searchsorted(t, s - before - frame_duration, side="left")
        hi = np.searchsorted(t, e + after, side="right")
        mask[lo:hi] = True
    return mask
