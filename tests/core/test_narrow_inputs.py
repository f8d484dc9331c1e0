"""In-memory inputs of another dtype than float64 (float32 from suite2p, integer counts).

They are converted to float64 one subject at a time, in the subject's statistics task,
instead of all at once before the fit: the fit is the one of the float64 arrays (the
conversion is exact) and the float64 copies of all subjects are never held together.
"""

import tracemalloc
import warnings

import numpy as np
import pandas as pd
import pytest

from model_checks import BACKEND_KW as KW
from model_checks import assert_same_model
from sharedrep import ShaReD, simulate


@pytest.fixture(scope="module")
def data():
    return simulate(n_subjects=3, n_samples=800, n_units=(8, 14), n_behavior=6, seed=3, lag=1)


def _fit(neural, behavior, groups, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ShaReD(**{**KW, **kw}).fit(neural, behavior, groups=groups)


@pytest.mark.parametrize("low_memory", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "int16", "uint8"])
def test_fit_of_narrow_arrays_is_the_fit_of_their_float64_values(data, dtype, low_memory):
    if dtype == "float32":
        neural = [x.astype(np.float32) for x in data.neural]
    else:  # counts: non-negative whole numbers
        neural = [np.round(np.abs(3 * x)).astype(dtype) for x in data.neural]
    behavior = [y.astype(np.float32) for y in data.behavior]
    wide_x = [x.astype(np.float64) for x in neural]
    wide_y = [y.astype(np.float64) for y in behavior]
    reference = _fit(wide_x, wide_y, data.groups, low_memory=low_memory)
    model = _fit(neural, behavior, data.groups, low_memory=low_memory)
    assert_same_model(reference, model)
    assert all(x.dtype == np.dtype(dtype) for x in neural)  # inputs left as given


def test_float32_inputs_are_not_all_copied_to_float64_at_once():
    S, T, N = 8, 20000, 60  # float64 copy of one subject: 9.6 MB; of all: 77 MB
    rng = np.random.default_rng(0)
    neural = [rng.standard_normal((T, N)).astype(np.float32) for _ in range(S)]
    behavior = [x[:, :3].astype(np.float64) + rng.standard_normal((T, 3)) for x in neural]
    groups = [np.repeat(np.arange(T // 100), 100) for _ in range(S)]
    all_copies = sum(x.size * 8 for x in neural)
    tracemalloc.start()
    try:
        _fit(neural, behavior, groups, n_shared=1, alpha=1.0, cv=3, private=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # converted up front, the float64 copies of all subjects alone reach all_copies
    assert peak < 0.5 * all_copies, (peak, all_copies)


def test_nonfinite_narrow_values_are_refused_naming_subject_and_array(data):
    neural = [x.astype(np.float32) for x in data.neural]
    neural[2][5, 1] = np.nan
    with pytest.raises(ValueError, match=r"subject 2: neural contains NaN or inf"):
        _fit(neural, data.behavior, data.groups)
    model = _fit(neural, data.behavior, data.groups, nan_policy="omit")
    wide = [x.astype(np.float64) for x in neural]
    assert_same_model(_fit(wide, data.behavior, data.groups, nan_policy="omit"), model)


def test_narrow_array_of_wrong_dimension_is_refused_with_its_shape(data):
    neural = [x.astype(np.float32) for x in data.neural]
    neural[1] = neural[1][:, 0]
    with pytest.raises(ValueError, match=r"subject 1: neural must be 2-D .* got shape \(800,\)"):
        _fit(neural, data.behavior, data.groups)


def test_behavior_frames_are_aligned_when_neural_is_read_later(data, tmp_path):
    """With neural as files (or arrays converted later), DataFrame behaviour whose columns
    differ between subjects was read by position: refused as for in-memory arrays."""
    paths = []
    for s, x in enumerate(data.neural):
        paths.append(tmp_path / f"neural{s}.npy")
        np.save(paths[-1], x)
    names = [f"f{j}" for j in range(data.behavior[0].shape[1])]
    frames = [pd.DataFrame(y, columns=names) for y in data.behavior]
    frames[1] = frames[1][names[::-1]]
    narrow = [x.astype(np.float32) for x in data.neural]
    for neural in (paths, narrow):
        with pytest.raises(ValueError, match=r"subject 1: behavior columns"):
            _fit(neural, frames, data.groups)


@pytest.mark.parametrize("kw", [dict(lags=0), dict(lags=3), dict(lags=1, nan_policy="omit")])
def test_float32_pass_reads_float32_activity_as_the_float64_copy(data, kw):
    neural = [x.astype(np.float32) for x in data.neural]
    if kw.get("nan_policy") == "omit":
        neural[0][7, 2] = np.nan
    wide = [x.astype(np.float64) for x in neural]
    reference = _fit(wide, data.behavior, data.groups, dtype="float32", **kw)
    assert_same_model(reference, _fit(neural, data.behavior, data.groups, dtype="float32", **kw))


def test_float32_pass_of_float32_activity_makes_no_float64_copy():
    S, T, N = 3, 40000, 60  # float64 copy of one subject: 19 MB
    rng = np.random.default_rng(1)
    neural = [rng.standard_normal((T, N)).astype(np.float32) for _ in range(S)]
    behavior = [x[:, :3].astype(np.float64) + rng.standard_normal((T, 3)) for x in neural]
    groups = [np.repeat(np.arange(T // 100), 100) for _ in range(S)]
    kw = dict(n_shared=1, alpha=1.0, cv=3, private=False, dtype="float32")
    tracemalloc.start()
    try:
        _fit(neural, behavior, groups, **kw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 0.5 * T * N * 8, (peak, T * N * 8)
    neural[1][100, 5] = np.inf
    with pytest.raises(
        ValueError, match=r"subject 1: neural contains NaN or inf \(first at index \(100, 5\)\)"
    ):
        _fit(neural, behavior, groups, **kw)
