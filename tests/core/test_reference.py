"""Independent multi-subject reference of the ShaReD solver (docs/method.md, section 1).

The documented formula is computed here directly with numpy/scipy, using nothing from
``sharedrep`` but the estimator under test: per-subject standardisation, the pooled
behaviour scale, lag embedding that respects trial boundaries, the ridge Gram
``G_s(a) = X~'X~ + a T_s I``, the pooled ``M(a)`` and ``C``, the shrunk metric ``Cm``, the
generalized eigenproblem ``M v = rho Cm v`` with ``V' Cm V = I`` and the encoders
``A_s = G_s(a)^-1 X~_s' Y_s V``.
"""

import numpy as np
import pytest
import scipy.linalg as sla

from sharedrep import ShaReD

N_UNITS = (5, 8, 11)
N_TRIALS = (10, 12, 14)
TRIAL_LEN = 30
P, K, LAGS, ALPHA, SHRINKAGE = 4, 2, 2, 0.3, 0.05


def _subjects(seed=7):
    """Three subjects with different unit and trial counts; behaviour driven by lagged units."""
    rng = np.random.default_rng(seed)
    neural, behavior, groups = [], [], []
    for n_units, n_trials in zip(N_UNITS, N_TRIALS, strict=True):
        T = n_trials * TRIAL_LEN
        X = rng.standard_normal((T, n_units)) * rng.uniform(0.5, 3.0, n_units) + 2.0
        drive = X[:, :3] @ rng.standard_normal((3, P))
        drive[1:] += 0.5 * X[:-1, :3] @ rng.standard_normal((3, P))
        Y = drive + rng.standard_normal((T, P)) * np.array([0.5, 1.0, 2.0, 4.0]) + 1.0
        neural.append(X)
        behavior.append(Y)
        groups.append(np.repeat(np.arange(n_trials) + 100 * len(groups), TRIAL_LEN))
    return neural, behavior, groups


def _kept_rows(T, groups, lags):
    """Rows t whose window t - lag (lag in lags) lies in the recording and in t's trial."""
    return np.array(
        [t for t in range(T) if all(0 <= t - lag and groups[t - lag] == groups[t] for lag in lags)]
    )


def _embed(X, rows, lags):
    """X~[i, j * N + u] = X[rows[i] - lags[j], u]."""
    return np.hstack([X[rows - lag] for lag in lags])


def _reference(neural, behavior, groups, metric):
    lags = np.arange(LAGS + 1)
    S = len(neural)
    w = np.full(S, 1.0 / S)  # equal subject weights w_s
    designs, behaviours = [], []
    for X, Y, g in zip(neural, behavior, groups, strict=True):
        rows = _kept_rows(X.shape[0], g, lags)
        Xe = _embed(X, rows, lags)
        Xe = (Xe - Xe.mean(0)) / Xe.std(0)  # every lagged unit: mean 0, variance 1
        designs.append(Xe)
        behaviours.append(Y[rows] - Y[rows].mean(0))  # per-subject intercept
    # pooled behaviour scale: sigma_j^2 = sum_s w_s var_s(y_j)
    sigma = np.sqrt(sum(ws * Yc.var(0) for ws, Yc in zip(w, behaviours, strict=True)))
    behaviours = [Yc / sigma for Yc in behaviours]
    M, C, solves = np.zeros((P, P)), np.zeros((P, P)), []
    for ws, Xe, Yz in zip(w, designs, behaviours, strict=True):
        T_s = Xe.shape[0]
        G = Xe.T @ Xe + ALPHA * T_s * np.eye(Xe.shape[1])  # G_s(a)
        GinvB = sla.solve(G, Xe.T @ Yz, assume_a="pos")  # G_s(a)^-1 X~' Y
        solves.append(GinvB)
        M += ws / T_s * (Yz.T @ Xe) @ GinvB
        C += ws / T_s * Yz.T @ Yz
    if metric == "correlation":
        Cm = (1 - SHRINKAGE) * C + SHRINKAGE * np.trace(C) / P * np.eye(P)
    else:
        Cm = np.eye(P)
    rho, V = sla.eigh(0.5 * (M + M.T), Cm)
    rho, V = rho[::-1][:K], V[:, ::-1][:, :K]
    return V, rho, Cm, solves


@pytest.mark.parametrize("form", ["primal", "dual"])
@pytest.mark.parametrize("metric", ["correlation", "variance"])
def test_matches_documented_formula(metric, form):
    neural, behavior, groups = _subjects()
    model = ShaReD(
        n_shared=K,
        alpha=ALPHA,
        lags=LAGS,
        behavior_metric=metric,
        cv=None,
        shrinkage=SHRINKAGE,
        private=False,
        form=form,
    ).fit(neural, behavior, groups=groups)
    V, rho, Cm, solves = _reference(neural, behavior, groups, metric)

    np.testing.assert_allclose(model.eigenvalues_, rho, rtol=1e-10, atol=1e-12)
    assert rho[0] > rho[1] > 0.05  # a well-separated, non-trivial problem
    signs = np.sign(np.sum(V * model.shared_axes_, axis=0))  # axes are defined up to sign
    V = V * signs
    np.testing.assert_allclose(model.shared_axes_, V, atol=1e-10)
    np.testing.assert_allclose(V.T @ Cm @ V, np.eye(K), atol=1e-10)
    np.testing.assert_allclose(model.metric_, Cm, atol=1e-12)
    for s, GinvB in enumerate(solves):
        A = GinvB @ V  # A_s = G_s(a)^-1 X~_s' Y_s V
        assert model.encoders_[s].shape == (N_UNITS[s] * (LAGS + 1), K)
        np.testing.assert_allclose(model.encoders_[s], A, atol=1e-10 * np.abs(A).max())
