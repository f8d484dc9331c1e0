"""A model fitted on neural DataFrames remembers each subject's unit names and checks them.

Neural columns are read by position: after re-curating a recording (units dropped and
others added, or reordered) a DataFrame with the same number of units would have the
encoder weights applied to other cells without a word. The fit keeps each subject's unit
names (``neural_names_in_``: string column names, or integer ROI ids other than the
default ``0..N-1``), every later method that takes a subject's neural activity refuses
other columns (naming the subject, the first difference, the missing and unexpected
units and the remedy), warns once when given an array without names, and the model file
keeps the names.
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

N_UNITS = [4, 5, 6, 5]


@pytest.fixture(scope="module")
def data():
    return simulate(n_subjects=4, n_samples=200, n_units=N_UNITS, n_behavior=3, seed=0)


def _units(s: int) -> list[str]:
    return [f"roi{s}_{j}" for j in range(N_UNITS[s])]


def _ids(s: int) -> list[int]:
    """suite2p-like ROI ids: integers, not 0..N-1 (cells were curated out)."""
    return [3 * j + 2 for j in range(N_UNITS[s])]


def _frame(d, s: int, columns=None) -> pd.DataFrame:
    return pd.DataFrame(d.neural[s], columns=_units(s) if columns is None else columns)


def _model():
    return ShaReD(n_shared=1, alpha=1.0, cv=None, private=False)


@pytest.fixture(scope="module")
def named(data):
    """Fitted on: subject 0 named by strings, subject 1 by integer ids, subject 2 an
    array (no names). No test modifies it."""
    neural = [_frame(data, 0), _frame(data, 1, _ids(1)), data.neural[2]]
    return _model().fit(neural, data.behavior[:3])


@pytest.fixture(scope="module")
def plain(data):
    """The same model fitted on the arrays."""
    return _model().fit(data.neural[:3], data.behavior[:3])


# ------------------------------------------------------------------ fit
def test_fit_keeps_each_subjects_unit_names(named, plain):
    names = named.neural_names_in_
    assert isinstance(names, list) and len(names) == 3
    assert names[0].dtype == object and names[0].tolist() == _units(0)
    assert names[1].dtype == object and names[1].tolist() == _ids(1)
    assert all(isinstance(c, int) for c in names[1])
    assert names[2] is None
    for a, b in zip(named.encoders_, plain.encoders_, strict=True):
        np.testing.assert_array_equal(a, b)


def test_no_names_leave_the_attribute_absent_and_a_refit_forgets_them(data, plain):
    assert not hasattr(plain, "neural_names_in_")
    # a frame built from an array (columns 0..N-1) names no unit
    frames = [pd.DataFrame(x) for x in data.neural[:3]]
    assert not hasattr(_model().fit(frames, data.behavior[:3]), "neural_names_in_")
    m = _model().fit([_frame(data, s) for s in range(3)], data.behavior[:3])
    assert [u.tolist() for u in m.neural_names_in_] == [_units(s) for s in range(3)]
    m.fit(data.neural[:3], data.behavior[:3])  # arrays now: the old names are stale
    assert not hasattr(m, "neural_names_in_")


def test_integer_ids_in_another_order_than_the_default_are_names(data):
    ids = list(range(N_UNITS[0]))[::-1]  # 0..N-1, but not in order: an identity
    m = _model().fit([_frame(data, 0, ids), *data.neural[1:3]], data.behavior[:3])
    assert m.neural_names_in_[0].tolist() == ids


def test_unit_names_mixing_strings_and_integers_are_refused(data):
    bad = _frame(data, 1, ["a", 1, "b", 2, "c"])
    with pytest.raises(TypeError, match=r"subject 1: neural columns mix strings"):
        _model().fit([data.neural[0], bad, data.neural[2]], data.behavior[:3])


def test_repeated_unit_names_are_refused(data):
    bad = _frame(data, 0, [7, 7, 8, 9])
    with pytest.raises(ValueError, match=r"subject 0: neural columns repeat the names \[7\]"):
        _model().fit([bad, *data.neural[1:3]], data.behavior[:3])


# ------------------------------------------------------------------ later methods
def _call(method, model, d, s, X):
    """``method`` of a copy of ``model`` applied to subject ``s``'s neural ``X``."""
    model = copy.deepcopy(model)
    if method == "transform":
        return model.transform(X, subject=s)
    if method == "predict":
        return model.predict(X, subject=s)
    if method == "score":  # the other fitted subjects as arrays or their fitted frames
        neural = [_given(model, d, t) for t in range(3)]
        neural[s] = X
        return model.score(neural, d.behavior[:3])
    raise AssertionError(method)


def _given(model, d, t):
    names = model.neural_names_in_[t]
    return d.neural[t] if names is None else pd.DataFrame(d.neural[t], columns=names)


METHODS = ["transform", "predict", "score"]


def _remedy(s: int) -> str:
    return f"neural[model.neural_names_in_[{s}]]"


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("s", [0, 1])
def test_units_in_another_order_are_refused(method, s, named, data):
    fitted = named.neural_names_in_[s].tolist()
    X = pd.DataFrame(data.neural[s], columns=fitted)[fitted[::-1]]
    with pytest.raises(ValueError) as info:
        _call(method, named, data, s, X)
    msg = str(info.value)
    assert msg.startswith(f"subject {s}: neural columns {fitted[::-1]}"), msg
    assert "another order" in msg and f"column 0 is {fitted[-1]!r}, expected {fitted[0]!r}" in msg
    assert _remedy(s) in msg


@pytest.mark.parametrize("method", METHODS)
def test_recurated_units_of_the_same_count_are_refused(method, named, data):
    # suite2p re-run: ROI 5 dropped, ROI 40 added; still 5 units
    ids = _ids(1)
    recurated = [i for i in ids if i != 5] + [40]
    X = pd.DataFrame(data.neural[1], columns=recurated)
    with pytest.raises(ValueError) as info:
        _call(method, named, data, 1, X)
    msg = str(info.value)
    assert msg.startswith(f"subject 1: neural columns {recurated} differ from")
    assert str(ids) in msg and "column 1 is 8, expected 5" in msg
    assert "missing [5]" in msg and "unexpected [40]" in msg and _remedy(1) in msg


def test_default_columns_are_compared_with_fitted_integer_ids(named, data):
    # 0..N-1 would be no names at fit, but they are other ids than the fitted ones
    X = pd.DataFrame(data.neural[1])
    with pytest.raises(ValueError, match=r"^subject 1: neural columns \[0, 1, 2, 3, 4\] differ"):
        named.transform(X, subject=1)


def test_string_names_for_integer_ids_are_refused(named, data):
    X = _frame(data, 1, [str(i) for i in _ids(1)])
    with pytest.raises(ValueError, match=r"missing \[2, 5, 8, 11, 14\]"):
        named.predict(X, subject=1)


@pytest.mark.parametrize("method", METHODS)
def test_the_fitted_units_give_what_the_arrays_give_without_warning(method, named, data):
    with no_warnings():
        by_name = _call(method, named, data, 0, _frame(data, 0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        by_position = _call(method, named, data, 0, data.neural[0])
    np.testing.assert_allclose(by_name, by_position, rtol=1e-12, atol=1e-14)


def test_the_fitted_units_selected_from_a_wider_frame_are_accepted(named, data):
    wide = _frame(data, 0).assign(extra=1.0)[["extra", *_units(0)[::-1]]]
    with no_warnings():
        got = named.transform(wide[named.neural_names_in_[0]], subject=0)
    np.testing.assert_allclose(got, named.transform(_frame(data, 0), subject=0), rtol=1e-12)


@pytest.mark.parametrize("method", ["transform", "predict"])
def test_an_array_given_to_a_named_subject_warns_at_the_caller(method, named, data):
    says = r"^subject 0: neural has no column names.*'roi0_0', 'roi0_1'"
    with pytest.warns(UserWarning, match=says) as rec:
        _call(method, named, data, 0, data.neural[0])
    assert len(rec) == 1 and rec[0].filename == __file__


def test_score_warns_once_for_several_unnamed_subjects(named, data):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        named.score(data.neural[:3], data.behavior[:3])
    msgs = [str(w.message) for w in rec if "no column names" in str(w.message)]
    assert len(msgs) == 1 and msgs[0].startswith("neural of subjects [0, 1]"), msgs
    assert "model.neural_names_in_[s]" in msgs[0]
    assert {w.filename for w in rec} == {__file__}


def test_score_names_the_model_subject_of_a_bad_entry(named, data):
    X = _frame(data, 0)[_units(0)[::-1]]
    with pytest.raises(ValueError, match=r"^subject 0: neural columns .* another order"):
        named.score([data.neural[2], X], [data.behavior[2], data.behavior[0]], subjects=[2, 0])


def test_a_subject_without_names_takes_anything_silently(named, plain, data):
    with no_warnings():
        named.transform(data.neural[2], subject=2)
        named.transform(_frame(data, 2), subject=2)
        plain.score([_frame(data, s) for s in range(3)], data.behavior[:3])


# ------------------------------------------------------------------ added subjects
def test_an_added_subject_keeps_its_names_and_they_are_checked(named, data):
    m, s = named.with_subject(_frame(data, 3), data.behavior[3])
    assert s == 3 and len(named.neural_names_in_) == 3  # the original is unchanged
    assert m.neural_names_in_[3].tolist() == _units(3)
    X = _frame(data, 3)[_units(3)[::-1]]
    with pytest.raises(ValueError, match=r"^subject 3: neural columns .*" + r"\[3\]\]"):
        m.predict(X, subject=3, through="own")
    with no_warnings():
        m.predict(_frame(data, 3), subject=3, through="own")


def test_an_unnamed_added_subject_keeps_no_names(named, plain, data):
    m = copy.deepcopy(named)
    assert m.add_subject(data.neural[3], data.behavior[3]) == 3
    assert m.neural_names_in_[3] is None
    m = copy.deepcopy(plain)
    m.add_subject(data.neural[3], data.behavior[3])
    assert not hasattr(m, "neural_names_in_")
    m.add_subject(_frame(data, 3), data.behavior[3])  # the first named subject
    assert [u is None for u in m.neural_names_in_] == [True] * 4 + [False]


def test_an_added_subject_with_repeated_names_is_refused_unchanged(named, data):
    m = copy.deepcopy(named)
    bad = _frame(data, 3, ["a", "b", "a", "c", "d"])
    with pytest.raises(ValueError, match=r"^subject 3: neural columns repeat the names \['a'\]"):
        m.add_subject(bad, data.behavior[3])
    assert m.n_subjects_ == 3 and len(m.neural_names_in_) == 3


# ------------------------------------------------------------------ model file
def test_the_model_file_keeps_the_names(named, data, tmp_path):
    named.save(tmp_path / "model.npz")
    back = ShaReD.load(tmp_path / "model.npz")
    assert back.neural_names_in_[0].dtype == object
    assert back.neural_names_in_[0].tolist() == _units(0)
    assert back.neural_names_in_[1].tolist() == _ids(1)
    assert back.neural_names_in_[2] is None
    X = pd.DataFrame(data.neural[1], columns=_ids(1))[_ids(1)[::-1]]
    with pytest.raises(ValueError, match="another order"):
        back.transform(X, subject=1)
    back.save(tmp_path / "again.npz")
    again = ShaReD.load(tmp_path / "again.npz")
    assert [None if u is None else u.tolist() for u in again.neural_names_in_] == [
        _units(0),
        _ids(1),
        None,
    ]


def _edit(path, out, edit):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("__meta__")))
    edit(meta)
    arrays["__meta__"] = np.array(json.dumps(meta))
    np.savez(out, **arrays)
    return out


def test_models_without_names_and_files_without_the_field_load_without_names(
    named, plain, tmp_path
):
    plain.save(tmp_path / "plain.npz")
    meta = json.loads(str(np.load(tmp_path / "plain.npz")["__meta__"]))
    assert meta["neural_names_in_"] is None
    assert not hasattr(ShaReD.load(tmp_path / "plain.npz"), "neural_names_in_")
    named.save(tmp_path / "named.npz")
    old = _edit(tmp_path / "named.npz", tmp_path / "old.npz", lambda m: m.pop("neural_names_in_"))
    assert not hasattr(ShaReD.load(old), "neural_names_in_")


@pytest.mark.parametrize(
    "value",
    [
        "roi",
        [None, None],  # not one entry per subject
        [["a", "b"], None, None],  # not n_units_[0] names
        [["a", "b", "c", 4], None, None],  # mixed kinds
        [["a", "b", "c", "a"], None, None],  # repeated
        [[True, False, 2, 3], None, None],  # bools are no ids
    ],
)
def test_bad_names_in_a_file_are_refused_naming_the_field(named, tmp_path, value):
    named.save(tmp_path / "model.npz")
    bad = _edit(
        tmp_path / "model.npz", tmp_path / "bad.npz", lambda m: m.update(neural_names_in_=value)
    )
    with pytest.raises(ValueError, match=r"model field 'neural_names_in_' must be") as info:
        ShaReD.load(bad)
    assert str(bad) in str(info.value)


# ------------------------------------------------------------------ behaviour names in plots
def test_plot_axes_labels_the_features_with_the_fitted_behaviour_names(data):
    from sharedrep.app.plots import plot_axes

    names = ["x", "y", "speed"]
    m = _model().fit(data.neural[:3], [pd.DataFrame(y, columns=names) for y in data.behavior[:3]])
    fig = plot_axes(m)
    assert [t.get_text() for t in fig.axes[-1].get_xticklabels()] == names
    fig = plot_axes(m, feature_names=["a", "b", "c"])  # given names win
    assert [t.get_text() for t in fig.axes[-1].get_xticklabels()] == ["a", "b", "c"]
