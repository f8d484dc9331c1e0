"""Backend interface, sessions given as files / lazy arrays, backend parameters."""

import copy

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from model_checks import BACKEND_KW as KW
from model_checks import assert_same_model, write_sessions
from sharedrep import ShaReD, simulate
from sharedrep.core import data_pass
from sharedrep.core.backends import (
    BACKENDS,
    FileArray,
    LazyArray,
    check_sources,
    get_backend,
    has_sources,
)
from sharedrep.core.design import as_lags


@pytest.fixture(scope="module")
def data():
    return simulate(n_subjects=3, n_samples=800, n_units=(8, 14), n_behavior=6, seed=3, lag=1)


@pytest.fixture(scope="module")
def reference(data):
    return ShaReD(**KW).fit(data.neural, data.behavior, groups=data.groups)


def test_numpy_backend_matches_solver(data):
    lags = as_lags(2)
    be = get_backend("numpy")
    out = be.statistics(data.neural, data.behavior, data.groups, lags, 4, gap=2)
    for s, sd in enumerate(out):
        ref = data_pass.subject_statistics(
            data.neural[s], data.behavior[s], data.groups[s], lags, 4, gap=2, subject=s
        )
        np.testing.assert_array_equal(sd.rows, ref.rows)
        for a, b in zip(sd.stats, ref.stats, strict=True):
            np.testing.assert_array_equal(a.xx, b.xx)
            np.testing.assert_array_equal(a.xy, b.xy)


def test_get_backend_errors():
    with pytest.raises(ValueError, match="backend must be one of"):
        get_backend("cupy")
    with pytest.raises(ValueError, match="needs backend='torch'"):
        get_backend("numpy", device="cuda")
    assert get_backend("numpy").name == "numpy"
    assert set(BACKENDS) == {"numpy", "dask", "torch"}


def test_params_validated_and_saved(data, tmp_path):
    X, Y = data.neural, data.behavior
    with pytest.raises(ValueError, match="backend must be one of"):
        ShaReD(backend="gpu").fit(X, Y)
    with pytest.raises(ValueError, match="device='cuda' needs backend='torch'"):
        ShaReD(device="cuda").fit(X, Y)
    with pytest.raises(ValueError, match="dtype must be 'float64' or 'float32'"):
        ShaReD(dtype="float16").fit(X, Y)
    with pytest.raises(ValueError, match="dtype must be"):
        ShaReD(dtype=np.float32).fit(X, Y)
    with pytest.raises(TypeError, match="device must be a string"):
        ShaReD(device=0).fit(X, Y)
    m = ShaReD(n_shared=2, alpha=1.0, cv=None, dtype="float32").fit(X, Y)
    assert clone(m).get_params()["dtype"] == "float32"
    m.save(tmp_path / "m.npz")
    m2 = ShaReD.load(tmp_path / "m.npz")
    assert m2.get_params()["dtype"] == "float32"
    assert m2.get_params()["backend"] == "numpy" and m2.get_params()["device"] == "cpu"


def test_fit_from_files_matches_in_memory(data, reference, tmp_path):
    neural, behavior, groups = write_sessions(data, tmp_path)
    assert has_sources(neural, behavior, groups)
    m = ShaReD(**KW).fit(neural, behavior, groups=groups)
    assert_same_model(reference, m)
    assert m.n_units_ == reference.n_units_


def test_fit_from_files_with_trial_ids_from_pandas(data, reference, tmp_path):
    neural, behavior, _ = write_sessions(data, tmp_path)
    groups = [pd.Series([f"trial{int(i):03d}" for i in g]) for g in data.groups]  # object dtype
    m = ShaReD(**KW).fit(neural, behavior, groups=groups)
    ref = ShaReD(**KW).fit(data.neural, data.behavior, groups=groups)
    assert_same_model(ref, m)


def test_fit_from_lazy_arrays(data, reference, tmp_path):
    h5py = pytest.importorskip("h5py")
    zarr = pytest.importorskip("zarr")
    da = pytest.importorskip("dask.array")
    z = zarr.open_array(str(tmp_path / "b.zarr"), mode="w", shape=data.behavior[0].shape)
    z[...] = data.behavior[0]
    with h5py.File(tmp_path / "x.h5", "w") as fh:
        fh["x"] = data.neural[2]
    with h5py.File(tmp_path / "x.h5", "r") as fh:
        neural = [
            da.from_array(data.neural[0], chunks=(300, -1)),
            data.neural[1],
            fh["x"],  # an open h5py dataset
        ]
        behavior = [z, data.behavior[1], data.behavior[2]]
        m = ShaReD(**KW).fit(neural, behavior, groups=data.groups)
    assert_same_model(reference, m)


def test_source_validation(data, tmp_path):
    np.save(tmp_path / "x.npy", data.neural[0])
    np.save(tmp_path / "x1d.npy", data.neural[0][:, 0])
    np.save(tmp_path / "y_short.npy", data.behavior[0][:-5])
    np.savez(tmp_path / "two.npz", a=data.behavior[0], b=data.behavior[0])
    Y = data.behavior[0]
    with pytest.raises(FileNotFoundError, match="no such file"):
        check_sources([tmp_path / "missing.npy"], [Y])
    with pytest.raises(ValueError, match=r"subject 0: neural must be 2-D"):
        check_sources([tmp_path / "x1d.npy"], [Y])
    with pytest.raises(ValueError, match="neural has 800 samples .* behavior has 795"):
        check_sources([tmp_path / "x.npy"], [tmp_path / "y_short.npy"])
    with pytest.raises(ValueError, match="holds 2 arrays"):
        check_sources([tmp_path / "x.npy"], [tmp_path / "two.npz"])
    with pytest.raises(ValueError, match="has no array 'c'"):
        check_sources([tmp_path / "x.npy"], [str(tmp_path / "two.npz") + "::c"])
    with pytest.raises(ValueError, match="unknown file type"):
        (tmp_path / "x.csv").write_text("1,2\n")
        check_sources([tmp_path / "x.csv"], [Y])
    with pytest.raises(ValueError, match="groups must have shape"):
        check_sources([tmp_path / "x.npy"], [Y], groups=[np.zeros(3)])
    with pytest.raises(ValueError, match="neural has 2 subjects but behavior has 1"):
        check_sources([tmp_path / "x.npy", tmp_path / "x.npy"], [Y])
    # values are checked when read, with the usual message
    bad = data.neural[0].copy()
    bad[10, 2] = np.nan
    np.save(tmp_path / "bad.npy", bad)
    with pytest.raises(ValueError, match="subject 0: neural contains NaN"):
        ShaReD(n_shared=1, alpha=1.0, cv=None).fit([tmp_path / "bad.npy"], [Y])
    # with nan_policy="omit" the same file fits
    ShaReD(n_shared=1, alpha=1.0, cv=None, nan_policy="omit").fit([tmp_path / "bad.npy"], [Y])


def test_file_array_loader_and_repr(data, tmp_path):
    np.save(tmp_path / "x.npy", data.neural[0])
    fa = FileArray(tmp_path / "x.npy", loader=_mmap_loader)
    assert fa.shape == data.neural[0].shape and fa.ndim == 2
    np.testing.assert_array_equal(fa.load(), data.neural[0])
    assert "x.npy" in repr(fa)
    la = LazyArray(np.lib.format.open_memmap(tmp_path / "x.npy", mode="r"))
    assert la.shape == data.neural[0].shape and "LazyArray" in repr(la)


def _mmap_loader(path):
    return np.load(path, mmap_mode="r")


def test_has_sources():
    X = np.zeros((5, 2))
    assert not has_sources([X], [X], None)
    assert not has_sources(X, X)
    assert has_sources(["a.npy"], [X])
    assert has_sources([X], [X], [None, "g.npy"])
    assert not has_sources("x.npy", [X])  # not a list: in-memory validation explains


def test_transform_predict_score_add_subject_read_sources(data, reference, tmp_path):
    zarr = pytest.importorskip("zarr")
    da = pytest.importorskip("dask.array")
    X0, Y0, g0 = data.neural[0], data.behavior[0], data.groups[0]
    np.save(tmp_path / "x0.npy", X0)
    z = zarr.open_array(str(tmp_path / "y0.zarr"), mode="w", shape=Y0.shape)
    z[...] = Y0
    lazy_x = da.from_array(X0, chunks=(200, -1))
    m = reference
    np.testing.assert_array_equal(
        m.transform(tmp_path / "x0.npy", 0, groups=g0), m.transform(X0, 0, groups=g0)
    )
    np.testing.assert_array_equal(m.predict(lazy_x, 0, groups=g0), m.predict(X0, 0, groups=g0))
    np.testing.assert_array_equal(m.transform_behavior(z, subject=0), m.transform_behavior(Y0, 0))
    ref_score = m.score(data.neural, data.behavior, groups=data.groups)
    lazy_score = m.score(
        [str(tmp_path / "x0.npy"), da.from_array(data.neural[1]), data.neural[2]],
        [z] + data.behavior[1:],
        groups=data.groups,
    )
    assert lazy_score == ref_score
    a = clone(m).fit(data.neural[1:], data.behavior[1:], groups=data.groups[1:])
    b = clone(m).fit(data.neural[1:], data.behavior[1:], groups=data.groups[1:])
    a.add_subject(X0, Y0, groups=g0)
    b.add_subject(lazy_x, z, groups=g0)
    np.testing.assert_array_equal(a.encoders_[-1], b.encoders_[-1])
    with pytest.raises(FileNotFoundError, match="subject 0: neural: no such file.*missing.npy"):
        m.transform(tmp_path / "missing.npy", 0)
    # unreadable files are named as in fit, whatever the method
    np.savetxt(tmp_path / "x0.csv", X0, delimiter=",")
    (tmp_path / "cut.npy").write_bytes((tmp_path / "x0.npy").read_bytes()[:500])
    for bad, message in (("x0.csv", r"x0\.csv.*unknown file type"), ("cut.npy", r"cut\.npy")):
        for call in (m.transform, m.predict, lambda x, s: copy.deepcopy(m).add_subject(x, Y0)):
            with pytest.raises(ValueError, match=message):
                call(tmp_path / bad, 0)
