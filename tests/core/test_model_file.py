"""The model file is verified on load: every corruption is refused, naming the field."""

import json
import re
import warnings

import numpy as np
import pytest

from sharedrep import ShaReD, simulate
from sharedrep.core import calibration, model_file


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    d = simulate(n_subjects=4, n_samples=600, n_units=10, n_behavior=5, n_private=1, seed=0)
    m = ShaReD(n_shared=2, cv=3, lags=1, random_state=0).fit(d.neural[:3], d.behavior[:3])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.add_subject(d.neural[3], d.behavior[3])
    path = tmp_path_factory.mktemp("model") / "model.npz"
    m.save(path)
    return m, path, d


def _edited(path, tmp_path, edit):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("__meta__")))
    edit(arrays, meta)
    arrays["__meta__"] = np.array(json.dumps(meta))
    out = tmp_path / "edited.npz"
    np.savez(out, **arrays)
    return out


def test_round_trip_keeps_the_decoders_of_added_subjects(saved):
    m, path, d = saved
    back = ShaReD.load(path)
    assert back.subject_decoders_ == m.subject_decoders_
    assert back.subject_cv_scores_ == m.subject_cv_scores_
    assert back.shrinkage_ == m.shrinkage_
    for through in ("auto", "shared", "own"):
        np.testing.assert_array_equal(
            back.predict(d.neural[3], 3, through=through),
            m.predict(d.neural[3], 3, through=through),
        )


def _set(key, value):
    def edit(arrays, meta):
        arrays[key] = value(arrays[key])

    return edit


@pytest.mark.parametrize(
    "edit, field",
    [
        (_set("shared_axes_", lambda a: a[:, :1]), "shared_axes_"),
        (_set("shared_axes_", lambda a: np.where(a == a.flat[0], np.nan, a)), "shared_axes_"),
        (_set("unit_scales_/1", lambda a: np.zeros_like(a)), "unit_scales_/1"),
        (_set("encoders_/2", lambda a: a[:-1]), "encoders_/2"),
        (_set("behavior_scale_", lambda a: -a), "behavior_scale_"),
        (_set("metric_", lambda a: np.full_like(a, np.inf)), "metric_"),
        (_set("decoder_coefs_/3", lambda a: a[:, :2]), "decoder_coefs_/3"),
        (_set("constant_units_/0", lambda a: a.astype(float)), "constant_units_/0"),
        (lambda arrays, meta: meta.update(n_shared_=3), "shared_axes_"),
        (lambda arrays, meta: meta.update(n_shared_=9), "n_shared_"),
        (lambda arrays, meta: meta.update(n_subjects_=5), "n_units_"),
        (lambda arrays, meta: meta.update(n_units_=[10, 10, 11, 10]), "encoders_/2"),
        (lambda arrays, meta: meta.update(subject_alphas_=[1.0, 0.0, 1.0, 1.0]), "alpha"),
        (lambda arrays, meta: arrays.pop("unit_means_/3"), "unit_means_/3"),
        (lambda arrays, meta: meta.update(n_units_=[10.9, 10, 10, 10]), "n_units_"),
        (lambda arrays, meta: meta.pop("version"), "version"),
        (lambda arrays, meta: meta.update(version=0), "version"),
        (lambda arrays, meta: meta.update(version="2"), "version"),
    ],
)
def test_corrupt_model_files_are_refused_naming_the_field(saved, tmp_path, edit, field):
    _, path, _ = saved
    bad = _edited(path, tmp_path, edit)
    with pytest.raises(ValueError, match=field.replace("/", "/")) as info:
        ShaReD.load(bad)
    assert str(bad) in str(info.value)


def test_version_1_files_still_load(saved, tmp_path):
    m, path, d = saved

    def as_v1(arrays, meta):
        meta["version"] = 1
        for key in ("shrinkage_", "diagnostics_", "subject_decoders_", "subject_cv_scores_"):
            meta.pop(key)
        for key in [k for k in arrays if k.startswith(("decoder_coefs_", "own_coefs_"))]:
            arrays.pop(key)
        meta["params"]["shrinkage"] = 0.01

    old = ShaReD.load(_edited(path, tmp_path, as_v1))
    assert old.subject_decoders_ == ["shared"] * 4
    np.testing.assert_array_equal(
        old.predict(d.neural[3], 3), m.predict(d.neural[3], 3, through="shared")
    )


def _meta(**changes):
    def edit(arrays, meta):
        meta.update(changes)

    return edit


def _param(**changes):
    def edit(arrays, meta):
        meta["params"].update(changes)

    return edit


def _nested(*keys, value):
    """Set ``meta[keys[0]][keys[1]]... = value``."""

    def edit(arrays, meta):
        target = meta
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return edit


def _array(key, value):
    def edit(arrays, meta):
        arrays[key] = value(arrays[key]) if callable(value) else value

    return edit


# every field load reads, edited by hand: (edit, field the error must name, what it says)
HAND_EDITS = {
    # parameters: checked as fit checks them (the same messages)
    "params_nan_policy": (_param(nan_policy="drop"), "params", r"nan_policy must be 'raise'"),
    "params_cv": (_param(cv="3"), "params", r"cv must be an int between 2 and 50"),
    "params_alpha": (_param(alpha=-1.0), "params", r"alpha must be a positive number"),
    "params_shrinkage": (_param(shrinkage=2.0), "params", r"shrinkage must be a number in"),
    "params_alphas": (_param(alphas=[-1.0, 1.0]), "params", r"alphas must be .*positive"),
    "params_lags": (_param(lags=[0, 0]), "params", r"lags must be unique"),
    "params_weights": (_param(subject_weights=[1, -1, 1]), "params", r"subject_weights"),
    "params_dtype": (_param(dtype="float16"), "params", r"dtype must be 'float64'"),
    "params_backend": (_param(backend="spark"), "params", r"backend must be one of"),
    "params_private": (_param(private="yes"), "params", r"private must be True or False"),
    "params_not_a_mapping": (_meta(params=[1, 2]), "params", r"must be a mapping"),
    # fitted scalars and lists
    "alpha_text": (_meta(alpha_="1.0"), "alpha_", r"positive finite number; got '1.0'"),
    "alpha_bool": (_meta(alpha_=True), "alpha_", r"positive finite number; got True"),
    "alpha_missing": (lambda arrays, meta: meta.pop("alpha_"), "alpha_", r"missing"),
    "subject_alphas_text": (
        _meta(subject_alphas_=["1", 1.0, 1.0, 1.0]),
        "subject_alphas_",
        r"4 positive finite numbers",
    ),
    "shrinkage_list": (_meta(shrinkage_=[0.1]), "shrinkage_", r"a number in \[0, 1\]"),
    "shrinkage_text": (_meta(shrinkage_="auto"), "shrinkage_", r"a number in \[0, 1\]"),
    "shrinkage_range": (_meta(shrinkage_=1.5), "shrinkage_", r"a number in \[0, 1\]"),
    "n_features_float": (_meta(n_features_=5.0), "n_features_", r"an int >= 1"),
    "subject_decoders": (
        _meta(subject_decoders_=["shared", "shared", "shared", "best"]),
        "subject_decoders_",
        r"decoder names",
    ),
    "subject_decoders_short": (
        _meta(subject_decoders_=["shared"]),
        "subject_decoders_",
        r"a list of 4",
    ),
    "subject_cv_scores": (
        _nested("subject_cv_scores_", 3, value={"shared": "0.5"}),
        "subject_cv_scores_",
        r"mapping decoder name -> number",
    ),
    "has_cv_text": (_meta(has_cv="yes"), "has_cv", r"true or false"),
    "has_private_int": (_meta(has_private=1), "has_private", r"true or false"),
    # diagnostics_
    "diagnostics_list": (_meta(diagnostics_=[1]), "diagnostics_", r"a mapping"),
    "diagnostics_unknown": (
        _nested("diagnostics_", "extra", value=1),
        "diagnostics_",
        r"unknown entries \['extra'\]",
    ),
    "diagnostics_flag": (
        _nested("diagnostics_", "shared_beats_mean", value="yes"),
        "diagnostics_.shared_beats_mean",
        r"true or false",
    ),
    "diagnostics_subject": (
        _nested("diagnostics_", "constant_behavior", value={"7": [0]}),
        "diagnostics_.constant_behavior",
        r"subject \(0..3\)",
    ),
    "diagnostics_subject_text": (
        _nested("diagnostics_", "constant_behavior", value={"one": [0]}),
        "diagnostics_.constant_behavior",
        r"subject",
    ),
    "diagnostics_feature": (
        _nested("diagnostics_", "constant_behavior", value={"1": [5]}),
        "diagnostics_.constant_behavior",
        r"feature indices \(0..4\)",
    ),
    "diagnostics_messages": (
        _nested("diagnostics_", "messages", value=[1]),
        "diagnostics_.messages",
        r"a list of strings",
    ),
    # private components
    "private_rank_text": (
        _nested("private_scalars", 0, "behavior_rank", value="1"),
        "private_scalars[0].behavior_rank",
        r"an int in \[0, 3\]",
    ),
    "private_rank_range": (
        _nested("private_scalars", 0, "behavior_rank", value=4),
        "private_scalars[0].behavior_rank",
        r"an int in \[0, 3\]",
    ),
    "private_explained_nan": (
        _nested("private_scalars", 2, "behavior_explained", value=float("nan")),
        "private_scalars[2].behavior_explained",
        r"a finite number",
    ),
    "private_scalars_short": (
        lambda arrays, meta: meta["private_scalars"].pop(),
        "private_scalars",
        r"a list of 4 mappings",
    ),
    "private_axes_rank": (
        _array("private_/1/behavior_axes", lambda a: np.zeros((5, a.shape[1] + 1))),
        "private_/1/behavior_axes",
        r"has shape",
    ),
    "private_cv_score_text": (
        _array("private_/0/behavior_cv_score", np.array(["a", "b", "c"])),
        "private_/0/behavior_cv_score",
        r"expected floats",
    ),
    "private_cv_score_length": (
        _array("private_/0/behavior_cv_score", lambda a: np.zeros(a.size + 1)),
        "private_/0/behavior_cv_score",
        r"must hold 3 scores",
    ),
    "private_components_rows": (
        _array("private_/2/neural_components", lambda a: a[:-1]),
        "private_/2/neural_components",
        r"has shape",
    ),
    "private_explained_length": (
        _array("private_/2/neural_explained", lambda a: a[:-1]),
        "private_/2/neural_explained",
        r"has shape",
    ),
    # cv_results_
    "cv_best_index": (_meta(cv_best_index=[99, 2]), "cv_best_index", r"i_alpha in \[0, 14\]"),
    "cv_best_index_k": (_meta(cv_best_index=[0, 0]), "cv_best_index", r"k in \[1, 2\]"),
    "cv_best_index_missing": (
        lambda arrays, meta: meta.pop("cv_best_index"),
        "cv_best_index",
        r"missing",
    ),
    "cv_alphas_2d": (
        _array("cv_results_/alphas", lambda a: a[:, None]),
        "cv_results_/alphas",
        r"has shape",
    ),
    "cv_alphas_negative": (
        _array("cv_results_/alphas", lambda a: -a),
        "cv_results_/alphas",
        r"zero or negative",
    ),
    "cv_n_shared_float": (
        _array("cv_results_/n_shared", lambda a: a.astype(float)),
        "cv_results_/n_shared",
        r"expected ints",
    ),
    "cv_n_shared_values": (
        _array("cv_results_/n_shared", lambda a: a + 1),
        "cv_results_/n_shared",
        r"must be 1, 2, ..., k_max",
    ),
    "cv_mean_score_shape": (
        _array("cv_results_/mean_score", lambda a: a[:-1]),
        "cv_results_/mean_score",
        r"has shape",
    ),
    "cv_r2_subject_dim_subjects": (
        _array("cv_results_/r2_subject_dim", lambda a: np.concatenate([a, a[:, :1]], axis=1)),
        "cv_results_/r2_subject_dim",
        r"expected \(15, 3, 2\)",
    ),
    "cv_shrinkages_range": (
        _array("cv_results_/shrinkages", lambda a: a + 2),
        "cv_results_/shrinkages",
        r"in \[0, 1\]",
    ),
    "cv_unknown_entry": (
        _array("cv_results_/extra", np.zeros(3)),
        "cv_results_/extra",
        r"is not a cv_results_ entry",
    ),
    "cv_missing_entry": (
        lambda arrays, meta: arrays.pop("cv_results_/se_score"),
        "cv_results_/se_score",
        r"missing",
    ),
    # arrays
    "encoders_complex": (
        _array("encoders_/0", lambda a: a.astype(complex)),
        "encoders_/0",
        r"expected floats",
    ),
    "lags_repeated": (_array("lags_", lambda a: np.zeros_like(a)), "lags_", r"distinct ints"),
    "lags_float": (_array("lags_", lambda a: a.astype(float)), "lags_", r"expected ints"),
}


@pytest.mark.parametrize(("edit", "field", "says"), HAND_EDITS.values(), ids=list(HAND_EDITS))
def test_hand_edited_fields_are_refused_naming_the_field_and_file(
    saved, tmp_path, edit, field, says
):
    _, path, _ = saved
    bad = _edited(path, tmp_path, edit)
    with pytest.raises(ValueError) as info:
        ShaReD.load(bad)
    message = str(info.value)
    assert str(bad) in message
    assert f"model field {field!r}" in message, message
    assert re.search(says, message), message


def test_the_unedited_file_loads(saved, tmp_path):
    """The edits above start from a file that loads: each refusal is the edit's."""
    m, path, _ = saved
    assert ShaReD.load(_edited(path, tmp_path, lambda arrays, meta: None)).n_subjects_ == 4
    assert m.cv_results_ is not None and m.private_ is not None and m.shrinkage_ is not None


def test_the_model_file_knows_the_decoder_names():
    assert model_file.DECODERS == calibration.CANDIDATES


def test_empty_diagnostics_of_a_model_from_a_version_1_file_load(saved, tmp_path):
    """A model loaded from a version-1 file has no diagnostics; saved again (version 2)
    it writes an empty mapping, which loads."""
    _, path, _ = saved
    back = ShaReD.load(_edited(path, tmp_path, _meta(diagnostics_={})))
    assert back.diagnostics_ == {}
    back = ShaReD.load(_edited(path, tmp_path, _meta(diagnostics_=None)))
    assert back.diagnostics_ == {}


def test_constant_behavior_subjects_written_as_text_load_as_ints(saved, tmp_path):
    """JSON keys are text: a file (any written so far) gives the subjects back as ints."""
    _, path, _ = saved
    edit = _nested("diagnostics_", "constant_behavior", value={"0": [1, 3], "2": [4]})
    back = ShaReD.load(_edited(path, tmp_path, edit))
    assert back.diagnostics_["constant_behavior"] == {0: [1, 3], 2: [4]}
    assert all(type(s) is int for s in back.diagnostics_["constant_behavior"])
