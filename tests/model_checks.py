"""Shared test helpers: model comparisons and sessions written to files.

Imported by the test modules of ``tests/core`` (``tests`` is on pytest's pythonpath), so
that no test module imports another.
"""

import contextlib
import warnings

import numpy as np
import pytest

from sharedrep.core.backends import FileArray

# parameters of the backend tests (numpy, files, dask): CV over alpha and k, lags
BACKEND_KW = dict(n_shared="auto", lags=2, cv=4, random_state=0, alphas=np.logspace(-3, 2, 6))


def assert_close_models(a, b, rtol=1e-8, private=True):
    """Same alpha and k; axes, eigenvalues, encoders, CV results (and private components)."""
    assert (a.alpha_, a.n_shared_) == (b.alpha_, b.n_shared_)
    np.testing.assert_allclose(b.shared_axes_, a.shared_axes_, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(b.eigenvalues_, a.eigenvalues_, rtol=rtol, atol=rtol)
    for ea, eb in zip(a.encoders_, b.encoders_, strict=True):
        np.testing.assert_allclose(eb, ea, rtol=rtol, atol=rtol * np.abs(ea).max())
    if a.cv_results_ is not None:
        for key in ("fold_scores", "r2_subject_dim"):
            np.testing.assert_allclose(
                b.cv_results_[key], a.cv_results_[key], rtol=rtol, atol=rtol, equal_nan=True
            )
    if private and a.private_ is not None:
        tol = max(rtol, 1e-8)  # the private components go through one more solve
        for pa, pb in zip(a.private_, b.private_, strict=True):
            assert pa.behavior_rank == pb.behavior_rank
            np.testing.assert_allclose(pb.behavior_cv_score, pa.behavior_cv_score, atol=tol)
            np.testing.assert_allclose(pb.behavior_axes, pa.behavior_axes, atol=10 * tol)
            m = min(pa.neural_explained.size, pb.neural_explained.size)
            np.testing.assert_allclose(
                pb.neural_explained[:m], pa.neural_explained[:m], rtol=10 * tol, atol=1e-12
            )
            overlap = np.abs(np.sum(pa.neural_components[:, :m] * pb.neural_components[:, :m], 0))
            np.testing.assert_allclose(overlap, 1.0, atol=100 * tol)


def assert_same_model(a, b, tol=1e-10):
    """Same alpha and k; axes, explained, encoders, CV results, unit means (to ``tol``)."""
    assert a.alpha_ == b.alpha_ and a.n_shared_ == b.n_shared_
    np.testing.assert_allclose(a.shared_axes_, b.shared_axes_, rtol=tol, atol=tol)
    np.testing.assert_allclose(a.explained_, b.explained_, rtol=tol, atol=tol)
    for ea, eb in zip(a.encoders_, b.encoders_, strict=True):
        np.testing.assert_allclose(ea, eb, rtol=tol, atol=tol * np.abs(ea).max())
    for key in ("fold_scores", "r2_subject_dim"):
        np.testing.assert_allclose(
            a.cv_results_[key], b.cv_results_[key], rtol=tol, atol=tol, equal_nan=True
        )
    for ua, ub in zip(a.unit_means_, b.unit_means_, strict=True):
        np.testing.assert_allclose(ua, ub, rtol=tol, atol=tol)
    if a.private_ is not None:
        for pa, pb in zip(a.private_, b.private_, strict=True):
            assert pa.behavior_rank == pb.behavior_rank
            np.testing.assert_allclose(pa.neural_explained, pb.neural_explained, atol=tol)


def write_sessions(data, tmp_path):
    """Every subject in a different storage format."""
    h5py = pytest.importorskip("h5py")
    zarr = pytest.importorskip("zarr")

    S = len(data.neural)
    neural, behavior, groups = [], [], []
    for s in range(S):
        np.save(tmp_path / f"x{s}.npy", data.neural[s])
        np.savez(tmp_path / f"s{s}.npz", behavior=data.behavior[s], trials=data.groups[s])
        behavior.append(str(tmp_path / f"s{s}.npz") + "::behavior")
        groups.append(FileArray(tmp_path / f"s{s}.npz", key="trials"))
    neural.append(tmp_path / "x0.npy")  # a Path
    z = zarr.open_array(
        str(tmp_path / "x1.zarr"), mode="w", shape=data.neural[1].shape, dtype="f8"
    )
    z[...] = data.neural[1]
    neural.append(str(tmp_path / "x1.zarr"))  # a zarr store path
    with h5py.File(tmp_path / "x2.nwb", "w") as fh:
        fh.create_dataset("processing/ophys/dff/data", data=data.neural[2])
    neural.append(FileArray(tmp_path / "x2.nwb", key="processing/ophys/dff/data"))
    return neural, behavior, groups


@contextlib.contextmanager
def no_warnings():
    """Any warning inside the block fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield
