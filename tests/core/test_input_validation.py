"""Bad input at every public entry point of :class:`sharedrep.ShaReD`: clear errors, no changes.

Every case asserts the exception type and that the message names the subject and the
array concerned (and, where there is one, the expected shape).
"""

from __future__ import annotations

import copy
import json
import re
import zipfile

import numpy as np
import pandas as pd
import pytest

from sharedrep import ShaReD, simulate

P = 3  # behaviour features of the fixture data
UNITS = [4, 5, 6]  # units per subject of the fixture data
T = 120


@pytest.fixture(scope="module")
def data():
    return simulate(
        n_subjects=3,
        n_samples=T,
        n_units=UNITS,
        n_behavior=P,
        n_shared=1,
        trial_length=20,
        seed=0,
    )


def _lists(d):
    """Fresh copies of the neural and behaviour lists (safe to modify)."""
    return [x.copy() for x in d.neural], [y.copy() for y in d.behavior]


def _fit(d, **kw):
    params = dict(n_shared=1, alpha=1.0, cv=None)
    params.update(kw)
    return ShaReD(**params).fit(*_lists(d))


@pytest.fixture(scope="module")
def fitted(data):
    """A model that no test modifies (use ``_fit`` for add_subject)."""
    return _fit(data)


# ------------------------------------------------------------------ list structure


def test_neural_and_behavior_lists_of_unequal_length(data):
    N, B = _lists(data)
    with pytest.raises(ValueError, match=r"neural has 3 subjects but behavior has 2"):
        ShaReD(alpha=1.0, cv=None, n_shared=1).fit(N, B[:2])
    with pytest.raises(ValueError, match=r"neural has 2 subjects but behavior has 3"):
        ShaReD(alpha=1.0, cv=None, n_shared=1).fit(N[:2], B)


def test_groups_list_of_wrong_length(data):
    N, B = _lists(data)
    with pytest.raises(ValueError, match=r"groups has 2 entries but there are 3 subjects"):
        ShaReD(alpha=1.0, cv=None, n_shared=1).fit(N, B, groups=data.groups[:2])


def test_groups_of_one_subject_of_wrong_length(data):
    N, B = _lists(data)
    groups = [g.copy() for g in data.groups]
    groups[1] = groups[1][:100]
    with pytest.raises(
        ValueError, match=rf"subject 1: groups must have shape \({T},\).*got \(100,\)"
    ):
        ShaReD(alpha=1.0, cv=None, n_shared=1).fit(N, B, groups=groups)


def test_groups_of_object_dtype(data):
    # trial ids as Python objects (e.g. a pandas column): strings or integers are ids
    N, B = _lists(data)
    model = ShaReD(alpha=1.0, cv=3, n_shared=1, random_state=0)
    ref = model.fit(N, B, groups=[np.array([f"t{i}" for i in g]) for g in data.groups])
    as_strings = [pd.Series([f"t{i}" for i in g]) for g in data.groups]
    as_ints = [g.astype(object) for g in data.groups]
    for groups in (as_strings, as_ints):
        m = ShaReD(alpha=1.0, cv=3, n_shared=1, random_state=0).fit(N, B, groups=groups)
        np.testing.assert_allclose(m.shared_axes_, ref.shared_axes_, rtol=1e-12)
    for bad, what in ((None, "NoneType"), (1.5, "float"), ("t1", "int, str")):
        groups = [g.astype(object) for g in data.groups]
        groups[2][4] = bad
        with pytest.raises(TypeError, match=rf"subject 2: groups .* type {what}"):
            ShaReD(alpha=1.0, cv=None, n_shared=1).fit(N, B, groups=groups)


@pytest.mark.parametrize("cv", [None, 3])
def test_nan_trial_ids_are_refused(data, cv):
    # with cv=None each NaN sample used to be a trial of its own (rows silently dropped
    # with lags); with cv, scikit-learn refused them without naming the subject
    N, B = _lists(data)
    groups = [g.astype(float) for g in data.groups]
    groups[2][40:60] = np.nan
    with pytest.raises(
        ValueError,
        match=r"subject 2: groups must hold a trial id for every sample; got NaN at index 40 "
        r"\(20 of 120 samples; missing trial ids\?\)",
    ):
        ShaReD(n_shared=1, alpha=1.0, cv=cv, lags=1).fit(N, B, groups=groups)
    m = ShaReD(n_shared=1, alpha=1.0, cv=None, lags=1).fit(N, B, groups=data.groups)
    with pytest.raises(ValueError, match=r"subject 2: groups .* NaN at index 40"):
        m.predict(N[2], subject=2, groups=groups[2])


def test_missing_trial_ids_in_a_pandas_column_are_located(data):
    N, B = _lists(data)
    groups = [pd.Series(g, dtype="Int64") for g in data.groups]
    groups[1][7] = pd.NA  # read by numpy as NaN
    with pytest.raises(ValueError, match=r"subject 1: groups .* NaN at index 7"):
        ShaReD(n_shared=1, alpha=1.0, cv=None).fit(N, B, groups=groups)
    groups = [pd.Series(g, dtype=object) for g in data.groups]
    groups[1][7] = None
    with pytest.raises(
        TypeError, match=r"subject 1: groups .*\(missing trial ids\? first at index 7\)"
    ):
        ShaReD(n_shared=1, alpha=1.0, cv=None).fit(N, B, groups=groups)


@pytest.mark.parametrize("where", ["in memory", "file"])
def test_nan_trial_ids_with_file_sessions(data, tmp_path, where):
    # sessions given as files: trial ids are checked on the driver or when read
    N, B = _lists(data)
    paths = []
    for s, x in enumerate(N):
        np.save(tmp_path / f"x{s}.npy", x)
        paths.append(str(tmp_path / f"x{s}.npy"))
    groups = [g.astype(float) for g in data.groups]
    groups[1][3] = np.nan
    if where == "file":
        np.save(tmp_path / "g1.npy", groups[1])
        groups[1] = str(tmp_path / "g1.npy")
    with pytest.raises(ValueError, match=r"subject 1: groups .* NaN at index 3 .*missing trial"):
        ShaReD(n_shared=1, alpha=1.0, cv=3).fit(paths, B, groups=groups)


def test_groups_not_a_list(data):
    N, B = _lists(data)
    with pytest.raises(TypeError, match=r"groups must be None or a list"):
        ShaReD(alpha=1.0, cv=None, n_shared=1).fit(N, B, groups=data.groups[0])


@pytest.mark.parametrize("bad", ["abc", 3.0, None])
def test_neural_not_a_list(data, bad):
    _, B = _lists(data)
    with pytest.raises(TypeError, match=r"neural must be a list"):
        ShaReD(alpha=1.0, cv=None, n_shared=1).fit(bad, B)


def test_empty_lists():
    with pytest.raises(ValueError, match=r"neural is an empty list"):
        ShaReD(alpha=1.0, cv=None, n_shared=1).fit([], [])


def test_single_array_of_wrong_dimensionality(data):
    _, B = _lists(data)
    with pytest.raises(ValueError, match=r"neural must be a list.*shape \(5,\)"):
        ShaReD(alpha=1.0, cv=None, n_shared=1).fit(np.zeros(5), B)


@pytest.mark.parametrize("s", [0, 1, 2])
def test_sample_count_mismatch_between_neural_and_behavior(data, s):
    N, B = _lists(data)
    B[s] = B[s][:100]
    with pytest.raises(
        ValueError, match=rf"subject {s}: neural has {T} samples.*behavior has 100"
    ):
        ShaReD(alpha=1.0, cv=None, n_shared=1).fit(N, B)


@pytest.mark.parametrize("s", [1, 2])
def test_behavior_feature_count_differs_across_subjects(data, s):
    N, B = _lists(data)
    B[s] = B[s][:, :2]
    with pytest.raises(
        ValueError, match=rf"subject {s}: behavior has 2 features but subject 0 has {P}"
    ):
        ShaReD(alpha=1.0, cv=None, n_shared=1).fit(N, B)


@pytest.mark.parametrize("name", ["neural", "behavior"])
def test_array_with_no_columns(data, name):
    N, B = _lists(data)
    target = N if name == "neural" else B
    target[1] = target[1][:, :0]
    with pytest.raises(ValueError, match=rf"subject 1: {name} has no"):
        ShaReD(alpha=1.0, cv=None, n_shared=1).fit(N, B)


# ------------------------------------------------------------------ non-finite values


@pytest.mark.parametrize("name", ["neural", "behavior"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("s", [0, 2])
def test_non_finite_values_raise(data, name, value, s):
    N, B = _lists(data)
    (N if name == "neural" else B)[s][5, 1] = value
    with pytest.raises(
        ValueError, match=rf"subject {s}: {name} contains NaN or inf.*\(5, 1\).*nan_policy"
    ):
        ShaReD(alpha=1.0, cv=None, n_shared=1).fit(N, B)


def test_invalid_nan_policy(data):
    with pytest.raises(ValueError, match=r"nan_policy must be 'raise' or 'omit'.*'drop'"):
        _fit(data, nan_policy="drop")


def _with_holes(d):
    N, B = _lists(d)
    N[0][[10, 60], [0, 3]] = np.nan
    N[1][33, 2] = np.inf
    B[1][[5, 90], [0, 2]] = np.nan
    B[2][117, 1] = -np.inf
    keep = [
        np.all(np.isfinite(x), axis=1) & np.all(np.isfinite(y), axis=1)
        for x, y in zip(N, B, strict=True)
    ]
    return N, B, keep


def test_nan_policy_omit_equals_fit_without_those_rows(data):
    N, B, keep = _with_holes(data)
    m = ShaReD(n_shared=2, alpha=0.5, cv=None, nan_policy="omit").fit(N, B)
    ref = ShaReD(n_shared=2, alpha=0.5, cv=None).fit(
        [x[k] for x, k in zip(N, keep, strict=True)], [y[k] for y, k in zip(B, keep, strict=True)]
    )
    for name in ("shared_axes_", "eigenvalues_", "explained_", "metric_", "behavior_scale_"):
        np.testing.assert_allclose(getattr(m, name), getattr(ref, name), rtol=1e-10, atol=1e-12)
    for name in ("encoders_", "unit_means_", "unit_scales_", "behavior_means_"):
        for a, b in zip(getattr(m, name), getattr(ref, name), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    # transform / predict drop exactly the rows with a non-finite neural sample
    for s in range(3):
        Z, rows = m.transform(N[s], subject=s, return_rows=True)
        np.testing.assert_array_equal(rows, np.flatnonzero(np.all(np.isfinite(N[s]), axis=1)))
        Zr = ref.transform(N[s][rows], subject=s)
        np.testing.assert_allclose(Z, Zr, rtol=1e-10, atol=1e-12)
        Yh, rows_p = m.predict(N[s], subject=s, return_rows=True)
        np.testing.assert_array_equal(rows_p, rows)
        assert np.all(np.isfinite(Yh))
    # score ignores the rows with missing behaviour
    np.testing.assert_allclose(
        m.score(N, B),
        ref.score(
            [x[k] for x, k in zip(N, keep, strict=True)],
            [y[k] for y, k in zip(B, keep, strict=True)],
        ),
        rtol=1e-10,
    )


def test_nan_policy_omit_drops_every_lag_window_touching_a_missing_sample(data):
    N, B = _lists(data)
    N[0][50, 1] = np.nan
    m = ShaReD(n_shared=1, alpha=1.0, cv=None, lags=2, nan_policy="omit").fit(N, B)
    _, rows = m.transform(N[0], subject=0, return_rows=True)
    expected = np.setdiff1d(np.arange(2, T), [50, 51, 52])
    np.testing.assert_array_equal(rows, expected)


def test_transform_behavior_honours_nan_policy(data):
    N, B, _ = _with_holes(data)
    m = ShaReD(n_shared=2, alpha=0.5, cv=None, nan_policy="omit").fit(N, B)
    Y = B[1]
    bad = ~np.all(np.isfinite(Y), axis=1)
    Z = m.transform_behavior(Y, subject=1)
    assert Z.shape == (T, 2)
    np.testing.assert_allclose(Z[~bad], m.transform_behavior(Y[~bad], subject=1))


def test_nan_in_transform_input_raises_by_default(fitted, data):
    X = data.neural[2].copy()
    X[7, 0] = np.nan
    with pytest.raises(ValueError, match=r"subject 2: neural contains NaN or inf.*\(7, 0\)"):
        fitted.transform(X, subject=2)
    with pytest.raises(ValueError, match=r"subject 2: neural contains NaN"):
        fitted.predict(X, subject=2)


# ------------------------------------------------------------------ missing values not as NaN


def _fit_pair(N, B, **kw):
    return ShaReD(n_shared=1, alpha=1.0, cv=None, **kw).fit(N, B)


def _assert_same_fit(a, b):
    np.testing.assert_allclose(a.shared_axes_, b.shared_axes_, rtol=1e-12, atol=1e-14)
    for ea, eb in zip(a.encoders_, b.encoders_, strict=True):
        np.testing.assert_allclose(ea, eb, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", ["neural", "behavior"])
def test_masked_entries_are_missing_values(data, name):
    # np.asarray drops the mask: the hidden glitch (1e6) used to enter the fit
    N, B = _lists(data)
    target = N if name == "neural" else B
    masked = np.ma.masked_array(target[1].copy(), mask=np.zeros(target[1].shape, bool))
    masked.data[5, 0] = 1e6
    masked.mask[5, 0] = True
    nan_marked = target[1].copy()
    nan_marked[5, 0] = np.nan
    target[1] = masked
    with pytest.raises(ValueError, match=rf"subject 1: {name} contains NaN or inf.*\(5, 0\)"):
        _fit_pair(N, B)
    m = _fit_pair(N, B, nan_policy="omit")
    target[1] = nan_marked
    _assert_same_fit(m, _fit_pair(N, B, nan_policy="omit"))
    assert masked.data[5, 0] == 1e6 and masked.mask.sum() == 1  # input untouched
    if name == "neural":
        Yh, rows = m.predict(masked, subject=1, return_rows=True)
        Yr, rows_r = m.predict(nan_marked, subject=1, return_rows=True)
        np.testing.assert_array_equal(rows, rows_r)
        np.testing.assert_allclose(Yh, Yr, rtol=1e-12)


@pytest.mark.parametrize("dtype", ["Float64", "Int64"])
@pytest.mark.parametrize("name", ["neural", "behavior"])
def test_pandas_nullable_dtypes(data, name, dtype):
    # nullable columns (read_csv(dtype_backend="numpy_nullable"), parquet...) used to be
    # refused as "dtype object"; pd.NA is a missing value like NaN
    N, B = _lists(data)
    target = N if name == "neural" else B
    values = np.round(target[1] * 10) if dtype == "Int64" else target[1]
    target[1] = values
    ref = _fit_pair(N, B)
    target[1] = pd.DataFrame(values).astype(dtype)
    _assert_same_fit(_fit_pair(N, B), ref)
    target[1].iloc[5, 0] = pd.NA
    with pytest.raises(ValueError, match=rf"subject 1: {name} contains NaN or inf.*\(5, 0\)"):
        _fit_pair(N, B)
    m = _fit_pair(N, B, nan_policy="omit")
    nan_marked = values.astype(float)
    nan_marked[5, 0] = np.nan
    target[1] = nan_marked
    _assert_same_fit(m, _fit_pair(N, B, nan_policy="omit"))
    for other in ("string", "category"):  # non-numeric columns are still refused
        target[1] = pd.DataFrame(values).astype(str).astype(other)
        with pytest.raises(TypeError, match=rf"subject 1: {name} must be numeric"):
            _fit_pair(N, B)


# ------------------------------------------------------------------ too few samples / trials


def test_too_few_samples_for_the_folds(data):
    N, B = _lists(data)
    N[1], B[1] = N[1][:8], B[1][:8]
    with pytest.raises(ValueError, match=r"subject 1: only 8 usable samples.*cv=5"):
        ShaReD(n_shared=1, alpha=1.0, cv=5).fit(N, B)


def test_too_few_trials_for_the_folds(data):
    N, B = _lists(data)
    groups = [g.copy() for g in data.groups]
    groups[1] = np.arange(T) // 30  # 4 trials
    with pytest.raises(ValueError, match=r"subject 1: 4 trials.*cv=5"):
        ShaReD(n_shared=1, alpha=1.0, cv=5).fit(N, B, groups=groups)


def test_too_few_samples_for_the_lags(data):
    N, B = _lists(data)
    N[2], B[2] = N[2][:4], B[2][:4]
    with pytest.raises(
        ValueError, match=r"subject 2: only 1 usable samples.*lags \[0, 1, 2, 3\].*out of 4"
    ):
        ShaReD(n_shared=1, alpha=1.0, cv=None, lags=3).fit(N, B)


def test_trials_too_short_for_the_lags(data):
    N, B = _lists(data)
    groups = [g.copy() for g in data.groups]
    groups[1] = np.arange(T) // 3  # trials of 3 samples: no complete window for lags 0..3
    with pytest.raises(ValueError, match=r"subject 1: only 0 usable samples"):
        ShaReD(n_shared=1, alpha=1.0, cv=None, lags=3).fit(N, B, groups=groups)


def test_transform_input_too_short_for_the_lags(data):
    m = _fit(data, lags=3)
    with pytest.raises(ValueError, match=r"subject 1: neural has 3 samples, too few for the lags"):
        m.transform(data.neural[1][:3], subject=1)
    with pytest.raises(ValueError, match=r"subject 1: neural has 3 samples, too few"):
        m.predict(data.neural[1][:3], subject=1)


@pytest.mark.parametrize(
    ("n_samples", "cv", "lags", "groups", "other_subject"),
    [
        (8, 2, 3, None, False),  # the lag gap empties the training part of fold 0
        (6, 2, 2, None, False),
        (6, 2, 2, None, True),  # another, healthy subject does not rescue it
        (6, 2, 0, [0, 1, 1, 1, 1, 1], False),
    ],
)
def test_folds_left_without_training_samples_are_reported(
    n_samples, cv, lags, groups, other_subject
):
    rng = np.random.default_rng(0)
    X, Y = [rng.normal(size=(n_samples, 2))], [rng.normal(size=(n_samples, 2))]
    g = None if groups is None else [np.asarray(groups)]
    if other_subject:
        X.insert(0, rng.normal(size=(40, 2)))
        Y.insert(0, rng.normal(size=(40, 2)))
        g = None if g is None else [np.arange(40) // 4, *g]
    s = len(X) - 1
    with pytest.raises(ValueError, match=rf"subject {s}\b.*(fold|cv)"):
        ShaReD(n_shared=1, alpha=1.0, cv=cv, lags=lags).fit(X, Y, groups=g)


# ------------------------------------------------------------------ non-numeric / wrong ndim


def _ragged(x):
    return [list(r) for r in x[:-1]] + [list(x[-1][:-1])]


@pytest.mark.parametrize("name", ["neural", "behavior"])
@pytest.mark.parametrize(
    ("convert", "exc", "what"),
    [
        (lambda a: a.astype(str), TypeError, r"must be numeric; got dtype <U"),
        (lambda a: a.astype(object), TypeError, r"must be numeric; got dtype object"),
        (lambda a: a + 1j, TypeError, r"must be real-valued"),
        (_ragged, ValueError, r"could not be converted to a numeric array"),
        (lambda a: np.full(a.shape, "x"), TypeError, r"must be numeric"),
    ],
    ids=["strings", "object", "complex", "ragged", "letters"],
)
def test_non_numeric_data(data, name, convert, exc, what):
    N, B = _lists(data)
    target = N if name == "neural" else B
    target[1] = convert(target[1])
    with pytest.raises(exc, match=rf"subject 1: {name} {what}"):
        ShaReD(n_shared=1, alpha=1.0, cv=None).fit(N, B)


@pytest.mark.parametrize(("name", "expected"), [("neural", "n_units"), ("behavior", "n_features")])
def test_one_dimensional_arrays(data, name, expected):
    N, B = _lists(data)
    target = N if name == "neural" else B
    target[2] = target[2][:, 0]
    with pytest.raises(
        ValueError, match=rf"subject 2: {name} must be 2-D.*\(T, {expected}\).*\({T},\)"
    ):
        ShaReD(n_shared=1, alpha=1.0, cv=None).fit(N, B)


def test_three_dimensional_array_of_one_subject(data):
    N, B = _lists(data)
    N[0] = N[0][:, :, None]
    with pytest.raises(ValueError, match=r"subject 0: neural must be 2-D.*got shape"):
        ShaReD(n_shared=1, alpha=1.0, cv=None).fit(N, B)


def test_non_numeric_and_1d_input_to_transform(fitted, data):
    with pytest.raises(TypeError, match=r"subject 1: neural must be numeric"):
        fitted.transform(data.neural[1].astype(str), subject=1)
    with pytest.raises(ValueError, match=r"subject 1: neural must be 2-D.*\(T, n_units\)"):
        fitted.transform(data.neural[1][:, 0], subject=1)
    with pytest.raises(TypeError, match=r"behavior must be numeric"):
        fitted.transform_behavior(data.behavior[0].astype(object))
    with pytest.raises(ValueError, match=r"behavior must be 2-D.*\(T, n_features\)"):
        fitted.transform_behavior(data.behavior[0][:, 0])


# ------------------------------------------------------------------ subject index


@pytest.mark.parametrize("subject", [3, 10, -4])
@pytest.mark.parametrize("method", ["transform", "predict"])
def test_subject_index_out_of_range(fitted, data, method, subject):
    with pytest.raises(IndexError, match=rf"subject {subject} is out of range.*3 subjects"):
        getattr(fitted, method)(data.neural[0], subject=subject)


def test_subject_index_out_of_range_transform_behavior(fitted, data):
    with pytest.raises(IndexError, match=r"subject 5 is out of range.*3 subjects"):
        fitted.transform_behavior(data.behavior[0], subject=5)


@pytest.mark.parametrize("subject", [1.0, "0", True, None])
def test_subject_index_of_wrong_type(fitted, data, subject):
    with pytest.raises(TypeError, match=r"subject must be an integer index"):
        fitted.transform(data.neural[0], subject=subject)


def test_negative_subject_index_counts_from_the_end(fitted, data):
    np.testing.assert_array_equal(
        fitted.transform(data.neural[2], subject=-1), fitted.transform(data.neural[2], subject=2)
    )


def test_score_subject_index_out_of_range(fitted, data):
    N, B = _lists(data)
    with pytest.raises(IndexError, match=r"subject 7 is out of range"):
        fitted.score(N, B, subjects=[0, 1, 7])
    with pytest.raises(ValueError, match=r"subjects has 2 entries but 3 subjects"):
        fitted.score(N, B, subjects=[0, 1])


@pytest.mark.parametrize(
    ("subjects", "got"),
    [
        (1, r"got int 1"),
        (np.int64(1), r"got int64 "),
        ("012", r"got str '012'"),
        (1.5, r"got float 1.5"),
        ({0, 1, 2}, r"got set"),
        ({0: 0, 1: 1, 2: 2}, r"got dict"),
        (np.array([[0, 1, 2]]), r"got ndarray of shape \(1, 3\)"),
        (np.array(1), r"got ndarray of shape \(\)"),
        (iter([0, 1, 2]), r"got list_iterator"),
    ],
    ids=lambda v: type(v).__name__,
)
def test_score_subjects_of_wrong_type(fitted, data, subjects, got):
    """As transform/predict refuse a subject that is no int, naming the argument."""
    N, B = _lists(data)
    with pytest.raises(
        TypeError,
        match=r"subjects must be a sequence \(list, tuple or 1-D array\) of integer subject "
        r"indices, one per entry of neural; " + got,
    ):
        fitted.score(N, B, subjects=subjects)


@pytest.mark.parametrize("entry", [1.0, "1", True, None, [1]])
def test_score_subject_entry_of_wrong_type(fitted, data, entry):
    N, B = _lists(data)
    with pytest.raises(
        TypeError,
        match=r"subjects\[1\]: subject must be an integer index; got " + re.escape(repr(entry)),
    ):
        fitted.score(N, B, subjects=[0, entry, 2])


def test_score_subject_entry_out_of_range_names_the_entry(fitted, data):
    N, B = _lists(data)
    with pytest.raises(IndexError, match=r"subjects\[2\]: subject 7 is out of range"):
        fitted.score(N, B, subjects=[0, 1, 7])


@pytest.mark.parametrize(
    "subjects", [[0, 1, 2], (0, 1, 2), range(3), np.arange(3), [0, np.int64(1), -1]]
)
def test_score_subjects_as_any_sequence_of_ints(fitted, data, subjects):
    N, B = _lists(data)
    assert fitted.score(N, B, subjects=subjects) == fitted.score(N, B)


# ------------------------------------------------------------------ shapes after fitting


@pytest.mark.parametrize("method", ["transform", "predict"])
@pytest.mark.parametrize("s", [0, 1, 2])
def test_wrong_unit_count_for_transform(fitted, data, method, s):
    X = data.neural[(s + 1) % 3]  # another subject's units
    n_given, n_fit = X.shape[1], UNITS[s]
    with pytest.raises(
        ValueError,
        match=rf"subject {s}: neural has {n_given} units.*{n_fit} units.*\(T, {n_fit}\)",
    ):
        getattr(fitted, method)(X, subject=s)


def test_wrong_groups_length_for_transform(fitted, data):
    with pytest.raises(ValueError, match=r"groups must have shape"):
        fitted.transform(data.neural[0], subject=0, groups=np.arange(10))


def test_wrong_groups_length_for_transform_names_the_subject(fitted, data):
    with pytest.raises(ValueError, match=r"subject 2: groups must have shape"):
        fitted.transform(data.neural[2], subject=2, groups=np.arange(10))


def test_wrong_feature_count_for_transform_behavior(fitted, data):
    with pytest.raises(ValueError, match=rf"behavior has 2 features.*\(T, {P}\)"):
        fitted.transform_behavior(data.behavior[0][:, :2])


def test_wrong_feature_count_for_transform_behavior_names_the_subject(fitted, data):
    with pytest.raises(ValueError, match=rf"subject 1: behavior has 2 features.*\(T, {P}\)"):
        fitted.transform_behavior(data.behavior[1][:, :2], subject=1)


def test_wrong_feature_count_for_add_subject(data):
    m = _fit(data)
    with pytest.raises(
        ValueError, match=rf"subject 3: behavior has 2 features.*{P}.*\((T|\d+), {P}\)"
    ):
        m.add_subject(data.neural[0], data.behavior[0][:, :2])
    assert m.n_subjects_ == 3 and len(m.encoders_) == 3


@pytest.mark.parametrize("case", ["T mismatch", "nan", "1-D", "strings"])
def test_add_subject_errors_name_the_new_subject(data, case):
    m = _fit(data)
    X, Y = data.neural[0].copy(), data.behavior[0].copy()
    if case == "T mismatch":
        Y = Y[:100]
    elif case == "nan":
        X[3, 1] = np.nan
    elif case == "1-D":
        X = X[:, 0]
    else:
        X = X.astype(str)
    with pytest.raises((ValueError, TypeError), match=r"subject 3: neural"):
        m.add_subject(X, Y)


def test_add_subject_errors_name_the_array(data):
    m = _fit(data)
    X = data.neural[0].copy()
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"neural contains NaN or inf"):
        m.add_subject(X, data.behavior[0])
    with pytest.raises(ValueError, match=r"neural has 120 samples.*behavior has 100"):
        m.add_subject(data.neural[0], data.behavior[0][:100])
    with pytest.raises(ValueError, match=r"only 1 usable samples"):
        m.add_subject(data.neural[0][:1], data.behavior[0][:1])
    assert m.n_subjects_ == 3


def test_score_wrong_unit_count(fitted, data):
    N, B = _lists(data)
    with pytest.raises(ValueError, match=r"subject 1: neural has 4 units.*5 units"):
        fitted.score([N[1][:, :4]], [B[1]], subjects=[1])


@pytest.mark.parametrize("n_features", [1, 2])
def test_score_wrong_feature_count(fitted, data, n_features):
    N, B = _lists(data)
    with pytest.raises(ValueError, match=rf"subject 0: behavior has {n_features} features"):
        fitted.score([N[0]], [B[0][:, :n_features]])


def test_score_unequal_lists(fitted, data):
    N, B = _lists(data)
    with pytest.raises(ValueError, match=r"neural has 3 subjects but behavior has 2"):
        fitted.score(N, B[:2])


# ------------------------------------------------------------------ parameters

BAD_PARAMS = [
    (dict(n_shared=P + 1), ValueError, rf"n_shared={P + 1} must be between 1 and .*\({P}\)"),
    (dict(n_shared=0), ValueError, r"n_shared=0 must be between 1"),
    (dict(n_shared="bogus"), ValueError, r"n_shared must be a positive int or 'auto'.*bogus"),
    (dict(n_shared=2.0), TypeError, r"n_shared must be a positive int"),
    (dict(alpha=0), ValueError, r"alpha must be a positive number"),
    (dict(alpha=-1.0), ValueError, r"alpha must be a positive number.*-1.0"),
    (dict(alpha=np.nan), ValueError, r"alpha must be a positive number"),
    (dict(alpha=np.inf), ValueError, r"alpha must be a positive number"),
    (dict(alpha="1"), ValueError, r"alpha must be a positive number"),
    (dict(cv=1), ValueError, r"cv must be an int between 2 and 50.*got 1"),
    (dict(cv=0), ValueError, r"cv must be an int"),
    (dict(cv=2.5), ValueError, r"cv must be an int"),
    (dict(cv=True), ValueError, r"cv must be an int"),
    (dict(alpha=None, cv=None), ValueError, r"cv=None but alpha"),
    (dict(n_shared="auto", cv=None), ValueError, r"cv=None but alpha and/or n_shared"),
    (dict(behavior_metric="cosine"), ValueError, r"behavior_metric must be.*'cosine'"),
    (dict(selection="min"), ValueError, r"selection must be 'best' or 'one_se'.*'min'"),
    (dict(subject_weights=[1, 1]), ValueError, r"subject_weights must be 3 non-negative"),
    (dict(subject_weights=[1, -1, 1]), ValueError, r"subject_weights must be 3"),
    (dict(subject_weights=[0, 0, 0]), ValueError, r"subject_weights.*positive sum"),
    (dict(subject_weights=[1, np.nan, 1]), ValueError, r"subject_weights"),
    (dict(subject_weights=[[1, 1, 1]]), ValueError, r"subject_weights"),
    (dict(shrinkage=-0.1), ValueError, r"shrinkage must be a number in \[0, 1\]"),
    (dict(shrinkage=2), ValueError, r"shrinkage must be a number in \[0, 1\]"),
    (dict(n_shared="auto", cv=3, max_shared=P + 1), ValueError, r"max_shared must be an int"),
    (dict(n_shared="auto", cv=3, max_shared=0), ValueError, r"max_shared must be an int"),
    (dict(alpha=None, cv=3, alphas=[-1.0, 1.0]), ValueError, r"alphas must be.*positive"),
    (dict(alpha=None, cv=3, alphas=[]), ValueError, r"alphas must be a non-empty"),
    (dict(lags=[0, 0]), ValueError, r"lags must be unique"),
    (dict(lags=[0.5]), TypeError, r"lags must be integers"),
    (dict(lags=[]), ValueError, r"lags must be an int or a non-empty"),
    # an infinite alpha zeroes every encoder and makes a model that load refuses
    (
        dict(alpha=None, cv=3, alphas=[1e-3, np.inf]),
        ValueError,
        r"alphas must be positive finite numbers.*got inf at index 1",
    ),
    (
        dict(alpha=None, cv=3, alphas=[np.nan, 1.0]),
        ValueError,
        r"alphas must be positive finite.*got nan at index 0",
    ),
    (dict(alphas=[1.0, np.inf]), ValueError, r"alphas must be positive finite"),  # alpha given
    (
        dict(alpha=None, cv=3, alphas={0.1, 1.0}),
        TypeError,
        r"alphas must be a non-empty 1-D array-like .*positive finite numbers; got set",
    ),
    (dict(alpha=None, cv=3, alphas="0.1"), TypeError, r"alphas must be .*array-like.*got str"),
    (dict(alpha=None, cv=3, alphas=[True]), TypeError, r"alphas must be .*array-like"),
    (dict(private="no"), TypeError, r"private must be True or False; got 'no'"),
    (
        dict(n_shared="auto", cv=3, max_shared=True),
        TypeError,
        r"max_shared must be an int >= 1 or None; got True",
    ),
    (dict(n_shared="auto", cv=3, max_shared=2.0), TypeError, r"max_shared must be an int"),
    (
        dict(cv=3, random_state="x"),
        ValueError,
        r"random_state must be an int in \[0, 4294967295\], a numpy RandomState or None; got 'x'",
    ),
    (dict(cv=3, random_state=-1), ValueError, r"random_state must be an int in \[0, "),
    (
        dict(lags=10**11),
        ValueError,
        rf"lags=100000000000 span 100000000000 samples but the longest recording has {T} "
        r"samples: no lag window fits",
    ),
    (dict(lags=[-5, T]), ValueError, rf"lags \[-5, {T}\] span {T + 5} samples"),
]


@pytest.mark.parametrize(("params", "exc", "match"), BAD_PARAMS, ids=lambda v: repr(v)[:40])
def test_invalid_parameters(data, params, exc, match):
    kw = dict(n_shared=1, alpha=1.0, cv=None)
    kw.update(params)
    m = ShaReD(**kw)
    with pytest.raises(exc, match=match):
        m.fit(*_lists(data), groups=data.groups)
    assert not hasattr(m, "shared_axes_")  # nothing half-fitted


def test_random_state_constraint_is_scikit_learns(data):
    # a Generator used to fail inside scikit-learn without naming the parameter
    kw = dict(n_shared="auto", cv=3, alphas=np.array([0.1, 1.0]))
    with pytest.raises(ValueError, match=r"ShaReD: random_state must be .*got Generator"):
        ShaReD(random_state=np.random.default_rng(0), **kw).fit(*_lists(data), data.groups)
    # numpy scalars and a RandomState pass the constraints (what scikit-learn accepts)
    ref = ShaReD(random_state=3, max_shared=2, private=True, **kw)
    ref.fit(*_lists(data), groups=data.groups)
    m = ShaReD(random_state=np.int64(3), max_shared=np.int64(2), private=np.True_, **kw)
    m.fit(*_lists(data), groups=data.groups)
    np.testing.assert_array_equal(m.shared_axes_, ref.shared_axes_)
    ShaReD(random_state=np.random.RandomState(0), **kw).fit(*_lists(data), groups=data.groups)


def test_int_lags_bounded_before_allocating():
    from sharedrep.core.design import MAX_INT_LAGS, as_lags

    with pytest.raises(ValueError, match=rf"lags=-100000000000 means .* at most {MAX_INT_LAGS}"):
        as_lags(-(10**11))
    with pytest.raises(ValueError, match=r"lags=60 span 60 samples .* has 60 samples"):
        as_lags(60, n_samples=60)
    np.testing.assert_array_equal(as_lags(59, n_samples=60), np.arange(60))
    np.testing.assert_array_equal(as_lags([-2, 3], n_samples=6), [-2, 3])


def test_non_numeric_subject_weights(data):
    with pytest.raises(ValueError, match=r"subject_weights"):
        _fit(data, subject_weights=["a", "b", "c"])


# ------------------------------------------------------------------ files


def test_load_missing_file(tmp_path):
    path = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        ShaReD.load(path)


def test_load_a_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path))):
        ShaReD.load(tmp_path)


@pytest.fixture
def saved(data, tmp_path):
    return _fit(data).save(tmp_path / "model.npz")


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.99])
def test_load_truncated_file(saved, tmp_path, fraction):
    raw = saved.read_bytes()
    path = tmp_path / "truncated.npz"
    path.write_bytes(raw[: int(fraction * len(raw))])
    with pytest.raises(ValueError, match=re.escape(str(path))):
        ShaReD.load(path)


@pytest.mark.parametrize(
    "content", [b"hello, not a model\n", b"\x93NUMPY garbage", b"PK\x03\x04 broken zip"]
)
def test_load_non_npz_file(tmp_path, content):
    path = tmp_path / "model.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=re.escape(str(path))):
        ShaReD.load(path)


def test_load_npy_file(tmp_path):
    path = tmp_path / "array.npy"
    np.save(path, np.arange(5.0))
    with pytest.raises(ValueError, match=re.escape(str(path))):
        ShaReD.load(path)


def test_load_npz_that_is_not_a_model(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, a=np.arange(3), b=np.eye(2))
    with pytest.raises(ValueError, match=re.escape(str(path))):
        ShaReD.load(path)


@pytest.mark.parametrize(
    "meta",
    ['{"format": "someone.else", "version": 1}', "not json at all", '{"version": 1}'],
)
def test_load_npz_with_foreign_metadata(tmp_path, meta):
    path = tmp_path / "other.npz"
    np.savez(path, __meta__=np.array(meta))
    with pytest.raises(ValueError, match=re.escape(str(path))):
        ShaReD.load(path)


@pytest.mark.parametrize("meta", ["[1, 2]", "3"])
def test_load_npz_with_non_object_metadata(tmp_path, meta):
    path = tmp_path / "other.npz"
    np.savez(path, __meta__=np.array(meta))
    with pytest.raises(ValueError, match=re.escape(str(path))):
        ShaReD.load(path)


def _rewrite(src, dst, *, drop=(), meta_update=None):
    """Copy an npz model file, dropping members and/or editing its JSON metadata."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            if any(name.startswith(d) for d in drop):
                continue
            raw = zin.read(name)
            if name == "__meta__.npy" and meta_update is not None:
                with np.load(src, allow_pickle=False) as z:
                    meta = json.loads(str(z["__meta__"]))
                meta_update(meta)
                tmp = dst.with_suffix(".meta.npy")
                np.save(tmp, np.array(json.dumps(meta)))
                raw = tmp.read_bytes()
                tmp.unlink()
            zout.writestr(name, raw)


@pytest.mark.parametrize("member", ["encoders_/1", "shared_axes_", "behavior_means_/0"])
def test_load_npz_with_missing_arrays(saved, tmp_path, member):
    path = tmp_path / "incomplete.npz"
    _rewrite(saved, path, drop=(member,))
    with pytest.raises(ValueError, match=re.escape(str(path)) + r".*incomplete"):
        ShaReD.load(path)


def test_load_file_from_a_newer_version(saved, tmp_path):
    path = tmp_path / "future.npz"
    _rewrite(saved, path, meta_update=lambda m: m.update(version=99))
    with pytest.raises(ValueError, match=re.escape(str(path)) + r".*newer"):
        ShaReD.load(path)


def test_load_file_with_corrupt_parameters(saved, tmp_path):
    path = tmp_path / "corrupt.npz"
    _rewrite(saved, path, meta_update=lambda m: m["params"].update(bogus=1))
    with pytest.raises(ValueError, match=re.escape(str(path))):
        ShaReD.load(path)


# ------------------------------------------------------------------ inputs never modified


def _snapshot(obj):
    return copy.deepcopy(obj)


def _assert_same(before, after):
    assert type(before) is type(after)
    if isinstance(before, list | tuple):
        assert len(before) == len(after)
        for b, a in zip(before, after, strict=True):
            _assert_same(b, a)
    elif isinstance(before, np.ndarray):
        assert before.dtype == after.dtype and before.shape == after.shape
        np.testing.assert_array_equal(before, after)
    else:
        assert before == after


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
@pytest.mark.parametrize("nan_policy", ["raise", "omit"])
def test_inputs_never_modified(data, dtype, nan_policy):
    N = [(x * 10).astype(dtype) for x in data.neural]
    B = [(y * 10).astype(dtype) for y in data.behavior]
    if nan_policy == "omit" and dtype is not np.int64:
        N[0][4, 1] = np.nan
        B[1][9, 0] = np.nan
    G = [g.copy() for g in data.groups]
    inputs = (N, B, G)
    before = _snapshot(inputs)
    m = ShaReD(n_shared=1, alpha=None, cv=3, lags=[-1, 0, 2], nan_policy=nan_policy)
    m.fit(N, B, groups=G)
    _assert_same(before, inputs)
    for s in range(3):
        m.transform(N[s], subject=s, groups=G[s])
        m.predict(N[s], subject=s, groups=G[s], return_rows=True)
        if np.all(np.isfinite(B[s])):  # see test_transform_behavior_honours_nan_policy
            m.transform_behavior(B[s])
            m.transform_behavior(B[s], subject=s)
        _assert_same(before, inputs)
    m.score(N, B, groups=G)
    _assert_same(before, inputs)
    m.add_subject(N[1], B[1], groups=G[1])
    _assert_same(before, inputs)
    m.score([N[2], N[1]], [B[2], B[1]], groups=[G[2], G[1]], subjects=[2, 3])
    _assert_same(before, inputs)


def test_fit_does_not_keep_references_to_inputs(data):
    N, B = _lists(data)
    m = ShaReD(n_shared=1, alpha=1.0, cv=None).fit(N, B)
    Z = m.transform(data.neural[0], subject=0)
    for x in N:
        x[:] = 0.0
    for y in B:
        y[:] = 0.0
    np.testing.assert_array_equal(m.transform(data.neural[0], subject=0), Z)


# ------------------------------------------------------------------ the validation helpers


def test_check_subject_arrays_names_subjects_by_the_given_ids(data):
    from sharedrep.utils.validation import check_subject_arrays

    X, Y = data.neural[0].copy(), data.behavior[0].copy()
    X[2, 3] = np.nan
    with pytest.raises(ValueError, match=r"subject 3: neural contains NaN"):
        check_subject_arrays([X], [Y], subject_ids=[3])
    with pytest.raises(ValueError, match=r"subject 7: neural has 120 samples.*behavior has 50"):
        check_subject_arrays([data.neural[0]], [Y[:50]], subject_ids=[7])
    with pytest.raises(ValueError, match=r"subject 4: groups must have shape \(120,\)"):
        check_subject_arrays([data.neural[0]], [Y], [np.arange(3)], subject_ids=[4])
    with pytest.raises(ValueError, match=r"subject_ids has 2 entries but there are 1"):
        check_subject_arrays([data.neural[0]], [Y], subject_ids=[0, 1])


def test_check_subject_arrays_expected_feature_count(data):
    from sharedrep.utils.validation import check_subject_arrays

    N, B = _lists(data)
    with pytest.raises(
        ValueError, match=r"subject 0: behavior has 3 features but the model was fitted with 4"
    ):
        check_subject_arrays(N, B, n_features=4)
    Xs, Ys, gs = check_subject_arrays(N, B, n_features=P)
    assert [y.shape[1] for y in Ys] == [P] * 3 and gs == [None] * 3
    assert all(x.dtype == np.float64 for x in Xs)


def test_check_finite_names_the_first_bad_array_in_order(monkeypatch):
    from sharedrep.utils import validation as _validation

    monkeypatch.setattr(_validation, "_FINITE_BLOCK", 64)  # many row blocks per array
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((500, 3)) for _ in range(4)]
    arrays[3][7, 0] = np.nan
    arrays[1][499, 2] = np.inf  # in the last row block
    named = [(f"subject {i}: neural", a) for i, a in enumerate(arrays)]
    with pytest.raises(
        ValueError, match=r"subject 1: neural contains NaN or inf \(first at index \(499, 2\)\)"
    ):
        _validation.check_finite(named)
    _validation.check_finite(named[:1] + named[2:3])  # the clean ones pass


def test_singular_behaviour_metric_without_shrinkage_is_explained(data):
    N, B = _lists(data)
    B = [np.column_stack([Y, np.full(len(Y), 5.0)]) for Y in B]  # a constant feature
    with pytest.raises(ValueError, match="behaviour metric .* singular.*shrinkage > 0"):
        ShaReD(alpha=1.0, cv=None, n_shared=1, shrinkage=0.0).fit(N, B, groups=data.groups)
    ShaReD(alpha=1.0, cv=None, n_shared=1).fit(N, B, groups=data.groups)  # default shrinkage


def test_omit_names_the_unit_that_leaves_no_usable_samples(data):
    N, B = _lists(data)
    N[1] = N[1].copy()
    N[1][:, 3] = np.nan  # a dead unit: every lag window has a missing sample
    with pytest.raises(ValueError, match=r"subject 1: only 0 usable .*neural units \[3\]"):
        ShaReD(alpha=1.0, cv=None, n_shared=1, nan_policy="omit").fit(N, B, groups=data.groups)


def test_failed_refit_leaves_the_model_unfitted(data):
    from sklearn.exceptions import NotFittedError

    N, B = _lists(data)
    m = ShaReD(n_shared=1, cv=3, alphas=[0.1, 1.0], shrinkage=0.0).fit(N, B, groups=data.groups)
    bad = [np.column_stack([Y[:, :2], np.ones(len(Y))]) for Y in B]  # a constant feature
    with pytest.raises(ValueError, match="singular"):
        m.fit(N, bad, groups=data.groups)
    assert not [a for a in vars(m) if a.endswith("_") and not a.startswith("_")]
    with pytest.raises(NotFittedError):
        m.transform(N[0], 0)
    m.fit(N, B, groups=data.groups)  # and it can be fitted again


def test_constant_unit_warning_tells_units_from_lagged_columns(data):
    N, B = _lists(data)
    X = N[0].copy()
    starts = np.flatnonzero(np.r_[True, np.diff(data.groups[0]) != 0])
    X[:, 1] = 0.0
    X[starts, 1] = 1.0  # non-zero only on each trial's first sample: seen at lag 2 only
    X[:, 2] = 7.0  # constant everywhere
    N[0] = X
    with pytest.warns(UserWarning) as rec:
        m = ShaReD(n_shared=1, alpha=1.0, cv=None, lags=2).fit(N, B, groups=data.groups)
    (msg,) = [str(w.message) for w in rec if "constant" in str(w.message)]
    assert msg.startswith("subject 0: neural units [2] are constant; they were dropped")
    assert "units [1] are constant at some lags only" in msg
    n = X.shape[1]
    dropped = np.flatnonzero(m.constant_units_[0])
    assert set(dropped) == {2, n + 2, 2 * n + 2, 1, n + 1}  # unit 1 at lags 0 and 1


# ------------------------------------------------------------------ pandas alignment
def _frames(d, times=None):
    """The fixture data as DataFrames indexed by time (``times`` per subject)."""
    cols = ["x", "y", "z"]
    t = [np.arange(len(x)) / 10 for x in d.neural] if times is None else times
    return (
        [pd.DataFrame(x, index=ti) for x, ti in zip(d.neural, t, strict=True)],
        [pd.DataFrame(y, index=ti, columns=cols) for y, ti in zip(d.behavior, t, strict=True)],
    )


def test_pandas_rows_paired_by_position_are_refused_when_indexes_differ(data):
    X, Y = _frames(data)
    model = ShaReD(n_shared=1, alpha=1.0, cv=None)
    ref = model.fit(*_lists(data)).shared_axes_
    assert np.array_equal(model.fit(X, Y).shared_axes_, ref)  # aligned frames: the same
    Y[1] = Y[1].iloc[::-1]  # same rows, other order: position would pair other times
    with pytest.raises(ValueError, match=r"subject 1: neural and behavior are pandas .*row 0"):
        model.fit(X, Y)


def test_behaviour_columns_in_another_order_are_refused(data):
    X, Y = _frames(data)
    Y[2] = Y[2][["y", "x", "z"]]
    with pytest.raises(ValueError, match=r"subject 2: behavior columns \['y', 'x', 'z'\] differ"):
        ShaReD(n_shared=1, alpha=1.0, cv=None).fit(X, Y)
