"""The default backend: the statistics pass in this process.

Subjects are processed by a small pool of threads (one per core, each with single-threaded
BLAS): the gather/copy and the Gram product of one subject overlap with another's.

Sources (file paths, lazy arrays) are read one subject per thread and released when its
statistics are done, so at most one subject per core is in memory at once.
"""

from __future__ import annotations

import numpy as np

from ..solver import thread_map
from . import Backend, check_dtype
from ._sources import subject_task

__all__ = ["NumpyBackend"]


class NumpyBackend(Backend):
    """In-process numpy backend (BLAS threads as configured)."""

    name = "numpy"

    def statistics(
        self,
        neural,
        behavior,
        groups,
        lags,
        n_folds,
        *,
        gap=0,
        folds_by_trial=True,
        random_state=None,
        nan_policy="raise",
        dtype="float64",
        form="primal",
    ):
        dt = check_dtype(dtype) if isinstance(dtype, str) else np.dtype(dtype)

        def task(args):
            s, (X, Y, g) = args
            return subject_task(
                X,
                Y,
                g,
                s,
                lags,
                n_folds,
                gap,
                folds_by_trial,
                random_state,
                nan_policy,
                dt,
                form=form,
            )

        items = list(enumerate(zip(neural, behavior, groups, strict=True)))
        return thread_map(task, items)
