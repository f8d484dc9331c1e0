"""A model fitted on behaviour DataFrames remembers their column names and checks them.

Behaviour columns are read by position: a DataFrame whose columns are the fitted ones in
another order, or other variables, would give wrong numbers without a word. As
scikit-learn does with ``feature_names_in_``, the fit keeps ``behavior_names_in_`` and every
later method that takes behaviour refuses such columns (naming the subject, both column
lists and the remedy), warns when given an array without names, and the model file keeps
the names.
"""

from __future__ import annotations

import copy
import json
import warnings

import numpy as np
import pandas as pd
import pytest

from model_checks import no_warnings
from sharedrep import ShaReD, simulate
from sharedrep.core import model_file

COLS = ["x", "y", "speed"]


@pytest.fixture(scope="module")
def data():
    return simulate(n_subjects=4, n_samples=200, n_units=[4, 5, 6, 5], n_behavior=3, seed=0)


def _frames(d, columns=COLS, subjects=slice(0, 3)):
    return [pd.DataFrame(y, columns=columns) for y in d.behavior[subjects]]


def _model():
    return ShaReD(n_shared=1, alpha=1.0, cv=None, private=False)


@pytest.fixture(scope="module")
def named(data):
    """A model fitted on behaviour DataFrames (no test modifies it)."""
    return _model().fit(data.neural[:3], _frames(data))


@pytest.fixture(scope="module")
def plain(data):
    """The same model fitted on the arrays."""
    return _model().fit(data.neural[:3], data.behavior[:3])


# ------------------------------------------------------------------ fit
def test_fit_on_dataframes_keeps_the_column_names(named, plain):
    names = named.behavior_names_in_
    assert isinstance(names, np.ndarray) and names.dtype == object and names.shape == (3,)
    assert names.tolist() == COLS
    np.testing.assert_array_equal(named.shared_axes_, plain.shared_axes_)


def test_fit_without_names_sets_no_names_and_a_refit_forgets_them(data, plain):
    assert not hasattr(plain, "behavior_names_in_")
    m = _model().fit(data.neural[:3], _frames(data))
    m.fit(data.neural[:3], data.behavior[:3])  # arrays now: the old names are stale
    assert not hasattr(m, "behavior_names_in_")
    # some subjects without names, or integer column names: none kept either
    mixed = [*_frames(data)[:2], data.behavior[2]]
    assert not hasattr(_model().fit(data.neural[:3], mixed), "behavior_names_in_")
    ints = _frames(data, columns=[0, 1, 2])
    assert not hasattr(_model().fit(data.neural[:3], ints), "behavior_names_in_")


def test_column_names_mixing_strings_and_other_types_are_refused(data):
    frames = _frames(data, columns=["x", 1, "speed"])
    with pytest.raises(TypeError, match=r"subject 0: behavior columns mix strings .*astype"):
        _model().fit(data.neural[:3], frames)


def test_repeated_column_names_are_refused(data):
    frames = _frames(data, columns=["x", "x", "speed"])
    with pytest.raises(ValueError, match=r"subject 0: behavior columns repeat the names \['x'\]"):
        _model().fit(data.neural[:3], frames)


def test_fit_from_files_keeps_the_names_and_checks_the_subjects_agree(data, tmp_path):
    paths = []
    for s, x in enumerate(data.neural[:3]):
        paths.append(tmp_path / f"neural{s}.npy")
        np.save(paths[-1], x)
    m = _model().fit(paths, _frames(data))
    assert m.behavior_names_in_.tolist() == COLS
    frames = _frames(data)
    frames[1] = frames[1][["y", "x", "speed"]]
    with pytest.raises(ValueError, match=r"subject 1: behavior columns \['y', 'x', 'speed'\]"):
        _model().fit(paths, frames)


# ------------------------------------------------------------------ later methods
def _call(method, model, d, behavior):
    """``method`` of a copy of ``model`` given ``behavior`` (one DataFrame or array)."""
    model = copy.deepcopy(model)
    if method == "score":  # subjects 0 and 1 as the fitted columns, or as arrays
        named = isinstance(behavior, pd.DataFrame)
        first = _frames(d, subjects=slice(0, 2)) if named else d.behavior[:2]
        return model.score(d.neural[:3], [*first, behavior])
    if method == "transform_behavior":
        return model.transform_behavior(behavior, subject=2)
    if method == "add_subject":
        assert model.add_subject(d.neural[3], behavior) == 3
        return model.encoders_[3]
    if method == "with_subject":
        return model.with_subject(d.neural[3], behavior)[0].encoders_[3]
    raise AssertionError(method)


METHODS = ["score", "transform_behavior", "add_subject", "with_subject"]
SUBJECT = {"score": 2, "transform_behavior": 2, "add_subject": 3, "with_subject": 3}


def _values(method, d):
    """The behaviour array ``method`` is given (subject 2, or the new subject 3)."""
    return d.behavior[3] if method in ("add_subject", "with_subject") else d.behavior[2]


def _behavior(method, d, columns):
    """The behaviour of ``method`` as a frame with ``COLS``, then given ``columns``: the
    same columns selected in another order, or the columns renamed."""
    frame = pd.DataFrame(_values(method, d), columns=COLS)
    if sorted(columns) == sorted(COLS):
        return frame[columns]
    frame.columns = columns
    return frame


@pytest.mark.parametrize("method", METHODS)
def test_columns_in_another_order_are_refused(method, named, data):
    behavior = _behavior(method, data, ["speed", "x", "y"])
    with pytest.raises(ValueError) as info:
        _call(method, named, data, behavior)
    msg = str(info.value)
    assert msg.startswith(f"subject {SUBJECT[method]}: behavior columns")
    assert "['speed', 'x', 'y']" in msg and str(COLS) in msg and "another order" in msg
    assert "behavior[model.behavior_names_in_]" in msg


@pytest.mark.parametrize("method", METHODS)
def test_other_columns_are_refused(method, named, data):
    behavior = _behavior(method, data, ["x", "y", "accel"])
    with pytest.raises(ValueError) as info:
        _call(method, named, data, behavior)
    msg = str(info.value)
    assert msg.startswith(f"subject {SUBJECT[method]}: behavior columns ['x', 'y', 'accel']")
    assert str(COLS) in msg and "missing ['speed']" in msg and "unexpected ['accel']" in msg
    assert "behavior[model.behavior_names_in_]" in msg


@pytest.mark.parametrize("method", METHODS)
def test_the_fitted_columns_give_what_the_arrays_give_without_warning(method, named, data):
    y = _values(method, data)
    with no_warnings():
        by_name = _call(method, named, data, pd.DataFrame(y, columns=COLS))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        by_position = _call(method, named, data, y)
    # a frame's values are column-major: products may round in the last bit
    np.testing.assert_allclose(by_name, by_position, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("method", METHODS)
def test_an_array_given_to_a_model_fitted_with_names_warns(method, named, data):
    y = _values(method, data)
    says = r"behavior( of subjects \[0, 1, 2\])? has no column names.*'x', 'y', 'speed'"
    with pytest.warns(UserWarning, match=says):
        _call(method, named, data, y)


def test_score_warns_once_for_several_subjects_without_names(named, data):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        named.score(data.neural[:3], data.behavior[:3])
    msgs = [str(w.message) for w in rec if "column names" in str(w.message)]
    assert len(msgs) == 1 and "subjects [0, 1, 2]" in msgs[0], msgs


@pytest.mark.parametrize("method", METHODS)
def test_the_warning_points_at_the_caller(method, named, data):
    with pytest.warns(UserWarning, match="no column names") as rec:
        _call(method, named, data, _values(method, data))
    assert {w.filename for w in rec} == {__file__}


def test_with_subject_that_fails_still_gives_its_warnings(named, data):
    """add_subject warns (no column names), then refuses the data (one sample): the
    warning still reaches the caller, at the caller's line, before the error."""
    rng = np.random.default_rng(0)
    with pytest.warns(UserWarning, match="no column names") as rec:
        with pytest.raises(ValueError, match="usable samples"):
            named.with_subject(rng.standard_normal((1, 5)), rng.standard_normal((1, 3)))
    assert {w.filename for w in rec} == {__file__}


def test_score_warns_for_one_array_of_one_subject(named, data):
    with pytest.warns(UserWarning, match=r"^subject 1: behavior has no column names"):
        named.score(data.neural[1], data.behavior[1], subjects=[1])


def test_score_names_the_model_subject_of_a_bad_entry(named, data):
    frames = _frames(data)
    frames[0] = frames[0][["y", "x", "speed"]]
    with pytest.raises(ValueError, match=r"^subject 2: behavior columns \['y', 'x', 'speed'\]"):
        named.score([data.neural[2], data.neural[1]], frames[:2], subjects=[2, 1])


def test_transform_behavior_without_subject_names_no_subject(named, data):
    behavior = pd.DataFrame(data.behavior[0], columns=COLS)[["y", "x", "speed"]]
    with pytest.raises(ValueError, match=r"^behavior columns \['y', 'x', 'speed'\]"):
        named.transform_behavior(behavior)


def test_dataframes_given_to_a_model_fitted_without_names_are_fine(plain, data):
    with no_warnings():
        got = plain.score(data.neural[:3], _frames(data, columns=["a", "b", "c"]))
    assert got == plain.score(data.neural[:3], data.behavior[:3])


def test_an_added_subject_keeps_the_names(named, data):
    m, _ = named.with_subject(data.neural[3], pd.DataFrame(data.behavior[3], columns=COLS))
    assert m.behavior_names_in_.tolist() == COLS


# ------------------------------------------------------------------ model file
def test_the_model_file_keeps_the_names(named, data, tmp_path):
    path = tmp_path / "model.npz"
    named.save(path)
    back = ShaReD.load(path)
    assert back.behavior_names_in_.dtype == object
    assert back.behavior_names_in_.tolist() == COLS
    with pytest.raises(ValueError, match=r"another order"):
        back.transform_behavior(pd.DataFrame(data.behavior[0], columns=COLS)[COLS[::-1]])
    back.save(tmp_path / "again.npz")  # and saved again
    assert ShaReD.load(tmp_path / "again.npz").behavior_names_in_.tolist() == COLS


def _edit(path, out, edit):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("__meta__")))
    edit(meta)
    arrays["__meta__"] = np.array(json.dumps(meta))
    np.savez(out, **arrays)
    return out


def test_a_model_without_names_loads_without_names(plain, tmp_path):
    plain.save(tmp_path / "plain.npz")
    assert not hasattr(ShaReD.load(tmp_path / "plain.npz"), "behavior_names_in_")


def test_files_written_before_the_names_still_load(named, data, tmp_path):
    named.save(tmp_path / "model.npz")

    def as_version_2(meta):
        assert meta.pop("behavior_names_in_") == COLS
        meta["version"] = 2

    old = ShaReD.load(_edit(tmp_path / "model.npz", tmp_path / "old.npz", as_version_2))
    assert not hasattr(old, "behavior_names_in_")
    with no_warnings():  # no names: arrays are read by position without a word
        got = old.transform_behavior(data.behavior[0], 0)
    with pytest.warns(UserWarning, match="no column names"):
        np.testing.assert_array_equal(got, named.transform_behavior(data.behavior[0], 0))


@pytest.mark.parametrize(
    "value", [["x", "y"], ["x", "y", 3], "x,y,speed", {"x": 0}, ["x", "y", "x"]]
)
def test_bad_names_in_a_file_are_refused_naming_the_field(named, tmp_path, value):
    named.save(tmp_path / "model.npz")
    bad = _edit(
        tmp_path / "model.npz",
        tmp_path / "bad.npz",
        lambda meta: meta.update(behavior_names_in_=value),
    )
    with pytest.raises(ValueError, match=r"model field 'behavior_names_in_' must be") as info:
        ShaReD.load(bad)
    assert str(bad) in str(info.value)


def test_the_file_version_counts_the_names():
    assert model_file.FORMAT_VERSION == 3


def test_frames_among_arrays_must_agree_on_their_columns():
    """Some subjects as DataFrames, others as arrays: the frames were compared only when
    every subject was one, so reordered columns in two of them were read by position."""
    d = simulate(n_subjects=3, n_samples=600, n_units=8, n_behavior=3, seed=5)
    frames = [pd.DataFrame(y, columns=["a", "b", "c"]) for y in d.behavior]
    behavior = [frames[0], d.behavior[1], frames[2][["b", "a", "c"]]]
    with pytest.raises(ValueError, match=r"subject 2: behavior columns \['b', 'a', 'c'\]"):
        ShaReD(n_shared=1, cv=3).fit(d.neural, behavior, groups=d.groups)
    behavior[2] = frames[2]
    ShaReD(n_shared=1, cv=3).fit(d.neural, behavior, groups=d.groups)  # agreeing frames
