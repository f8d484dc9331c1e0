"""Gaps of the readers: behaviour times in the wrong unit caught on every path that
pairs behaviour with the imaging frames, ``read_nwb_header(cells_only=...)`` counting
the units ``read_nwb`` reads, and one list of the words that mark derived traces.
"""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from sharedrep.data.io import DataFormatError, Traces, build_session, read_trace

FS = 30.0
T_IMG = np.arange(120) / FS  # 4 s of imaging frames (s)


def _lever(t, source="lever.csv"):
    """A lever trace sin(t) sampled at the times ``t`` (whatever their unit)."""
    return Traces(np.sin(t), ["lever"], ["mm"], t, source)


def _session(behavior, t=T_IMG, **kw):
    return build_session(
        np.zeros((t.size, 2)), t, subject="m1", behavior=behavior, session_id="m1-d1", **kw
    )


# --------------------------------------------------------------------------- time units


def test_build_session_refuses_lever_times_in_milliseconds(tmp_path):
    # a CSV whose "time" column holds milliseconds: read as seconds, it spans 5000 s
    t = np.arange(-50, 451) / 100.0
    p = tmp_path / "lever.csv"
    pd.DataFrame({"time": t * 1000.0, "lever": np.sin(t)}).to_csv(p, index=False)
    with pytest.raises(DataFormatError) as ei:
        _session([read_trace(p)])
    msg = str(ei.value)
    assert msg.startswith(f"{p}: its times run from -500 to 4500")
    assert "1261 times the 3.96667 s of the imaging frames of the session" in msg
    assert "(subject 'm1', session 'm1-d1') (0 to 3.96667 s)" in msg
    assert "milliseconds" in msg and "'time_ms'" in msg  # the remedy
    # the same file with its unit in the header is converted and paired exactly
    q = tmp_path / "lever_ms.csv"
    pd.DataFrame({"time_ms": t * 1000.0, "lever": np.sin(t)}).to_csv(q, index=False)
    s = _session([read_trace(q)])
    np.testing.assert_allclose(s.behavior[:, 0], np.sin(T_IMG), atol=1e-4)


def test_frame_times_in_milliseconds_are_refused():
    # the other way round: frames in ms, lever in s; with extrapolate="nan" the lever
    # would fill the first 4 ms of frames and leave the rest NaN, silently
    lever = _lever(np.arange(-50, 451) / 100.0)
    with pytest.raises(DataFormatError, match="are the frame times in milliseconds") as ei:
        _session([lever], t=T_IMG * 1000.0, extrapolate="nan", source="frames.npy")
    assert str(ei.value).startswith("lever.csv: its times run from -0.5 to 4.5")
    assert "frames.npy" in str(ei.value) and "3966.67" in str(ei.value)


@pytest.mark.parametrize("extrapolate", ["nan", "nearest"])
def test_behaviour_on_another_clock_is_refused(extrapolate):
    # same span, same unit, but an acquisition clock that never meets the frames'
    lever = _lever(1e4 + np.arange(500) / 100.0)
    with pytest.raises(DataFormatError, match="share no time") as ei:
        _session([lever], extrapolate=extrapolate)
    assert str(ei.value).startswith("lever.csv: its times run from 10000 to 10005 and")
    assert "different clocks" in str(ei.value) and "(0 to 3.96667 s)" in str(ei.value)


@pytest.mark.parametrize(
    ("start", "stop", "extrapolate"),
    [
        (-30.0, 60.0, "error"),  # starts earlier and covers a superset (22x the imaging)
        (-300.0, 60.0, "error"),  # a superset of 90x
        (1.0, 10.0, "nan"),  # starts after the first frames
        (-5.0, 2.0, "nan"),  # stops before the last frames
    ],
)
def test_behaviour_clocks_that_merely_differ_are_paired(start, stop, extrapolate):
    tl = np.arange(start, stop, 0.01)
    s = _session([_lever(tl)], extrapolate=extrapolate)
    inside = (T_IMG >= tl[0]) & (T_IMG <= tl[-1])
    np.testing.assert_allclose(s.behavior[inside, 0], np.sin(T_IMG[inside]), atol=1e-4)
    assert np.isnan(s.behavior[~inside, 0]).all()


def test_suite2p_and_build_session_share_the_rule(tmp_path):
    from io_builders import make_suite2p
    from sharedrep.data.io import read_suite2p

    make_suite2p(tmp_path / "plane0", N=2, T=120, fs=FS)
    plane = read_suite2p(tmp_path / "plane0")
    bad = _lever(np.arange(-50, 451) * 10.0)  # 100 Hz in ms
    with pytest.raises(DataFormatError) as by_plane:
        plane.to_session(subject="m1", behavior=[bad])
    with pytest.raises(DataFormatError) as by_hand:
        _session([bad], source=str(plane.path))
    cut = "of the imaging frames of"
    assert str(by_plane.value).split(cut)[0] == str(by_hand.value).split(cut)[0]
    assert str(plane.path) in str(by_plane.value)


# --------------------------------------------------------------------------- NWB files


def _nwb(path, *, lever_scale=1.0, iscell=None, iface="DfOverF"):
    """An NWB file: 4 ROIs at 30 Hz for 3 s in ``iface`` (optionally classified by a
    suite2p ``iscell`` column), and a 100 Hz lever whose times are multiplied by
    ``lever_scale``."""
    pytest.importorskip("pynwb")
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries
    from pynwb.file import Subject
    from pynwb.ophys import DfOverF, Fluorescence, ImageSegmentation, OpticalChannel

    nwb = NWBFile(
        "lab", "id", dt.datetime(2024, 3, 1, tzinfo=dt.UTC), subject=Subject(subject_id="m1")
    )
    plane = nwb.create_imaging_plane(
        name="plane0",
        optical_channel=OpticalChannel(name="g", description="", emission_lambda=510.0),
        description="",
        device=nwb.create_device(name="scope"),
        excitation_lambda=920.0,
        indicator="GCaMP6s",
        location="M1",
        imaging_rate=FS,
    )
    oph = nwb.create_processing_module("ophys", "ophys")
    oph.add(ImageSegmentation())
    table = oph["ImageSegmentation"].create_plane_segmentation(
        name="rois", description="", imaging_plane=plane
    )
    for i in range(4):
        table.add_roi(id=10 + i, pixel_mask=[(i, i, 1.0)])
    if iscell is not None:
        table.add_column(name="iscell", description="suite2p", data=iscell)
    oph.add(DfOverF(name=iface) if iface == "DfOverF" else Fluorescence(name=iface))
    region = table.create_roi_table_region(region=[0, 1, 2, 3], description="all")
    x = np.random.default_rng(0).normal(size=(90, 4))
    oph[iface].create_roi_response_series(
        name="RoiResponseSeries", data=x, rois=region, unit="n.a.", rate=FS
    )
    tl = np.arange(-0.5, 3.5, 0.01)
    beh = nwb.create_processing_module("behavior", "behaviour")
    beh.add(TimeSeries(name="lever", data=np.sin(tl), unit="mm", timestamps=tl * lever_scale))
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path


def test_read_nwb_refuses_behaviour_times_in_milliseconds(tmp_path):
    from sharedrep.data.io import read_nwb

    ok = read_nwb(_nwb(tmp_path / "s.nwb"))
    np.testing.assert_allclose(ok.behavior[:, 0], np.sin(np.arange(90) / FS), atol=1e-4)
    p = _nwb(tmp_path / "ms.nwb", lever_scale=1000.0)
    with pytest.raises(DataFormatError, match="times the 2.96667 s") as ei:
        read_nwb(p)
    assert str(ei.value).startswith(f"{p}: behaviour series 'behavior/lever'")
    assert "milliseconds" in str(ei.value)


# --------------------------------------------------------------------------- cells_only

ISCELL = [[1, 0.9], [0, 0.2], [1, 0.7], [0, 0.4]]


@pytest.mark.parametrize("cells_only", [True, False])
def test_header_counts_the_units_read_nwb_reads(tmp_path, cells_only):
    from sharedrep.data.io import read_nwb, read_nwb_header

    p = _nwb(tmp_path / "cells.nwb", iscell=ISCELL)
    s = read_nwb(p, cells_only=cells_only)
    assert s.n_units == (2 if cells_only else 4)
    assert read_nwb_header(p, cells_only=cells_only).n_units == s.n_units


def test_header_without_cell_flags_counts_every_roi(tmp_path):
    from sharedrep.data.io import read_nwb_header

    p = _nwb(tmp_path / "plain.nwb")
    assert read_nwb_header(p).n_units == read_nwb_header(p, cells_only=False).n_units == 4


def test_study_file_passes_cells_only_to_the_header(tmp_path, monkeypatch):
    from sharedrep.data import studyfile
    from sharedrep.data.io import nwb_header

    _nwb(tmp_path / "cells.nwb", iscell=ISCELL)
    study = tmp_path / "study.toml"
    study.write_text(
        '[study]\nname = "x"\n[defaults]\ncells_only = false\n'
        '[[sessions]]\nsubject = "m1"\nday = 1\npath = "cells.nwb"\n'
    )
    seen = []
    real = nwb_header.read_nwb_header

    def spy(path, **kw):
        header = real(path, **kw)
        seen.append((kw.get("cells_only", True), header.n_units))
        return header

    monkeypatch.setattr(nwb_header, "read_nwb_header", spy)
    assert studyfile.validate_study(study, deep=False) == []
    (s,) = studyfile.load_study(study)
    assert seen and all(c is False for c, _ in seen)
    assert {n for _, n in seen} == {s.n_units} == {4}


# --------------------------------------------------------------------------- derived traces


def test_one_list_of_derived_trace_words(tmp_path, monkeypatch):
    # suite2p's export: raw Fluorescence next to deconvolved traces; both readers
    # choose the raw ones, and both follow the one list when it changes
    from sharedrep.data.io import nwb_header, read_nwb, read_nwb_header

    p = tmp_path / "x.nwb"
    _nwb(p, iface="Fluorescence")
    from pynwb import NWBHDF5IO
    from pynwb.ophys import Fluorescence

    with NWBHDF5IO(str(p), "a") as io:
        f = io.read()
        oph = f.processing["ophys"]
        oph.add(Fluorescence(name="Deconvolved"))
        rois = oph["Fluorescence"]["RoiResponseSeries"].rois
        region = rois.table.create_roi_table_region(region=[0, 1, 2, 3], description="all")
        oph["Deconvolved"].create_roi_response_series(
            name="RoiResponseSeries", data=np.zeros((90, 4)), rois=region, unit="n.a.", rate=FS
        )
        io.write(f)
    assert "deconv" in nwb_header.DERIVED_TRACES
    raw = "ophys/Fluorescence/RoiResponseSeries"
    assert read_nwb_header(p).neural_source == read_nwb(p).metadata["neural_source"] == raw
    # mark raw fluorescence as derived too: neither reader may choose by default now
    words = (*nwb_header.DERIVED_TRACES, "fluorescence")
    monkeypatch.setattr(nwb_header, "DERIVED_TRACES", words)
    assert read_nwb_header(p).neural_source is None
    with pytest.raises(DataFormatError, match="2 neural series could be read by default"):
        read_nwb(p)


def _units_with_lever(path, *, lever_scale=1.0, lever_span=(0.0, 2000.0), n_spikes=(4000,) * 3):
    """Spikes over 0..2000 s (``n_spikes[i]`` of unit ``i``) and a lever sampled at
    10 Hz over ``lever_span`` (s; its times multiplied by ``lever_scale``: 1000 writes
    them in milliseconds)."""
    pynwb = pytest.importorskip("pynwb")

    nwb = pynwb.NWBFile(
        session_description="spikes and lever",
        identifier=path.stem,
        session_start_time=dt.datetime(2024, 3, 1, tzinfo=dt.UTC),
        subject=pynwb.file.Subject(subject_id="m1"),
    )
    rng = np.random.default_rng(0)
    for n in n_spikes:
        nwb.add_unit(spike_times=np.sort(rng.uniform(0.0, 2000.0, n)))
    t = lever_span[0] + np.arange(round((lever_span[1] - lever_span[0]) * 10.0) + 1) / 10.0
    beh = nwb.create_processing_module("behavior", "lever")
    beh.add(
        pynwb.TimeSeries(
            name="lever", data=np.sin(t)[:, None], unit="a.u.", timestamps=t * lever_scale
        )
    )
    with pynwb.NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path


def test_a_time_range_of_a_long_recording_is_not_taken_for_milliseconds(tmp_path):
    """Binning a 10 s window of a 2000 s recording: the lever spans 200 times the window,
    as it should; the recording, not the window, is what its times are compared with."""
    from sharedrep.data.io import read_nwb

    p = _units_with_lever(tmp_path / "long.nwb")
    s = read_nwb(p, bin_size=0.1, time_range=(100.0, 110.0))
    assert s.n_samples == 100
    np.testing.assert_allclose(s.behavior[:, 0], np.sin(s.timestamps), atol=5e-3)
    p = _units_with_lever(tmp_path / "long_ms.nwb", lever_scale=1000.0)
    with pytest.raises(DataFormatError, match="milliseconds"):
        read_nwb(p, bin_size=0.1, time_range=(100.0, 110.0))


def test_a_malformed_classification_column_does_not_stop_reading_every_roi(tmp_path):
    """cells_only=False reads every ROI: a classification column that is not one flag per
    ROI was refused all the same, by a message telling to pass cells_only=False."""
    from sharedrep.data.io import read_nwb, read_nwb_header

    p = _nwb(tmp_path / "text.nwb", iscell=["cell", "not", "cell", "not"])
    with pytest.raises(DataFormatError, match="not one flag per ROI; pass cells_only=False"):
        read_nwb(p)
    assert read_nwb_header(p).n_units is None  # read_nwb refuses it
    with pytest.warns(UserWarning, match="'iscell' .* not one flag per ROI; ignored"):
        s = read_nwb(p, cells_only=False)
    assert s.n_units == 4
    assert read_nwb_header(p, cells_only=False).n_units == 4


def test_a_lever_covering_only_the_time_range_is_read(tmp_path):
    """A lever recorded only around the binned window (10 s of a 2000 s recording) spans
    1/200 of the recording but all of the window: it is on the same clock, not in
    another unit. The same lever in milliseconds fits neither: refused with the message
    of the whole recording (which it shares no time with)."""
    from sharedrep.data.io import read_nwb

    p = _units_with_lever(tmp_path / "window.nwb", lever_span=(100.0, 110.0))
    s = read_nwb(p, bin_size=0.1, time_range=(100.0, 110.0))
    assert s.n_samples == 100
    np.testing.assert_allclose(s.behavior[:, 0], np.sin(s.timestamps), atol=5e-3)
    p = _units_with_lever(tmp_path / "window_ms.nwb", lever_span=(100.0, 110.0), lever_scale=1e3)
    with pytest.raises(DataFormatError, match="from 100000 to 110000 .* different clocks"):
        read_nwb(p, bin_size=0.1, time_range=(100.0, 110.0))


@pytest.mark.parametrize("n_spikes", [(0, 0, 0), (1, 0, 0)])
def test_a_time_range_bins_units_whose_spikes_give_no_extent(tmp_path, n_spikes):
    """Units with no spike (or one) and no trials have no recording extent of their own;
    a time_range still bins them (the window stands for the recording)."""
    from sharedrep.data.io import read_nwb

    p = _units_with_lever(tmp_path / "few.nwb", lever_span=(100.0, 110.0), n_spikes=n_spikes)
    s = read_nwb(p, bin_size=0.1, time_range=(100.0, 110.0))
    assert s.n_samples == 100 and s.n_units == 3
    assert np.nansum(s.neural) <= sum(n_spikes)
    np.testing.assert_allclose(s.behavior[:, 0], np.sin(s.timestamps), atol=5e-3)


def test_the_ignored_classification_column_warning_points_at_the_caller(tmp_path):
    from sharedrep.data.io import read_nwb

    p = _nwb(tmp_path / "text.nwb", iscell=["cell", "not", "cell", "not"])
    with pytest.warns(UserWarning, match="not one flag per ROI; ignored") as rec:
        read_nwb(p, cells_only=False)
    hits = [w for w in rec if "not one flag per ROI" in str(w.message)]
    assert hits and all(w.filename == __file__ for w in hits)
