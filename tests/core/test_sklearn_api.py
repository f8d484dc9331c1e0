"""scikit-learn estimator conventions of :class:`sharedrep.ShaReD`."""

from __future__ import annotations

import inspect
import pickle

import numpy as np
import pytest
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from sharedrep import ShaReD, simulate

PARAMS = dict(n_shared=1, alpha=1.0, cv=None)


@pytest.fixture(scope="module")
def data():
    return simulate(
        n_subjects=2,
        n_samples=150,
        n_units=[4, 6],
        n_behavior=3,
        n_shared=1,
        trial_length=25,
        seed=5,
    )


def _init_params():
    sig = inspect.signature(ShaReD.__init__)
    return [name for name in sig.parameters if name != "self"]


def test_is_a_sklearn_estimator():
    assert isinstance(ShaReD(), BaseEstimator)


def test_get_params_lists_exactly_the_init_parameters():
    m = ShaReD()
    assert sorted(m.get_params()) == sorted(_init_params())
    sig = inspect.signature(ShaReD.__init__)
    for name, value in m.get_params().items():
        assert value is sig.parameters[name].default or value == sig.parameters[name].default


def test_init_only_stores_parameters():
    """No validation, conversion or fitted state in __init__ (sklearn convention)."""
    lags = [0, 2, -1]
    weights = np.array([1.0, 2.0])
    m = ShaReD(n_shared="bogus", alpha=-1.0, lags=lags, cv=1, subject_weights=weights)
    assert set(vars(m)) == set(_init_params())
    assert m.lags is lags and m.subject_weights is weights
    assert m.n_shared == "bogus" and m.alpha == -1.0 and m.cv == 1
    assert not [k for k in vars(m) if k.endswith("_")]


def test_get_params_set_params_round_trip():
    m = ShaReD(n_shared=3, alpha=0.5, lags=[0, 1], cv=4, random_state=7, shrinkage=0.2)
    params = m.get_params()
    m2 = ShaReD().set_params(**params)
    assert m2.get_params() == params
    out = m2.set_params(alpha=2.0, behavior_metric="variance", private=False)
    assert out is m2
    assert m2.alpha == 2.0 and m2.behavior_metric == "variance" and m2.private is False
    assert m.alpha == 0.5  # the original is untouched


def test_set_params_rejects_unknown_parameters():
    with pytest.raises(ValueError, match="bogus"):
        ShaReD().set_params(bogus=1)


def test_fit_returns_self(data):
    m = ShaReD(**PARAMS)
    assert m.fit(data.neural, data.behavior) is m
    assert m.fit(data.neural, data.behavior, groups=data.groups) is m


def test_clone_gives_unfitted_copy_with_the_same_params(data):
    m = ShaReD(n_shared=1, alpha=None, cv=3, lags=[0, 1], alphas=[0.1, 1.0], random_state=0)
    m.fit(data.neural, data.behavior, groups=data.groups)
    c = clone(m)
    assert type(c) is ShaReD and c is not m
    assert c.get_params().keys() == m.get_params().keys()
    for key, value in m.get_params().items():
        assert c.get_params()[key] == value or np.array_equal(c.get_params()[key], value)
    assert not [k for k in vars(c) if k.endswith("_")]
    with pytest.raises(NotFittedError):
        c.transform(data.neural[0])
    # the clone fits to the same model
    c.fit(data.neural, data.behavior, groups=data.groups)
    np.testing.assert_array_equal(c.shared_axes_, m.shared_axes_)
    assert c.alpha_ == m.alpha_


def test_clone_of_unfitted_estimator():
    m = ShaReD(n_shared="auto", cv=3, subject_weights=[1, 2])
    c = clone(m)
    assert c.get_params() == m.get_params()


@pytest.mark.parametrize(
    ("method", "args"),
    [
        ("transform", lambda d: (d.neural[0],)),
        ("predict", lambda d: (d.neural[0],)),
        ("transform_behavior", lambda d: (d.behavior[0],)),
        ("score", lambda d: (d.neural, d.behavior)),
        ("add_subject", lambda d: (d.neural[0], d.behavior[0])),
        ("save", lambda d: ("unused.npz",)),
    ],
)
def test_not_fitted_error_before_fit(data, tmp_path, method, args):
    m = ShaReD(**PARAMS)
    call_args = args(data)
    if method == "save":
        call_args = (tmp_path / "m.npz",)
    with pytest.raises(NotFittedError, match=r"not fitted.*fit"):
        getattr(m, method)(*call_args)
    assert not [k for k in vars(m) if k.endswith("_")]
    if method == "save":
        assert not (tmp_path / "m.npz").exists()


def test_check_is_fitted(data):
    m = ShaReD(**PARAMS)
    with pytest.raises(NotFittedError):
        check_is_fitted(m)
    m.fit(data.neural, data.behavior)
    check_is_fitted(m)


def test_fitted_attributes_end_with_underscore(data):
    m = ShaReD(n_shared=1, alpha=None, cv=3, lags=1)
    before = set(vars(m))
    m.fit(data.neural, data.behavior, groups=data.groups)
    new = set(vars(m)) - before
    public = {k for k in new if not k.startswith("_")}
    assert public and all(k.endswith("_") for k in public), sorted(public)
    documented = {
        "shared_axes_",
        "encoders_",
        "alpha_",
        "n_shared_",
        "explained_",
        "eigenvalues_",
        "cv_results_",
        "lags_",
        "behavior_scale_",
        "behavior_means_",
        "unit_means_",
        "unit_scales_",
        "constant_units_",
        "metric_",
        "subject_weights_",
        "subject_alphas_",
        "n_subjects_",
        "n_units_",
        "n_features_",
        "private_",
    }
    assert documented <= public
    # parameters are left as given
    assert m.get_params() == ShaReD(n_shared=1, alpha=None, cv=3, lags=1).get_params()


def test_refit_resets_the_fitted_state(data):
    m = ShaReD(**PARAMS).fit(data.neural, data.behavior)
    m.add_subject(data.neural[1], data.behavior[1])
    assert m.n_subjects_ == 3
    m.fit(data.neural[:1], data.behavior[:1])
    assert m.n_subjects_ == 1 and len(m.encoders_) == 1 and len(m.behavior_means_) == 1
    assert len(m.private_) == 1 and len(m.subject_alphas_) == 1
    with pytest.raises(IndexError):
        m.transform(data.neural[1], subject=1)


def test_repr():
    assert repr(ShaReD()) == "ShaReD()"
    r = repr(ShaReD(n_shared=3, alpha=0.5, lags=[0, 2], behavior_metric="variance"))
    assert r.startswith("ShaReD(") and "n_shared=3" in r and "alpha=0.5" in r
    assert "lags=[0, 2]" in r and "behavior_metric='variance'" in r


def test_repr_of_fitted_model(data):
    m = ShaReD(**PARAMS).fit(data.neural, data.behavior)
    assert repr(m) == "ShaReD(alpha=1.0, cv=None, n_shared=1)"


def test_fitted_model_pickles_in_memory(data):
    """In-memory pickling (joblib, multiprocessing) works; files use save/load."""
    m = ShaReD(**PARAMS).fit(data.neural, data.behavior)
    m2 = pickle.loads(pickle.dumps(m))
    np.testing.assert_array_equal(
        m2.predict(data.neural[1], subject=1), m.predict(data.neural[1], subject=1)
    )
