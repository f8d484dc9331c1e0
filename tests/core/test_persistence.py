"""Save / load of :class:`sharedrep.ShaReD`: exact round trip, no pickle, atomic writes."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

from sharedrep import PrivateComponents, ShaReD, simulate


@pytest.fixture(scope="module")
def data():
    return simulate(
        n_subjects=3,
        n_samples=240,
        n_units=[5, 7, 6],
        n_behavior=4,
        n_shared=1,
        n_private=1,
        snr=3.0,
        trial_length=20,
        seed=3,
    )


@pytest.fixture(scope="module")
def new_subject():
    d = simulate(n_subjects=1, n_samples=200, n_units=9, n_behavior=4, n_shared=1, seed=4)
    return d.neural[0], d.behavior[0], d.groups[0]


CASES = {
    "no_cv": dict(n_shared=2, alpha=1.0, cv=None),
    "cv_alpha": dict(n_shared=1, alpha=None, cv=3, alphas=[0.01, 0.1, 1.0, 10.0]),
    "cv_auto_one_se": dict(
        n_shared="auto", alpha=None, cv=3, selection="one_se", random_state=0, max_shared=3
    ),
    "lags": dict(n_shared=2, alpha=0.3, cv=3, lags=[-1, 0, 2]),
    "int_lags_variance": dict(n_shared=2, alpha=0.3, cv=None, lags=2, behavior_metric="variance"),
    "weights_no_private": dict(
        n_shared=1, alpha=1.0, cv=3, subject_weights=[1.0, 2.0, 1.0], private=False
    ),
    "private": dict(n_shared=1, alpha=0.1, cv=3, shrinkage=0.05),
    "nan_omit": dict(n_shared=1, alpha=1.0, cv=None, nan_policy="omit"),
}


def _fit(data, params):
    return ShaReD(**params).fit(data.neural, data.behavior, groups=data.groups)


def assert_same(a, b, where="model", exact=True):
    """Recursive equality of attribute values (arrays, lists, dicts, dataclasses).

    ``exact``: the loaded copy must be what the fit made, not merely equal to it: same
    types (tuple vs list, int vs float, numpy scalar vs Python number), array dtypes,
    dict key order and key types, NaN where NaN. Without it (parameters, which JSON
    returns as Python values) numbers of either kind and lists/tuples/arrays match.
    """
    if exact:
        assert type(a) is type(b), (where, type(a), type(b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape, where
        if exact:
            assert a.dtype == b.dtype, (where, a.dtype, b.dtype)
        else:
            assert a.dtype.kind == b.dtype.kind, (where, a.dtype, b.dtype)
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), (where, list(a), list(b))
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]", exact)
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]", exact)
    elif dataclasses.is_dataclass(a):
        assert type(a) is type(b), where
        for f in dataclasses.fields(a):
            assert_same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}", exact)
    elif a is None or b is None:
        assert a is None and b is None, where
    elif isinstance(a, float) and np.isnan(a):
        assert isinstance(b, float) and np.isnan(b), (where, a, b)
    else:
        assert a == b, (where, a, b)
        assert type(a) is type(b) or (
            isinstance(a, int | float | np.number) and isinstance(b, int | float | np.number)
        ), where


def fitted_attributes(m):
    return {k: v for k, v in vars(m).items() if k.endswith("_") and not k.startswith("__")}


def assert_same_model(m, m2, data, extra_subject=None):
    assert type(m2) is ShaReD
    a1, a2 = fitted_attributes(m), fitted_attributes(m2)
    assert set(a1) == set(a2)
    for key in a1:
        assert_same(a1[key], a2[key], key)
    p1, p2 = m.get_params(), m2.get_params()
    assert set(p1) == set(p2)
    for key in p1:  # JSON gives numpy scalar parameters back as Python numbers
        assert_same(p1[key], p2[key], f"params[{key!r}]", exact=False)
    neural, behavior, groups = list(data.neural), list(data.behavior), list(data.groups)
    if extra_subject is not None:
        neural.append(extra_subject[0])
        behavior.append(extra_subject[1])
        groups.append(extra_subject[2])
    for s, (X, Y, g) in enumerate(zip(neural, behavior, groups, strict=True)):
        for kw in (dict(), dict(groups=g)):
            Z1, r1 = m.transform(X, subject=s, return_rows=True, **kw)
            Z2, r2 = m2.transform(X, subject=s, return_rows=True, **kw)
            np.testing.assert_array_equal(Z1, Z2)
            np.testing.assert_array_equal(r1, r2)
            np.testing.assert_array_equal(
                m.predict(X, subject=s, **kw), m2.predict(X, subject=s, **kw)
            )
        np.testing.assert_array_equal(
            m.transform_behavior(Y, subject=s), m2.transform_behavior(Y, subject=s)
        )
    np.testing.assert_array_equal(
        m.transform_behavior(behavior[0]), m2.transform_behavior(behavior[0])
    )
    assert m.score(neural, behavior, groups=groups) == m2.score(neural, behavior, groups=groups)


@pytest.mark.parametrize("case", list(CASES))
def test_round_trip(data, tmp_path, case):
    m = _fit(data, CASES[case])
    path = m.save(tmp_path / "model.npz")
    assert path == tmp_path / "model.npz" and path.is_file()
    m2 = ShaReD.load(path)
    assert_same_model(m, m2, data)
    assert (m.cv_results_ is None) == (CASES[case].get("cv", 5) is None)


def test_round_trip_str_path(data, tmp_path):
    m = _fit(data, CASES["no_cv"])
    m.save(str(tmp_path / "model.npz"))
    assert_same_model(m, ShaReD.load(str(tmp_path / "model.npz")), data)


def test_round_trip_with_private_components(data, tmp_path):
    m = _fit(data, CASES["private"])
    assert m.private_ is not None and len(m.private_) == 3
    assert any(pc.behavior_rank > 0 for pc in m.private_), "fixture must exercise private axes"
    m.save(tmp_path / "m.npz")
    m2 = ShaReD.load(tmp_path / "m.npz")
    for pc1, pc2 in zip(m.private_, m2.private_, strict=True):
        assert isinstance(pc2, PrivateComponents)
        assert type(pc2.behavior_rank) is int and pc2.behavior_rank == pc1.behavior_rank
        assert_same(pc1, pc2)


@pytest.mark.parametrize("case", ["cv_alpha", "no_cv", "lags"])
def test_round_trip_after_add_subject(data, new_subject, tmp_path, case):
    m = _fit(data, CASES[case])
    X, Y, g = new_subject
    assert m.add_subject(X, Y, groups=g) == 3
    m.save(tmp_path / "m.npz")
    m2 = ShaReD.load(tmp_path / "m.npz")
    assert m2.n_subjects_ == 4 and m2.n_units_[3] == 9
    assert_same_model(m, m2, data, extra_subject=new_subject)


def test_loaded_model_keeps_working_like_the_original(data, new_subject, tmp_path):
    """add_subject and refitting behave identically on the loaded copy."""
    m = _fit(data, CASES["lags"])
    m.save(tmp_path / "m.npz")
    m2 = ShaReD.load(tmp_path / "m.npz")
    X, Y, g = new_subject
    assert m.add_subject(X, Y, groups=g) == m2.add_subject(X, Y, groups=g)
    assert_same_model(m, m2, data, extra_subject=new_subject)
    m.fit(data.neural, data.behavior, groups=data.groups)
    m2.fit(data.neural, data.behavior, groups=data.groups)
    assert_same_model(m, m2, data)


def test_save_twice_round_trip_is_stable(data, tmp_path):
    m = _fit(data, CASES["cv_auto_one_se"])
    m.save(tmp_path / "a.npz")
    m2 = ShaReD.load(tmp_path / "a.npz")
    m2.save(tmp_path / "b.npz")
    assert_same_model(m, ShaReD.load(tmp_path / "b.npz"), data)


@pytest.mark.parametrize(
    "params",
    [
        dict(n_shared=np.int64(1), alpha=1.0, cv=None),
        dict(n_shared=1, alpha=1.0, cv=np.int64(3), random_state=np.int64(0)),
        dict(n_shared=1, alpha=1.0, cv=None, shrinkage=np.float32(0.1)),
    ],
    ids=["n_shared", "cv_random_state", "shrinkage"],
)
def test_round_trip_with_numpy_scalar_parameters(data, tmp_path, params):
    m = _fit(data, params)
    m.save(tmp_path / "m.npz")
    assert_same_model(m, ShaReD.load(tmp_path / "m.npz"), data)


def test_save_refuses_to_overwrite(data, tmp_path):
    path = tmp_path / "model.npz"
    m1 = _fit(data, CASES["no_cv"])
    m1.save(path)
    before = path.read_bytes()
    m2 = _fit(data, CASES["cv_alpha"])
    with pytest.raises(FileExistsError, match=r"model\.npz.*overwrite=True"):
        m2.save(path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]
    assert_same_model(m1, ShaReD.load(path), data)
    # with the flag the file is replaced
    m2.save(path, overwrite=True)
    assert path.read_bytes() != before
    assert_same_model(m2, ShaReD.load(path), data)
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]


def test_save_refuses_to_overwrite_any_existing_file(data, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("precious")
    with pytest.raises(FileExistsError):
        _fit(data, CASES["no_cv"]).save(path)
    assert path.read_text() == "precious"


def test_file_contains_no_pickled_objects(data, new_subject, tmp_path):
    m = _fit(data, CASES["private"])
    m.add_subject(*new_subject[:2])
    path = m.save(tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as z:
        assert len(z.files) > 0
        for key in z.files:
            arr = z[key]  # raises ValueError if the member needs pickle
            assert arr.dtype != object, key


def test_file_is_written_atomically(data, tmp_path):
    m = _fit(data, CASES["lags"])
    folder = tmp_path / "out" / "nested"
    m.save(folder / "m.npz")  # missing folders are created
    assert os.listdir(folder) == ["m.npz"]
    m.save(folder / "m.npz", overwrite=True)
    assert os.listdir(folder) == ["m.npz"]


def test_failed_write_leaves_old_file_and_no_temporary(data, tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    m = _fit(data, CASES["no_cv"])
    m.save(path)
    before = path.read_bytes()

    def broken_savez(file, *args, **kwargs):
        file.write(b"PK\x03\x04 partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        _fit(data, CASES["cv_alpha"]).save(path, overwrite=True)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]
    with pytest.raises(OSError, match="disk full"):
        m.save(tmp_path / "new.npz")
    assert os.listdir(tmp_path) == ["m.npz"]
    monkeypatch.undo()
    assert_same_model(m, ShaReD.load(path), data)


def test_round_trip_is_exact_with_constant_behavior(data, new_subject, tmp_path):
    """diagnostics_ keeps its int subject keys (JSON writes them as text), cv_results_
    its key order, and every other fitted attribute its types, through save and load."""
    behavior = [y.copy() for y in data.behavior]
    behavior[1][:, 2] = 5.0  # constant for subject 1 only
    m = ShaReD(n_shared="auto", cv=3, max_shared=2, random_state=0)
    with pytest.warns(UserWarning, match=r"subject 1: behaviour feature\(s\) \[2\] are constant"):
        m.fit(data.neural, behavior, groups=data.groups)
    assert m.diagnostics_["constant_behavior"] == {1: [2]}
    m.add_subject(*new_subject)
    m.save(tmp_path / "m.npz")
    m2 = ShaReD.load(tmp_path / "m.npz")
    assert m2.diagnostics_ == m.diagnostics_
    assert list(m2.diagnostics_["constant_behavior"]) == [1]
    assert list(m2.cv_results_) == list(m.cv_results_)
    d = dataclasses.replace(data, behavior=behavior)
    assert_same_model(m, m2, d, extra_subject=new_subject)
    # a second round trip changes nothing either
    m2.save(tmp_path / "m2.npz")
    assert_same_model(m, ShaReD.load(tmp_path / "m2.npz"), d, extra_subject=new_subject)


@pytest.mark.parametrize("overwrite", [False, True])
def test_save_to_a_directory_is_refused_and_leaves_it_alone(data, tmp_path, overwrite):
    folder = tmp_path / "model.npz"
    folder.mkdir()
    (folder / "keep.txt").write_text("precious")
    m = _fit(data, CASES["no_cv"])
    with pytest.raises(IsADirectoryError, match=r"model\.npz is a directory; give a file path"):
        m.save(folder, overwrite=overwrite)
    assert os.listdir(tmp_path) == ["model.npz"]
    assert os.listdir(folder) == ["keep.txt"]
    assert (folder / "keep.txt").read_text() == "precious"


def test_save_refuses_parameters_that_load_would_refuse(data, tmp_path):
    m = _fit(data, CASES["no_cv"])
    m.set_params(nan_policy="drop")  # set_params does not validate
    with pytest.raises(ValueError, match=r"nan_policy must be 'raise' or 'omit'.*'drop'"):
        m.save(tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []
