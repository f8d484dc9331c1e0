"""Kernel (dual) form of the ridge solves, for subjects with more columns than samples.

The primal solves of :mod:`sharedrep.core.solver` work on ``q x q`` sufficient statistics
(``q`` = units x lags): forming them costs ``n q^2`` flops and every fold and alpha a
``q^3 / 3`` factorisation. When ``q`` exceeds the number of samples ``n`` of a subject
(many units, many lags, short sessions) the kernel form is cheaper and gives the same
model. With the training rows standardised as in the primal form, ``X_s`` (``n_R x q``,
training means and scales), ``Y_z`` the scaled, centred behaviour and
``K = X_s X_s'`` (``n_R x n_R``)::

    P = (X_s' X_s + a n I)^{-1} X_s' Y_z = X_s' (K + a n I)^{-1} Y_z = X_s' W
    B' P = Y_z' K W                       (the subject's share of M)
    z^(held-out) = X_h A = K_h W V       (K_h = X_h X_s', X_h standardised alike)

so every fold and alpha costs one ``n_R^3 / 3`` factorisation and nothing of size
``q x q`` is ever formed. The results equal the primal ones up to rounding (tested).

A subject in this form is held as :class:`KernelData`: its lag-embedded, preconditioned
rows in chunk order (``n x q``, smaller than the ``q x q`` statistics when ``q > n``). It
stands in for the list of chunk statistics wherever those are used
(:func:`sharedrep.core.solver.cv_errors`, :func:`sharedrep.core.solver.fit_from_stats`,
the private components), told apart by its ``form`` attribute.

It builds on :mod:`sharedrep.core.solver` (one way: the solver never imports this module;
:mod:`sharedrep.core.data_pass` chooses the form) and imports nothing else of the package.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from sharedrep.core import solver

__all__ = ["KernelData", "KernelFold", "KernelFoldSolution", "FORMS", "use_kernel"]

FORMS = ("auto", "primal", "dual")


def use_kernel(form: str, n_columns: int, n_rows: int) -> bool:
    """Whether a subject is solved in the kernel form (``"auto"``: more columns than rows)."""
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}; got {form!r}")
    return form == "dual" or (form == "auto" and n_columns > n_rows)


@dataclass
class KernelData:
    """One subject's kept rows for the kernel form.

    Attributes
    ----------
    Z : ndarray (n, q)
        Lag-embedded neural design minus the preconditioning centre, rows in chunk order.
    Y : ndarray (n, p)
        Behaviour minus its preconditioning centre, same rows.
    bounds : ndarray of int (C + 1,)
        Chunk ``c`` is rows ``bounds[c]:bounds[c + 1]``.
    """

    Z: np.ndarray
    Y: np.ndarray
    bounds: np.ndarray
    # tells kernel from primal data (:func:`sharedrep.core.solver.is_kernel`)
    form: ClassVar[str] = "dual"

    def __len__(self) -> int:
        return self.bounds.size - 1

    def rows(self, chunk_mask: np.ndarray) -> np.ndarray:
        """Row indices of the chunks selected by ``chunk_mask`` (C,)."""
        b = self.bounds
        parts = [np.arange(b[c], b[c + 1]) for c in np.flatnonzero(chunk_mask)]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def y_stats(self, rows=None) -> solver.SufficientStats:
        """Behaviour-only statistics (``n``, ``sy``, ``yy``) of some rows (all by default)."""
        Y = self.Y if rows is None else self.Y[rows]
        return solver.SufficientStats(float(Y.shape[0]), None, Y.sum(0), None, None, Y.T @ Y)

    # the total statistics' behaviour part, as :func:`solver.pooled_y_scale` reads it
    @property
    def n(self) -> float:
        return float(self.Z.shape[0])

    @property
    def sy(self) -> np.ndarray:
        return self.Y.sum(0)

    @property
    def yy(self) -> np.ndarray:
        return self.Y.T @ self.Y

    def chunk_y_stats(self) -> list:
        """Behaviour-only statistics of every chunk."""
        b = self.bounds
        return [self.y_stats(np.arange(b[c], b[c + 1])) for c in range(len(self))]

    def transform_behavior(self, T: np.ndarray) -> KernelData:
        """The same rows with behaviour ``Y @ T`` (``T`` is p x p')."""
        return KernelData(self.Z, self.Y @ T, self.bounds)

    def fold(self, train_mask: np.ndarray, test_mask: np.ndarray | None = None) -> KernelFold:
        """The training (and held-out) rows of one fold; see :class:`KernelFold`."""
        return KernelFold(self, train_mask, test_mask)

    def whole(self) -> KernelFold:
        """Every row as training rows (the final fit)."""
        return KernelFold(self, np.ones(len(self), dtype=bool), None)


def _standardize_rows(Z: np.ndarray):
    """Training mean, scale, constant columns and standardised rows of ``Z`` (primal rules)."""
    n = Z.shape[0]
    mx = Z.mean(axis=0)
    D = Z - mx
    constant, scale = solver.column_scales(
        np.einsum("ij,ij->j", D, D) / n, np.einsum("ij,ij->j", Z, Z) / n
    )
    D *= np.where(constant, 0.0, 1.0 / scale)
    return mx, scale, constant, D


class KernelFold:
    """One subject's fold in the kernel form: the same interface as the primal fold.

    ``solve`` standardises the training rows and solves every alpha; ``errors`` scores
    the held-out rows; ``coefficients`` gives the primal coefficients ``P`` of one alpha.
    """

    def __init__(self, data: KernelData, train_mask, test_mask=None):
        R = data.rows(train_mask)
        H = data.rows(test_mask) if test_mask is not None else np.zeros(0, dtype=np.int64)
        self.data = data
        self.y_train = data.y_stats(R)
        self.y_test = data.y_stats(H) if H.size else None
        mx, scale, constant, self.Xs = _standardize_rows(data.Z[R])
        keep = np.where(constant, 0.0, 1.0 / scale)
        K = self.Xs @ self.Xs.T
        self.K = 0.5 * (K + K.T)
        self.KH = ((data.Z[H] - mx) * keep) @ self.Xs.T if H.size else None
        self._std = (mx, scale, constant)
        self._R, self._H = R, H

    @property
    def n_test(self) -> float:
        return 0.0 if self.y_test is None else self.y_test.n

    def solve(self, y_scale: np.ndarray, alphas: np.ndarray):
        """Standardisation and ``(K + a n I)^{-1} Y_z`` for every alpha.

        Returns ``(std, Ms)``: a :class:`solver.Standardized` without ``gram`` and the
        subject's ``B' P`` for every alpha, shape (n_alphas, p, p).
        """
        mx, scale, constant = self._std
        Y = self.data.Y[self._R]
        n = float(Y.shape[0])
        my = Y.mean(axis=0)
        Yz = (Y - my) / y_scale
        self.W = solver.ridge_path(self.K, n, np.atleast_1d(alphas), Yz)  # (n_a, n, p)
        Ms = Yz.T[None] @ (self.K[None] @ self.W)
        Ms = 0.5 * (Ms + Ms.transpose(0, 2, 1))
        yy = Yz.T @ Yz
        std = solver.Standardized(
            n, mx, scale, constant, my, None, self.Xs.T @ Yz, 0.5 * (yy + yy.T)
        )
        self.std, self.y_scale, self.Ms = std, y_scale, Ms
        return std, Ms

    def coefficients(self, i_alpha: int = 0) -> np.ndarray:
        """Primal coefficients ``P = X_s' W`` (q, p) of the ``i_alpha``-th alpha solved."""
        return self.Xs.T @ self.W[i_alpha]

    def errors(self, Vs: np.ndarray, V_all: np.ndarray, y_scale: np.ndarray):
        """Held-out ``(sse, sst, sst_behavior)`` as :func:`solver.heldout_errors`.

        ``Vs`` (n_alphas, p, k) holds the axes of every alpha, ``V_all`` (p, n_alphas * k)
        the same side by side.
        """
        return _kernel_errors(self.data.Y[self._H], self.KH, self.W, self.std, Vs, V_all, y_scale)

    def solution(self, alphas: np.ndarray) -> KernelFoldSolution:
        """What scoring needs of the solved fold (call after :meth:`solve`): no ``n x q``
        rows, no training kernel; the held-out kernel ``K_h`` (n_test x n_train) stays."""
        YH = self.data.Y[self._H] if self.KH is not None else None
        return KernelFoldSolution(
            self.std, self.W, self.Ms, np.atleast_1d(alphas), self.y_scale, self.KH, YH
        )

    def residual_components(self, V: np.ndarray, m: int):
        """Leading ``m`` principal axes of the standardised activity minus what ``Y V`` explains.

        The kernel-form counterpart of the neural-private PCA: the eigenvectors of
        ``R' R`` with ``R = (I - P_z) X_s`` come from the ``n x n`` matrix
        ``R R' = (I - P_z) K (I - P_z)``, formed from the kernel ``K`` in ``O(n^2 k)``
        (``P_z = Q Q'``, ``Q`` an orthonormal basis of the latents); the components are
        ``X_s' (I - P_z) u / sqrt(lam)``. Returns ``(lam (m,), U (q, m), trace of
        X_s' X_s)``; call after :meth:`solve`.
        """
        Zl = ((self.data.Y[self._R] - self.std.y_mean) / self.y_scale) @ V
        Q, s, _ = np.linalg.svd(Zl, full_matrices=False)
        Q = Q[:, s > s.max(initial=0.0) * 1e-12] if s.size else Q
        KQ = self.K @ Q
        RR = self.K - Q @ KQ.T - KQ @ Q.T + Q @ (Q.T @ KQ) @ Q.T
        lam, U = solver.top_eigh(0.5 * (RR + RR.T), min(m, RR.shape[0]))
        ok = lam > lam.max(initial=0.0) * 1e-12
        comps = np.zeros((self.Xs.shape[1], lam.size))
        Uo = U[:, ok] - Q @ (Q.T @ U[:, ok])
        comps[:, ok] = (self.Xs.T @ Uo) / np.sqrt(lam[ok])
        return lam, comps, float(np.trace(self.K))


def _kernel_errors(YH, KH, W_all, std, Vs, V_all, y_scale):
    """Held-out ``(sse, sst, sst_behavior)`` of the kernel form (see KernelFold.errors)."""
    target = ((YH - std.y_mean) / y_scale) @ V_all
    pred = np.concatenate([KH @ (W @ V) for W, V in zip(W_all, Vs, strict=True)], 1)
    sse = np.sum((target - pred) ** 2, axis=0)
    Yc = (YH - YH.mean(axis=0)) / y_scale
    sst = np.sum((Yc @ V_all) ** 2, axis=0)
    return sse, sst, float(np.sum(Yc**2))


@dataclass
class KernelFoldSolution:
    """The kernel-form counterpart of :class:`sharedrep.core.solver.FoldSolution`.

    Attributes
    ----------
    std : Standardized
        Training standardisation (no ``gram``).
    W : ndarray (n_alphas, n_train, p)
        Dual coefficients ``(K + a n I)^{-1} Y_z`` of each alpha.
    Ms : ndarray (n_alphas, p, p)
        ``Y_z' K W`` of each alpha.
    alphas : ndarray (n_alphas,)
    y_scale : ndarray (p,)
    KH : ndarray (n_test, n_train) or None
        Held-out rows against the training rows, standardised alike.
    YH : ndarray (n_test, p) or None
        Held-out behaviour (preconditioned).
    """

    std: solver.Standardized
    W: np.ndarray
    Ms: np.ndarray
    alphas: np.ndarray
    y_scale: np.ndarray
    KH: np.ndarray | None
    YH: np.ndarray | None

    def fold(self, alpha: float, T: np.ndarray, test=None) -> SolvedKernelFold:
        """The fold of the behaviour ``Y @ T``, unscaled, at ``alpha`` (``test`` unused:
        the held-out rows are kept). ``W_T = W diag(y_scale) T`` and
        ``M_T = T' diag(y_scale) M diag(y_scale) T``, exactly."""
        i = solver.alpha_index(self.alphas, alpha)
        ST = self.y_scale[:, None] * T
        std = solver.transformed_std(self.std, self.y_scale, T)
        M = ST.T @ self.Ms[i] @ ST
        YH = None if self.YH is None else self.YH @ T
        return SolvedKernelFold(
            std, (self.W[i] @ ST)[None], 0.5 * (M + M.T)[None], alpha, self.KH, YH
        )


class SolvedKernelFold:
    """A kernel-form fold whose dual solution is given (one alpha); see
    :class:`sharedrep.core.solver.SolvedFold`."""

    def __init__(self, std, W, Ms, alpha, KH, YH):
        self.std, self.W, self.Ms, self.alpha, self.KH, self.YH = std, W, Ms, alpha, KH, YH
        self.y_train = None

    @property
    def n_test(self) -> float:
        return 0.0 if self.YH is None else float(self.YH.shape[0])

    def solve(self, y_scale: np.ndarray, alphas: np.ndarray):
        solver.check_presolved(self.alpha, y_scale, alphas)
        return self.std, self.Ms

    def errors(self, Vs: np.ndarray, V_all: np.ndarray, y_scale: np.ndarray):
        return _kernel_errors(self.YH, self.KH, self.W, self.std, Vs, V_all, y_scale)
