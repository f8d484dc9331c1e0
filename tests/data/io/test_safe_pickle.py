"""The restricted unpickler of suite2p's ops.npy / stat.npy: no code from data."""

import datetime
import os
import pickle

import numpy as np
import pytest

from io_builders import make_suite2p
from sharedrep.data.io import DataFormatError, read_suite2p
from sharedrep.data.io._safe_pickle import load_object_npy


class _WritesMarker:
    """An object whose unpickling would create a marker file (if it ever ran)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


class _SystemCall:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _same(a, b):
    """Deep equality of what np.load returns (arrays, dicts, lists, scalars)."""
    if isinstance(a, np.ndarray):
        return (
            isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and all(_same(x, y) for x, y in zip(a.ravel(), b.ravel(), strict=True))
        )
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, float) and np.isnan(a):
        return isinstance(b, float) and np.isnan(b)
    return type(a) is type(b) and a == b


def _ops():
    return {
        "fs": 30.0,
        "nframes": 900,
        "nplanes": 1,
        "do_registration": True,
        "save_path0": "/data/mouse/day1",
        "xrange": np.array([3, 509]),
        "meanImg": np.random.default_rng(0).random((8, 8)).astype(np.float32),
        "tau": np.float64(1.25),
        "nchannels": np.int32(1),
        "flag": np.bool_(False),
        "name": np.str_("plane0"),
        "filelist": ["a.tif", "b.tif"],
        "shape": (512, 512),
        "cplx": 1 + 2j,
        "chans": {1, 2},
        "nothing": None,
        "nan": float("nan"),
        "date_proc": datetime.datetime(2024, 5, 1, 12, 30, 5),
        "blob": b"\x00\x01",
    }


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_legitimate_ops_and_stat_load_identically(tmp_path, protocol):
    ops = np.array(_ops(), dtype=object)
    stat = np.array(
        [
            {"ypix": np.arange(i, i + 5), "lam": np.linspace(0, 1, 5), "med": [i, i], "npix": 5}
            for i in range(4)
        ],
        dtype=object,
    )
    for name, arr in (("ops.npy", ops), ("stat.npy", stat)):
        path = tmp_path / name
        with open(path, "wb") as fh:  # np.save with another pickle protocol
            fmt = np.lib.format
            fmt.write_array_header_1_0(fh, fmt.header_data_from_array_1_0(arr))
            pickle.dump(arr, fh, protocol=protocol)
        ours = load_object_npy(path, name)
        reference = np.load(path, allow_pickle=True)
        assert _same(ours, reference), name
    assert load_object_npy(tmp_path / "ops.npy").item()["date_proc"].year == 2024


def test_plain_arrays_pass_through(tmp_path):
    x = np.arange(12.0).reshape(3, 4)
    np.save(tmp_path / "x.npy", np.asfortranarray(x))
    assert np.array_equal(load_object_npy(tmp_path / "x.npy"), x)


@pytest.mark.parametrize("payload", [_WritesMarker, _SystemCall])
def test_malicious_ops_is_refused_and_nothing_runs(tmp_path, payload):
    d = tmp_path / "plane0"
    make_suite2p(d)
    marker = tmp_path / "MARKER"
    ops = np.empty((), dtype=object)
    ops[()] = {"fs": 30.0, "evil": payload(marker)}
    np.save(d / "ops.npy", ops, allow_pickle=True)
    with pytest.raises(DataFormatError) as err:
        read_suite2p(d)
    msg = str(err.value)
    func = open if payload is _WritesMarker else os.system
    refused = f"{func.__module__}.{func.__name__}"
    assert str(d / "ops.npy") in msg and refused in msg
    assert not marker.exists()


def test_malicious_stat_is_refused(tmp_path):
    d = tmp_path / "plane0"
    make_suite2p(d)
    marker = tmp_path / "MARKER"
    stat = np.load(d / "stat.npy", allow_pickle=True)
    stat[0]["evil"] = _WritesMarker(marker)
    np.save(d / "stat.npy", stat, allow_pickle=True)
    with pytest.raises(DataFormatError, match=rf"stat\.npy.*{open.__module__}\.open"):
        read_suite2p(d)
    assert not marker.exists()


def test_the_malicious_file_would_run_code_with_pickle(tmp_path):
    # guard of the tests above: the payload does run under an unrestricted unpickler
    marker = tmp_path / "MARKER"
    pickle.loads(pickle.dumps(_WritesMarker(marker))).close()
    assert marker.exists()


def test_refuses_class_instances_and_functions(tmp_path):
    from collections import Counter

    for i, obj in enumerate([Counter("ab"), np.random.default_rng(0), len]):
        path = tmp_path / f"o{i}.npy"
        arr = np.empty((), dtype=object)
        arr[()] = {"x": obj}
        np.save(path, arr, allow_pickle=True)
        with pytest.raises(DataFormatError, match="refused") as err:
            load_object_npy(path, "suite2p ops")
        assert str(path) in str(err.value)


def test_truncated_and_corrupt_object_arrays(tmp_path):
    path = tmp_path / "ops.npy"
    np.save(path, np.array(_ops(), dtype=object), allow_pickle=True)
    data = path.read_bytes()
    for cut in (7, 40, 130, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:cut])
        with pytest.raises(DataFormatError, match="ops.npy"):
            load_object_npy(path, "suite2p ops")
    path.write_bytes(data[:128] + b"\xff" * 40)
    with pytest.raises(DataFormatError, match="ops.npy"):
        load_object_npy(path, "suite2p ops")


def test_read_suite2p_reads_ops_and_stat_like_numpy(tmp_path):
    d = tmp_path / "plane0"
    make_suite2p(d, N=4, n_noncell=1)
    plane = read_suite2p(d, cells_only=False)
    assert _same(plane.ops, np.load(d / "ops.npy", allow_pickle=True).item())
    assert _same(plane.stat, list(np.load(d / "stat.npy", allow_pickle=True)))


def test_validate_of_a_study_with_a_malicious_ops_runs_nothing(tmp_path):
    from sharedrep.data.studyfile import validate_study

    d = tmp_path / "plane0"
    make_suite2p(d)
    marker = tmp_path / "MARKER"
    ops = np.empty((), dtype=object)
    ops[()] = {"fs": 30.0, "evil": _WritesMarker(marker)}
    np.save(d / "ops.npy", ops, allow_pickle=True)
    toml = tmp_path / "study.toml"
    toml.write_text('[[sessions]]\nsubject = "m1"\nformat = "suite2p"\npath = "plane0"\n')
    (msg,) = validate_study(toml)
    assert msg.startswith("sessions[0] (m1)") and str(d / "ops.npy") in msg
    assert f"{open.__module__}.open" in msg and not marker.exists()
