"""backend="torch": equal to the numpy backend to 1e-8 relative (float64).

Runs torch on the CPU; the CUDA test runs only where a GPU is visible. Skipped entirely
when torch is not installed (it is not part of the CI test extra).
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
# small CPU problems: one intra-op thread avoids OpenMP contention on busy CI machines
torch.set_num_threads(1)

from sharedrep import ShaReD, simulate, solver  # noqa: E402
from sharedrep.backends import get_backend  # noqa: E402
from sharedrep.backends.torch import _ridge_batch  # noqa: E402

RTOL = 1e-8


def assert_close_models(a, b, rtol=RTOL):
    assert (a.alpha_, a.n_shared_) == (b.alpha_, b.n_shared_)
    np.testing.assert_allclose(a.shared_axes_, b.shared_axes_, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(a.eigenvalues_, b.eigenvalues_, rtol=rtol, atol=rtol)
    for ea, eb in zip(a.encoders_, b.encoders_, strict=True):
        np.testing.assert_allclose(ea, eb, rtol=rtol, atol=rtol * np.abs(ea).max())
    if a.cv_results_ is not None:
        for key in ("fold_scores", "r2_subject_dim"):
            np.testing.assert_allclose(
                a.cv_results_[key], b.cv_results_[key], rtol=rtol, atol=rtol, equal_nan=True
            )


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
    errors = be.cv_errors(
        [p.stats for p in prep],
        [p.chunks for p in prep],
        np.full(4, 0.25),
        kw["alphas"],
        2,
        "correlation",
        0.01,
    )
    ref = solver.cv_errors(
        [p.stats for p in prep],
        [p.chunks for p in prep],
        np.full(4, 0.25),
        kw["alphas"],
        2,
        "correlation",
        0.01,
    )
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
def test_cuda_equals_numpy(data):
    kw = dict(n_shared="auto", lags=2, cv=4, random_state=0)
    a = ShaReD(**kw).fit(data.neural, data.behavior, groups=data.groups)
    b = ShaReD(backend="torch", device="cuda", **kw).fit(
        data.neural, data.behavior, groups=data.groups
    )
    assert_close_models(a, b)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_unavailable_message():
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        get_backend("torch", device="cuda")
