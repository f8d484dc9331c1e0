"""The default backend: the statistics pass in this process.

Subjects are processed by a small pool of threads (one per core, each with single-threaded
BLAS): the gather/copy and the Gram product of one subject overlap with another's.

Sources (file paths, lazy arrays) are read one subject per thread and released when its
statistics are done, so at most one subject per core is in memory at once.
"""

from __future__ import annotations

from sharedrep.core.backends import Backend
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
