"""Cross-validation splits and model-selection rules.

Folds are built per subject and every subject is split into the same number of folds;
fold ``f`` holds out part of *every* subject and everything is refit on the rest.

* With trial ids, whole trials are assigned to folds (the assignment of
  :class:`sklearn.model_selection.GroupKFold`, balanced by trial size), so no trial is
  split between training and testing.
* Without trial ids, each subject's usable rows are cut into ``n_folds`` contiguous
  blocks of (nearly) equal size, so that missing stretches (e.g. dropped frames at the
  start of a recording) leave no fold empty. Rows within ``gap`` samples of a held-out
  block are removed from the training part of that fold, so that neither lag windows
  nor short-range autocorrelation leak test data into training.

The splits are expressed as *chunks*: sets of rows that share a held-out fold and a set
of additional folds from whose training part they are excluded. Sufficient statistics are
computed once per chunk; a fold's training statistics are the total minus its held-out
and excluded chunks (see :mod:`sharedrep.core.solver`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["Chunks", "make_chunks", "select_grid"]


@dataclass(frozen=True)
class Chunks:
    """Rows of one subject grouped by their cross-validation role.

    Attributes
    ----------
    order : ndarray of int, shape (T',)
        Positions into the subject's kept rows, sorted so that every chunk is a
        contiguous slice of ``order``.
    bounds : ndarray of int, shape (n_chunks + 1,)
        Chunk ``c`` is ``order[bounds[c]:bounds[c + 1]]``.
    fold : ndarray of int, shape (n_chunks,)
        Fold in which the chunk is held out.
    exclude : ndarray of bool, shape (n_chunks, n_folds)
        ``exclude[c, f]`` is True when the chunk is in neither the training nor the test
        part of fold ``f`` (an edge gap), besides its own fold.
    """

    order: np.ndarray
    bounds: np.ndarray
    fold: np.ndarray
    exclude: np.ndarray

    @property
    def n_folds(self) -> int:
        return self.exclude.shape[1]

    def train_mask(self, f: int) -> np.ndarray:
        """Chunks in the training part of fold ``f``, shape (n_chunks,)."""
        return (self.fold != f) & ~self.exclude[:, f]

    def test_mask(self, f: int) -> np.ndarray:
        """Chunks in the test part of fold ``f``, shape (n_chunks,)."""
        return self.fold == f


def _row_folds_grouped(groups_rows: np.ndarray, n_folds: int, random_state=None) -> np.ndarray:
    """Fold of every row, whole groups (trials) per fold: the assignment of
    :class:`~sklearn.model_selection.GroupKFold` (scikit-learn >= 1.6), computed here.

    Without ``random_state`` the groups, largest first (of equal sizes, the larger id
    first), go one by one to the fold with the fewest rows so far (the first such fold on
    ties). With ``random_state`` (seeding :func:`sklearn.utils.check_random_state`) the
    sorted group ids are permuted and cut into ``n_folds`` consecutive parts of sizes
    differing by at most one (:func:`numpy.array_split`). Computed here, the folds do not
    change with the installed scikit-learn, and a refit (e.g. of a permutation test) does
    not pay for scikit-learn's input checks.
    """
    unique, group_idx = np.unique(groups_rows, return_inverse=True)
    group_idx = group_idx.reshape(-1)
    if random_state is not None:
        order = check_random_state(random_state).permutation(unique.size)
        group_fold = np.empty(unique.size, dtype=np.int64)
        for f, part in enumerate(np.array_split(order, n_folds)):
            group_fold[part] = f
        return group_fold[group_idx]
    sizes = np.bincount(group_idx, minlength=unique.size)
    largest_first = np.argsort(sizes, kind="stable")[::-1]
    load = np.zeros(n_folds, dtype=np.int64)
    group_fold = np.empty(unique.size, dtype=np.int64)
    for g in largest_first:
        lightest = int(np.argmin(load))
        load[lightest] += sizes[g]
        group_fold[g] = lightest
    return group_fold[group_idx]


def make_chunks(rows: np.ndarray, n_folds: int, groups=None, gap: int = 0, random_state=None):
    """Assign the kept rows of one subject to cross-validation chunks.

    Parameters
    ----------
    rows : ndarray of int, shape (T',)
        Kept rows (time indices), sorted; at least ``n_folds`` of them.
    n_folds : int
        Number of folds (>= 2).
    groups : array-like of shape (T,), optional
        Trial ids. When given, whole trials go to folds and ``gap`` is not used.
        Otherwise the kept rows are cut into ``n_folds`` contiguous blocks of (nearly)
        equal size.
    gap : int
        Rows within ``gap`` samples of a held-out block's nearest kept row are excluded
        from its training part (blocked folds only).
    random_state : int or None
        Seeds a random assignment of trials to folds; ``None`` keeps the deterministic
        size-balanced assignment of :class:`~sklearn.model_selection.GroupKFold`.

    Returns
    -------
    Chunks
    """
    trial_ids = None if groups is None else np.asarray(groups)[rows]
    fold = block_folds(
        rows.size, n_folds, trial_ids, trials="balanced", edges="floor", random_state=random_state
    )
    exclude_bits = np.zeros(rows.size, dtype=np.int64)
    if groups is None and gap > 0:
        blocks = np.arange(n_folds)
        first = rows[np.searchsorted(fold, blocks)]  # first and last kept row of a block
        last = rows[np.searchsorted(fold, blocks, side="right") - 1]
        prev, nxt = np.maximum(fold - 1, 0), np.minimum(fold + 1, n_folds - 1)
        near_prev = (fold > 0) & (rows - last[prev] <= gap)
        near_next = (fold < n_folds - 1) & (first[nxt] - rows <= gap)
        exclude_bits |= np.where(near_prev, 1 << prev, 0)
        exclude_bits |= np.where(near_next, 1 << nxt, 0)
    key = fold * (1 << n_folds) + exclude_bits
    order = np.argsort(key, kind="stable")
    uniq, start_idx = np.unique(key[order], return_index=True)
    bounds = np.append(start_idx, rows.size).astype(np.int64)
    chunk_fold = uniq // (1 << n_folds)
    chunk_bits = uniq % (1 << n_folds)
    exclude = ((chunk_bits[:, None] >> np.arange(n_folds)[None, :]) & 1).astype(bool)
    return Chunks(order=order, bounds=bounds, fold=chunk_fold, exclude=exclude)


def select_grid(mean: np.ndarray, se: np.ndarray, rule: str = "best"):
    """Choose ``(alpha index, n_shared)`` from a grid of cross-validated scores.

    Parameters
    ----------
    mean : ndarray of shape (n_alphas, n_k)
        Mean score over folds (higher is better); column ``j`` is ``n_shared = j + 1``.
    se : ndarray of shape (n_alphas, n_k)
        Standard error of the mean over folds.
    rule : {"best", "one_se"}
        ``"best"`` takes the maximum. ``"one_se"`` takes the simplest model whose mean is
        within one standard error of the best: the fewest dimensions, then the strongest
        regularisation (largest alpha; alphas are assumed increasing).

    Returns
    -------
    (i_alpha, n_shared) : tuple of int
    """
    if not np.any(np.isfinite(mean)):
        raise ValueError("no finite cross-validated score: cannot select a model")
    m = np.where(np.isfinite(mean), mean, -np.inf)
    i_best, j_best = np.unravel_index(np.argmax(m), m.shape)
    if rule == "best":
        return int(i_best), int(j_best) + 1
    if rule != "one_se":
        raise ValueError(f"selection must be 'best' or 'one_se'; got {rule!r}")
    threshold = m[i_best, j_best] - np.nan_to_num(se[i_best, j_best])
    ok = m >= threshold
    j = int(np.flatnonzero(ok.any(axis=0))[0])
    i = int(np.flatnonzero(ok[:, j])[-1])
    return i, j + 1


def _trial_rank(groups: np.ndarray) -> tuple[np.ndarray, int]:
    """Rank of each sample's trial in order of first appearance, and the number of trials."""
    _, first, inv = np.unique(groups, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    return rank[inv], int(first.size)


def _sample_blocks(n_samples: int, n_folds: int, edges: str) -> np.ndarray:
    if edges == "floor":
        return np.arange(n_samples) * n_folds // n_samples
    if edges == "round":
        cut = np.linspace(0, n_samples, n_folds + 1).round().astype(np.int64)
        fold = np.searchsorted(cut, np.arange(n_samples), side="right") - 1
        return np.clip(fold, 0, n_folds - 1)
    if edges == "kfold":
        sizes = np.full(n_folds, n_samples // n_folds, dtype=np.int64)
        sizes[: n_samples % n_folds] += 1
        return np.repeat(np.arange(n_folds, dtype=np.int64), sizes)
    raise ValueError(f"edges must be 'floor', 'round' or 'kfold'; got {edges!r}")


def block_folds(
    n_samples: int,
    n_folds: int,
    groups=None,
    *,
    trials: str = "contiguous",
    edges: str = "round",
    random_state=None,
) -> np.ndarray:
    """Fold label of every sample: blocks of whole trials, or contiguous sample blocks.

    Parameters
    ----------
    n_samples : int
        Number of samples ``T``.
    n_folds : int
        Number of folds ``K`` (>= 2).
    groups : array-like of shape (T,), optional
        Trial ids; whole trials go to one fold.
    trials : {"contiguous", "balanced"}
        With trial ids. ``"contiguous"``: the ``n`` trials, in order of first appearance,
        are cut into ``K`` consecutive runs (trial of rank ``r`` in fold ``floor(r K / n)``).
        ``"balanced"``: :class:`~sklearn.model_selection.GroupKFold`'s size-balanced
        assignment (as in :func:`make_chunks`).
    random_state : int or None
        With ``trials="balanced"``: seeds a random assignment of trials to folds
        (``GroupKFold(shuffle=True)``); ``None`` keeps the deterministic assignment.
    edges : {"round", "floor", "kfold"}
        Without trial ids, fold boundaries of the ``K`` contiguous blocks: ``"round"`` at
        ``round(f T / K)``; ``"floor"``: sample ``t`` in fold ``floor(t K / T)`` (the
        estimator's blocked folds, :func:`make_chunks`); ``"kfold"`` as
        :class:`~sklearn.model_selection.KFold` (the first ``T mod K`` blocks one sample
        longer).

    Returns
    -------
    ndarray of int, shape (T,)
        Fold ``0 .. K-1`` of each sample.

    Raises
    ------
    ValueError
        With trial ids, when there are fewer trials than folds, or when a trial id is
        missing (NaN): those samples would otherwise form one trial of their own.
    """
    if groups is None:
        return _sample_blocks(n_samples, n_folds, edges)
    g = np.asarray(groups)
    if g.dtype.kind == "f" and not np.all(np.isfinite(g)):
        bad = np.flatnonzero(~np.isfinite(g))
        raise ValueError(
            f"trial ids (groups) must be given for every sample; {bad.size} of {g.size} are "
            f"not finite (first at index {bad[0]})"
        )
    rank, n_trials = _trial_rank(g)
    if n_trials < n_folds:
        raise ValueError(
            f"{n_trials} trials but cv={n_folds} folds need at least {n_folds} trials"
        )
    if trials == "contiguous":
        return (rank * n_folds) // n_trials
    if trials == "balanced":
        return _row_folds_grouped(g, n_folds, random_state)
    raise ValueError(f"trials must be 'contiguous' or 'balanced'; got {trials!r}")


def fold_splits(fold: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(train, test)`` index arrays of every fold ``0 .. max(fold)`` of the labels ``fold``."""
    return [(np.flatnonzero(fold != f), np.flatnonzero(fold == f)) for f in range(fold.max() + 1)]
