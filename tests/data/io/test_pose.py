"""DeepLabCut (.h5 / .csv) and SLEAP readers."""

import numpy as np
import pytest

from io_builders import BODYPARTS, dlc_frame, make_sleap, write_dlc
from sharedrep.data.io import DataFormatError, Traces, read_dlc, read_sleap
from sharedrep.data.io.pose import clean_pose


@pytest.mark.parametrize("suffix", [".h5", ".csv"])
def test_dlc_reads_thresholds_and_interpolates(tmp_path, suffix):
    if suffix == ".h5":
        pytest.importorskip("tables")
    df = dlc_frame(100, low={"paw": slice(10, 13), "nose": slice(40, 60)})
    path = write_dlc(df, tmp_path / f"videoDLC{suffix}")
    tr = read_dlc(path, frame_rate=50.0)
    assert isinstance(tr, Traces)
    assert tr.names == [f"{b}_{c}" for b in BODYPARTS for c in "xy"]
    assert tr.units == ["pixels"] * 4
    assert np.allclose(tr.timestamps, np.arange(100) / 50.0)
    scorer = df.columns.get_level_values(0)[0]
    x_true = df[(scorer, "paw", "x")].to_numpy()
    # 3-frame gap interpolated linearly (the true trace is smooth, so close)
    assert np.isfinite(tr.values[:, 0]).all()
    assert np.allclose(tr.values[:, 0], x_true, atol=0.5)
    assert np.array_equal(tr.values[:10, 0], x_true[:10])
    # 20-frame gap is too long: stays NaN
    assert np.isnan(tr.values[40:60, 2]).all() and np.isfinite(tr.values[:40, 2]).all()
    assert tr.info["n_interpolated"] == 6 and tr.info["fraction_missing"]["nose"] == 0.2
    assert tr.quality.shape == (100, 4)
    # without thresholding nothing is missing; without time base timestamps is None
    raw = read_dlc(path, min_likelihood=None)
    assert np.isfinite(raw.values).all() and raw.timestamps is None
    sub = read_dlc(path, bodyparts=["nose"], max_gap=30, timestamps=np.arange(100) * 0.02)
    assert sub.names == ["nose_x", "nose_y"] and np.isfinite(sub.values).all()


def test_dlc_h5_and_csv_agree(tmp_path):
    pytest.importorskip("tables")
    df = dlc_frame(60, low={"paw": slice(5, 7)})
    a = read_dlc(write_dlc(df, tmp_path / "a.h5"))
    b = read_dlc(write_dlc(df, tmp_path / "a.csv"))
    assert np.allclose(a.values, b.values, equal_nan=True)


def test_dlc_multi_animal(tmp_path):
    df = dlc_frame(30, individuals=["mouse1", "mouse2"])
    p = write_dlc(df, tmp_path / "ma.csv")
    with pytest.raises(ValueError, match="individuals \\['mouse1', 'mouse2'\\]"):
        read_dlc(p)
    tr = read_dlc(p, individual="mouse2")
    assert tr.values.shape == (30, 4) and tr.info["individual"] == "mouse2"
    with pytest.raises(DataFormatError, match="no individual 'mouse3'"):
        read_dlc(p, individual="mouse3")


def test_dlc_all_low_likelihood_is_an_error(tmp_path):
    df = dlc_frame(40, low={"nose": slice(None)})
    p = write_dlc(df, tmp_path / "bad.csv")
    with pytest.raises(
        DataFormatError, match="no frame has likelihood >= 0.6.*'nose' \\(max 0.1\\)"
    ) as ei:
        read_dlc(p)
    assert str(p) in str(ei.value)


def test_dlc_bad_inputs(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_dlc(tmp_path / "missing.h5")
    p = tmp_path / "x.csv"
    p.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(DataFormatError, match="not a DeepLabCut CSV"):
        read_dlc(p)
    q = tmp_path / "x.h5"
    q.write_bytes(b"not hdf5 at all" * 10)
    with pytest.raises(DataFormatError, match="no HDF5 signature"):
        read_dlc(q)
    r = tmp_path / "x.txt"
    r.write_text("hello")
    with pytest.raises(DataFormatError, match="unknown DeepLabCut file type"):
        read_dlc(r)
    e = tmp_path / "empty.csv"
    e.write_text("")
    with pytest.raises(DataFormatError, match="empty"):
        read_dlc(e)
    df = dlc_frame(10)
    df = df.drop(columns="likelihood", level=2)
    with pytest.raises(DataFormatError, match="coords level"):
        read_dlc(write_dlc(df, tmp_path / "nolk.csv"))
    h = dlc_frame(0)
    with pytest.raises(DataFormatError, match="no frames"):
        read_dlc(write_dlc(h, tmp_path / "noframes.csv"))
    with pytest.raises(DataFormatError, match="body part\\(s\\) \\['tail'\\]"):
        read_dlc(write_dlc(dlc_frame(10), tmp_path / "ok.csv"), bodyparts=["tail"])
    with pytest.raises(DataFormatError, match="10 frames but 3 timestamps"):
        read_dlc(tmp_path / "ok.csv", timestamps=[0, 1, 2])


def test_clean_pose_direct():
    pos = np.zeros((10, 1, 2))
    with pytest.raises(DataFormatError, match="no finite coordinate"):
        clean_pose(np.full((10, 1, 2), np.nan), None)
    out, info = clean_pose(pos, np.ones((10, 1)))
    assert info["n_below_threshold"] == 0 and np.isfinite(out).all()


def test_sleap(tmp_path):
    pytest.importorskip("sleap_io")
    p = tmp_path / "pred.slp"
    make_sleap(p, T=30)
    tr = read_sleap(p, frame_rate=30.0)
    assert tr.names == ["paw_x", "paw_y", "nose_x", "nose_y"]
    assert tr.values.shape == (30, 4)
    assert np.allclose(tr.values[:, 0], 10.0 + np.arange(30))
    assert np.allclose(tr.timestamps, np.arange(30) / 30.0)
    q = tmp_path / "two.slp"
    make_sleap(q, T=10, tracks=2)
    with pytest.raises(ValueError, match="pass track="):
        read_sleap(q)
    assert np.allclose(read_sleap(q, track="animal1").values[:, 0], 110.0 + np.arange(10))
    with pytest.raises(DataFormatError, match="no track 'x'"):
        read_sleap(q, track="x")
    z = tmp_path / "junk.slp"
    z.write_bytes(b"\x00" * 100)
    with pytest.raises(DataFormatError, match="junk.slp"):
        read_sleap(z)


def _write_slp(path, frames, *, tracks=None):
    """Write a 2-node (nose, paw) .slp; ``frames`` maps frame index to a list of
    ``(kind, value, score)`` instances, kind "user" or "pred", points all ``value``."""
    import sleap_io as sio

    skel = sio.Skeleton(nodes=["nose", "paw"])
    video = sio.Video(filename="video.mp4", open_backend=False)
    trk = [sio.Track(name=n) for n in tracks] if tracks else []
    lfs = []
    for f, insts in frames.items():
        objs = []
        for kind, value, score in insts:
            pts = np.full((2, 2), float(value))
            track = trk[0] if trk else None
            if kind == "user":
                objs.append(sio.Instance.from_numpy(pts, skeleton=skel, track=track))
            else:
                objs.append(
                    sio.PredictedInstance.from_numpy(
                        pts, point_scores=np.full(2, score), score=1.0, skeleton=skel, track=track
                    )
                )
        lfs.append(sio.LabeledFrame(video=video, frame_idx=f, instances=objs))
    sio.save_slp(
        sio.Labels(labeled_frames=lfs, videos=[video], skeletons=[skel], tracks=trk), str(path)
    )


def test_sleap_user_instances_only(tmp_path):
    pytest.importorskip("sleap_io")
    p = tmp_path / "user.slp"
    _write_slp(p, {f: [("user", f, None)] for f in range(20)})
    tr = read_sleap(p, min_score=0.5)  # proofread points have score 1.0: none dropped
    assert tr.names == ["nose_x", "nose_y", "paw_x", "paw_y"]
    assert np.array_equal(tr.values[:, 0], np.arange(20.0))
    assert np.isfinite(tr.values).all() and np.all(tr.quality == 1.0)
    assert tr.info["n_below_threshold"] == 0


@pytest.mark.parametrize("tracks", [None, ["m1"]])
def test_sleap_user_instances_preferred_over_predicted(tmp_path, tracks):
    pytest.importorskip("sleap_io")
    p = tmp_path / "mixed.slp"
    frames = {f: [("pred", f, 0.9)] for f in range(40)}
    for f in range(10, 20):  # proofread frames: user only
        frames[f] = [("user", f, None)]
    frames[25] = [("pred", -1.0, 0.2), ("user", 25, None)]  # corrected prediction
    _write_slp(p, frames, tracks=tracks)
    tr = read_sleap(p, min_score=0.5)
    assert np.array_equal(tr.values[:, 0], np.arange(40.0))
    assert tr.info["fraction_missing"] == {"nose": 0.0, "paw": 0.0}
    assert tr.quality[25, 0] == 1.0 and tr.quality[5, 0] == pytest.approx(0.9)


def test_sleap_without_instances_is_an_error(tmp_path):
    pytest.importorskip("sleap_io")
    p = tmp_path / "empty.slp"
    _write_slp(p, {f: [] for f in range(5)})
    with pytest.raises(ValueError, match=r"empty\.slp: SLEAP file has no instances"):
        read_sleap(p)


def test_sleap_bodyparts(tmp_path):
    pytest.importorskip("sleap_io")
    p = tmp_path / "pred.slp"
    make_sleap(p, T=10)
    tr = read_sleap(p, bodyparts=["nose"])
    assert tr.names == ["nose_x", "nose_y"] and tr.values.shape == (10, 2)
    assert tr.info["bodyparts"] == ["nose"] and list(tr.info["fraction_missing"]) == ["nose"]
    with pytest.raises(DataFormatError, match=r"pred\.slp: body part\(s\) \['tail'\] not in"):
        read_sleap(p, bodyparts=["tail"])


@pytest.mark.parametrize("suffix", [".h5", ".csv"])
def test_dlc_times_follow_the_frame_numbers_of_the_index(tmp_path, suffix):
    if suffix == ".h5":
        pytest.importorskip("tables")
    df = dlc_frame(100)
    gap = df.drop(index=range(10, 20))  # rows of frames 10..19 dropped
    tr = read_dlc(write_dlc(gap, tmp_path / f"gap{suffix}"), frame_rate=10.0, start_time=1.0)
    frames = np.r_[0:10, 20:100]
    np.testing.assert_allclose(tr.timestamps, 1.0 + frames / 10.0)
    assert np.allclose(
        tr.values, read_dlc(write_dlc(df, tmp_path / f"all{suffix}")).values[frames]
    )
    segment = df.set_axis(df.index + 50)  # a video segment starting at frame 50
    tr = read_dlc(write_dlc(segment, tmp_path / f"seg{suffix}"), frame_rate=10.0)
    np.testing.assert_allclose(tr.timestamps, (np.arange(100) + 50) / 10.0)
    # an index that is not frame numbers (image paths): row positions
    named = gap.set_axis([f"labeled-data/v/img{f:03d}.png" for f in frames])
    tr = read_dlc(write_dlc(named, tmp_path / f"img{suffix}"), frame_rate=10.0)
    np.testing.assert_allclose(tr.timestamps, np.arange(90) / 10.0)


@pytest.mark.parametrize(
    ("frames", "what"),
    [
        ([0, 1, 2, 2, 3, 4], "row 3 has frame 2 after frame 2 \\(duplicated\\)"),
        ([0, 1, 5, 3, 6, 7], "row 3 has frame 3 after frame 5 \\(decreasing\\)"),
    ],
)
def test_dlc_duplicated_or_unsorted_frame_numbers_are_refused(tmp_path, frames, what):
    p = write_dlc(dlc_frame(6).set_axis(frames), tmp_path / "dup.csv")
    for kwargs in ({"frame_rate": 10.0}, {}):
        with pytest.raises(DataFormatError, match=f"dup.csv: frame numbers.*{what}"):
            read_dlc(p, **kwargs)


def test_dlc_csv_with_byte_order_mark(tmp_path):
    ok = write_dlc(dlc_frame(20), tmp_path / "ok.csv")
    bom = tmp_path / "bom.csv"
    bom.write_text("\ufeff" + ok.read_text(encoding="utf-8"), encoding="utf-8")
    a = read_dlc(ok, frame_rate=10.0)
    b = read_dlc(bom, frame_rate=10.0)
    assert b.names == a.names and b.info["scorer"] == a.info["scorer"]
    np.testing.assert_array_equal(b.values, a.values)
    np.testing.assert_array_equal(b.timestamps, a.timestamps)


def test_dlc_gaps_are_counted_in_frames_across_dropped_rows(tmp_path):
    # frames 10, 11 below threshold and the rows of frames 12..14 dropped from the file:
    # the gap between the valid frames 9 and 15 is 5 frames, not 2 rows
    df = dlc_frame(40, low={"paw": slice(10, 12)})
    path = write_dlc(df.drop(index=range(12, 15)), tmp_path / "dropped.csv")
    scorer = df.columns.get_level_values(0)[0]
    x = df[(scorer, "paw", "x")].to_numpy()
    short = read_dlc(path, max_gap=4)
    assert np.isnan(short.values[10:12, 0]).all() and short.info["n_interpolated"] == 0
    filled = read_dlc(path, max_gap=5)
    expected = np.interp([10, 11], [9, 15], x[[9, 15]])  # linear in frames, not rows
    np.testing.assert_allclose(filled.values[10:12, 0], expected)
    assert filled.info["n_interpolated"] == 4  # 2 frames x (x, y)
