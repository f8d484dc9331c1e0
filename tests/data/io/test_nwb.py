"""NWB reading (files written with pynwb + ndx-pose) and the NWB writer round trip."""

import numpy as np
import pandas as pd
import pytest

pynwb = pytest.importorskip("pynwb")
pytest.importorskip("ndx_pose")

from io_builders import BODYPARTS, make_nwb  # noqa: E402
from sharedrep.data.io import DataFormatError, read_nwb, write_nwb  # noqa: E402
from sharedrep.data.session import Session, SessionCollection  # noqa: E402


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    d = tmp_path_factory.mktemp("nwb")
    path = d / "m1_day1.nwb"
    truth = make_nwb(path, units=True)
    return path, truth


def test_reads_neural_behaviour_trials_stimulation_subject(lab):
    path, truth = lab
    s = read_nwb(path, stage="novice", population="motor thalamus", day=1)
    assert isinstance(s, Session)
    assert s.subject == "m1" and s.session_id == "m1-day1" and s.day == 1
    assert np.array_equal(s.neural, truth["x"])
    assert np.array_equal(s.timestamps, truth["t"])
    assert list(s.unit_ids) == list(truth["roi_ids"])
    assert set(s.behavior_names) == {"lever", "paw_x", "paw_y", "nose_x", "nose_y"}
    unit = dict(zip(s.behavior_names, s.behavior_units, strict=True))
    assert unit["lever"] == "mm" and unit["paw_x"] == "pixels"
    # behaviour resampled onto the imaging timestamps
    lev = s.behavior[:, s.behavior_names.index("lever")]
    assert np.allclose(lev, np.interp(s.timestamps, truth["lever_t"], truth["lever"]))
    paw_x = s.behavior[:, s.behavior_names.index("paw_x")]
    assert np.allclose(paw_x, np.interp(s.timestamps, truth["pose_t"], truth["pose_paw"][:, 0]))
    # trials
    assert list(s.trials.columns) == ["start_time", "stop_time", "cue_time", "outcome"]
    assert np.allclose(s.trials["cue_time"], truth["cues"])
    assert set(s.trials["outcome"]) == {"hit", "miss"}
    # optogenetic series -> intervals
    stim = s.stimulation
    assert len(stim) == 2
    assert np.allclose(stim["start_time"], [truth["opto"][0][0], truth["opto"][1][0]])
    assert np.allclose(stim["stop_time"], [truth["opto"][0][1], truth["opto"][1][1]])
    assert list(stim["power"]) == [5.0, 3.0]
    md = s.metadata
    assert md["subject"]["species"] == "Mus musculus" and md["subject"]["sex"] == "F"
    assert md["neural_source"] == "ophys/DfOverF/RoiResponseSeries"
    assert md["nwb"]["session_start_time"].startswith("2024-03-01")


def test_explicit_selection_and_spike_units(lab):
    path, truth = lab
    s = read_nwb(path, behavior=["lever"], stimulation=False)
    assert s.behavior_names == ["lever"] and len(s.stimulation) == 0
    s = read_nwb(path, behavior=["PoseEstimation"])
    assert sorted(s.behavior_names) == sorted(f"{b}_{c}" for b in BODYPARTS for c in "xy")
    s = read_nwb(path, neural="ophys/DfOverF/RoiResponseSeries", behavior=[])
    assert s.n_behavior == 0
    u = read_nwb(path, neural="units", bin_size=0.1, behavior=["lever"])
    assert u.n_units == 3 and list(u.unit_ids) == [7, 8, 9]
    assert np.allclose(np.diff(u.timestamps), 0.1)
    assert list(u.neural.sum(axis=0)) == [len(x) for x in truth["spikes"]]
    with pytest.raises(DataFormatError, match="bin_size"):
        read_nwb(path, neural="units")
    with pytest.raises(DataFormatError, match="no neural series named 'nope'"):
        read_nwb(path, neural="nope")
    with pytest.raises(DataFormatError, match="no behaviour series named 'wheel'.*lever"):
        read_nwb(path, behavior=["wheel"])
    with pytest.raises(DataFormatError, match="no stimulation intervals table"):
        read_nwb(path, stimulation="laser2")


def test_fluorescence_fallback_and_spikes_only(tmp_path):
    p = tmp_path / "fl.nwb"
    truth = make_nwb(p, rrs="Fluorescence", pose=False, opto=False)
    s = read_nwb(p)
    assert s.metadata["neural_source"] == "ophys/Fluorescence/RoiResponseSeries"
    assert np.array_equal(s.neural, truth["x"]) and s.behavior_names == ["lever"]
    q = tmp_path / "spk.nwb"
    make_nwb(q, rrs=None, units=True, pose=False)
    s = read_nwb(q, bin_size=0.05, behavior=[])
    assert s.metadata["neural_kind"] == "spike counts per bin" and s.n_units == 3


def test_missing_content_errors(tmp_path):
    p = tmp_path / "empty.nwb"
    make_nwb(p, rrs=None, units=False, pose=False, lever=False, opto=False)
    with pytest.raises(DataFormatError, match="no neural data found") as ei:
        read_nwb(p)
    assert str(p) in str(ei.value)
    q = tmp_path / "nosubj.nwb"
    make_nwb(q, subject_id=False, pose=False, opto=False)
    with pytest.raises(DataFormatError, match="no subject.subject_id"):
        read_nwb(q)
    assert read_nwb(q, subject="mX").subject == "mX"


def test_low_confidence_pose_and_short_behaviour(tmp_path):
    p = tmp_path / "lowconf.nwb"
    make_nwb(p, pose_confidence=0.1, opto=False)
    with pytest.raises(DataFormatError, match="no frame has likelihood >= 0.6"):
        read_nwb(p)
    s = read_nwb(p, min_confidence=None)
    assert np.isfinite(s.behavior).all()
    q = tmp_path / "shortlever.nwb"
    make_nwb(q, pose=False, opto=False, lever_start=2.0)  # lever starts 2 s late
    with pytest.raises(DataFormatError, match="behaviour series 'behavior/lever' covers"):
        read_nwb(q)
    s = read_nwb(q, extrapolate="nan")
    assert np.isnan(s.behavior[:, 0]).sum() > 0
    assert s.mask_samples(s.nonfinite_samples()).n_samples < s.n_samples


def test_wrong_file_types(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_nwb(tmp_path / "missing.nwb")
    txt = tmp_path / "notes.nwb"
    txt.write_text("hello")
    with pytest.raises(DataFormatError, match="not an NWB file"):
        read_nwb(txt)
    import h5py

    h = tmp_path / "plain.nwb"
    with h5py.File(h, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(DataFormatError, match="plain.nwb"):
        read_nwb(h)
    with pytest.raises(DataFormatError, match="directory"):
        read_nwb(tmp_path)


def test_write_read_round_trip_is_valid_nwb(lab, tmp_path):
    path, _ = lab
    s = read_nwb(path, day=3, stage="expert", population="thalamus")
    s.metadata["indicator"] = "GCaMP6s"
    out = write_nwb(s, tmp_path / "rt.nwb")
    assert pynwb.validate(path=str(out)) == []
    r = read_nwb(out)
    assert (r.subject, r.session_id, r.day, r.stage, r.population) == (
        "m1",
        "m1-day1",
        3,
        "expert",
        "thalamus",
    )
    assert np.array_equal(r.neural, s.neural) and np.array_equal(r.timestamps, s.timestamps)
    assert np.array_equal(r.behavior, s.behavior)
    assert r.behavior_names == s.behavior_names and r.behavior_units == s.behavior_units
    assert list(r.unit_ids) == list(s.unit_ids)
    pd.testing.assert_frame_equal(r.trials, s.trials, check_dtype=False, check_names=False)
    pd.testing.assert_frame_equal(
        r.stimulation.reset_index(drop=True),
        s.stimulation.reset_index(drop=True),
        check_dtype=False,
    )
    assert r.metadata["indicator"] == "GCaMP6s"
    assert r.metadata["subject"]["species"] == "Mus musculus"
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_nwb(s, out)
    write_nwb(s, out, overwrite=True)
    assert not [f for f in tmp_path.iterdir() if f.name.startswith(".")]


def test_simulated_sessions_export_and_string_unit_ids(tmp_path):
    rng = np.random.default_rng(0)
    X = [rng.normal(size=(80, 3)), rng.normal(size=(80, 4))]
    Y = [rng.normal(size=(80, 2)), rng.normal(size=(80, 2))]
    G = [np.repeat(np.arange(4), 20)] * 2
    coll = SessionCollection.from_arrays(X, Y, G, sampling_rate=30.0, stage="expert")
    back = []
    for s in coll:
        p = write_nwb(s, tmp_path / f"{s.session_id}.nwb")
        back.append(read_nwb(p))
    args = SessionCollection(back).to_fit_args()
    for a, b in zip(args.groups, G, strict=True):
        assert np.array_equal(a, b)
    assert np.array_equal(args.neural[1], X[1]) and back[0].stage == "expert"
    s = coll[0].replace(unit_ids=np.array(["a", "b", "c"]))
    r = read_nwb(write_nwb(s, tmp_path / "labels.nwb"))
    assert list(r.unit_ids) == ["a", "b", "c"]
    with pytest.raises(ValueError, match="cannot be NWB object names"):
        write_nwb(coll[0].replace(behavior_names=["a/b", "c"]), tmp_path / "bad.nwb")


def test_missing_extra_names_the_install_command(lab, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pynwb", None)
    with pytest.raises(ImportError, match=r'pip install "sharedrep\[nwb\]"'):
        read_nwb(lab[0])


def _units_file(path, spikes):
    import datetime as dt

    nwb = pynwb.NWBFile(
        session_description="spikes",
        identifier="spikes",
        session_start_time=dt.datetime(2024, 3, 1, tzinfo=dt.UTC),
        subject=pynwb.file.Subject(subject_id="m1"),
    )
    for st in spikes:
        nwb.add_unit(spike_times=st)
    with pynwb.NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path


def test_spike_binning_counts_the_spikes_on_the_last_edge(tmp_path):
    p = _units_file(tmp_path / "edge.nwb", [[0.0, 0.25, 1.0], [0.5, 1.0], []])
    # implied range: closed [first spike, last spike]; the spikes at 1.0 get a bin
    s = read_nwb(p, bin_size=0.1, behavior=[])
    assert list(s.neural.sum(axis=0)) == [3, 2, 0] and s.n_samples == 11
    assert np.allclose(s.timestamps[[0, -1]], [0.05, 1.05])
    assert list(s.neural[-1]) == [1, 1, 0] and list(s.neural[2]) == [1, 0, 0]
    s = read_nwb(p, bin_size=0.25, behavior=[])
    assert s.neural.T.tolist() == [[1, 1, 0, 0, 1], [0, 0, 1, 0, 1], [0, 0, 0, 0, 0]]
    # explicit range: half-open [start, stop), a spike at exactly stop is not counted
    s = read_nwb(p, bin_size=0.25, behavior=[], time_range=(0.0, 1.0))
    assert s.neural.T.tolist() == [[1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    s = read_nwb(p, bin_size=0.25, behavior=[], time_range=(0.25, 1.1))
    assert s.n_samples == 4 and list(s.neural.sum(axis=0)) == [2, 2, 0]
    s = read_nwb(p, bin_size=0.5, behavior=[], time_range=(0.0, 0.9))
    assert s.neural.T.tolist() == [[2, 0], [0, 1], [0, 0]]  # 1.0 is past stop


@pytest.mark.parametrize("start_ms", [0, 1000, 3_600_000])
def test_spikes_on_bin_edges_count_in_the_bin_that_starts_there(tmp_path, start_ms):
    # millisecond spike times (an acquisition clock) at 10 ms bins: many fall exactly on
    # an edge, where (t - start) / bin_size rounds below the integer in float64
    rng = np.random.default_rng(0)
    n_bins = 1000
    ms = [np.sort(rng.choice(10 * n_bins, size=400, replace=False)) for _ in range(2)]
    ms[1] = np.arange(0, 10 * n_bins, 10)  # one spike on every edge
    spikes = [(start_ms + m) / 1000.0 for m in ms]
    p = _units_file(tmp_path / "ms.nwb", spikes)
    start = start_ms / 1000.0
    s = read_nwb(p, bin_size=0.01, behavior=[], time_range=(start, start + n_bins / 100))
    expected = np.zeros((n_bins, 2))
    for j, m in enumerate(ms):
        np.add.at(expected[:, j], m // 10, 1)  # exact integer bins [10 k, 10 k + 10) ms
    assert s.n_samples == n_bins
    assert np.array_equal(s.neural, expected)
    # the implied closed range ends on the last spike's edge: it gets its own bin
    s = read_nwb(p, bin_size=0.01, behavior=[])
    assert s.neural[:, 1].tolist() == [1.0] * n_bins


def test_only_clashing_pose_names_are_prefixed(tmp_path):
    from ndx_pose import PoseEstimation, PoseEstimationSeries, Skeleton, Skeletons

    p = tmp_path / "twocam.nwb"
    make_nwb(p, pose=False, opto=False, trials=False)
    with pynwb.NWBHDF5IO(str(p), "a") as io:
        nwb = io.read()
        beh = nwb.processing["behavior"]
        sk = Skeleton(name="sk", nodes=["paw"], edges=np.zeros((0, 2), dtype="uint8"))
        beh.add(Skeletons(skeletons=[sk]))
        tp = np.arange(0.0, 12.0, 0.01)
        for k, cam in enumerate(["cam_top", "cam_side"]):
            paw = PoseEstimationSeries(
                name="paw",
                data=np.column_stack([tp + k, tp - k]),
                unit="px",
                reference_frame="top left",
                confidence=np.ones(tp.size),
                timestamps=tp,
            )
            beh.add(PoseEstimation(name=cam, pose_estimation_series=[paw], skeleton=sk))
        io.write(nwb)
    s = read_nwb(p)
    assert s.behavior_names == [  # sorted by path; only the two paws are prefixed
        "cam_side_paw_x",
        "cam_side_paw_y",
        "cam_top_paw_x",
        "cam_top_paw_y",
        "lever",
    ]
    src = s.metadata["behavior_sources"]
    assert src["lever"] == "behavior/lever"
    assert src["cam_top_paw_x"] == "behavior/cam_top/paw"
    assert np.allclose(s.behavior[:, 2], s.timestamps)  # cam_top x = t
    assert read_nwb(p, behavior=["lever", "cam_top"]).behavior_names == [
        "lever",
        "paw_x",
        "paw_y",
    ]


def _small_session(**kw):
    rng = np.random.default_rng(1)
    base = dict(subject="m1", neural=rng.normal(size=(40, 3)), timestamps=np.arange(40) / 10)
    base.update(kw)
    return Session(**base)


def test_write_nwb_nullable_integer_and_boolean_columns(tmp_path):
    trials = pd.DataFrame(
        {
            "start_time": [0.0, 1.0, 2.0],
            "stop_time": [0.5, 1.5, 2.5],
            "n_licks": pd.array([3, None, 0], dtype="Int64"),
            "rewarded": pd.array([True, None, False], dtype="boolean"),
            "n_full": pd.array([1, 2, 3], dtype="Int64"),
        }
    )
    stim = pd.DataFrame(
        {"start_time": [0.2], "stop_time": [0.3], "pulses": pd.array([None], dtype="Int64")}
    )
    s = _small_session(trials=trials, stimulation=stim)
    r = read_nwb(write_nwb(s, tmp_path / "na.nwb"))
    pd.testing.assert_frame_equal(r.trials, s.trials, check_names=False, check_index_type=False)
    assert str(r.stimulation["pulses"].dtype) == "Int64" and r.stimulation["pulses"].isna().all()
    # the file itself holds float with NaN for the missing values
    with pynwb.NWBHDF5IO(str(tmp_path / "na.nwb"), "r") as io:
        raw = io.read().trials["n_licks"].data[:]
        assert raw.dtype.kind == "f" and np.isnan(raw[1]) and list(raw[[0, 2]]) == [3, 0]


@pytest.mark.parametrize("table", ["trials", "stimulation"])
@pytest.mark.parametrize("col", ["data", "description", "object_id", "colnames", "id", "a:b"])
def test_write_nwb_refuses_reserved_column_names(tmp_path, table, col):
    df = pd.DataFrame({"start_time": [0.0], "stop_time": [1.0], col: ["x"]})
    s = _small_session(**{table: df})
    with pytest.raises(ValueError, match=rf"'m1'.*{table} column '{col}'.*rename it"):
        write_nwb(s, tmp_path / "bad.nwb")
    assert list(tmp_path.iterdir()) == []


def test_write_nwb_refuses_colon_in_behaviour_names(tmp_path):
    s = _small_session(behavior=np.zeros((40, 2)), behavior_names=["lever:x", "y"])
    with pytest.raises(ValueError, match=r"'m1'.*behaviour names \['lever:x'\].*':'"):
        write_nwb(s, tmp_path / "bad.nwb")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "ids",
    [
        np.array([10, 3, 7]),
        np.array([-1, 0, 1]),
        np.array([0.5, 1.5, -2.0]),
        np.array([1.0, 2.0, 3.0]),
        np.array(["a", "-1", "0.5"]),
    ],
    ids=["int", "negative-int", "float", "integral-float", "str"],
)
def test_unit_ids_keep_their_type_in_a_round_trip(tmp_path, ids):
    s = _small_session(unit_ids=ids)
    r = read_nwb(write_nwb(s, tmp_path / "ids.nwb"))
    assert list(r.unit_ids) == list(ids)
    if ids.dtype.kind in "iuf":
        assert r.unit_ids.dtype == ids.dtype
    else:
        assert all(isinstance(v, str) for v in r.unit_ids)


@pytest.mark.filterwarnings("ignore:The linked table for DynamicTableRegion:UserWarning")
def test_suite2p_export_layout_reads_fluorescence_not_deconvolved(tmp_path):
    # suite2p's NWB export: Fluorescence, Neuropil and Deconvolved are all
    # Fluorescence-type interfaces holding a "plane0" series
    import datetime as dt

    from pynwb.ophys import Fluorescence, ImageSegmentation, OpticalChannel, RoiResponseSeries

    nwb = pynwb.NWBFile(
        session_description="suite2p",
        identifier="s2p",
        session_start_time=dt.datetime(2024, 3, 1, tzinfo=dt.UTC),
        subject=pynwb.file.Subject(subject_id="m1"),
    )
    plane = nwb.create_imaging_plane(
        name="ImagingPlane",
        optical_channel=OpticalChannel(name="ch", description="", emission_lambda=500.0),
        description="",
        device=nwb.create_device(name="scope"),
        excitation_lambda=900.0,
        indicator="GCaMP",
        location="M1",
        imaging_rate=30.0,
    )
    ophys = nwb.create_processing_module("ophys", "ophys")
    seg = ImageSegmentation()
    ophys.add(seg)
    ps = seg.create_plane_segmentation(name="PS", description="", imaging_plane=plane)
    for i in range(4):
        ps.add_roi(pixel_mask=[(i, i, 1.0)])
    region = ps.create_roi_table_region(region=list(range(4)), description="plane0")
    rng = np.random.default_rng(0)
    F = rng.random((50, 4)) + 5
    for name, data in (("Deconvolved", 0 * F), ("Fluorescence", F), ("Neuropil", F / 2)):
        rrs = RoiResponseSeries(name="plane0", data=data, rois=region, unit="a.u.", rate=30.0)
        ophys.add(Fluorescence(roi_response_series=rrs, name=name))
    with pynwb.NWBHDF5IO(str(tmp_path / "s2p.nwb"), "w") as io:
        io.write(nwb)
    s = read_nwb(tmp_path / "s2p.nwb", behavior=[])
    assert s.metadata["neural_source"] == "ophys/Fluorescence/plane0"
    np.testing.assert_array_equal(s.neural, F)


def test_unusable_series_are_skipped_by_discovery_not_when_asked_for(tmp_path):
    p = tmp_path / "extra.nwb"
    make_nwb(p, pose=False, opto=False)
    with pynwb.NWBHDF5IO(str(p), "a") as io:
        nwb = io.read()
        labels = np.array(["cue", "reward", "cue"])
        nwb.add_acquisition(
            pynwb.TimeSeries(
                name="events_txt", data=labels, unit="n.a.", timestamps=[1.0, 2.0, 3.0]
            )
        )
        io.write(nwb)
    with pytest.warns(
        UserWarning, match="'events_txt' is not numeric .* not used as behaviour"
    ) as rec:
        s = read_nwb(p)
    assert rec[0].filename == __file__  # the warning points at the caller of read_nwb
    assert s.behavior_names == ["lever"]
    with pytest.raises(DataFormatError, match="'events_txt' is not numeric"):
        read_nwb(p, behavior=["events_txt"])


def test_series_of_the_same_name_are_chosen_by_their_path_in_the_file(tmp_path):
    p = tmp_path / "two_levers.nwb"
    make_nwb(p, pose=False, opto=False)
    ref = read_nwb(p)
    with pynwb.NWBHDF5IO(str(p), "a") as io:
        nwb = io.read()
        t = np.asarray(nwb.processing["ophys"]["DfOverF"]["RoiResponseSeries"].timestamps[:])
        volts = np.linspace(0.0, 1.0, t.size)
        nwb.add_acquisition(pynwb.TimeSeries(name="lever", data=volts, unit="V", timestamps=t))
        io.write(nwb)
    with pytest.raises(DataFormatError, match=r"ambiguous: .*'acquisition/lever'"):
        read_nwb(p, behavior=["lever"])
    raw = read_nwb(p, behavior=["acquisition/lever"])
    np.testing.assert_allclose(raw.behavior[:, 0], volts)
    processed = read_nwb(p, behavior=["/processing/behavior/lever"])
    np.testing.assert_array_equal(processed.behavior, ref.behavior)


def test_pose_gaps_are_counted_in_frames_of_the_series_timestamps(tmp_path):
    # a 100 Hz pose series with frames 500..503 missing from its timestamps and frames
    # 498, 499 below the confidence threshold: a 6-frame gap (2 rows), not filled at
    # max_gap=5 and filled at max_gap=6
    from ndx_pose import PoseEstimation, PoseEstimationSeries, Skeleton, Skeletons

    p = tmp_path / "dropped.nwb"
    make_nwb(p, pose=False, opto=False, trials=False)
    frames = np.r_[0:500, 504:1200]
    tp = frames / 100.0
    conf = np.ones(tp.size)
    conf[[498, 499]] = 0.1
    with pynwb.NWBHDF5IO(str(p), "a") as io:
        nwb = io.read()
        beh = nwb.processing["behavior"]
        sk = Skeleton(name="sk", nodes=["paw"], edges=np.zeros((0, 2), dtype="uint8"))
        beh.add(Skeletons(skeletons=[sk]))
        paw = PoseEstimationSeries(
            name="paw",
            data=np.column_stack([tp, 2 * tp]),
            unit="px",
            reference_frame="top left",
            confidence=conf,
            timestamps=tp,
        )
        beh.add(PoseEstimation(name="cam", pose_estimation_series=[paw], skeleton=sk))
        io.write(nwb)
    for max_gap, n_filled in ((5, 0), (6, 4)):
        s = read_nwb(p, max_gap=max_gap)
        assert s.metadata["pose_quality"]["behavior/cam/paw"]["n_interpolated"] == n_filled


def _opened_with(monkeypatch) -> list:
    """Record the ``load_namespaces`` of every ``NWBHDF5IO`` the reader opens."""
    seen = []

    class Recording(pynwb.NWBHDF5IO):
        def __init__(self, *args, **kwargs):
            seen.append(kwargs.get("load_namespaces"))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(pynwb, "NWBHDF5IO", Recording)
    return seen


def test_cached_namespaces_are_loaded_only_when_pynwb_lacks_one(lab, monkeypatch):
    path, truth = lab
    seen = _opened_with(monkeypatch)
    known = read_nwb(path)  # core, hdmf and ndx-pose are loaded: nothing to load
    assert seen == [False]
    loaded = set(pynwb.available_namespaces())
    assert "ndx-pose" in loaded
    monkeypatch.setattr(pynwb, "available_namespaces", lambda: tuple(loaded - {"ndx-pose"}))
    new = read_nwb(path)  # the file caches an extension pynwb has not loaded: load it
    assert seen == [False, True]
    assert np.array_equal(known.neural, truth["x"])
    assert np.array_equal(new.neural, known.neural)
    assert new.behavior_names == known.behavior_names
    assert np.array_equal(new.behavior, known.behavior)
    pd.testing.assert_frame_equal(new.trials, known.trials)
