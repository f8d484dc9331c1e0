"""The default backend: the statistics pass in this process.

Subjects are processed by a small pool of threads (one per core, each with single-threaded
BLAS): the gather/copy and the Gram product of one subject overlap with another's.

Sources (file paths, lazy arrays) are read one subject per thread and released when its
statistics are done, so at most one subject per core is in memory at once.

With ``reduce_alphas`` (``ShaReD(low_memory=True)``, or ``"auto"``, the default, for large
problems) each thread also solves its subject's CV folds right after its statistics pass
and keeps only ``p x p`` matrices per fold and alpha plus the subject's total statistics
(:mod:`sharedrep.core.backends._streaming`): peak extra memory is about one subject's
chunk statistics per thread plus one ``q x q`` total per subject, instead of every
subject's chunk statistics and folds at once. The final fit then keeps no subject's
standardised Gram matrix (the private components form it again, one subject per
thread). Subjects in the kernel form keep their rows as before.

Within :func:`sharedrep.core.backends.reuse_statistics` (the refits of a subject
bootstrap or a relabelling test) each subject is reduced once and its reduced statistics
serve every later fit of it (:mod:`sharedrep.core.backends._reuse`).

Without ``keep_totals`` (``ShaReD(low_memory="strict")``) not even the totals are kept:
the final fit and the private components read each subject again, one per thread
(one more data pass each), and peak extra memory no longer grows by a ``q x q`` total
per subject.
"""

from __future__ import annotations

import functools

from sharedrep.core import neural_cache, solver
from sharedrep.core.backends import Backend, _reuse, _streaming
from sharedrep.core.backends._sources import subject_task
from sharedrep.utils.parallel import thread_map

__all__ = ["NumpyBackend"]


class NumpyBackend(Backend):
    """In-process numpy backend (BLAS threads as configured)."""

    name = "numpy"

    def _statistics(self, neural, behavior, groups, opts):
        def task(args):
            s, (X, Y, g) = args
            return subject_task(X, Y, g, s, **opts)

        items = list(enumerate(zip(neural, behavior, groups, strict=True)))
        return thread_map(task, items)

    reduces = True

    def _reduced(self, neural, behavior, groups, opts, alphas, keep_totals=True):
        def reduce(X, Y, g, s):
            if not keep_totals:  # strict: nothing kept, the subject read again the same way
                with neural_cache.suspended():
                    data = subject_task(X, Y, g, s, **opts)
                    reread = functools.partial(_without_cache, X, Y, g, s, **opts)
                    return _streaming.reduce_subject(data, alphas, opts["n_folds"], reread)
            data = subject_task(X, Y, g, s, **opts)
            return _streaming.reduce_subject(data, alphas, opts["n_folds"])

        def task(args):  # within reuse_statistics, each subject is reduced once
            s, (X, Y, g) = args
            compute = functools.partial(reduce, X, Y, g, s)
            return _reuse.reused(X, Y, g, opts, alphas, keep_totals, compute)

        items = list(enumerate(zip(neural, behavior, groups, strict=True)))
        return thread_map(task, items)

    def cv_errors(self, chunks_stats, chunks, weights, alphas, k_max, metric, shrinkage, **kw):
        """As :meth:`Backend.cv_errors`; reduced subjects score their reduced folds."""
        if not _any_reduced(chunks_stats):
            return super().cv_errors(
                chunks_stats, chunks, weights, alphas, k_max, metric, shrinkage, **kw
            )
        return _streaming.cv_errors(
            chunks_stats, chunks, weights, alphas, k_max, metric, shrinkage, **kw
        )

    def final_fit(self, chunks_stats, weights, alpha, k, metric, shrinkage) -> solver.Fit:
        """As :meth:`Backend.final_fit`; with reduced subjects the fit keeps no ``q x q``
        Gram matrix (``Fit.standardized[s].gram`` is None for them)."""
        if not _any_reduced(chunks_stats):
            return super().final_fit(chunks_stats, weights, alpha, k, metric, shrinkage)
        # each total is formed (kept, or read again) on the worker thread that solves it:
        # one subject's q x q statistics per thread at a time
        y_scale = solver.pooled_y_scale(
            [_streaming.behavior_sums(st) for st in chunks_stats], weights
        )
        totals = [functools.partial(_streaming.full_total, st) for st in chunks_stats]
        return solver.fit_from_stats(
            totals, weights, alpha, k, metric, shrinkage, y_scale=y_scale, keep_gram=False
        )


def _without_cache(*args, **kwargs):
    """:func:`subject_task` outside any :mod:`~sharedrep.core.neural_cache` block."""
    with neural_cache.suspended():
        return subject_task(*args, **kwargs)


def _any_reduced(chunks_stats) -> bool:
    return any(isinstance(st, _streaming.ReducedStats) for st in chunks_stats)
