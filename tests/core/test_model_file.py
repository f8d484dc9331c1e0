"""The model file is verified on load: every corruption is refused, naming the field."""

import json
import warnings

import numpy as np
import pytest

from sharedrep import ShaReD, simulate


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
