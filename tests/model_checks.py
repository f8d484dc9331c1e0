"""Shared assertion: two fitted ShaReD models are the same model up to ``rtol``."""

import numpy as np


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
