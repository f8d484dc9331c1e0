"""The default backend: the statistics pass in this process, one subject after another.

Sources (file paths, lazy arrays) are read one subject at a time and released before the
next, so only one subject's data is in memory at once.
"""

from __future__ import annotations

import numpy as np

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
    ):
        dt = check_dtype(dtype) if isinstance(dtype, str) else np.dtype(dtype)
        return [
            subject_task(
                X, Y, g, s, lags, n_folds, gap, folds_by_trial, random_state, nan_policy, dt
            )
            for s, (X, Y, g) in enumerate(zip(neural, behavior, groups, strict=True))
        ]
