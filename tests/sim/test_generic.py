"""Tests for the ground-truth simulator :mod:`sharedrep.sim.generic`."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.linalg import subspace_angles

from sharedrep.sim.generic import SimulatedData, simulate


def _r2(target: np.ndarray, design: np.ndarray) -> np.ndarray:
    """Per-column in-sample R^2 of ``target`` regressed (with intercept) on ``design``."""
    target = target - target.mean(0)
    design = design - design.mean(0)
    coef, *_ = np.linalg.lstsq(design, target, rcond=None)
    resid = target - design @ coef
    return 1.0 - (resid**2).sum(0) / (target**2).sum(0)


# ------------------------------------------------------------------ shapes and types


def test_shapes_and_dtypes_int_units():
    d = simulate(n_subjects=3, n_samples=250, n_units=7, n_behavior=5, n_shared=2, seed=1)
    assert isinstance(d, SimulatedData)
    assert d.n_subjects == 3
    assert d.n_units == [7, 7, 7]
    assert d.shared_axes.shape == (5, 2) and d.shared_axes.dtype == np.float64
    assert d.encoded_subspace.shape == (5, 2)
    np.testing.assert_allclose(d.shared_axes.T @ d.shared_axes, np.eye(2), atol=1e-12)
    np.testing.assert_allclose(d.encoded_subspace.T @ d.encoded_subspace, np.eye(2), atol=1e-12)
    assert d.behavior_names == [f"feature_{j}" for j in range(5)]
    assert d.lag == 0 and d.private_axes is None
    for s in range(3):
        assert d.neural[s].shape == (250, 7) and d.neural[s].dtype == np.float64
        assert d.behavior[s].shape == (250, 5) and d.behavior[s].dtype == np.float64
        assert d.latents[s].shape == (250, 2) and d.latents[s].dtype == np.float64
        assert d.encoders[s].shape == (7, 2) and d.encoders[s].dtype == np.float64
        assert d.encoding_units[s].shape == (7,) and d.encoding_units[s].dtype == bool
        assert d.groups[s].shape == (250,) and np.issubdtype(d.groups[s].dtype, np.integer)
        assert np.all(np.isfinite(d.neural[s])) and np.all(np.isfinite(d.behavior[s]))
        # half the units encode (round(0.5 * 7) = 4), encoders zero elsewhere
        assert d.encoding_units[s].sum() == 4
        assert np.all(d.encoders[s][~d.encoding_units[s]] == 0)
        assert np.all(np.abs(d.encoders[s][d.encoding_units[s]]).sum(1) > 0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.lag = 3  # type: ignore[misc]


def test_tuple_and_sequence_units_and_samples():
    d = simulate(n_subjects=6, n_samples=120, n_units=(5, 9), seed=2)
    assert all(5 <= n <= 9 for n in d.n_units)
    assert [x.shape[1] for x in d.neural] == d.n_units
    assert [m.shape[0] for m in d.encoding_units] == d.n_units

    d = simulate(n_subjects=3, n_samples=[100, 150, 201], n_units=[4, 10, 1], seed=3)
    assert d.n_units == [4, 10, 1]
    assert [x.shape[0] for x in d.neural] == [100, 150, 201]
    assert [y.shape[0] for y in d.behavior] == [100, 150, 201]
    # at least one unit encodes, even for a single-unit subject
    assert d.encoding_units[2].sum() == 1
    # with n_subjects == 2, a tuple is a range but a list is per subject
    d = simulate(n_subjects=2, n_samples=50, n_units=[3, 30], seed=0)
    assert d.n_units == [3, 30]
    d = simulate(n_subjects=2, n_samples=50, n_units=(3, 3), seed=0)
    assert d.n_units == [3, 3]


def test_groups_are_consecutive_trials():
    d = simulate(n_subjects=1, n_samples=250, trial_length=100, seed=0)
    g = d.groups[0]
    np.testing.assert_array_equal(np.bincount(g), [100, 100, 50])
    assert np.all(np.diff(g) >= 0)


def test_determinism_and_seed_dependence():
    kw = dict(n_subjects=2, n_samples=200, n_units=(5, 12), n_private=1, seed=11)
    a, b = simulate(**kw), simulate(**kw)
    for field in ("neural", "behavior", "latents", "encoders", "encoding_units", "groups"):
        for x, y in zip(getattr(a, field), getattr(b, field), strict=True):
            np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(a.shared_axes, b.shared_axes)
    np.testing.assert_array_equal(a.private_axes[0], b.private_axes[0])
    c = simulate(**{**kw, "seed": 12})
    assert not np.allclose(a.shared_axes, c.shared_axes)
    assert not np.allclose(a.behavior[0], c.behavior[0])


def test_params_and_subset():
    d = simulate(n_subjects=4, n_samples=100, n_units=[3, 4, 5, 6], n_private=1, seed=5)
    assert d.params["n_subjects"] == 4 and d.params["seed"] == 5
    assert d.params["n_units"] == [3, 4, 5, 6] and d.params["snr"] == 1.0
    sub = d.subset([3, 1])
    assert sub.n_subjects == 2 and sub.n_units == [6, 4]
    np.testing.assert_array_equal(sub.neural[0], d.neural[3])
    np.testing.assert_array_equal(sub.private_axes[1], d.private_axes[1])
    assert sub.shared_axes is d.shared_axes
    assert sub.params["subjects"] == [3, 1]
    assert sub.subset(0).params["subjects"] == [3]
    with pytest.raises(ValueError, match="out of range"):
        d.subset([4])


# ------------------------------------------------------------------ ground truth


def test_shared_axes_recover_latents_exactly():
    d = simulate(n_subjects=3, n_samples=400, seed=7, n_private=2)
    for y, z, pa, q in zip(d.behavior, d.latents, d.private_axes, d.private_latents, strict=True):
        assert np.all(_r2(z, y @ d.shared_axes) > 1 - 1e-10)
        assert np.all(_r2(y @ d.shared_axes, z) > 1 - 1e-10)
        assert np.all(_r2(q, y @ pa) > 1 - 1e-10)
        # the rest of behaviour does not determine z
        assert np.all(_r2(z, y @ d.private_axes[0][:, :1]) < 0.5)
    # private axes (scaled span(U0)) are orthogonal to the encoded subspace (span D^-1 V0)
    for pa in d.private_axes:
        assert np.abs(d.encoded_subspace.T @ pa).max() < 1e-10


def test_encoded_part_of_behavior_spans_encoded_subspace():
    d = simulate(n_subjects=4, n_samples=20000, n_units=2, smoothness=0.0, seed=12)
    y, z = np.vstack(d.behavior), np.vstack(d.latents)
    coef, *_ = np.linalg.lstsq(z, y, rcond=None)  # (k, p); encoded part of y is z @ coef
    assert np.degrees(subspace_angles(coef.T, d.encoded_subspace)).max() < 3.0
    # and it is a different subspace from the shared axes (unless D is isotropic)
    assert np.degrees(subspace_angles(coef.T, d.shared_axes)).max() > 5.0


def test_features_have_unit_variance():
    d = simulate(n_subjects=8, n_samples=20000, n_units=2, seed=3)
    var = np.vstack(d.behavior).var(0)
    np.testing.assert_allclose(var, 1.0, atol=0.1)
    zvar = np.vstack(d.latents).var(0)
    np.testing.assert_allclose(zvar, 0.2, rtol=0.15)


def test_encoding_vs_nonencoding_units_and_snr():
    d = simulate(n_subjects=2, n_samples=40000, n_units=12, snr=1.0, seed=4)
    for x, z, mask in zip(d.neural, d.latents, d.encoding_units, strict=True):
        r2 = _r2(x, z)
        assert np.all(r2[~mask] < 0.01)
        # population R^2 of an encoding unit on z is snr / (1 + snr) = 0.5
        np.testing.assert_allclose(r2[mask], 0.5, atol=0.08)
        corr = np.corrcoef(x.T, z.T)[: x.shape[1], x.shape[1] :]
        assert np.abs(corr[~mask]).max() < 0.1
        assert np.abs(corr[mask]).max(1).min() > 0.2


def test_zero_snr_gives_null_data():
    d = simulate(n_subjects=1, n_samples=20000, n_units=10, snr=0.0, seed=8)
    assert np.all(d.encoders[0] == 0)
    assert np.all(_r2(d.neural[0], d.latents[0]) < 0.01)


def test_unit_scales_and_offsets_differ():
    d = simulate(n_subjects=1, n_samples=2000, n_units=30, seed=9)
    x = d.neural[0]
    assert np.ptp(np.log(x.std(0))) > 1.0
    assert np.abs(x.mean(0)).max() > 3.0


@pytest.mark.parametrize("lag", [4, -4])
def test_lag_direction(lag):
    d = simulate(
        n_subjects=2, n_samples=20000, n_units=10, lag=lag, smoothness=0.5, snr=2.0, seed=6
    )
    T = d.behavior[0].shape[0]
    for x, y, z, mask in zip(d.neural, d.behavior, d.latents, d.encoding_units, strict=True):
        # behaviour is not shifted: the shared axes still give z exactly
        assert np.all(_r2(z, y @ d.shared_axes) > 1 - 1e-10)
        xe = x[:, mask]
        # X[t] vs z[t + lag]
        if lag > 0:
            x_lag, z_lag = xe[: T - lag], z[lag:]
        else:
            x_lag, z_lag = xe[-lag:], z[: T + lag]
        r2_lagged = _r2(x_lag, z_lag)
        r2_same = _r2(xe, z)
        assert np.all(r2_lagged > 0.55)
        assert np.all(r2_lagged > r2_same + 0.3)
    assert d.lag == lag


def test_encoded_axes_are_not_top_principal_components():
    d = simulate(n_subjects=8, n_samples=2000, seed=0)
    y = np.vstack(d.behavior)
    _, vecs = np.linalg.eigh(np.cov(y.T))
    top = vecs[:, ::-1][:, : d.shared_axes.shape[1]]
    angles = np.degrees(subspace_angles(d.shared_axes, top))
    assert angles.min() > 45.0
    # the encoded latents carry less variance than the top PCs
    var_shared = np.var(y @ d.shared_axes, axis=0).sum()
    var_top = np.var(y @ top, axis=0).sum()
    assert var_shared < 0.5 * var_top


def test_private_axes_encoded_only_by_their_subject():
    d = simulate(n_subjects=2, n_samples=20000, n_units=10, n_private=1, snr=3.0, seed=10)
    for s in range(2):
        x = d.neural[s][:, d.encoding_units[s]]
        y, z = d.behavior[s], d.latents[s]
        q_own = y @ d.private_axes[s]
        q_other = y @ d.private_axes[1 - s]
        r2_shared = _r2(x, z)
        r2_own = _r2(x, np.hstack([z, q_own]))
        r2_both = _r2(x, np.hstack([z, q_own, q_other]))
        # population R^2 on all encoded latents is snr / (1 + snr) = 0.75
        np.testing.assert_allclose(r2_own, 0.75, atol=0.08)
        assert np.all(r2_own > r2_shared + 0.1)
        # the other subject's private direction adds nothing
        assert np.all(r2_both - r2_own < 0.01)
    assert d.private_axes[0].shape == (12, 1)
    assert abs((d.private_axes[0].T @ d.private_axes[1]).item()) < 1.0 - 1e-6


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(n_shared=12), "n_shared"),
        (dict(n_shared=0), "n_shared"),
        (dict(n_behavior=1, n_shared=1), "n_behavior"),
        (dict(encoding_fraction=0.0), "encoding_fraction"),
        (dict(encoding_fraction=1.5), "encoding_fraction"),
        (dict(smoothness=1.0), "smoothness"),
        (dict(smoothness=-1.2), "smoothness"),
        (dict(n_samples=10, lag=10), "n_samples"),
        (dict(n_samples=[100, 5], n_subjects=2, lag=-5), "n_samples"),
        (dict(trial_length=0), "trial_length"),
        (dict(n_private=11), "n_private"),
        (dict(n_private=-1), "n_private"),
        (dict(n_neural_private=-1), "n_neural_private"),
        (dict(snr=-0.1), "snr"),
        (dict(snr=float("nan")), "snr"),
        (dict(behavior_anisotropy=0.5), "behavior_anisotropy"),
        (dict(shared_variance=0.0), "shared_variance"),
        (dict(n_subjects=0), "n_subjects"),
        (dict(n_subjects=2.5), "n_subjects"),
        (dict(n_units=0), "n_units"),
        (dict(n_units=(5, 2)), "n_units"),
        (dict(n_units=[5, 6], n_subjects=3), "n_units"),
        (dict(n_units=[5, 0, 6], n_subjects=3), "n_units"),
        (dict(lag=1.5), "lag"),
        (dict(n_shared=True), "n_shared"),
    ],
)
def test_argument_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        simulate(**{"n_samples": 50, **kwargs})


def test_error_message_names_value():
    with pytest.raises(ValueError, match=r"encoding_fraction.*1\.5"):
        simulate(encoding_fraction=1.5)
    with pytest.raises(ValueError, match=r"n_private.*\[0, 10\].*11"):
        simulate(n_private=11)
