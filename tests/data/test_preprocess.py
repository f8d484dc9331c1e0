"""Preprocessing: dF/F, bouton merging, resampling, onsets, alignment, exclusion masks."""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.ndimage import percentile_filter

from sharedrep.data import preprocess


def test_neuropil_subtract():
    F = np.full((10, 2), 100.0)
    N = np.full((10, 2), 20.0)
    assert np.allclose(preprocess.neuropil_subtract(F, N, 0.5), 90.0)
    with pytest.raises(ValueError, match="shape"):
        preprocess.neuropil_subtract(F, N[:, :1])
    with pytest.raises(ValueError, match="coef"):
        preprocess.neuropil_subtract(F, N, -1)


def test_running_percentile_matches_scipy_when_dense():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3)).cumsum(axis=0)
    ours = preprocess.running_percentile(x, 31, 20.0, step=1)
    ref = percentile_filter(x, 20.0, size=(31, 1), mode="nearest")
    # np.percentile interpolates between order statistics, scipy picks one: close
    assert np.max(np.abs(ours - ref)) < 0.5 * np.std(np.diff(x, axis=0)) * 3
    coarse = preprocess.running_percentile(x, 31, 20.0)  # strided + interpolated
    assert coarse.shape == x.shape
    assert np.corrcoef(coarse[:, 0], ours[:, 0])[0, 1] > 0.99


def test_dff_recovers_transients_on_drifting_baseline():
    fs = 10.0
    T = 3000
    t = np.arange(T) / fs
    base = 100 + 20 * t / t[-1]  # slow drift (bleaching in reverse)
    trans = np.zeros(T)
    trans[::200] = 1.0
    kern = np.exp(-np.arange(30) / 5.0)
    dff_true = np.convolve(trans, kern)[:T]
    F = base * (1 + dff_true)
    neu = np.full(T, 10.0)
    out, f0 = preprocess.dff(
        (F + 0.7 * neu)[:, None],
        sampling_rate=fs,
        window_s=30,
        percentile=8,
        neuropil=neu[:, None],
        return_baseline=True,
    )
    assert out.shape == (T, 1)
    assert np.allclose(f0[:, 0], base, rtol=0.02)
    assert np.max(np.abs(out[:, 0] - dff_true)) < 0.05
    with pytest.raises(ValueError, match="baseline F0 is <= 0 for 1 unit"):
        preprocess.dff(-np.ones((100, 1)) + np.c_[np.zeros(100)], sampling_rate=fs)
    with pytest.raises(ValueError, match="NaN"):
        preprocess.dff(np.full((10, 1), np.nan), sampling_rate=fs)


def test_merge_boutons_groups_correlated_traces():
    rng = np.random.default_rng(1)
    T = 2000
    axons = rng.normal(size=(T, 3))
    # 3 boutons on axon 0, 2 on axon 1, 1 on axon 2, plus a constant trace
    members = [0, 0, 1, 2, 0, 1]
    X = np.column_stack([axons[:, a] + 0.3 * rng.normal(size=T) for a in members])
    X = np.column_stack([X, np.zeros(T)])
    merged, labels = preprocess.merge_boutons(X, threshold=0.7)
    assert list(labels) == [0, 0, 1, 2, 0, 1, 3]
    assert merged.shape == (T, 4)
    assert np.allclose(merged[:, 0], X[:, [0, 1, 4]].mean(axis=1))
    # a threshold above every correlation keeps boutons separate
    _, lab = preprocess.merge_boutons(X, threshold=0.99)
    assert np.unique(lab).size == 7
    with pytest.raises(ValueError, match="threshold"):
        preprocess.merge_boutons(X, threshold=1.5)
    with pytest.raises(ValueError, match="NaN"):
        preprocess.merge_boutons(np.full((10, 2), np.nan))


def test_interpolate_gaps():
    x = np.arange(20, dtype=float)
    y = x.copy()
    y[[0, 1]] = np.nan  # edge: stays NaN
    y[5:8] = np.nan  # 3-sample gap: filled
    y[10:16] = np.nan  # 6-sample gap: stays NaN
    out, n = preprocess.interpolate_gaps(y, max_gap=3)
    assert n == 3
    assert np.allclose(out[5:8], x[5:8])
    assert np.isnan(out[[0, 1]]).all() and np.isnan(out[10:16]).all()
    assert np.isnan(y[5])  # input untouched


# rows of a 30 Hz pose file with frames 4 and 5 dropped; frames 3 and 6 are missing
# too, so the run of 2 missing rows (3, 4) spans 4 frames (3, 4, 5, 6) between the
# valid frames 2 and 7
_DROPPED_FRAMES = np.array([0, 1, 2, 3, 6, 7, 8, 9])


def _dropped_frame_trace():
    v = 10.0 * _DROPPED_FRAMES  # linear in time: 10 per frame
    v[[3, 4]] = np.nan
    return v


@pytest.mark.parametrize("jitter", [0.0, 0.2])  # jitter in frame intervals
@pytest.mark.parametrize("how", ["timestamps", "frames", "both"])
def test_interpolate_gaps_counts_frames_not_rows(how, jitter):
    rng = np.random.default_rng(3)
    t = 10800.0 + (_DROPPED_FRAMES + rng.uniform(-jitter, jitter, 8)) / 30.0
    kw = {
        "timestamps": {"timestamps": t},
        "frames": {"frames": _DROPPED_FRAMES},
        "both": {"timestamps": t, "frames": _DROPPED_FRAMES},
    }[how]
    v = _dropped_frame_trace()
    # 4 frames > max_gap=3: stays NaN (counting the 2 rows filled it)
    out, n = preprocess.interpolate_gaps(v, 3, **kw)
    assert n == 0
    np.testing.assert_array_equal(np.isnan(out), np.isnan(v))
    # max_gap=4 fills it, linearly in time (or frame number) between frames 2 and 7:
    # by hand 20 + 50 * (3 - 2) / 5 = 30 and 20 + 50 * (6 - 2) / 5 = 60 (row-index
    # interpolation would give 36.7 and 53.3)
    out, n = preprocess.interpolate_gaps(v, 4, **kw)
    assert n == 2
    x = t if how != "frames" else _DROPPED_FRAMES
    expected = 20.0 + 50.0 * (x[[3, 4]] - x[2]) / (x[5] - x[2])
    np.testing.assert_allclose(out[[3, 4]], expected, rtol=0, atol=1e-9)
    if jitter == 0.0:
        np.testing.assert_allclose(out[[3, 4]], [30.0, 60.0], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(out[~np.isnan(v)], v[~np.isnan(v)])


def test_interpolate_gaps_unchanged_for_consecutive_frames():
    rng = np.random.default_rng(4)
    T = 300
    v = rng.normal(size=(T, 2))
    miss = rng.random((T, 2)) < 0.3  # runs of all lengths
    v[miss] = np.nan
    v[0, 0] = v[-1, 1] = np.nan  # edge runs
    ref, n_ref = preprocess.interpolate_gaps(v, 3)
    # independent count: an interior run is filled iff it has at most 3 rows
    n_hand = 0
    for j in range(2):
        m = np.isnan(v[:, j])
        ok = np.flatnonzero(~m)
        i = ok[0]
        for nxt in ok[1:]:
            n_hand += (nxt - i - 1) if nxt - i - 1 <= 3 else 0
            i = nxt
    assert n_ref == n_hand > 0
    frames = 1000 + np.arange(T)
    t = 10800.0 + (np.arange(T) + rng.uniform(-0.2, 0.2, T)) / 30.0
    got, n = preprocess.interpolate_gaps(v, 3, frames=frames)
    np.testing.assert_array_equal(got, ref)
    assert n == n_ref
    got, n = preprocess.interpolate_gaps(v, 3, timestamps=t)
    assert n == n_ref
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    # a run is never shorter than its missing rows, even where the times are closer
    # together than the frame interval: 3 rows inside 1 interval, max_gap=2
    t2 = np.array([0, 1, 2, 3, 3.25, 3.5, 3.75, 4, 5, 6, 7], dtype=float)
    w = np.arange(11.0)
    w[4:7] = np.nan
    out, n = preprocess.interpolate_gaps(w, 2, timestamps=t2)
    assert n == 0 and np.isnan(out[4:7]).all()


def test_interpolate_gaps_rejects_invalid_timestamps_and_frames():
    v = _dropped_frame_trace()
    t = _DROPPED_FRAMES / 30.0
    bad_t = [
        (np.r_[t[:2], np.nan, t[3:]], "timestamps contains non-finite"),
        (np.r_[t[:2], np.inf, t[3:]], "timestamps contains non-finite"),
        (t[::-1], "timestamps must be strictly increasing"),
        (np.r_[t[:3], t[2], t[4:]], "timestamps must be strictly increasing"),
        (t[:-1], r"timestamps must have shape \(8,\)"),
    ]
    for ts, msg in bad_t:
        with pytest.raises(ValueError, match=msg):
            preprocess.interpolate_gaps(v, 3, timestamps=ts)
    bad_f = [
        (np.r_[0, 1, 2, 3, 6, 6, 8, 9], "frames must be strictly increasing"),
        (_DROPPED_FRAMES + 0.5 * (np.arange(8) == 4), r"frames must be integer .*index 4"),
        (np.r_[0, 1, np.nan, 3, 6, 7, 8, 9], "frames contains non-finite"),
        (_DROPPED_FRAMES[:, None], r"frames must have shape \(8,\)"),
    ]
    for fr, msg in bad_f:
        with pytest.raises(ValueError, match=msg):
            preprocess.interpolate_gaps(v, 3, frames=fr)


def test_resample_linear_nearest_mean_and_extrapolation():
    ts = np.arange(0, 10, 0.01)
    v = np.column_stack([2 * ts + 1, np.sin(ts)])
    tt = np.arange(0.05, 9.9, 1 / 30)
    lin = preprocess.resample(v, ts, tt)
    assert np.allclose(lin[:, 0], 2 * tt + 1)
    near = preprocess.resample(v, ts, tt, method="nearest")
    assert np.max(np.abs(near[:, 0] - (2 * tt + 1))) <= 0.01 + 1e-9
    mean = preprocess.resample(v, ts, tt, method="mean")
    assert np.allclose(mean[:, 0], 2 * tt + 1, atol=0.02)
    with pytest.raises(ValueError, match="lie outside it"):
        preprocess.resample(v, ts, np.array([-1.0, 5.0]))
    out = preprocess.resample(v, ts, np.array([-1.0, 5.0, 9.995]), extrapolate="nan")
    assert np.isnan(out[0]).all() and np.isfinite(out[1:]).all()
    held = preprocess.resample(v, ts, np.array([-1.0]), extrapolate="nearest")
    assert np.allclose(held, v[0])
    # NaN propagates only to neighbours
    w = v[:, 0].copy()
    w[500] = np.nan
    r = preprocess.resample(w, ts, np.array([4.995, 5.0, 6.0]))
    assert np.isnan(r[0]) and np.isnan(r[1]) and np.isfinite(r[2])
    with pytest.raises(ValueError, match="strictly increasing"):
        preprocess.resample(v, ts[::-1], tt)
    with pytest.raises(ValueError, match="samples but"):
        preprocess.resample(v[:-1], ts, tt)


def test_resample_mean_does_not_depend_on_the_order_of_the_targets():
    ts = np.linspace(0, 10, 1001)
    v = np.sin(ts)
    tt = np.array([5.0, 1.0, 3.0, 7.5])
    order = np.argsort(tt)
    got = preprocess.resample(v, ts, tt, method="mean")
    ref = preprocess.resample(v, ts, tt[order], method="mean")
    np.testing.assert_array_equal(got[order], ref)
    # each target averages the samples between the midpoints to its sorted neighbours;
    # the samples on those midpoints (2.0 s and 4.0 s, indices 200 and 400) count half
    inside = v[201:400].sum() + 0.5 * (v[200] + v[400])
    np.testing.assert_allclose(got[2], inside / 200.0, rtol=1e-12)


@pytest.mark.parametrize("t0", [0.0, 10800.0])  # a 3 h offset: edges rounded, not exact
@pytest.mark.parametrize(
    ("fs", "ft"), [(60, 30), (100, 50), (90, 30), (120, 30), (100, 40)]
)  # source / target rate ratios 2, 2, 3, 4 and 2.5
def test_resample_mean_of_a_ramp_is_centred_on_the_targets(fs, ft, t0):
    # every target interval lies symmetrically about its target on the source grid, so
    # the average of a ramp (value = time since t0) is the ramp at the target time
    ts = t0 + np.arange(20 * fs) / fs
    tt = t0 + np.arange(1 * ft, 19 * ft) / ft
    out = preprocess.resample(np.arange(20 * fs) / fs, ts, tt, method="mean")
    np.testing.assert_allclose(out, np.arange(1 * ft, 19 * ft) / ft, rtol=0, atol=1e-12)


@pytest.mark.parametrize("t0", [0.0, 10800.0])
@pytest.mark.parametrize(("fs", "ft"), [(60, 30), (120, 30), (100, 40), (100, 30)])
def test_resample_mean_matches_the_exact_box_average(fs, ft, t0):
    # exact reference in rational arithmetic: target j / ft averages the source samples
    # k / fs strictly inside [(2j - 1) / (2 ft), (2j + 1) / (2 ft)] with weight 1 and
    # those on its edges with weight 1/2, so the weight per interval never jitters
    from fractions import Fraction

    n_src, js = 4 * fs, np.arange(1 * ft, 3 * ft)
    vals = np.random.default_rng(fs + ft).normal(size=n_src)
    ref = []
    for j in js:
        lo, hi = Fraction(2 * int(j) - 1, 2 * ft), Fraction(2 * int(j) + 1, 2 * ft)
        num = den = Fraction(0)
        for k in range(n_src):
            tk = Fraction(k, fs)
            w = Fraction(1) if lo < tk < hi else Fraction(1, 2) if tk in (lo, hi) else 0
            num += w * Fraction(float(vals[k]))
            den += w
        ref.append(float(num / den))
    out = preprocess.resample(vals, t0 + np.arange(n_src) / fs, t0 + js / ft, method="mean")
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-12)


def test_resample_rejects_invalid_max_extrapolation():
    ts = np.arange(10.0)
    tt = np.array([-50.0, 0.0, 5.0, 9.0, 60.0])
    for bad in (np.nan, -1.0, np.inf):
        for how in ("error", "nan", "nearest"):
            with pytest.raises(ValueError, match=rf"max_extrapolation .* got {bad!r}"):
                preprocess.resample(ts, ts, tt, max_extrapolation=bad, extrapolate=how)
    # 0 is valid: targets on the first and last samples are inside, the others not
    out = preprocess.resample(ts, ts, tt, max_extrapolation=0.0, extrapolate="nan")
    np.testing.assert_array_equal(out, [np.nan, 0.0, 5.0, 9.0, np.nan])


@pytest.mark.parametrize("method", ["linear", "nearest", "mean"])
def test_resample_leaves_dropped_samples_missing(method):
    ts = np.arange(0, 20, 0.01)
    keep = ~((ts > 5) & (ts < 8))  # 3 s of samples dropped
    ts, v = ts[keep], np.sin(ts[keep])
    tt = np.arange(0, 19.9, 1 / 30)
    with pytest.warns(UserWarning, match=r"lever: 89 target samples fall in gaps .* 3 s"):
        out = preprocess.resample(v, ts, tt, method=method, name="lever")
    in_gap = (tt > ts[ts <= 5][-1]) & (tt < ts[ts >= 8][0])
    assert np.isnan(out[in_gap]).all() and np.isfinite(out[~in_gap]).all()
    # a gap up to max_gap is interpolated (linear: exactly between its edge samples)
    wide = preprocess.resample(v, ts, tt, method="linear", max_gap=3.1)
    assert np.isfinite(wide).all()
    # short gaps (a few dropped samples, jitter) are interpolated by default
    few = np.delete(np.arange(0, 20, 0.01), np.arange(500, 503))
    assert np.isfinite(preprocess.resample(np.sin(few), few, tt, method=method)).all()
    with pytest.raises(ValueError, match="max_gap"):
        preprocess.resample(v, ts, tt, max_gap=-1.0)


def test_detect_movement_onsets():
    t = np.arange(0, 30, 0.01)
    cues = np.array([2.0, 8.0, 14.0, 20.0])
    delays = np.array([0.3, 0.5, 0.7, np.nan])  # last trial: no movement
    x = np.zeros_like(t)
    for c, d in zip(cues, delays, strict=True):
        if np.isfinite(d):
            x += np.clip((t - c - d) / 0.1, 0, 1) * (t < c + d + 1.0) * 4.0
    on = preprocess.detect_movement_onsets(x, t, cues, threshold=1.0)
    # threshold 1 mm on a 4 mm / 0.1 s ramp is crossed 25 ms after the ramp starts
    assert np.allclose(on[:3], cues[:3] + delays[:3] + 0.025, atol=0.002)
    assert np.isnan(on[3])
    noisy = x + 0.05 * np.random.default_rng(0).normal(size=t.size)
    auto = preprocess.detect_movement_onsets(noisy, t, cues)
    assert np.allclose(auto[:3], cues[:3] + delays[:3], atol=0.05)
    neg = preprocess.detect_movement_onsets(-x, t, cues, threshold=1.0, direction="negative")
    assert np.allclose(neg[:3], on[:3])
    with pytest.raises(ValueError, match="automatic threshold"):
        preprocess.detect_movement_onsets(np.zeros_like(t), t, cues)
    with pytest.raises(ValueError, match="direction"):
        preprocess.detect_movement_onsets(x, t, cues, threshold=1, direction="up")


@pytest.mark.parametrize("cue", [1.3, 1.5])  # nearest sample t=1 s; a tie goes to it too
def test_detect_movement_onsets_empty_baseline_uses_the_sample_nearest_the_cue(cue):
    t = np.arange(0.0, 10.0, 1.0)  # 1 Hz: the baseline window holds no sample
    x = np.zeros_like(t)
    x[2:] = 3.0  # pushed from t=2 s on
    on = preprocess.detect_movement_onsets(
        x, t, [cue], threshold=1.0, baseline=(-0.25, -0.05), search=(0, 3)
    )
    # baseline x[t=1] = 0; the first search sample, t=2 s, is displaced by 3 >= 1
    np.testing.assert_array_equal(on, [2.0])


def test_align_to_events():
    fs = 20.0
    t = np.arange(0, 20, 1 / fs)
    data = np.column_stack([t, 2 * t])
    ev = np.array([5.0, 10.0, 19.5, np.nan])
    a, rel = preprocess.align_to_events(data, t, ev, window=(-1.0, 2.0))
    assert a.shape == (4, 61, 2) and rel.shape == (61,)
    assert rel[0] == pytest.approx(-1.0) and rel[-1] == pytest.approx(2.0)
    assert np.allclose(a[0, :, 0], 5.0 + rel)
    assert np.allclose(a[1, :, 1], 2 * (10.0 + rel))
    assert np.isnan(a[2, -1]).all() and np.isfinite(a[2, 0]).all()  # runs past the end
    assert np.isnan(a[3]).all()
    one, _ = preprocess.align_to_events(t, t, [5.0], window=(0, 1))
    assert one.shape == (1, 21)
    # excluded frames (a 2 s hole): windows read NaN there instead of interpolating
    keep = (t < 6.0) | (t >= 8.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # documented behaviour, not a warning
        holed, _ = preprocess.align_to_events(data[keep], t[keep], [5.0], window=(-1.0, 2.0))
    before, after = t[keep][t[keep] < 6.0].max(), t[keep][t[keep] >= 8.0].min()
    in_hole = (5.0 + rel > before) & (5.0 + rel < after)
    assert np.isnan(holed[0, in_hole]).all()
    np.testing.assert_allclose(holed[0, ~in_hole], a[0, ~in_hole])


def test_exclusion_mask():
    t = np.arange(0, 10, 0.1)
    iv = pd.DataFrame({"start_time": [2.0], "stop_time": [3.0]})
    m = preprocess.exclusion_mask(t, iv)
    assert np.allclose(t[m][[0, -1]], [2.0, 3.0])
    m2 = preprocess.exclusion_mask(t, iv, margin=(0.2, 0.5), frame_duration=0.1)
    assert t[m2][0] == pytest.approx(1.7) and t[m2][-1] == pytest.approx(3.5)
    m3 = preprocess.exclusion_mask(t, np.array([[2.0, 3.0], [8.0, 8.05]]))
    assert m3.sum() == m.sum() + 1
    with pytest.raises(ValueError, match="stop_time >= start_time"):
        preprocess.exclusion_mask(t, [[3.0, 2.0]])
    with pytest.raises(ValueError, match="lacks column"):
        preprocess.exclusion_mask(t, pd.DataFrame({"start": [1.0]}))


def test_exclusion_mask_rejects_invalid_margin_and_frame_duration():
    t = np.arange(20) / 10.0
    iv = [[0.5, 0.7]]
    for bad in (np.nan, -0.1, np.inf, (0.1, np.nan), (np.nan, 0.1), (-0.1, 0.1), (0.1,)):
        with pytest.raises(ValueError, match=r"margin must be .* got"):
            preprocess.exclusion_mask(t, iv, margin=bad)
    for bad in (np.nan, -0.1, np.inf):
        with pytest.raises(ValueError, match=rf"frame_duration must be .* got {bad!r}"):
            preprocess.exclusion_mask(t, iv, frame_duration=bad)
    # valid values still work: [0.45 - 0.1, 0.7 + 0.25] holds frames 0.4 .. 0.9 s
    m = preprocess.exclusion_mask(t, iv, margin=(0.05, 0.25), frame_duration=0.1)
    np.testing.assert_array_equal(np.flatnonzero(m), [4, 5, 6, 7, 8, 9])
