"""NWB headers read through h5py: the labels and shapes read_nwb would give, no data read."""

import datetime
import sys

import numpy as np
import pytest

pytest.importorskip("pynwb")
pytest.importorskip("ndx_pose")
h5py = pytest.importorskip("h5py")

from io_builders import make_nwb  # noqa: E402
from sharedrep.data.io import (  # noqa: E402
    DataFormatError,
    NWBHeader,
    read_nwb,
    read_nwb_header,
    write_nwb,
)
from sharedrep.data.session import Session  # noqa: E402


def _session(T=60, N=4, *, stage="expert", population="M1 L2/3", day=7) -> Session:
    rng = np.random.default_rng(3)
    return Session(
        subject="m7",
        session_id="m7-day7",
        neural=rng.normal(size=(T, N)),
        timestamps=np.arange(T) / 30.0,
        behavior=rng.normal(size=(T, 3)),
        # not sorted: write_nwb records the order, read_nwb restores it
        behavior_names=["lever", "elbow", "paw"],
        day=day,
        stage=stage,
        population=population,
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("hdr")
    out = {"written": write_nwb(_session(), d / "written.nwb")}
    make_nwb(d / "lab.nwb", units=True)  # pose + lever + opto + units
    make_nwb(d / "fluo.nwb", rrs="Fluorescence", pose=False, opto=False)
    make_nwb(d / "spikes.nwb", rrs=None, units=True, pose=False, opto=False)
    out.update({k: d / f"{k}.nwb" for k in ("lab", "fluo", "spikes")})
    return out


@pytest.fixture
def no_array_reads(monkeypatch):
    """Make reading any non-scalar HDF5 data set fail (scalars stay readable)."""
    original = h5py.Dataset.__getitem__

    def guarded(self, key):
        if self.shape != ():
            raise AssertionError(f"data array read: {self.name} {self.shape}")
        return original(self, key)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", guarded)


@pytest.mark.parametrize("name", ["written", "lab", "fluo"])
def test_header_agrees_with_read_nwb(files, name):
    s = read_nwb(files[name])
    h = read_nwb_header(files[name])
    assert isinstance(h, NWBHeader) and h.path == files[name]
    assert (h.subject, h.session_id) == (s.subject, s.session_id)
    assert (h.day, h.stage, h.population) == (s.day, s.stage, s.population)
    assert (h.n_samples, h.n_units) == (s.n_samples, s.n_units)
    assert h.neural_source == s.metadata["neural_source"]
    assert h.neural.n_timestamps == s.n_samples and h.neural.rate is None
    assert list(h.behavior_names) == s.behavior_names
    assert h.identifier == s.metadata["nwb"]["identifier"]
    assert h.session_description == s.metadata["nwb"]["session_description"]


def test_header_of_a_written_session_has_its_labels_and_series(files):
    h = read_nwb_header(files["written"])
    assert (h.subject, h.day, h.stage, h.population) == ("m7", 7, "expert", "M1 L2/3")
    assert h.neural.path == "processing/ophys/DfOverF/RoiResponseSeries"
    assert h.neural.shape == (60, 4)
    assert h.behavior_names == ("lever", "elbow", "paw")  # write_nwb's order, not sorted
    assert [b.path for b in h.behavior] == [
        "processing/behavior/elbow",
        "processing/behavior/lever",
        "processing/behavior/paw",
    ]
    assert all(b.shape == (60,) and b.neurodata_type == "TimeSeries" for b in h.behavior)


def test_lab_file_discovers_pose_but_not_optogenetics(files):
    h = read_nwb_header(files["lab"])
    kinds = {b.name: b.neurodata_type for b in h.behavior}
    assert kinds == {
        "nose": "PoseEstimationSeries",
        "paw": "PoseEstimationSeries",
        "lever": "TimeSeries",
    }
    assert h.behavior_names == ("nose_x", "nose_y", "paw_x", "paw_y", "lever")
    # a file written by another tool: no sharedrep labels
    assert (h.day, h.stage, h.population) == (None, None, None)


def test_spike_units_and_explicit_neural_choices(files):
    h = read_nwb_header(files["spikes"])
    s = read_nwb(files["spikes"], bin_size=0.1)
    assert h.neural_source == "units" and h.neural is None
    assert h.n_units == s.n_units == 3
    assert h.n_samples is None  # depends on bin_size and the spike times
    # the lab file prefers DfOverF, but units can be asked for
    u = read_nwb_header(files["lab"], neural="units")
    assert (u.neural_source, u.n_units, u.n_samples) == ("units", 3, None)
    named = read_nwb_header(files["lab"], neural="lever")
    assert named.neural_source == "behavior/lever" and named.n_units == 1
    assert "lever" not in named.behavior_names
    by_path = read_nwb_header(files["lab"], neural="/processing/ophys/DfOverF/RoiResponseSeries")
    assert (by_path.neural_source, by_path.n_units) == ("ophys/DfOverF/RoiResponseSeries", 5)
    missing = read_nwb_header(files["lab"], neural="nope")
    assert (missing.neural_source, missing.n_samples, missing.n_units) == (None, None, None)
    assert missing.stored == {} and missing.subject == "m1"  # the rest is still read


def test_no_data_array_is_read(files, no_array_reads):
    for name in ("written", "lab", "spikes"):
        h = read_nwb_header(files[name])
        assert h.subject is not None and h.n_units is not None
    # the guard does catch array reads: reading the session itself trips it
    with pytest.raises((AssertionError, DataFormatError), match="data array read"):
        read_nwb(files["written"])


def test_clashing_columns_are_prefixed_like_read_nwb(tmp_path):
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries
    from pynwb.behavior import SpatialSeries
    from pynwb.file import Subject

    from io_builders import _add_imaging, _add_pose

    t = np.arange(200) / 30.0 + 1.0
    nwb = NWBFile(
        session_description="clash",
        identifier="clash",
        session_start_time=datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC),
        subject=Subject(subject_id="m9"),
    )
    _add_imaging(nwb, np.random.default_rng(0).normal(size=(200, 3)), t, "DfOverF")
    beh = nwb.create_processing_module(name="behavior", description="behaviour")
    _add_pose(nwb, beh, t, None, {})
    nwb.add_acquisition(TimeSeries(name="paw_x", data=np.sin(t), unit="mm", timestamps=t))
    nwb.add_acquisition(
        SpatialSeries(name="joystick", data=np.ones((200, 3)), reference_frame="0", timestamps=t)
    )
    nwb.add_acquisition(TimeSeries(name="emg", data=np.ones((200, 4)), unit="V", timestamps=t))
    path = tmp_path / "clash.nwb"
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    h = read_nwb_header(path)
    s = read_nwb(path)
    assert list(h.behavior_names) == s.behavior_names
    assert "acquisition_paw_x" in h.behavior_names and "PoseEstimation_paw_x" in h.behavior_names
    assert {"joystick_x", "joystick_z", "emg_0", "emg_3"} <= set(h.behavior_names)


def test_corrupt_and_foreign_files_raise_naming_the_file(files, tmp_path):
    text = tmp_path / "text.nwb"
    text.write_text("not hdf5 at all\n" * 20)
    with pytest.raises(DataFormatError, match="no HDF5 signature") as ei:
        read_nwb_header(text)
    assert str(text) in str(ei.value)
    truncated = tmp_path / "truncated.nwb"
    truncated.write_bytes(files["written"].read_bytes()[:3000])
    with pytest.raises(DataFormatError) as ei:
        read_nwb_header(truncated)
    assert str(truncated) in str(ei.value)
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(DataFormatError, match="not an NWB file") as ei:
        read_nwb_header(plain)
    assert str(plain) in str(ei.value)
    with pytest.raises(FileNotFoundError, match="none.nwb"):
        read_nwb_header(tmp_path / "none.nwb")


def test_missing_h5py_names_the_extra(files, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match=r'pip install "sharedrep\[nwb\]"'):
        read_nwb_header(files["written"])
