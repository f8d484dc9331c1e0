"""Decoders of a new subject: shared read-out, shared + private, or its own ridge.

When a subject is added to a fitted model (:meth:`sharedrep.ShaReD.add_subject`) the shared
axes are frozen and only its encoder is fitted. Whether the shared read-out beats the
subject's own decoder depends on the data (few units and many behaviour features favour
the shared axes; ``n_shared`` equal to the number of features makes them constrain
nothing). So three decoders are fitted on the same calibration rows and scored by the
same inner cross-validation, and the best is kept.

Notation (scaled behaviour ``y~ = (y - mean) / behavior_scale`` and standardised lagged
neural columns ``x~``; ``P_a = (G + a n I)^{-1} B`` the full-rank ridge solution at the
scale-free penalty ``a``, ``q x p``): with the frozen axes ``V`` (``p x k``) and metric ``C_m``
the shared read-out maps ``x~`` to ``x~ P_a V V' C_m = x~ P_a Pi``; ``Pi`` is a projector
(``V' C_m V = I``), and ``Q = I - Pi`` keeps the behaviour outside the shared axes.

- ``"shared"``: ``W = P_a Pi`` -- the pure shared read-out;
- ``"shared+private"``: ``W = P_a Pi + P_b Q`` -- the shared read-out plus the subject's
  behaviour-private part (the residual outside the shared axes) with its own penalty ``b``;
- ``"own"``: ``W = P_a`` -- the subject's own full-rank ridge decoder.

Ridge is linear in its targets, so one ridge path per fold serves all three, and with
``a = b`` the second equals the third. Every penalty is chosen by the pooled held-out
squared error in scaled behaviour units (the errors of all folds and features added);
the score reported is the pooled held-out R^2 ``1 - sum SSE / sum SST`` with ``SST`` about
each fold's held-out mean.

May import: numpy, :mod:`sharedrep.core.solver`, :mod:`sharedrep.core.cv`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sharedrep.core import solver

CANDIDATES = ("shared", "shared+private", "own")
# on a tie the simpler decoder wins: the shared read-out, then the subject's own ridge
_PREFERENCE = {"shared": 0, "own": 1, "shared+private": 2}
_TIE_RTOL = 1e-9


@dataclass
class HeldOutMoments:
    """Held-out cross-products of one fold in the training standardisation.

    ``xx`` (q, q), ``xy`` (q, p), ``yy`` (p, p) are sums over the held-out rows of
    ``x~' x~``, ``x~' y~`` and ``y~' y~`` (training means and scales); ``sst`` is the
    held-out sum of squares of ``y~`` about its held-out mean.
    """

    xx: np.ndarray
    xy: np.ndarray
    yy: np.ndarray
    sst: float


def heldout_moments(std: solver.Standardized, y_scale: np.ndarray, held) -> HeldOutMoments:
    """Standardise the held-out statistics ``held`` with the training ``std``.

    Exact algebra on the uncentred sums: ``x~ = (x - m_x) d`` with ``d = 1 / scale`` (0 for
    the columns constant in training) and ``y~ = (y - m_y) / y_scale``.
    """
    d = np.where(std.constant, 0.0, 1.0 / std.x_scale)
    ysc = 1.0 / y_scale
    n, mx, my = held.n, std.x_mean, std.y_mean
    xx = held.xx - np.outer(held.sx, mx) - np.outer(mx, held.sx) + n * np.outer(mx, mx)
    xy = held.xy - np.outer(held.sx, my) - np.outer(mx, held.sy) + n * np.outer(mx, my)
    yy = held.yy - np.outer(held.sy, my) - np.outer(my, held.sy) + n * np.outer(my, my)
    xx = xx * np.outer(d, d)
    xy = xy * np.outer(d, ysc)
    yy = yy * np.outer(ysc, ysc)
    mean_y = held.sy / n
    centred = np.diag(held.yy) - n * mean_y**2
    return HeldOutMoments(0.5 * (xx + xx.T), xy, yy, float(np.sum(centred * ysc**2)))


@dataclass
class CandidateErrors:
    """Held-out squared errors of the candidate decoders, summed over folds and features.

    Attributes
    ----------
    alphas : ndarray (n_alphas,)
    shared : ndarray (n_alphas,)
        ``SSE`` of ``P_a Pi`` for each ``a``.
    own : ndarray (n_alphas,)
        ``SSE`` of ``P_a``.
    combined : ndarray (n_alphas, n_alphas)
        ``SSE`` of ``P_a Pi + P_b Q`` for each ``(a, b)``.
    sst : float
        Held-out sum of squares about each fold's held-out mean.
    n_folds : int
    """

    alphas: np.ndarray
    shared: np.ndarray
    own: np.ndarray
    combined: np.ndarray
    sst: float = 0.0
    n_folds: int = 0

    def add_fold(self, P: np.ndarray, Pi: np.ndarray, mom: HeldOutMoments) -> None:
        """Add one fold: ``P`` (n_alphas, q, p) ridge solutions, ``Pi`` (p, p) projector.

        ``SSE(W) = tr(y~'y~) - 2 tr(W' x~'y~) + tr(W' x~'x~ W)``, expanded for
        ``W = A_a + B_b`` with ``A_a = P_a Pi`` and ``B_b = P_a (I - Pi)``.
        """
        p = Pi.shape[0]
        A = P @ Pi  # (n_alphas, q, p)
        B = P @ (np.eye(p) - Pi)
        GA = np.einsum("ij,ajp->aip", mom.xx, A)
        GB = np.einsum("ij,ajp->aip", mom.xx, B)
        tyy = float(np.trace(mom.yy))
        lin_a = np.einsum("aqp,qp->a", A, mom.xy)
        lin_b = np.einsum("aqp,qp->a", B, mom.xy)
        quad_aa = np.einsum("aqp,aqp->a", A, GA)
        quad_bb = np.einsum("aqp,aqp->a", B, GB)
        cross_ab = np.einsum("aqp,bqp->ab", A, GB)
        self.shared += tyy - 2.0 * lin_a + quad_aa
        comb = tyy - 2.0 * (lin_a[:, None] + lin_b[None, :])
        comb += quad_aa[:, None] + quad_bb[None, :] + 2.0 * cross_ab
        self.combined += comb
        self.own += np.diagonal(comb)
        self.sst += mom.sst
        self.n_folds += 1


@dataclass
class SubjectChoice:
    """The decoder kept for a new subject and every candidate's inner-CV score.

    Attributes
    ----------
    choice : str
        One of :data:`CANDIDATES`.
    scores : dict
        Candidate -> pooled inner-CV R^2 at its best penalty.
    alphas : dict
        Candidate -> its penalty: ``a`` (float), or ``(a, b)`` for ``"shared+private"``.
    """

    choice: str
    scores: dict = field(default_factory=dict)
    alphas: dict = field(default_factory=dict)


def _clip(sse: np.ndarray) -> np.ndarray:
    return np.clip(sse, 0.0, None)


def choose(errors: CandidateErrors) -> SubjectChoice:
    """The best candidate by pooled held-out squared error (ties: the simpler one).

    NaN errors (never expected with finite data) are ignored; when every error of a
    candidate is NaN that candidate is not available.
    """
    a = errors.alphas
    sst = errors.sst
    scores, alphas, sse = {}, {}, {}
    for name, values in (("shared", errors.shared), ("own", errors.own)):
        values = _clip(values)
        if np.all(np.isnan(values)):
            continue
        i = int(np.nanargmin(values))
        sse[name], alphas[name] = float(values[i]), float(a[i])
    comb = _clip(errors.combined)
    if not np.all(np.isnan(comb)):
        i, j = np.unravel_index(int(np.nanargmin(comb)), comb.shape)
        sse["shared+private"] = float(comb[i, j])
        alphas["shared+private"] = (float(a[i]), float(a[j]))
    if not sse:
        raise ValueError("no candidate decoder could be scored (non-finite held-out errors)")
    for name, value in sse.items():
        scores[name] = 1.0 - value / sst if sst > 0 else float("nan")
    best = min(sse.values())
    tied = [n for n, v in sse.items() if v <= best + _TIE_RTOL * max(abs(best), 1e-300)]
    choice = min(tied, key=_PREFERENCE.__getitem__)
    return SubjectChoice(choice, scores, alphas)


def projector(V: np.ndarray, Cm: np.ndarray) -> np.ndarray:
    """``Pi = V V' C_m`` (p, p): the shared read-out of scaled behaviour."""
    return V @ V.T @ Cm


def decoder_weights(P: dict, Pi: np.ndarray, choice: SubjectChoice) -> tuple:
    """Weights ``W`` (q, p) of the chosen decoder and of the own ridge.

    ``P`` maps each needed penalty to its whole-data ridge solution (q, p) in scaled
    behaviour units. Returns ``(chosen, own)``.
    """
    p = Pi.shape[0]
    own = P[choice.alphas["own"]]
    if choice.choice == "shared":
        chosen = P[choice.alphas["shared"]] @ Pi
    elif choice.choice == "own":
        chosen = own
    else:
        a, b = choice.alphas["shared+private"]
        chosen = P[a] @ Pi + P[b] @ (np.eye(p) - Pi)
    return chosen, own
