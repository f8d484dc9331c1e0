"""Files written the way the labs' tools write them: each is read correctly or refused
with a message naming the file, never silently misread.

suite2p plane / ``combined`` folders, DeepLabCut tables (multi-animal, level orders,
likelihood threshold), SLEAP analysis HDF5 (SLEAP's MATLAB axis order), lever traces
(time units, orientation) and behaviour that ends a few frames before the imaging.
"""

import numpy as np
import pandas as pd
import pytest

from io_builders import dlc_frame, make_suite2p, write_dlc
from sharedrep.data.io import DataFormatError, read_dlc, read_sleap, read_suite2p, read_trace

FS = 30.0


# --------------------------------------------------------------------------- suite2p


def test_suite2p_dff_subtracts_0_7_times_the_neuropil(tmp_path):
    # F = 100 + 0.7 * Fneu + transients: the corrected trace has baseline 100 exactly
    rng = np.random.default_rng(0)
    T = 300
    neu = 50 + 10 * rng.random((2, T))
    bump = np.zeros((2, T))
    bump[:, 100:110] = 40.0
    d = tmp_path / "plane0"
    make_suite2p(d, N=2, T=T, n_noncell=0)
    np.save(d / "F.npy", (100 + 0.7 * neu + bump).astype(np.float32))
    np.save(d / "Fneu.npy", neu.astype(np.float32))
    s = read_suite2p(d).to_session(subject="m1")
    np.testing.assert_allclose(s.neural, bump.T / 100, atol=1e-5)
    assert s.metadata["neuropil_coef"] == 0.7


@pytest.mark.parametrize(
    ("iscell", "message"),
    [
        (np.c_[[0.9, 0.2, 0.7, 0.4], [1, 0, 1, 0]], r"values other than 0 and 1 \(e\.g\. 0\.9\)"),
        (np.array([0.9, 0.2, 0.7, 0.4]), "columns swapped"),
        (np.c_[[1, 0, 1, 0], [0.9, 0.2, 1.5, 0.4]], r"holds 1\.5, outside \[0, 1\]"),
        (np.c_[[1, 0, 1, 0], [0.9, 0.2, 0.7, 0.4], [0, 0, 0, 0]], "3 columns"),
    ],
)
def test_suite2p_iscell_that_would_be_misread_is_refused(tmp_path, iscell, message):
    d = tmp_path / "plane0"
    make_suite2p(d, N=2, T=60, n_noncell=2)
    np.save(d / "iscell.npy", iscell)
    with pytest.raises(DataFormatError, match=message) as ei:
        read_suite2p(d, min_cell_prob=0.5)
    assert str(d / "iscell.npy") in str(ei.value)


def test_suite2p_iscell_as_one_flag_column(tmp_path):
    d = tmp_path / "plane0"
    make_suite2p(d, N=2, T=60, n_noncell=2)
    np.save(d / "iscell.npy", np.array([[1.0], [0.0], [1.0], [0.0]]))  # (n_rois, 1)
    plane = read_suite2p(d)
    assert list(plane.roi_ids) == [0, 2] and np.isnan(plane.cell_prob).all()


def test_suite2p_ops_that_contradict_f_are_refused(tmp_path):
    d = tmp_path / "plane0"
    make_suite2p(d, N=2, T=60)
    ops = {"fs": FS, "nframes": 75, "nplanes": 1}  # from another run
    np.save(d / "ops.npy", np.array(ops, dtype=object))
    with pytest.raises(DataFormatError, match=r"ops\['nframes'\] = 75 but F.npy has 60"):
        read_suite2p(d)
    # two recordings processed together: F.npy holds both, back to back
    ops.update(nframes=60, frames_per_folder=np.array([40, 20]))
    np.save(d / "ops.npy", np.array(ops, dtype=object))
    with pytest.raises(DataFormatError, match=r"\[40, 20\]: F.npy holds 2 recordings"):
        read_suite2p(d)
    ops.update(frames_per_folder=np.array([60]))
    np.save(d / "ops.npy", np.array(ops, dtype=object))
    assert read_suite2p(d).n_frames == 60
    del ops["fs"]
    np.save(d / "ops.npy", np.array(ops, dtype=object))
    with pytest.raises(DataFormatError, match="frame rate unknown"):
        read_suite2p(d).to_session(subject="m1")


def _combined(root, planes):
    """suite2p's ``combined`` folder: the planes' ROIs stacked, each plane padded with
    zero frames to the longest (as ``suite2p.io.save.combined`` does)."""
    arrays = {k: [np.load(root / p / f"{k}.npy") for p in planes] for k in ("F", "Fneu")}
    n = max(a.shape[1] for a in arrays["F"])
    out = root / "combined"
    out.mkdir()
    for k, parts in arrays.items():
        pad = [np.pad(a, ((0, 0), (0, n - a.shape[1]))) for a in parts]
        np.save(out / f"{k}.npy", np.concatenate(pad))
    np.save(out / "iscell.npy", np.concatenate([np.load(root / p / "iscell.npy") for p in planes]))
    ops = np.load(root / planes[0] / "ops.npy", allow_pickle=True).item()
    np.save(out / "ops.npy", np.array(ops, dtype=object))
    return out


def test_suite2p_multi_plane_folders(tmp_path):
    root = tmp_path / "suite2p"
    make_suite2p(root / "plane0", N=2, T=90, fs=10.0, seed=0)
    make_suite2p(root / "plane1", N=3, T=89, fs=10.0, seed=1)  # last volume incomplete
    with pytest.raises(FileNotFoundError, match=r"\['plane0', 'plane1'\]"):
        read_suite2p(root)
    p1 = read_suite2p(root / "plane1")  # each plane keeps its own frames
    assert p1.n_frames == 89 and p1.sampling_rate == 10.0
    combined = _combined(root, ["plane0", "plane1"])
    with pytest.raises(FileNotFoundError, match=r"\['plane0', 'plane1', 'combined'\]"):
        read_suite2p(root)
    with pytest.raises(DataFormatError, match="exactly 0 in the last frame of 5 ROI") as ei:
        read_suite2p(combined, cells_only=False)
    assert "ROI 4: its last 1 frame(s)" in str(ei.value) and str(combined) in str(ei.value)


def test_suite2p_combined_folder_of_equal_planes_is_read(tmp_path):
    root = tmp_path / "suite2p"
    make_suite2p(root / "plane0", N=2, T=90, fs=10.0, seed=0)
    make_suite2p(root / "plane1", N=3, T=90, fs=10.0, seed=1)
    plane = read_suite2p(_combined(root, ["plane0", "plane1"]), cells_only=False)
    F = np.concatenate([np.load(root / p / "F.npy") for p in ("plane0", "plane1")])
    np.testing.assert_array_equal(plane.F, F.T)


# --------------------------------------------------------------------------- lever


def _lever_csv(path, header, scale):
    """A 100 Hz lever trace from -0.5 s to 4.5 s, times multiplied by ``scale``."""
    t = np.arange(-50, 451) / 100.0
    pd.DataFrame({header: t * scale, "lever": np.sin(t)}).to_csv(path, index=False)
    return path


def test_lever_times_in_milliseconds(tmp_path):
    d = tmp_path / "plane0"
    make_suite2p(d, N=2, T=120, fs=FS)  # 4 s of imaging
    plane = read_suite2p(d)
    t = np.arange(120) / FS
    ms = read_trace(_lever_csv(tmp_path / "ms.csv", "time_ms", 1000.0))
    s = plane.to_session(subject="m1", behavior=[ms])
    np.testing.assert_allclose(s.behavior[:, 0], np.sin(t), atol=1e-4)
    # the same milliseconds under a plain "time" header are read as seconds: refused
    bad = read_trace(_lever_csv(tmp_path / "bad.csv", "time", 1000.0))
    with pytest.raises(DataFormatError, match="1261 times the 3.96667 s") as ei:
        plane.to_session(subject="m1", behavior=[bad])
    assert str(tmp_path / "bad.csv") in str(ei.value) and "milliseconds" in str(ei.value)


def test_lever_npy_saved_transposed_is_refused(tmp_path):
    t = np.arange(500) / 100.0
    row = tmp_path / "row.npy"
    np.save(row, np.sin(t)[None, :])  # (1, T), as saved from MATLAB
    with pytest.raises(DataFormatError, match=r"row.npy: shape \(1, 500\) has more columns"):
        read_trace(row, sampling_rate=100.0)
    both = tmp_path / "both.npy"
    np.save(both, np.vstack([t, np.sin(t)]))  # (2, T) with the times in row 0
    with pytest.raises(DataFormatError, match=r"both.npy: shape \(2, 500\).*a\.T"):
        read_trace(both, time_column=0)
    np.save(both, np.vstack([t, np.sin(t)]).T)
    assert read_trace(both, time_column=0).n_samples == 500


def test_behaviour_ending_frames_before_the_imaging_is_refused(tmp_path):
    d = tmp_path / "plane0"
    make_suite2p(d, N=2, T=120, fs=FS)
    plane = read_suite2p(d)
    t = np.arange(120 - 3) / FS  # a camera at the imaging rate, 3 frames short
    p = tmp_path / "short.csv"
    pd.DataFrame({"time": t, "lever": np.sin(t)}).to_csv(p, index=False)
    with pytest.raises(DataFormatError, match="short.csv"):
        plane.to_session(subject="m1", behavior=[read_trace(p)])


# --------------------------------------------------------------------------- DeepLabCut


@pytest.mark.parametrize("suffix", [".h5", ".csv"])
def test_dlc_levels_in_another_order_are_read_by_name(tmp_path, suffix):
    if suffix == ".h5":
        pytest.importorskip("tables")
    df = dlc_frame(30, individuals=["m1", "m2"])
    ref = read_dlc(write_dlc(df, tmp_path / f"ref{suffix}"), individual="m2")
    swapped = df.copy()
    swapped.columns = df.columns.reorder_levels([0, 2, 1, 3])  # bodyparts before individuals
    tr = read_dlc(write_dlc(swapped, tmp_path / f"swapped{suffix}"), individual="m2")
    assert tr.names == ref.names and tr.info["individual"] == "m2"
    np.testing.assert_array_equal(tr.values, ref.values)
    single = dlc_frame(30)
    one = read_dlc(write_dlc(single, tmp_path / f"one{suffix}"))
    single.columns = single.columns.reorder_levels([0, 2, 1])  # coords before bodyparts
    if suffix == ".h5":  # (a CSV's header rows keep scorer, bodyparts, coords)
        tr = read_dlc(write_dlc(single, tmp_path / f"coords_first{suffix}"))
        np.testing.assert_array_equal(tr.values, one.values)


@pytest.mark.parametrize("suffix", [".h5", ".csv"])
def test_dlc_body_part_occurring_twice_is_refused(tmp_path, suffix):
    if suffix == ".h5":
        pytest.importorskip("tables")
    df = dlc_frame(20)
    scorer = df.columns.get_level_values(0)[0]
    cols = list(df.columns)
    cols[3:6] = [(scorer, "paw", c) for c in ("x", "y", "likelihood")]  # nose renamed paw
    df.columns = pd.MultiIndex.from_tuples(cols, names=df.columns.names)
    p = write_dlc(df, tmp_path / f"twice{suffix}")
    with pytest.raises(DataFormatError, match="occur more than once") as ei:
        read_dlc(p)
    assert str(p) in str(ei.value)


def test_dlc_multi_animal_unique_body_parts_and_likelihood_threshold(tmp_path):
    # maDLC writes the unique body parts under the individual "single"
    animals = dlc_frame(20, individuals=["m1", "m2"])
    scorer = animals.columns.get_level_values(0)[0]
    animals[(scorer, "m1", "paw", "likelihood")] = 0.9
    animals.loc[5, (scorer, "m1", "paw", "likelihood")] = 0.6  # at pcutoff: kept
    animals.loc[6, (scorer, "m1", "paw", "likelihood")] = 0.59  # below: masked
    unique = dlc_frame(20, bodyparts=("led",), individuals=["single"])
    p = write_dlc(pd.concat([animals, unique], axis=1), tmp_path / "ma.csv")
    assert read_dlc(p, individual="single").names == ["led_x", "led_y"]
    tr = read_dlc(p, individual="m1", max_gap=0)
    x = animals[(scorer, "m1", "paw", "x")].to_numpy()
    assert tr.values[5, 0] == x[5] and np.isnan(tr.values[6, :2]).all()


# --------------------------------------------------------------------------- SLEAP


def _sleap_analysis_arrays(T=7, B=3, K=2):
    """Locations (frames, nodes, 2, tracks) x = 100k + 10b + f, y = -x, point scores
    0.9; track 1 is absent in frames 3-4 and user-labelled (no score) in frame 2."""
    f, b, k = np.meshgrid(np.arange(T), np.arange(B), np.arange(K), indexing="ij")
    x = 100.0 * k + 10 * b + f
    loc = np.stack([x, -x], axis=2)
    scores = np.full((T, B, K), 0.9)
    loc[3:5, :, :, 1] = np.nan
    scores[3:5, :, 1] = np.nan
    scores[2, :, 1] = np.nan
    occupancy = np.isfinite(loc[:, 0, 0, :]).T.astype(np.uint8)  # (tracks, frames)
    return loc, scores, occupancy


def _write_sleap_analysis(path):
    """Like SLEAP's "Export Analysis HDF5": every array transposed (MATLAB order)."""
    import h5py

    loc, scores, occupancy = _sleap_analysis_arrays()
    inst = np.full(loc.shape[::3], 0.95)
    with h5py.File(path, "w") as f:
        f["tracks"] = loc.T  # (tracks, 2, nodes, frames)
        f["track_occupancy"] = occupancy.T  # (frames, tracks)
        f["point_scores"] = scores.T
        f["instance_scores"] = inst.T
        f["tracking_scores"] = inst.T
        f["track_names"] = [b"m1", b"m2"]
        f["node_names"] = [b"nose", b"paw", b"tail"]
    return path


def test_sleap_analysis_h5_in_matlab_order(tmp_path):
    pytest.importorskip("sleap_io")
    p = _write_sleap_analysis(tmp_path / "session.analysis.h5")
    tr = read_sleap(p, track="m2", min_score=0.5, max_gap=0, frame_rate=FS)
    assert tr.names == ["nose_x", "nose_y", "paw_x", "paw_y", "tail_x", "tail_y"]
    loc, _, _ = _sleap_analysis_arrays()
    expected = loc[:, :, :, 1].reshape(7, 6)  # (frames, nodes * xy)
    np.testing.assert_array_equal(tr.values, expected)  # NaN where m2 is absent
    assert np.all(tr.quality[2] == 1.0)  # user-labelled: kept despite min_score
    np.testing.assert_allclose(tr.timestamps, np.arange(7) / FS)
    with pytest.raises(ValueError, match=r"tracks \['m1', 'm2'\]; pass track="):
        read_sleap(p)
    with pytest.raises(DataFormatError, match="SLEAP analysis HDF5.*read_sleap") as ei:
        read_dlc(p)
    assert str(p) in str(ei.value)


def test_sleap_analysis_h5_in_python_order(tmp_path):
    sio = pytest.importorskip("sleap_io")
    matlab = read_sleap(_write_sleap_analysis(tmp_path / "a.h5"), track="m1")
    labels = sio.load_analysis_h5(str(tmp_path / "a.h5"))
    p = tmp_path / "standard.h5"
    sio.save_analysis_h5(labels, str(p), preset="standard")  # (frames, tracks, nodes, xy)
    tr = read_sleap(p, track="m1")
    np.testing.assert_array_equal(tr.values, matlab.values)
