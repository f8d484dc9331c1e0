"""Each subject's reduced statistics, computed once and reused by every refit of a resampling.

A subject bootstrap or a relabelling test refits the model on many sets of the same
subjects. Each subject's data pass and fold solves depend only on that subject (its
arrays, the lags, the folds, the alpha grid), never on which other subjects are fitted
with it: the pooling over subjects is the only part that changes. Within
:func:`reuse_statistics` the numpy backend keeps every subject it reduces
(:func:`sharedrep.core.backends._streaming.reduce_subject`: ``p x p`` matrices per fold
and alpha plus the subject's total statistics) and hands the same numbers to every later
fit of the same subject, so a refit costs only the pooling, the selection and the final
solves.

A subject is recognised by the identity of its neural and behaviour arrays (the same
objects, as a resampling passes them; a copy is a new subject and is computed again,
while an array changed in place inside the block is *not* noticed: do not edit the data
between the fits of one block), its trial ids (equal values) and every option of the
data pass and the alpha grid. The fits inside the block all take the reduced path
(``low_memory=True``), so that a refit on the original subjects gives the numbers of the
original fit bit for bit; the reduced path equals the default one to rounding
(``docs/scaling.md``). Subjects whose totals are not kept (``low_memory="strict"``) or
whose folds are drawn from a random generator object are computed each time.

This is what :func:`sharedrep.inference.bootstrap.bootstrap_subjects` and
:func:`sharedrep.inference.groups.compare_groups` use; the cache lives until the block
ends.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import threading

import numpy as np

from sharedrep.core import solver
from sharedrep.core.backends._streaming import ReducedStats

__all__ = ["reuse_statistics", "reusing", "reused"]

_LOCK = threading.Lock()
_CACHES: list[dict] = []  # the caches of the open blocks (the innermost is used)


@contextlib.contextmanager
def reuse_statistics():
    """Within the block, every subject reduced by the numpy backend is reduced once.

    Yields the cache (a dict; its length is the number of subjects reduced), for
    inspection. Nested blocks use the innermost cache; each is emptied when its block
    ends.
    """
    cache: dict = {}
    with _LOCK:
        _CACHES.append(cache)
    try:
        yield cache
    finally:
        with _LOCK:
            _CACHES.remove(cache)
        cache.clear()


def reusing() -> bool:
    """Whether a :func:`reuse_statistics` block is open (in any thread)."""
    return bool(_CACHES)


def _hashable(value):
    if isinstance(value, np.ndarray):
        return (value.dtype.str, value.shape, value.tobytes())
    if value is None or isinstance(value, (bool, int, float, str, np.dtype, np.integer)):
        return value
    raise TypeError  # e.g. a random generator: not a key


def _key(X, Y, opts: dict, alphas: np.ndarray):
    try:
        options = tuple(sorted((name, _hashable(v)) for name, v in opts.items()))
    except TypeError:
        return None
    return (id(X), id(Y), options, _hashable(alphas))


def _same_groups(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return a is b or (a.shape == b.shape and bool(np.array_equal(a, b)))


def _fresh(data: solver.SubjectData) -> solver.SubjectData:
    """A copy that shares every array but none of the per-fit state: each fold's
    ``solve`` records the fit's behaviour scale on the fold object."""
    st = data.stats
    if not isinstance(st, ReducedStats):
        return data
    folds = []
    for fold in st.folds:
        fold = copy.copy(fold)
        fold.std, fold.y_scale = None, None
        folds.append(fold)
    stats = copy.copy(st)
    stats.folds = folds
    return dataclasses.replace(data, stats=stats)


def reused(X, Y, g, opts: dict, alphas: np.ndarray, keep_totals: bool, compute):
    """``compute()`` (a subject's reduced :class:`solver.SubjectData`), or the result of
    an earlier call for the same subject and options within :func:`reuse_statistics`."""
    cache = _CACHES[-1] if _CACHES else None
    key = None if cache is None or not keep_totals else _key(X, Y, opts, alphas)
    if key is None:
        return compute()
    with _LOCK:
        entries = cache.setdefault(key, [])
        found = next(
            (e for e in entries if e[0] is X and e[1] is Y and _same_groups(e[2], g)), None
        )
    if found is not None:
        return _fresh(found[3])
    data = compute()
    with _LOCK:
        entries.append((X, Y, g, data))  # the arrays are held: their ids stay theirs
    return _fresh(data)
