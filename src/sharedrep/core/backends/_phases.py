"""Per-subject phases of the cross-validation and of the final fit.

The distributed backend (:mod:`sharedrep.core.backends.dask`) keeps every subject's chunk
statistics on the worker that computed them and runs the fit of
:func:`sharedrep.core.solver.cv_errors` / :func:`sharedrep.core.solver.fit_from_stats`
in phases. Each function here takes one subject's data (or an object an earlier phase
left on the worker) and returns either such an object (``q x q`` sized: it stays where
it was made) or a small result for the driver (``p``-vectors, ``p x p`` matrices, held-out
errors). Every step is the arithmetic of the solver in the same order, so the pooled
model is the one :func:`sharedrep.core.solver.cv_errors` gives, bit for bit on the same
machine.

One fold of the cross-validation, for every subject ``s`` (``q`` its lagged columns,
``p`` behaviour features, ``A`` alphas, ``k`` dimensions):

* :func:`make_fold` (kept on the worker): training and held-out statistics of the fold;
* :func:`train_behavior` (to the driver): behaviour part of the training statistics,
  ``n``, ``(p,)`` and ``(p, p)``;
* :func:`solve_fold` (kept): standardisation and ridge path of every alpha;
* :func:`fold_moments` (to the driver): ``M_s = B' P_a`` of every alpha ``(A, p, p)``,
  ``S_yy`` ``(p, p)`` and ``n``;
* :func:`fold_errors` (to the driver): held-out errors of the pooled axes, ``(A k,)``
  arrays per shrinkage;
* :func:`fold_solution` (kept): the fold without its ``q x q`` matrices (private
  components).

The driver pools the behaviour scale (:func:`sharedrep.core.solver.pooled_y_scale`) from
the training behaviour of every subject, and the moments ``M = sum_s w_s M_s / n_s``,
``C = sum_s w_s S_yy,s / n_s``, from which it solves the axes
(:func:`sharedrep.core.solver.solve_axes`). The final fit is the same with one problem per
subject (:func:`whole_problem`, :func:`whole_moments`, :func:`whole_encoder`).

This module imports no ``dask``: the functions are plain numpy and are tested without a
cluster.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import numpy as np

from sharedrep.core import solver
from sharedrep.core.cv import Chunks
from sharedrep.utils.parallel import small_blas

__all__ = [
    "SubjectSummary",
    "SolvedProblem",
    "summary",
    "chunk",
    "worth_keeping",
    "subject_total",
    "make_fold",
    "train_behavior",
    "solve_fold",
    "fold_moments",
    "fold_errors",
    "fold_solution",
    "solution_fold",
    "total_behavior",
    "whole_problem",
    "whole_moments",
    "whole_encoder",
]


def behavior_part(st) -> solver.SufficientStats:
    """``n``, ``sy`` and ``yy`` of statistics (the neural parts left out): ``p``-sized."""
    return solver.SufficientStats(float(st.n), None, st.sy, None, None, st.yy)


@dataclass
class SubjectSummary:
    """What the driver keeps of one subject whose statistics stay on a worker.

    Attributes
    ----------
    chunks : :class:`sharedrep.core.cv.Chunks`
        Cross-validation roles of the chunks, without ``order`` (the row positions stay
        on the worker): ``fold`` and ``exclude`` (n_chunks,) and (n_chunks, n_folds).
    x_center : ndarray (q,)
    y_center : ndarray (p,)
        Preconditioning centres (as :class:`sharedrep.core.solver.SubjectData`).
    form : {"primal", "dual"}
        ``"dual"``: kernel-form data (:class:`sharedrep.core.dual.KernelData`).
    chunk_behavior : list (n_chunks) of SufficientStats
        Behaviour part (``n``, ``sy`` (p,), ``yy`` (p, p)) of every chunk's statistics.
    """

    chunks: Chunks
    x_center: np.ndarray
    y_center: np.ndarray
    form: str
    chunk_behavior: list


def summary(data: solver.SubjectData) -> SubjectSummary:
    """The driver's part of one subject's statistics (``O(q + n_chunks p^2)`` numbers)."""
    ch = data.chunks
    light = Chunks(
        order=np.zeros(0, dtype=np.int64), bounds=ch.bounds, fold=ch.fold, exclude=ch.exclude
    )
    stats = data.stats
    if solver.is_kernel(stats):
        form, parts = "dual", stats.chunk_y_stats()
    else:
        form, parts = "primal", [behavior_part(st) for st in stats]
    return SubjectSummary(light, data.x_center, data.y_center, form, parts)


def chunk(data: solver.SubjectData, index=None):
    """The statistics of chunk ``index`` (all of them, as held, when None)."""
    return data.stats if index is None else data.stats[index]


def worth_keeping(data: solver.SubjectData, n_folds: int, n_alpha: int) -> bool:
    """Whether :func:`sharedrep.core.solver.cv_errors` keeps this subject's fold solutions."""
    return bool(solver._worth_keeping(data.stats, n_folds, n_alpha))


def subject_total(data: solver.SubjectData):
    """Total statistics of the subject's chunks (kernel data returned as they are)."""
    return solver.subject_total(data.stats)


def make_fold(data: solver.SubjectData, train_mask, test_mask, total_s):
    """Fold problem of one subject (:func:`sharedrep.core.solver.subject_fold`); kept.

    ``total_s`` is the subject's :func:`subject_total` (ignored for kernel data, as by
    :func:`sharedrep.core.solver.cv_errors`).
    """
    stats = data.stats
    return solver.subject_fold(
        stats, train_mask, test_mask, None if solver.is_kernel(stats) else total_s
    )


def train_behavior(fold) -> solver.SufficientStats:
    """Behaviour part of a fold's training statistics (for the pooled behaviour scale)."""
    return behavior_part(fold.y_train)


@dataclass
class SolvedProblem:
    """A solved fold (or whole-data problem) of one subject, kept on its worker.

    Attributes
    ----------
    problem : PrimalFold or KernelFold
        Solved (a copy of the fold given: the input is never changed).
    std : Standardized
    Ms : ndarray (n_alphas, p, p)
        ``B' P_a`` of every alpha.
    """

    problem: object
    std: solver.Standardized
    Ms: np.ndarray


@small_blas
def solve_fold(fold, y_scale: np.ndarray, alphas: np.ndarray) -> SolvedProblem:
    """Standardise and solve one subject's fold for every alpha (kept on the worker)."""
    problem = copy.copy(fold)
    std, Ms = problem.solve(y_scale, alphas)
    return SolvedProblem(problem, std, Ms)


def fold_moments(solved: SolvedProblem) -> tuple[np.ndarray, np.ndarray, float]:
    """``(M_s (n_alphas, p, p), S_yy (p, p), n)``: what the driver pools."""
    return solved.Ms, solved.std.yy, float(solved.std.n)


@small_blas
def fold_errors(solved: SolvedProblem, axes: list, y_scale: np.ndarray):
    """Held-out errors of one subject's fold for the axes of every shrinkage.

    Parameters
    ----------
    solved : SolvedProblem
    axes : list (n_shrinkage) of (Vs (n_alphas, p, k), V_all (p, n_alphas * k))
    y_scale : ndarray (p,)

    Returns
    -------
    None when the fold holds out nothing of this subject, else ``(n_test, errors)``
    with ``errors`` a list (n_shrinkage) of ``(sse (n_alphas * k,), sst (n_alphas * k,),
    sst_behavior)``.
    """
    problem = solved.problem
    if not problem.n_test > 0:
        return None
    return float(problem.n_test), [problem.errors(Vs, V_all, y_scale) for Vs, V_all in axes]


def fold_solution(solved: SolvedProblem, alphas: np.ndarray):
    """The solved fold without its ``q x q`` matrices (for the private components)."""
    return solved.problem.solution(alphas)


@small_blas  # as in the estimator's private components (run on single-threaded BLAS)
def solution_fold(solution, alpha: float, T: np.ndarray):
    """``solution.fold(alpha, T, None)``: the fold of the behaviour ``Y @ T`` (q x p')."""
    return solution.fold(alpha, T, None)


def total_behavior(total_s) -> solver.SufficientStats:
    """Behaviour part of a subject's total statistics (or kernel data)."""
    return behavior_part(total_s)


@small_blas
def whole_problem(total_s, y_scale: np.ndarray, alpha: float) -> SolvedProblem:
    """The final-fit problem of one subject, solved at ``alpha`` (kept on the worker)."""
    problem = solver.subject_whole(total_s)
    std, Ms = problem.solve(y_scale, np.array([alpha]))
    return SolvedProblem(problem, std, Ms)


def whole_moments(solved: SolvedProblem) -> tuple[np.ndarray, np.ndarray, float]:
    """``(M_s (p, p), S_yy (p, p), n)`` of the final fit."""
    return solved.Ms[0], solved.std.yy, float(solved.std.n)


@small_blas
def whole_encoder(solved: SolvedProblem, V: np.ndarray):
    """``(encoder (q, k), standardisation without its q x q Gram matrix)``."""
    encoder = solved.problem.coefficients(0) @ V
    return encoder, dataclasses.replace(solved.std, gram=None)
