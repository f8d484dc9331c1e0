"""backend="torch": equal to the numpy backend to 1e-8 relative (float64).

Runs torch on the CPU; the CUDA test runs only where a GPU is visible. Skipped entirely
when torch is not installed (it is not part of the CI test extra).
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
# small CPU problems: one intra-op thread avoids OpenMP contention on busy CI machines
torch.set_num_threads(1)

from model_checks import assert_close_models  # noqa: E402
from sharedrep import ShaReD, simulate  # noqa: E402
from sharedrep.core import data_pass, solver  # noqa: E402
from sharedrep.core.backends import get_backend  # noqa: E402
from sharedrep.core.backends import torch as torch_backend  # noqa: E402
from sharedrep.core.backends.torch import (  # noqa: E402
    DeviceStats,
    _cholesky_blocked,
    _cholesky_solve_blocked,
    _ridge_batch,
)

RTOL = 1e-8


@pytest.fixture(scope="module")
def data():
    # unequal unit counts: subjects are batched by number of columns
    return simulate(
        n_subjects=4, n_samples=900, n_units=[9, 14, 9, 20], n_behavior=6, seed=5, lag=1
    )


@pytest.mark.parametrize("metric", ["correlation", "variance"])
def test_cv_fit_equals_numpy(data, metric):
    kw = dict(n_shared="auto", lags=2, cv=4, random_state=0, behavior_metric=metric)
    a = ShaReD(**kw).fit(data.neural, data.behavior, groups=data.groups)
    b = ShaReD(backend="torch", device="cpu", **kw).fit(
        data.neural, data.behavior, groups=data.groups
    )
    assert_close_models(a, b)


def test_long_alpha_grid_and_batches(data):
    # 35 alphas: numpy uses one eigendecomposition per fold, torch a Cholesky per alpha
    kw = dict(n_shared=2, cv=3, alphas=np.logspace(-4, 3, 35), private=False)
    a = ShaReD(**kw).fit(data.neural, data.behavior)
    be = get_backend("torch", device="cpu", batch_size=1)
    prep = be.statistics(
        data.neural, data.behavior, [None] * 4, np.array([0]), 3, gap=0, random_state=None
    )
    args = ([p.stats for p in prep], [p.chunks for p in prep], np.full(4, 0.25), kw["alphas"])
    errors = be.cv_errors(*args, 2, "correlation", 0.01)
    ref = solver.cv_errors(*args, 2, "correlation", 0.01)
    for key in ref:
        np.testing.assert_allclose(errors[key], ref[key], rtol=RTOL, atol=RTOL * 1e-3)
    b = ShaReD(backend="torch", **kw).fit(data.neural, data.behavior)
    assert_close_models(a, b)


def test_frozen_axes_and_scale(data):
    be = get_backend("torch")
    prep = be.statistics(data.neural, data.behavior, data.groups, np.array([0, 1]), 3, gap=1)
    V = np.linalg.qr(np.random.default_rng(0).standard_normal((6, 2)))[0]
    args = ([p.stats for p in prep], [p.chunks for p in prep], np.full(4, 0.25), [0.1, 1.0])
    kw = dict(y_scale=np.linspace(0.5, 2, 6), axes=V)
    ref = solver.cv_errors(*args, 2, "variance", 0.0, **kw)
    got = be.cv_errors(*args, 2, "variance", 0.0, **kw)
    for key in ref:
        np.testing.assert_allclose(got[key], ref[key], rtol=RTOL, atol=1e-9)


def test_nan_omit_constant_unit_and_float32(data):
    X = [x.copy() for x in data.neural]
    X[0][50:53, 2] = np.nan
    X[1][:, 3] = 4.0  # constant unit
    kw = dict(n_shared=2, lags=1, cv=3, nan_policy="omit", alphas=[0.01, 1.0])
    with pytest.warns(UserWarning, match="constant"):
        a = ShaReD(**kw).fit(X, data.behavior, groups=data.groups)
    with pytest.warns(UserWarning, match="constant"):
        b = ShaReD(backend="torch", **kw).fit(X, data.behavior, groups=data.groups)
    assert_close_models(a, b)
    with pytest.warns(UserWarning, match="constant"):
        c = ShaReD(dtype="float32", **kw).fit(X, data.behavior, groups=data.groups)
    with pytest.warns(UserWarning, match="constant"):
        e = ShaReD(backend="torch", dtype="float32", **kw).fit(
            X, data.behavior, groups=data.groups
        )
    assert_close_models(c, e, rtol=1e-5)


def test_no_cv_and_errors(data):
    kw = dict(n_shared=2, alpha=0.3, cv=None)
    a = ShaReD(**kw).fit(data.neural, data.behavior)
    b = ShaReD(backend="torch", **kw).fit(data.neural, data.behavior)
    assert_close_models(a, b)
    with pytest.raises(ValueError, match="subject 0: only 3 usable samples"):
        ShaReD(backend="torch", lags=5, n_shared=1, alpha=1.0, cv=2).fit(
            [data.neural[0][:8]], [data.behavior[0][:8]]
        )
    with pytest.raises(ValueError, match="cv=4 folds need at least 4 trials"):
        ShaReD(backend="torch", n_shared=1, alpha=1.0, cv=4).fit(
            [data.neural[0][:300]], [data.behavior[0][:300]], groups=[np.arange(300) // 100]
        )
    with pytest.raises(ValueError, match="not a torch device"):
        get_backend("torch", device="tpu-of-my-dreams")
    with pytest.raises(ValueError, match="batch_size"):
        get_backend("torch", batch_size=0)


def test_ridge_fallback_matches_numpy():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((6, 6))
    G = A @ A.T
    G[0, 0] = -50.0  # indefinite: Cholesky of G + a n I fails for small a
    B = rng.standard_normal((6, 2))
    got = _ridge_batch(
        torch,
        torch.as_tensor(G[None]),
        torch.as_tensor([10.0], dtype=torch.float64),
        torch.as_tensor([1e-3], dtype=torch.float64),
        torch.as_tensor(B[None]),
    )
    ref = solver._solve_ridge(G, 10.0, 1e-3, B)
    np.testing.assert_allclose(got[0, 0].numpy(), ref, rtol=1e-10)


def test_from_files(data, tmp_path):
    paths = []
    for s, x in enumerate(data.neural):
        np.save(tmp_path / f"x{s}.npy", x)
        paths.append(tmp_path / f"x{s}.npy")
    kw = dict(n_shared=2, cv=3, alphas=[0.1, 1.0])
    a = ShaReD(**kw).fit(data.neural, data.behavior, groups=data.groups)
    b = ShaReD(backend="torch", **kw).fit(paths, data.behavior, groups=data.groups)
    assert_close_models(a, b)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("blocked", [False, True])
def test_cuda_equals_numpy(data, blocked, monkeypatch):
    kw = dict(n_shared="auto", lags=2, cv=4, random_state=0)
    a = ShaReD(**kw).fit(data.neural, data.behavior, groups=data.groups)
    monkeypatch.setattr(torch_backend, "_PANEL", 8)
    monkeypatch.setattr(torch_backend.TorchBackend, "_blocked", lambda self, q: blocked)
    b = ShaReD(backend="torch", device="cuda", **kw).fit(
        data.neural, data.behavior, groups=data.groups
    )
    assert_close_models(a, b)
    tensors = [torch.as_tensor(x, device="cuda") for x in data.neural]  # data on the GPU
    c = ShaReD(backend="torch", device="cuda", **kw).fit(
        tensors, data.behavior, groups=data.groups
    )
    assert_close_models(a, c)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_unavailable_message():
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        get_backend("torch", device="cuda")


# ---------------------------------------------------------------- blocked factorisation
@pytest.mark.parametrize("q, panel", [(23, 4), (16, 8), (5, 8)])
def test_blocked_cholesky_and_solve_match_lapack(q, panel):
    rng = np.random.default_rng(q)
    A = rng.standard_normal((3, q, 2 * q))
    G = A @ A.transpose(0, 2, 1) + 1e-3 * np.eye(q)
    B = rng.standard_normal((3, q, 4))
    L, info = _cholesky_blocked(torch, torch.as_tensor(G), panel=panel)
    assert not info.any()
    for i in range(3):
        ref = np.linalg.cholesky(G[i])
        np.testing.assert_allclose(L[i].numpy(), ref, rtol=1e-10, atol=1e-12 * np.abs(ref).max())
        X = _cholesky_solve_blocked(torch, L, torch.as_tensor(B), panel=panel)[i].numpy()
        np.testing.assert_allclose(X, solver._solve_ridge(G[i], 1.0, 0.0, B[i]), rtol=1e-8)


def test_blocked_cholesky_flags_only_the_indefinite_matrix():
    rng = np.random.default_rng(1)
    A = rng.standard_normal((2, 12, 30))
    G = A @ A.transpose(0, 2, 1)
    G[1, 7, 7] = -1.0  # not positive definite, failure inside the second panel
    L, info = _cholesky_blocked(torch, torch.as_tensor(G), panel=5)
    assert info[0] == 0 and info[1] > 0
    np.testing.assert_allclose(L[0].numpy(), np.linalg.cholesky(G[0]), rtol=1e-10)


def test_blocked_factorization_fit_equals_numpy(data, monkeypatch):
    monkeypatch.setattr(torch_backend, "_PANEL", 4)  # several panels even for q = 9..60
    kw = dict(n_shared="auto", lags=2, cv=4, random_state=0, alphas=[1e-3, 0.1, 10.0])
    a = ShaReD(**kw).fit(data.neural, data.behavior, groups=data.groups)
    be = get_backend("torch", factorization="blocked")
    assert be._blocked(9) and not get_backend("torch")._blocked(10_000)  # auto: CUDA only
    with monkeypatch.context() as m:  # the estimator's backend: blocked on the CPU too
        m.setattr(torch_backend.TorchBackend, "_blocked", lambda self, q: True)
        b = ShaReD(backend="torch", **kw).fit(data.neural, data.behavior, groups=data.groups)
    prep = be.statistics(data.neural, data.behavior, data.groups, np.array([0, 1, 2]), 4, gap=2)
    args = ([p.stats for p in prep], [p.chunks for p in prep], np.full(4, 0.25), kw["alphas"])
    ref = solver.cv_errors(*args, 3, "correlation", 0.01)
    got = be.cv_errors(*args, 3, "correlation", 0.01)
    for key in ref:
        np.testing.assert_allclose(got[key], ref[key], rtol=RTOL, atol=RTOL * 1e-3)
    assert_close_models(a, b)
    with pytest.raises(ValueError, match="factorization"):
        get_backend("torch", factorization="qr")


# ---------------------------------------------------------------- data left on the device
def test_statistics_stay_on_device_until_asked(data):
    be = get_backend("torch")
    prep = be.statistics(data.neural, data.behavior, data.groups, np.array([0]), 3, gap=0)
    st = prep[0].stats
    assert isinstance(st, DeviceStats) and st._host is None and len(st) == 3
    assert "3 chunks" in repr(st)
    fit = be.final_fit([p.stats for p in prep], np.full(4, 0.25), 0.1, 2, "correlation", 0.01)
    assert st._host is None and fit.standardized[0].gram is None  # nothing came back
    ref_stats = [
        data_pass.subject_statistics(x, y, g, np.array([0]), 3)
        for x, y, g in zip(data.neural, data.behavior, data.groups, strict=True)
    ]
    for a, b in zip(ref_stats[0].stats, st, strict=True):  # host copies on access
        np.testing.assert_allclose(b.xx, a.xx, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(b.xy, a.xy, rtol=1e-12, atol=1e-9)
    ref = solver.fit_from_stats(
        [solver.total(r.stats) for r in ref_stats], np.full(4, 0.25), 0.1, 2, "correlation", 0.01
    )
    np.testing.assert_allclose(fit.axes, ref.axes, rtol=RTOL)
    for ea, eb in zip(fit.encoders, ref.encoders, strict=True):
        np.testing.assert_allclose(ea, eb, rtol=RTOL, atol=RTOL * np.abs(eb).max())


def test_private_components_equal_numpy(data):
    kw = dict(n_shared=2, lags=1, cv=3, random_state=0, alphas=[0.01, 1.0], private=True)
    a = ShaReD(**kw).fit(data.neural, data.behavior, groups=data.groups)
    b = ShaReD(backend="torch", **kw).fit(data.neural, data.behavior, groups=data.groups)
    assert b.private_ is not None
    assert_close_models(a, b)  # private components included


def test_tensor_inputs(data):
    kw = dict(n_shared=2, lags=1, cv=3, random_state=0, alphas=[0.01, 1.0], private=False)
    a = ShaReD(**kw).fit(data.neural, data.behavior, groups=data.groups)
    tensors = [torch.as_tensor(x) for x in data.neural]
    b = ShaReD(backend="torch", **kw).fit(tensors, data.behavior, groups=data.groups)
    assert_close_models(a, b)
    # behaviour as tensors too, float32 activity converted on the device
    c = ShaReD(backend="torch", **kw).fit(
        [t.float() for t in tensors], [torch.as_tensor(y) for y in data.behavior], data.groups
    )
    d = ShaReD(**kw).fit([x.astype(np.float32) for x in data.neural], data.behavior, data.groups)
    assert_close_models(c, d)
    e = ShaReD(**kw).fit(tensors, data.behavior, groups=data.groups)  # numpy backend reads them
    assert_close_models(a, e, rtol=1e-12)
    np.testing.assert_array_equal(  # and so do transform / predict / score
        a.transform(tensors[1], 1, groups=data.groups[1]),
        a.transform(data.neural[1], 1, groups=data.groups[1]),
    )
    assert a.score(tensors, data.behavior, groups=data.groups) == a.score(
        data.neural, data.behavior, groups=data.groups
    )


def test_tensor_inputs_nan_policy(data):
    X = [x.copy() for x in data.neural]
    X[2][40, 3] = np.nan
    tensors = [torch.as_tensor(x) for x in X]
    kw = dict(n_shared=2, lags=1, cv=3, random_state=0, alphas=[0.1], private=False)
    with pytest.raises(ValueError, match=r"subject 2: neural contains NaN or inf .*\(40, 3\)"):
        ShaReD(backend="torch", **kw).fit(tensors, data.behavior, groups=data.groups)
    kw["nan_policy"] = "omit"
    a = ShaReD(**kw).fit(X, data.behavior, groups=data.groups)
    b = ShaReD(backend="torch", **kw).fit(tensors, data.behavior, groups=data.groups)
    assert_close_models(a, b)
    with pytest.raises(TypeError, match="subject 0: neural must be real and numeric"):
        ShaReD(backend="torch", **kw).fit([tensors[0].bfloat16()], [data.behavior[0]])
