"""Low-memory in-process fit: each subject's chunk statistics reduced as soon as they exist.

The numpy backend (``ShaReD(low_memory=True)``; ``"auto"``, the default, for large
problems) computes one subject's
cross-validation chunk statistics (``n_chunks`` matrices of size ``(q + p + 1)^2``), then
at once, on the same worker thread, solves the ridge path of every fold of that subject
and reduces each fold and alpha to ``p x p`` matrices; the chunk statistics are then
released and the next subject is read. What is kept per subject is

* the behaviour part of every chunk (``n``, ``(p,)``, ``(p, p)``);
* the total statistics (one ``(q + p + 1)``-square set: the final fit and the private
  components need them at the selected alpha, which is known only once every subject has
  been cross-validated);
* per fold, a :class:`ReducedFold`: ``O(n_alphas p^2)`` numbers.

Peak extra memory of a fit is therefore about ``n_threads`` subjects' chunk statistics and
fold workspace (about six more ``(q + p + 1)``-square matrices) plus ``S`` total
statistics plus ``O(S n_folds n_alphas p^2 + S q p)``, instead of every subject's chunk
statistics (and folds) at once (``docs/scaling.md``, ``benchmarks/bench_memory.py``).
The final fit (:meth:`sharedrep.core.backends.numpy.NumpyBackend.final_fit`) keeps no
subject's standardised Gram matrix; the private components form it again from the
total, one subject per thread.

``ShaReD(low_memory="strict")`` keeps not even the totals: each :class:`ReducedStats`
holds a way to read its subject again (``reread``), and the final fit and the private
components each make one more pass over that subject's data, on the worker thread that
needs the total, which is dropped as soon as that subject is solved. Peak extra memory
is then about ``n_threads`` subjects' chunk statistics and workspace plus
``O(S n_folds n_alphas p^2 + S q p)``: nothing of size ``q x q`` per subject. The second
pass forms the same chunks and sums them in the same order, so the model is that of
``low_memory=True`` bit for bit.

The reduction is exact algebra. A fold's ridge solution is linear in the behaviour, so it
is solved once with unit behaviour scale (``P1_a = (G + a n I)^{-1} B_1``, ``B_1`` the
centred cross-products of the standardised design and the *unscaled* behaviour) and the
pooled behaviour scale ``sigma`` of the fold, known only once every subject's training
behaviour has been seen, is applied afterwards: ``M_s = diag(1/sigma) B_1' P1_a
diag(1/sigma)``. With ``Q_a = D^{-1} P1_a`` (rows of constant columns zero) and the held-out
statistics ``G_t = X_t'X_t``, ``B_t = X_t'Y_t``, ``s_x, s_y`` (column sums), the held-out
error of latents ``z = Y V~`` (``V~ = diag(1/sigma) V``) predicted with encoder ``A = Q_a V~``
and the training intercept is

    sse = diag(V~' (S_t - 2 K_a + H_a) V~) - 2 c * lin + n_t c^2,

with ``H_a = Q_a' G_t Q_a``, ``K_a = Q_a' B_t`` (``p x p``), ``lin = (s_y - Q_a' s_x) V~``
and ``c = (m_y - Q_a' m_x) V~``: only ``p``-sized numbers per fold and alpha are needed,
for any axes ``V`` (pooled later) and any behaviour map ``T`` (private components:
``K -> T' K T`` and so on). The results equal those of the path that keeps every
subject's statistics (:func:`sharedrep.core.solver.cv_errors`) up to rounding (the
operations are reordered; relative differences ~1e-14 in tests), and the final fit is
the same computation on the same totals (equal bit for bit).

Subjects in the kernel form (:mod:`sharedrep.core.dual`) keep their rows as before (fewer
numbers than their ``q x q`` statistics); their folds are formed fold by fold.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from sharedrep.core import solver

__all__ = [
    "ReducedFold",
    "ReducedStats",
    "reduce_subject",
    "cv_errors",
    "full_total",
    "behavior_total",
    "behavior_sums",
]


def behavior_only(st: solver.SufficientStats) -> solver.SufficientStats:
    """``n``, ``sy``, ``yy`` of statistics (copied) with empty neural parts.

    The empty ``sx`` (0,), ``xx`` (0, 0) and ``xy`` (0, p) keep the statistics additive and
    transformable (:meth:`solver.SufficientStats.transform_behavior`).
    """
    p = st.sy.shape[0]
    return solver.SufficientStats(
        float(st.n), np.zeros(0), st.sy.copy(), np.zeros((0, 0)), np.zeros((0, p)), st.yy.copy()
    )


def _scaled_yy(y_train: solver.SufficientStats, y_scale: np.ndarray) -> np.ndarray:
    """``S_yy`` of :func:`solver.standardize` (the same operations, so the same numbers)."""
    _, cyy = solver._centered_y(y_train)
    yy = cyy / np.outer(y_scale, y_scale)
    return 0.5 * (yy + yy.T)


class ReducedFold:
    """One subject's CV fold reduced to ``p x p`` matrices per alpha (see module docstring).

    The interface of :class:`sharedrep.core.solver.PrimalFold` as
    :func:`sharedrep.core.solver.cv_errors` uses it (``y_train``, ``n_test``,
    ``solve``, ``errors``) and of :class:`sharedrep.core.solver.FoldSolution` (``fold``).

    Attributes
    ----------
    y_train : SufficientStats or None
        Behaviour part of the training statistics (None for a presolved fold).
    alphas : ndarray (n_alphas,)
    M1 : ndarray (n_alphas, p, p)
        ``B_1' P1_a`` (unit behaviour scale).
    r : ndarray (n_alphas, p)
        ``m_y - Q_a' m_x`` (training means).
    held : tuple (H, K, l) of (n_alphas, p, p), (n_alphas, p, p), (n_alphas, p), or None
    test : SufficientStats or None
        Behaviour part of the held-out statistics.
    """

    inline = True  # p x p work only: solved in the calling thread (solver._fold_map)

    def __init__(self, y_train, alphas, M1, r, held, test, presolved=None):
        self.y_train, self.alphas, self.M1, self.r = y_train, alphas, M1, r
        self.held, self.test = held, test
        self.presolved = presolved  # (n, S_yy) of a fold solved for one alpha, unscaled
        self.std, self.y_scale = None, None

    @property
    def n_test(self) -> float:
        return 0.0 if self.test is None else self.test.n

    def solve(self, y_scale: np.ndarray, alphas: np.ndarray):
        """``(std, Ms)`` as :meth:`solver.PrimalFold.solve` (``std`` has ``n`` and ``yy``)."""
        alphas = np.atleast_1d(np.asarray(alphas, dtype=float))
        if self.presolved is not None:
            solver.check_presolved(self.alphas[0], y_scale, alphas)
            (n, yy), Ms = self.presolved, self.M1
        else:
            if not np.array_equal(alphas, self.alphas):
                raise ValueError("this reduced fold was solved for another alpha grid")
            n, yy = self.y_train.n, _scaled_yy(self.y_train, y_scale)
            Ms = self.M1 / np.outer(y_scale, y_scale)[None]
        self.std = solver.Standardized(float(n), None, None, None, None, None, None, yy)
        self.y_scale = y_scale
        return self.std, Ms

    def errors(self, Vs: np.ndarray, V_all: np.ndarray, y_scale: np.ndarray):
        """Held-out ``(sse, sst, sst_behavior)`` as :func:`solver.heldout_errors`."""
        return solver.moment_errors(self.held, self.r, self.test, Vs, V_all, y_scale)

    @staticmethod
    def scorer_many(folds: list):
        """``score(Vss, V_alls, y_scale)`` (:func:`solver.stacked_scorer`): :meth:`errors`
        of several subjects' folds (with held-out rows) for every set of axes at once, their
        moments stacked once."""
        moments = solver.stack_moments(*zip(*((f.held, f.r, f.test) for f in folds), strict=True))
        return solver.stacked_scorer(lambda _: moments, len(folds))

    def solution(self, alphas: np.ndarray) -> ReducedFold:
        """Itself (already without ``q``-sized matrices)."""
        return self

    def fold(self, alpha: float, T: np.ndarray, test) -> ReducedFold:
        """The fold of the unscaled behaviour ``Y @ T`` at ``alpha`` (after :meth:`solve`).

        As :meth:`solver.FoldSolution.fold`: nothing is solved again. ``test`` is the
        held-out statistics of ``Y @ T`` (behaviour part suffices) or None.
        """
        i = solver.alpha_index(self.alphas, alpha)
        sc = self.y_scale
        yy = T.T @ (self.std.yy * np.outer(sc, sc)) @ T
        held = None
        if test is not None and self.held is not None:
            H, K, lin_x = self.held
            held = ((T.T @ H[i] @ T)[None], (T.T @ K[i] @ T)[None], (lin_x[i] @ T)[None])
        return ReducedFold(
            None,
            np.array([alpha]),
            (T.T @ self.M1[i] @ T)[None],
            (self.r[i] @ T)[None],
            held,
            test if held is not None else None,
            presolved=(self.std.n, 0.5 * (yy + yy.T)),
        )


def reduce_fold(fold: solver.PrimalFold, alphas: np.ndarray) -> ReducedFold:
    """Solve one subject's primal fold for every alpha and reduce it (unit behaviour scale)."""
    train, test = fold.train, fold.test
    p = train.sy.shape[0]
    std, P = solver.fold_path(train, np.ones(p), alphas)  # P (n_a, q, p)
    M1 = std.cross.T[None] @ P
    held, r = solver.held_moments(std, P, test)
    del P
    if test is not None:
        test = behavior_only(test)
    return ReducedFold(behavior_only(train), alphas, M1, r, held, test)


class ReducedStats(Sequence):
    """One subject's statistics after the reduction (primal form).

    A sequence of the behaviour parts of its chunks (what the estimator's diagnostics and
    the private components read chunk by chunk), plus

    Attributes
    ----------
    folds : list (n_folds) of ReducedFold
    alphas : ndarray (n_alphas,)
        The grid the folds were solved for.
    keeps_total : bool
        Whether the total statistics are held (False: read again when needed).
    """

    form = "primal"

    def __init__(self, chunk_behavior: list, total, folds: list, alphas: np.ndarray, reread=None):
        if (total is None) == (reread is None):
            raise ValueError("exactly one of total and reread is needed")
        self._behavior = chunk_behavior
        self._total, self._reread = total, reread
        self.folds, self.alphas = folds, alphas

    @property
    def keeps_total(self) -> bool:
        return self._total is not None

    def total(self) -> solver.SufficientStats:
        """The subject's total statistics (final fit, private components): the kept ones,
        or, for a subject reduced without keeping them (``reread``), its data read and
        passed over again at each call (a new ``(q + p + 1)``-square set, not stored)."""
        if self._total is not None:
            return self._total
        return solver.total(self._reread().stats)  # same chunks, same sums: same numbers

    def behavior_total(self) -> solver.SufficientStats:
        """Behaviour part of the total (``n``, ``sy``, ``yy``; no new data pass): the same
        sums, in the same order, as those of :attr:`total`."""
        return solver.total(self._behavior)

    def __len__(self) -> int:
        return len(self._behavior)

    def __getitem__(self, i):
        return self._behavior[i]

    def __repr__(self) -> str:
        kept = "" if self.keeps_total else ", total read again when needed"
        return f"ReducedStats({len(self)} chunks, {len(self.folds)} folds{kept})"


def reduce_subject(
    data: solver.SubjectData, alphas: np.ndarray, n_folds: int, reread=None
) -> solver.SubjectData:
    """The subject's data with its primal chunk statistics replaced by a :class:`ReducedStats`.

    Kernel-form data are returned as they are. Runs the ridge solves of every fold of the
    subject (on the calling thread); ``n_folds`` 0 (no cross-validation: one chunk) keeps
    only the total. The subject's kept rows and the chunk order (``O(T)`` integers each,
    not read after the pass) are dropped: what stays is ``O(n_chunks)``. ``reread`` (a
    function of no arguments returning the subject's :class:`solver.SubjectData` again,
    as the data pass made it) keeps not even the total: it is read again whenever it is
    needed (:meth:`ReducedStats.total`).
    """
    stats = data.stats
    if solver.is_kernel(stats):
        return data
    alphas = np.atleast_1d(np.asarray(alphas, dtype=float))
    chunks = data.chunks
    tot = solver.total(stats)
    folds = []
    for f in range(chunks.n_folds if n_folds else 0):  # one fold's q x q statistics at a time
        fold = solver.subject_fold(stats, chunks.train_mask(f), chunks.test_mask(f), tot)
        folds.append(reduce_fold(fold, alphas))
        del fold
    behavior = [behavior_only(st) for st in stats]
    if reread is not None:
        tot = None
    reduced = ReducedStats(behavior, tot, folds, alphas, reread=reread)
    # the kept rows and their chunk order (O(T) each) are not read after the pass
    none = np.zeros(0, dtype=np.int64)
    light = dataclasses.replace(chunks, order=none)
    return solver.SubjectData(none, light, reduced, data.x_center, data.y_center)


def full_total(stats):
    """Total statistics of a subject's data in any in-process form (kernel data as they are).

    For a :class:`ReducedStats` that does not keep its total, a new pass over the
    subject's data (:meth:`ReducedStats.total`).
    """
    if isinstance(stats, ReducedStats):
        return stats.total()
    return solver.subject_total(stats)


def behavior_total(stats, stats_r: list, T: np.ndarray, total=None):
    """Total statistics of a subject for the behaviour ``Y @ T``.

    ``stats_r`` are the subject's chunk statistics transformed by ``T``
    (:meth:`solver.SufficientStats.transform_behavior`): their total, or, for
    :class:`ReducedStats` (whose chunks hold only their behaviour part), the neural part
    of its total (``total`` when the caller has it already, so that it is not read
    again) with ``X'Y T``.
    """
    if not isinstance(stats, ReducedStats):
        return solver.subject_total(stats_r)
    tot = stats.total() if total is None else total
    yb = solver.total(list(stats_r))
    return solver.SufficientStats(yb.n, tot.sx, yb.sy, tot.xx, tot.xy @ T, yb.yy)


def behavior_sums(stats):
    """What :func:`solver.pooled_y_scale` reads of a subject's total (``n``, ``sy``,
    ``yy``; the same sums in the same order), without a data pass or a ``q x q`` sum;
    kernel data as they are."""
    if isinstance(stats, ReducedStats):
        return stats.behavior_total()
    if solver.is_kernel(stats):
        return stats
    return solver.total([behavior_only(st) for st in stats])


class _Folds:
    """``folds[f]``: every subject's problem of fold ``f`` (reduced, or formed on demand)."""

    def __init__(self, chunks_stats: list, chunks: list):
        self.stats, self.chunks = chunks_stats, chunks

    def __getitem__(self, f: int) -> list:
        out = []
        for st, ch in zip(self.stats, self.chunks, strict=True):
            if isinstance(st, ReducedStats):
                out.append(st.folds[f])
            else:
                out.append(solver.subject_fold(st, ch.train_mask(f), ch.test_mask(f)))
        return out


def cv_errors(chunks_stats, chunks, weights, alphas, k_max, metric, shrinkage, **kw) -> dict:
    """:func:`solver.cv_errors` on subjects some of which are :class:`ReducedStats`.

    ``alphas`` must be the grid the subjects were reduced for. With ``keep_solutions``
    a reduced subject's solutions are its :class:`ReducedFold` objects.
    """
    alphas = np.atleast_1d(np.asarray(alphas, dtype=float))
    for st in chunks_stats:
        if isinstance(st, ReducedStats) and not np.array_equal(st.alphas, alphas):
            raise ValueError("the subjects' statistics were reduced for another alpha grid")
    if kw.get("folds") is None:
        kw["folds"] = _Folds(list(chunks_stats), list(chunks))
    plain = [None if isinstance(st, ReducedStats) else st for st in chunks_stats]
    out = solver.cv_errors(plain, chunks, weights, alphas, k_max, metric, shrinkage, **kw)
    if kw.get("keep_solutions"):
        out["solutions"] = [
            st.folds if isinstance(st, ReducedStats) else sol
            for st, sol in zip(chunks_stats, out["solutions"], strict=True)
        ]
    return out
