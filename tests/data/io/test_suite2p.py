"""suite2p plane folders."""

import numpy as np
import pytest

from io_builders import make_suite2p
from sharedrep.data.io import DataFormatError, Traces, read_suite2p


def test_reads_cells_and_builds_dff_session(tmp_path):
    d = tmp_path / "suite2p" / "plane0"
    truth = make_suite2p(d, N=5, T=600, n_noncell=2)
    plane = read_suite2p(d)
    assert plane.F.shape == (600, 5) and plane.Fneu.shape == (600, 5)
    assert list(plane.roi_ids) == [0, 1, 2, 3, 4]
    assert np.allclose(plane.F, truth["F"][:5].T)
    assert plane.sampling_rate == 30.0 and plane.ops["nframes"] == 600
    assert len(plane.stat) == 5 and plane.stat[0]["npix"] == 10
    allr = read_suite2p(d, cells_only=False)
    assert allr.F.shape[1] == 7
    prob = read_suite2p(d, min_cell_prob=0.0)
    assert prob.F.shape[1] == 7
    t = np.arange(600) / 30.0
    lever = Traces(
        np.sin(np.arange(2200) / 50)[:, None],
        ["lever"],
        ["mm"],
        np.arange(2200) / 100 - 0.5,
        "lever.npy",
    )
    s = plane.to_session(subject="m1", day=2, behavior=[lever], stage="novice")
    assert s.session_id == "m1-day2" and s.neural.shape == (600, 5)
    assert np.allclose(s.timestamps, t)
    assert np.allclose(s.behavior[:, 0], np.sin((t + 0.5) * 100 / 50), atol=1e-3)
    # baseline ~ 8th percentile: dF/F mostly small, positive transients
    assert np.median(s.neural) < 0.2 and s.neural.max() > 0.2
    assert s.metadata["format"] == "suite2p"
    m = plane.to_session(subject="m1", bouton_threshold=0.7)
    assert m.n_units <= 5 and len(m.metadata["bouton_labels"]) == 5


def test_untrusted_folder_without_pickle(tmp_path):
    d = tmp_path / "plane0"
    make_suite2p(d)
    plane = read_suite2p(d, allow_pickle=False)
    assert plane.ops == {} and plane.stat is None and plane.sampling_rate is None
    with pytest.raises(DataFormatError, match="frame rate unknown"):
        plane.timestamps()
    s = plane.to_session(subject="m1", timestamps=np.arange(plane.n_frames) / 15.0)
    assert s.sampling_rate == pytest.approx(15.0)


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_suite2p(tmp_path / "nope")
    d = tmp_path / "suite2p" / "plane0"
    make_suite2p(d)
    with pytest.raises(FileNotFoundError, match="plane0"):
        read_suite2p(tmp_path / "suite2p")
    with pytest.raises(DataFormatError, match="directory"):
        read_suite2p(d / "F.npy")
    np.save(d / "Fneu.npy", np.zeros((3, 3)))
    with pytest.raises(DataFormatError, match="F.npy has shape .* but Fneu.npy has"):
        read_suite2p(d)
    make_suite2p(d)
    np.save(d / "iscell.npy", np.zeros((8, 2)))
    with pytest.raises(DataFormatError, match="no ROI passes the cell selection"):
        read_suite2p(d)
    make_suite2p(d)
    np.save(d / "iscell.npy", np.zeros((3, 2)))
    with pytest.raises(DataFormatError, match="does not match 8 ROIs"):
        read_suite2p(d)
    make_suite2p(d)
    (d / "F.npy").write_bytes(b"garbage")
    with pytest.raises(DataFormatError, match="F.npy: not a NumPy .npy file"):
        read_suite2p(d)
    make_suite2p(d)
    np.save(d / "ops.npy", np.array([1, 2, 3]))
    with pytest.raises(DataFormatError, match="ops.npy: expected a pickled dict"):
        read_suite2p(d)
    make_suite2p(d)
    F = np.load(d / "F.npy")
    F[0, 5] = np.nan
    np.save(d / "F.npy", F)
    with pytest.raises(DataFormatError, match="NaN"):
        read_suite2p(d)
    make_suite2p(d)
    np.save(d / "F.npy", np.zeros((8, 0), dtype=np.float32))
    np.save(d / "Fneu.npy", np.zeros((8, 0), dtype=np.float32))
    with pytest.raises(DataFormatError, match="empty"):
        read_suite2p(d)
    make_suite2p(d)
    (d / "iscell.npy").unlink()
    with pytest.raises(FileNotFoundError, match="iscell.npy"):
        read_suite2p(d)
    assert read_suite2p(d, cells_only=False).F.shape[1] == 8


def test_unknown_frame_rate_message_names_existing_parameters(tmp_path):
    import inspect

    from sharedrep.data.io.suite2p import Suite2pPlane

    d = tmp_path / "plane0"
    make_suite2p(d)
    plane = read_suite2p(d, allow_pickle=False)
    with pytest.raises(DataFormatError, match="frame rate unknown") as ei:
        plane.to_session(subject="m1")
    msg = str(ei.value)
    assert str(d) in msg and "to_session(timestamps=" in msg and "frame_rate=" not in msg
    assert "timestamps" in inspect.signature(Suite2pPlane.to_session).parameters


def test_dff_baseline_uses_the_rate_of_the_frame_times_given(tmp_path, monkeypatch):
    # ops['fs'] says 30 Hz but the frames were taken at 15 Hz: the baseline window (in
    # seconds) must be counted in frames of 15 Hz
    from sharedrep.data.io import suite2p as s2p

    make_suite2p(tmp_path / "p", fs=30.0, seed=1)
    plane = read_suite2p(tmp_path / "p")
    rates, dff = [], s2p._dff
    monkeypatch.setattr(
        s2p, "_dff", lambda F, **kw: rates.append(kw["sampling_rate"]) or dff(F, **kw)
    )
    plane.to_session(subject="m")  # no frame times: ops['fs']
    plane.to_session(timestamps=np.arange(plane.n_frames) / 15.0, subject="m")
    assert rates == [30.0, pytest.approx(15.0)]


def test_neuropil_coefficient_defaults_to_the_one_suite2p_ran_with(tmp_path):
    d = tmp_path / "plane0"
    make_suite2p(d, N=4, T=300)
    ops = np.load(d / "ops.npy", allow_pickle=True).item()
    default = read_suite2p(d).to_session(subject="m")
    assert default.metadata["neuropil_coef"] == 0.7  # suite2p's default, no neucoeff
    np.save(d / "ops.npy", np.array({**ops, "neucoeff": 0.5}, dtype=object))
    plane = read_suite2p(d)
    s = plane.to_session(subject="m")
    assert s.metadata["neuropil_coef"] == 0.5
    assert np.array_equal(s.neural, plane.to_session(subject="m", neuropil_coef=0.5).neural)
    assert not np.allclose(s.neural, default.neural)
    np.save(d / "ops.npy", np.array({**ops, "neucoeff": "x"}, dtype=object))
    with pytest.raises(DataFormatError, match=r"ops\['neucoeff'\] = 'x'.*neuropil_coef="):
        read_suite2p(d).to_session(subject="m")
