"""NWB files written the way other labs write them: each is read correctly (values,
times, units, ROIs, trials as in the file) or refused with the file and object named.

The files are tiny and built with pynwb here (not with sharedrep's writer): series
with ``rate`` + ``starting_time``, ``conversion`` / ``offset``, fast behaviour in
``Position`` / ``BehavioralTimeSeries``, several planes, transposed data, ROI tables
that classify cells (suite2p ``iscell``, CaImAn ``accepted`` / ``rejected``).
"""

import datetime as dt
import shutil
import warnings

import numpy as np
import pytest

pynwb = pytest.importorskip("pynwb")

from sharedrep.data.io import DataFormatError, read_nwb, read_nwb_header  # noqa: E402

RATE = 30.0
IMAGING = "processing/ophys/DfOverF/RoiResponseSeries"


def _file(**subject):
    return pynwb.NWBFile(
        session_description="other lab",
        identifier="lab",
        session_start_time=dt.datetime(2024, 3, 1, tzinfo=dt.UTC),
        subject=pynwb.file.Subject(subject_id="m1", **subject),
    )


def _rois(nwb, n: int, plane: str = "plane0", **columns):
    """A ``PlaneSegmentation`` of ``n`` ROIs (ids 10, 11, ...) with extra ``columns``
    (name -> one value per ROI) in ``processing/ophys``; returns (module, table)."""
    from pynwb.ophys import ImageSegmentation, OpticalChannel

    if "ophys" not in nwb.processing:
        nwb.create_processing_module("ophys", "ophys").add(ImageSegmentation())
    oph = nwb.processing["ophys"]
    device = nwb.devices.get("scope") or nwb.create_device(name="scope")
    imaging_plane = nwb.create_imaging_plane(
        name=plane,
        optical_channel=OpticalChannel(name="green", description="", emission_lambda=510.0),
        description="",
        device=device,
        excitation_lambda=920.0,
        indicator="GCaMP6s",
        location="M1",
        imaging_rate=RATE,
    )
    table = oph["ImageSegmentation"].create_plane_segmentation(
        name=f"PlaneSegmentation_{plane}", description="", imaging_plane=imaging_plane
    )
    for i in range(n):
        table.add_roi(id=10 + i, pixel_mask=[(i, i, 1.0)])
    for name, values in columns.items():
        table.add_column(name=name, description=name, data=values)
    return oph, table


def _series(oph, table, data, name="RoiResponseSeries", iface="DfOverF", **time):
    """A ``RoiResponseSeries`` of all ROIs of ``table`` in interface ``iface``."""
    from pynwb.ophys import DfOverF, Fluorescence

    if iface not in oph.data_interfaces:
        oph.add(DfOverF(name=iface) if iface == "DfOverF" else Fluorescence(name=iface))
    region = table.create_roi_table_region(region=list(range(len(table))), description="all")
    oph[iface].create_roi_response_series(name=name, data=data, rois=region, unit="dF/F", **time)


def _imaging(nwb, data, **time):
    oph, table = _rois(nwb, data.shape[1])
    _series(oph, table, data, **time)


def _write(nwb, path):
    with pynwb.NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path


def _transpose(path, dataset: str) -> None:
    """Store ``dataset`` transposed, its attributes kept (what an older pynwb let
    labs write)."""
    import h5py

    with h5py.File(path, "a") as f:
        attrs, values = dict(f[dataset].attrs), f[dataset][()]
        del f[dataset]
        f[dataset] = values.T
        f[dataset].attrs.update(attrs)


def test_rate_series_with_a_starting_time_is_on_the_session_clock(tmp_path):
    # imaging from 5 s at 30 Hz (rate, no timestamps); lever and trials in session time
    rng = np.random.default_rng(0)
    nwb = _file()
    x = rng.normal(size=(90, 3))
    _imaging(nwb, x, rate=RATE, starting_time=5.0)
    tl = np.arange(4.0, 9.0, 0.01)
    nwb.add_acquisition(pynwb.TimeSeries(name="lever", data=tl - 4.0, unit="mm", timestamps=tl))
    nwb.add_trial(start_time=5.5, stop_time=6.5)
    s = read_nwb(_write(nwb, tmp_path / "start.nwb"))
    np.testing.assert_allclose(s.timestamps, 5.0 + np.arange(90) / RATE)
    np.testing.assert_allclose(s.behavior[:, 0], s.timestamps - 4.0)
    np.testing.assert_array_equal(s.neural, x)
    assert list(s.unit_ids) == [10, 11, 12]
    frames = np.searchsorted(s.timestamps, [5.4, 5.5, 6.4, 6.5])  # the trial is [5.5, 6.5)
    assert s.trial_ids()[frames].tolist() == [-1, 0, 0, -1]


def test_trials_on_another_clock_are_refused(tmp_path):
    # the imaging series lacks its starting_time (0 s) while the trials are at 100 s+
    nwb = _file()
    _imaging(nwb, np.zeros((90, 2)), rate=RATE)
    for k in range(3):
        nwb.add_trial(start_time=100.0 + k, stop_time=100.5 + k)
    p = _write(nwb, tmp_path / "clocks.nwb")
    with pytest.raises(DataFormatError, match="none of the 3 trials .*overlaps") as err:
        read_nwb(p)
    assert str(p) in str(err.value) and "0..2.96667 s of 'ophys/DfOverF/" in str(err.value)
    # some trials outside (imaging stopped before behaviour): read, with a warning
    nwb = _file()
    _imaging(nwb, np.zeros((90, 2)), rate=RATE)
    nwb.add_trial(start_time=1.0, stop_time=2.0)
    nwb.add_trial(start_time=3.5, stop_time=4.0)
    q = _write(nwb, tmp_path / "late.nwb")
    with pytest.warns(UserWarning, match=r"1 of 2 trials \(rows \[1\]\) lie outside"):
        assert len(read_nwb(q).trials) == 2


@pytest.mark.parametrize(
    ("start", "stop", "match"),
    [([1.0, 1.5], [2.0, 2.5], "rows 0 and 1 overlap"), ([1.0, np.nan], [2.0, 2.5], "non-finite")],
)
def test_overlapping_or_nan_trials_are_refused(tmp_path, start, stop, match):
    nwb = _file()
    _imaging(nwb, np.zeros((90, 2)), rate=RATE)
    for a, b in zip(start, stop, strict=True):
        nwb.add_trial(start_time=a, stop_time=b)
    p = _write(nwb, tmp_path / "trials.nwb")
    with pytest.raises(DataFormatError, match=match) as err:
        read_nwb(p)
    assert str(p) in str(err.value) and "trials" in str(err.value)


@pytest.mark.parametrize("where", ["neural", "behaviour"])
def test_timestamps_out_of_order_are_refused_naming_the_series(tmp_path, where):
    t = np.arange(90) / RATE
    bad = t.copy()
    bad[[10, 11]] = bad[[11, 10]]
    nwb = _file()
    _imaging(nwb, np.zeros((90, 2)), timestamps=bad if where == "neural" else t)
    lever = pynwb.TimeSeries(
        name="lever", data=t, unit="mm", timestamps=bad if where == "behaviour" else t
    )
    nwb.add_acquisition(lever)
    p = _write(nwb, tmp_path / "order.nwb")
    path = IMAGING if where == "neural" else "acquisition/lever"
    with pytest.raises(DataFormatError) as err:
        read_nwb(p)
    assert str(err.value).startswith(
        f"{p}: timestamps of series {path!r} are not strictly increasing (index 11: "
    )
    assert "correct the file" in str(err.value)


def test_a_gap_in_the_imaging_timestamps_is_kept(tmp_path):
    t = np.arange(90) / RATE
    t[45:] += 10.0  # imaging paused for 10 s
    nwb = _file()
    _imaging(nwb, np.zeros((90, 2)), timestamps=t)
    tl = np.arange(-0.5, 14.0, 0.01)
    nwb.add_acquisition(pynwb.TimeSeries(name="lever", data=2 * tl, unit="mm", timestamps=tl))
    s = read_nwb(_write(nwb, tmp_path / "gap.nwb"))
    np.testing.assert_array_equal(s.timestamps, t)
    np.testing.assert_allclose(s.behavior[:, 0], 2 * t)


def test_fast_behaviour_is_put_on_the_frames_as_stated(tmp_path):
    # 1 kHz lever and paw (rate + starting_time) onto 25 Hz imaging from 1 s; the lever
    # samples (at k + 0.5 ms) never fall on the boundaries between frames
    from pynwb.behavior import BehavioralTimeSeries, Position, SpatialSeries

    nwb = _file()
    _imaging(nwb, np.zeros((50, 2)), rate=25.0, starting_time=1.0)
    beh = nwb.create_processing_module("behavior", "behaviour")
    tl = 0.0005 + np.arange(4000) / 1000.0
    lever = np.sin(7 * tl) + tl**2
    bts = BehavioralTimeSeries(name="BehavioralTimeSeries")
    bts.add_timeseries(
        pynwb.TimeSeries(name="lever", data=lever, unit="mm", rate=1000.0, starting_time=0.0005)
    )
    pos = Position(name="Position")
    paw = np.column_stack([np.cos(tl), tl])
    pos.add_spatial_series(
        SpatialSeries(name="paw", data=paw, reference_frame="top left", unit="m", timestamps=tl)
    )
    beh.add(bts)
    beh.add(pos)
    p = _write(nwb, tmp_path / "fast.nwb")
    s = read_nwb(p)
    t = 1.0 + np.arange(50) / 25.0
    np.testing.assert_allclose(s.timestamps, t)
    assert s.behavior_names == ["lever", "paw_x", "paw_y"]
    assert s.behavior_units == ["mm", "m", "m"]
    np.testing.assert_allclose(s.behavior[:, 0], np.interp(t, tl, lever))
    np.testing.assert_allclose(s.behavior[:, 1:], np.column_stack([np.cos(t), t]), atol=1e-6)
    assert s.metadata["behavior_resampling"] == {"method": "linear", "extrapolate": "error"}
    m = read_nwb(p, resample_method="mean", behavior=["lever"])
    by_hand = [lever[np.abs(tl - tk) < 0.02].mean() for tk in t[1:-1]]
    np.testing.assert_allclose(m.behavior[1:-1, 0], by_hand, rtol=1e-12)
    assert m.metadata["behavior_resampling"] == {"method": "mean", "extrapolate": "error"}


def test_conversion_and_offset_are_applied_and_units_kept(tmp_path):
    # raw int16 counts: value = data * conversion + offset (NWB), in the series' unit
    rng = np.random.default_rng(1)
    raw = rng.integers(0, 1000, size=(90, 2)).astype("int16")
    nwb = _file()
    _imaging(nwb, raw, rate=RATE, conversion=0.01, offset=-1.0)
    counts = np.arange(-100, 400, dtype="int16")
    nwb.add_acquisition(
        pynwb.TimeSeries(
            name="lever",
            data=counts,
            unit="m",
            conversion=0.001,
            offset=0.5,
            rate=100.0,
            starting_time=-1.0,
        )
    )
    s = read_nwb(_write(nwb, tmp_path / "conv.nwb"))
    np.testing.assert_allclose(s.neural, raw * 0.01 - 1.0)
    tl = -1.0 + np.arange(counts.size) / 100.0
    np.testing.assert_allclose(s.behavior[:, 0], np.interp(s.timestamps, tl, counts) * 1e-3 + 0.5)
    assert s.behavior_units == ["m"] and s.metadata["neural_unit"] == "dF/F"


def _two_planes(path, iface_b="DfOverF"):
    """Two imaging planes, each with its series ``plane0`` / ``plane1`` (3 and 4 ROIs)."""
    nwb = _file()
    oph, ps0 = _rois(nwb, 3, "plane0")
    _, ps1 = _rois(nwb, 4, "plane1")
    _series(oph, ps0, np.zeros((90, 3)), name="plane0", rate=RATE)
    _series(oph, ps1, np.ones((90, 4)), name="plane1", iface=iface_b, rate=RATE)
    return _write(nwb, path)


def test_equally_likely_neural_series_are_refused_not_guessed(tmp_path):
    p = _two_planes(tmp_path / "planes.nwb")
    with pytest.raises(DataFormatError) as err:
        read_nwb(p)
    assert str(err.value) == (
        f"{p}: 2 neural series could be read by default: ['processing/ophys/DfOverF/"
        "plane0', 'processing/ophys/DfOverF/plane1'] (e.g. one per imaging plane); "
        "choose one with neural='<path>' (study file: neural = \"<path>\")"
    )
    assert read_nwb_header(p).neural_source is None  # never a guess
    s = read_nwb(p, neural="processing/ophys/DfOverF/plane1")
    assert s.n_units == 4 and s.metadata["neural_source"] == "ophys/DfOverF/plane1"
    assert (s.neural == 1).all() and list(s.unit_ids) == [10, 11, 12, 13]
    # DfOverF is preferred to Fluorescence, and the choice is stated
    q = _two_planes(tmp_path / "dff_and_f.nwb", iface_b="Fluorescence")
    assert read_nwb(q).metadata["neural_source"] == "ophys/DfOverF/plane0"
    assert read_nwb_header(q).neural_source == "ophys/DfOverF/plane0"


@pytest.mark.filterwarnings("ignore:.*does not match the length of rois:UserWarning")
@pytest.mark.filterwarnings("ignore:.*does not match length of timestamps:UserWarning")
def test_transposed_data_are_refused(tmp_path):
    nwb = _file()
    oph, table = _rois(nwb, 4)
    _series(oph, table, np.zeros((4, 90)), rate=RATE)  # (ROIs, frames): pynwb writes it
    p = _write(nwb, tmp_path / "rate.nwb")
    with pytest.raises(DataFormatError) as err:
        read_nwb(p)
    assert str(err.value) == (
        f"{p}: data of {IMAGING!r} have shape (4, 90) for 4 ROIs: stored as (ROIs, "
        "frames), transposed; NWB stores them as (frames, ROIs): write the series again "
        "with the data transposed"
    )
    # with timestamps (older pynwb wrote such files) and in a behaviour series
    t = np.arange(300) / 100
    nwb = _file()
    _imaging(nwb, np.zeros((90, 4)), timestamps=np.arange(90) / RATE)
    nwb.add_acquisition(pynwb.TimeSeries(name="wheel", data=np.c_[t, t], unit="cm", rate=100.0))
    good = _write(nwb, tmp_path / "good.nwb")
    for name, dataset in (("neural", f"{IMAGING}/data"), ("wheel", "acquisition/wheel/data")):
        q = shutil.copy(good, tmp_path / f"{name}.nwb")
        _transpose(q, dataset)
        with pytest.raises(DataFormatError, match=r"shape \((2, 300|4, 90)\).*transposed"):
            read_nwb(q, behavior=None if name == "neural" else ["wheel"])
    with pytest.warns(UserWarning, match="'acquisition/wheel' has data of shape"):
        assert read_nwb(tmp_path / "wheel.nwb", extrapolate="nearest").n_behavior == 0


@pytest.mark.parametrize(
    ("column", "values"),
    [
        ("iscell", [[1, 0.9], [0, 0.2], [1, 0.7], [0, 0.4]]),  # suite2p: flag, probability
        ("accepted", [True, False, True, False]),  # CaImAn
        ("Rejected", [0, 1, 0, 1]),
    ],
)
def test_rois_marked_as_non_cells_are_left_out(tmp_path, column, values):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(90, 4))
    nwb = _file()
    oph, table = _rois(nwb, 4, **{column: values})
    _series(oph, table, x, rate=RATE)
    p = _write(nwb, tmp_path / "cells.nwb")
    s = read_nwb(p)
    np.testing.assert_array_equal(s.neural, x[:, [0, 2]])
    assert list(s.unit_ids) == [10, 12]
    assert s.metadata["roi_selection"] == {
        "roi_table": "ophys/ImageSegmentation/PlaneSegmentation_plane0",
        "columns": [column],
        "n_rois": 4,
        "n_cells": 2,
        "cells_only": True,
    }
    assert read_nwb_header(p).n_units == 2 == s.n_units
    every = read_nwb(p, cells_only=False)
    assert every.n_units == 4 and every.metadata["roi_selection"]["cells_only"] is False


def test_no_roi_marked_as_a_cell_is_refused(tmp_path):
    nwb = _file()
    oph, table = _rois(nwb, 3, accepted=[False, False, False])
    _series(oph, table, np.zeros((90, 3)), rate=RATE)
    p = _write(nwb, tmp_path / "none.nwb")
    with pytest.raises(DataFormatError) as err:
        read_nwb(p)
    assert str(err.value) == (
        f"{p}: no ROI of 'ophys/DfOverF/RoiResponseSeries' is marked as a cell by the "
        "columns ['accepted'] of 'ophys/ImageSegmentation/"
        "PlaneSegmentation_plane0'; pass cells_only=False to read all 3 ROIs"
    )
    assert read_nwb(p, cells_only=False).n_units == 3


def test_build_session_states_how_behaviour_was_resampled():
    from sharedrep.data.io import Traces, build_session

    t = np.arange(30) / RATE
    tl = np.arange(-0.1, 1.1, 0.001)
    lever = Traces(values=tl**2, names=["lever"], units=["mm"], timestamps=tl, source="l.csv")
    s = build_session(np.zeros((30, 2)), t, subject="m1", behavior=[lever], resample_method="mean")
    assert s.metadata["behavior_resampling"] == {
        "method": "mean",
        "extrapolate": "error",
        "max_extrapolation": None,
    }


def _study(path, entry: str = "", defaults: str = ""):
    """A study file of one NWB entry ``cells.nwb`` (subject m1) with extra settings."""
    text = '[study]\nname = "x"\n'
    text += f"[defaults]\n{defaults}\n" if defaults else ""
    text += f'[[sessions]]\nsubject = "m1"\nday = 1\npath = "cells.nwb"\n{entry}\n'
    path.write_text(text)
    return path


def test_study_file_passes_cells_only_to_nwb_entries(tmp_path):
    from sharedrep.data.studyfile import load_study, validate_study

    nwb = _file()
    oph, table = _rois(nwb, 4, iscell=[[1, 0.9], [0, 0.2], [1, 0.7], [0, 0.4]])
    _series(oph, table, np.arange(360.0).reshape(90, 4), rate=RATE)
    _write(nwb, tmp_path / "cells.nwb")
    (cells,) = load_study(_study(tmp_path / "cells.toml"))
    assert list(cells.unit_ids) == [10, 12]
    every = _study(tmp_path / "every.toml", entry="cells_only = false")
    assert validate_study(every) == []
    (s,) = load_study(every)
    assert list(s.unit_ids) == [10, 11, 12, 13]
    assert s.metadata["roi_selection"]["cells_only"] is False
    (d,) = load_study(_study(tmp_path / "defaults.toml", defaults="cells_only = false"))
    assert d.n_units == 4


def test_spike_bins_outside_a_units_obs_intervals_are_nan(tmp_path):
    # bins of 0.25 s on [0, 2): unit 0 observed throughout; unit 1 for the first second;
    # unit 2 in two touching intervals up to 1.5 s; unit 3 up to 1.1 s (the bin
    # [1, 1.25) is partly observed: its count would be too low, so it is NaN too)
    spikes = [[0.1, 0.6, 1.3, 1.9], [0.3, 0.4, 0.9], [0.2, 1.4], [0.5, 1.05]]
    obs = [[[0.0, 2.0]], [[0.0, 1.0]], [[0.5, 1.5], [0.0, 0.5]], [[0.0, 1.1]]]
    nwb = _file()
    for st, iv in zip(spikes, obs, strict=True):
        nwb.add_unit(spike_times=st, obs_intervals=iv)
    p = _write(nwb, tmp_path / "obs.nwb")
    with pytest.warns(UserWarning) as record:
        s = read_nwb(p, bin_size=0.25, time_range=(0.0, 2.0), behavior=[])
    (warning,) = [str(w.message) for w in record]
    assert warning.startswith(f"{p}: 3 of 4 spike units have bins outside their obs_intervals")
    assert "unit 1: 4, unit 2: 2, unit 3: 4" in warning and "NaN, not 0 spikes" in warning
    assert s.metadata["bins_outside_obs_intervals"] == {1: 4, 2: 2, 3: 4}
    nan = np.isnan(s.neural)
    assert nan.sum(axis=0).tolist() == [0, 4, 2, 4]
    assert nan[4:, 1].all() and nan[6:, 2].all() and nan[4:, 3].all()
    assert s.neural[:, 0].tolist() == [1, 0, 1, 0, 0, 1, 0, 1]
    assert s.neural[:4, 1].tolist() == [0, 2, 0, 1] and s.neural[:6, 2].tolist() == [
        1,
        0,
        0,
        0,
        0,
        1,
    ]
    assert s.neural[:4, 3].tolist() == [0, 0, 1, 0]
    # an interval that ends before it starts is refused, naming the unit
    nwb = _file()
    nwb.add_unit(spike_times=[0.1], obs_intervals=[[0.0, 2.0]])
    nwb.add_unit(spike_times=[0.2], obs_intervals=[[0.0, 0.5], [1.5, 1.0]])
    q = _write(nwb, tmp_path / "bad_obs.nwb")
    with pytest.raises(DataFormatError) as err:
        read_nwb(q, bin_size=0.25, behavior=[])
    assert str(err.value) == (
        f"{q}: units/obs_intervals of unit 1 (row 1) holds [1.5, 1.0], not a finite "
        "(start, stop) pair with start <= stop; correct the file"
    )


def _lever_module(nwb, module: str, name: str = "lever") -> None:
    from pynwb.behavior import BehavioralTimeSeries

    bts = BehavioralTimeSeries(name="BehavioralTimeSeries")
    t = np.arange(100) / 30.0
    bts.add_timeseries(pynwb.TimeSeries(name=name, data=t, unit="mm", timestamps=t))
    nwb.create_processing_module(module, "behaviour").add(bts)


@pytest.mark.parametrize("module", ["Behavior", "behaviour", "Behaviour"])
def test_behaviour_module_spelled_otherwise_is_searched(tmp_path, module):
    nwb = _file()
    _imaging(nwb, np.zeros((90, 2)), rate=RATE)
    _lever_module(nwb, module)
    p = _write(nwb, tmp_path / "spelling.nwb")
    s = read_nwb(p)
    assert s.behavior_names == ["lever"]
    np.testing.assert_allclose(s.behavior[:, 0], s.timestamps)
    assert s.metadata["behavior_sources"] == {"lever": f"{module}/BehavioralTimeSeries/lever"}
    assert read_nwb_header(p).behavior_names == ("lever",)


def test_two_behaviour_modules_are_refused_as_ambiguous(tmp_path):
    nwb = _file()
    _imaging(nwb, np.zeros((90, 2)), rate=RATE)
    _lever_module(nwb, "behavior")
    _lever_module(nwb, "Behaviour", name="wheel")
    p = _write(nwb, tmp_path / "two.nwb")
    with pytest.raises(DataFormatError) as err:
        read_nwb(p)
    assert str(err.value) == (
        f"{p}: 2 processing modules may hold the behaviour: ['processing/Behaviour', "
        "'processing/behavior']; choose the series with behavior=[...] (study file: "
        "behavior = [...]), or merge the modules in the file"
    )
    assert read_nwb_header(p).behavior is None  # never a guess
    assert read_nwb(p, behavior=["wheel", "lever"]).behavior_names == ["wheel", "lever"]


def _opto(nwb, t: np.ndarray, power: np.ndarray) -> None:
    from pynwb.ogen import OptogeneticSeries

    site = nwb.create_ogen_site(
        name="VM",
        device=nwb.create_device(name="laser"),
        description="fiber",
        excitation_lambda=470.0,
        location="VM",
    )
    nwb.add_stimulus(OptogeneticSeries(name="laser", data=power, site=site, timestamps=t))


def test_stimulation_outside_the_imaging_is_refused_or_warned(tmp_path):
    from pynwb.epoch import TimeIntervals

    def stim_file(name, starts, opto_t=None):
        nwb = _file()
        _imaging(nwb, np.zeros((90, 2)), rate=RATE)  # 0 .. 2.97 s
        table = TimeIntervals(name="stimulation", description="stimulation")
        for a in starts:
            table.add_interval(start_time=a, stop_time=a + 0.5)
        nwb.add_time_intervals(table)
        if opto_t is not None:
            _opto(nwb, opto_t, (np.arange(opto_t.size) % 10 < 3).astype(float))
        return _write(nwb, tmp_path / name)

    p = stim_file("late.nwb", [100.0, 101.0])  # on another clock
    with pytest.raises(DataFormatError) as err:
        read_nwb(p)
    assert str(err.value) == (
        f"{p}: none of the 2 stimulation intervals of 'intervals/stimulation' (100..101.5 "
        "s) overlaps the neural time range (0..2.96667 s of 'ophys/DfOverF/"
        "RoiResponseSeries'): their times are on different clocks (e.g. a series without "
        "its starting_time); correct the times in the file"
    )
    assert read_nwb(p, stimulation=False).stimulation.empty
    q = stim_file("laser.nwb", [1.0], opto_t=100.0 + np.arange(40) / 10)
    with pytest.raises(DataFormatError, match="none of the 4 light pulses of 'stimulus/"):
        read_nwb(q)
    r = stim_file("some.nwb", [1.0, 2.5, 3.0, 7.0])  # imaging stopped early
    with pytest.warns(UserWarning) as record:
        s = read_nwb(r)
    assert [str(w.message) for w in record] == [
        f"{r}: 2 of 4 stimulation intervals of 'intervals/stimulation' (rows [2, 3]) lie "
        "outside the neural time range (0..2.96667 s of 'ophys/DfOverF/RoiResponseSeries') "
        "and hold no neural sample"
    ]
    assert s.stimulation["start_time"].tolist() == [1.0, 2.5, 3.0, 7.0]


def test_subject_argument_that_only_respells_the_files_id_is_refused(tmp_path):
    nwb = _file()  # subject_id "m1"
    _imaging(nwb, np.zeros((90, 2)), rate=RATE)
    p = _write(nwb, tmp_path / "subject.nwb")
    for typo in ("M1", "m01", "m_1", " m1"):
        with pytest.raises(DataFormatError) as err:
            read_nwb(p, subject=typo)
        assert str(err.value) == (
            f"{p}: subject={typo!r} differs from the file's subject_id 'm1' (general/"
            "subject/subject_id) only by case, spaces, separators or leading zeros; did "
            "you mean 'm1'? (pass the file's id, or correct the file)"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_nwb(p, subject="m1").subject == "m1"
    with pytest.warns(UserWarning) as record:
        s = read_nwb(p, subject="m2")
    assert [str(w.message) for w in record] == [
        f"{p}: subject='m2' differs from the file's subject_id 'm1' (general/subject/"
        "subject_id); the session is labelled 'm2'"
    ]
    assert s.subject == "m2" and s.metadata["subject"]["subject_id"] == "m1"


def test_study_file_relabels_the_subject_with_one_warning(tmp_path):
    # the study file compares its subject with the file's itself: read_nwb's check of
    # subject= does not add a second warning (or problem) for the same entry
    from sharedrep.data.studyfile import load_study

    nwb = _file()  # subject_id "m1"
    _imaging(nwb, np.random.default_rng(3).normal(size=(90, 2)), rate=RATE)
    _write(nwb, tmp_path / "cells.nwb")
    toml = _study(tmp_path / "relabel.toml").read_text().replace('"m1"', '"m2"')
    (tmp_path / "relabel.toml").write_text(toml)
    with pytest.warns(UserWarning) as record:
        (s,) = load_study(tmp_path / "relabel.toml")
    assert s.subject == "m2" and s.session_id == "m2-day1"
    assert [str(w.message) for w in record] == [
        f"sessions[0] (m2-day1): subject 'm2' in the study file contradicts subject 'm1' "
        f"stored in {tmp_path / 'cells.nwb'}; the study file's subject 'm2' is used"
    ]
