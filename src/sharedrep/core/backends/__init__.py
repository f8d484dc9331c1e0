"""Compute backends: where the one pass over the data (and the CV solves) run.

A backend turns every subject's data into its cross-validation chunk statistics
(:class:`sharedrep.core.solver.SubjectData`, the output of
:func:`sharedrep.core.data_pass.subject_statistics`) and scores the folds
(:func:`sharedrep.core.solver.cv_errors`). Everything after that works on small
``(q + p + 1)``-square matrices and is shared by all backends, so every backend gives
the same model up to rounding.

``numpy`` (default)
    The in-process loop, one subject per worker thread. With ``reduce_alphas`` (the
    estimator's ``low_memory``) each subject's folds are solved and reduced to ``p x p``
    matrices right after its data pass (:mod:`sharedrep.core.backends._streaming`), so
    the chunk statistics of only one subject per thread exist at a time.
``dask``
    One task per subject on a ``dask.distributed`` cluster; each task reads its subject
    where the data live (file path or lazy array); the statistics stay on the worker and
    the cross-validation and final fit run in per-subject phases that send only small
    matrices to the driver. See :mod:`sharedrep.core.backends.dask` and
    ``docs/scaling.md``.
``torch``
    The data pass and the fold/alpha solves with PyTorch on ``device`` (``"cuda"`` or
    ``"cpu"``). See :mod:`sharedrep.core.backends.torch`.

Use ``ShaReD(backend=..., device=..., dtype=...)``; :func:`get_backend` is the lower-level
entry point::

    be = get_backend("numpy")
    data = be.statistics(neural, behavior, groups, lags, n_folds, gap=gap)
    errors = be.cv_errors([d.stats for d in data], [d.chunks for d in data], ...)

Within :func:`reuse_statistics` (subject bootstraps, relabelling tests) the numpy backend
reduces each subject once and every later fit of the same subject reuses it
(:mod:`sharedrep.core.backends._reuse`).

Sessions may be given as file paths or lazy arrays (see :mod:`sharedrep.core.backends._sources`):
every backend reads them one subject at a time, so the caller never holds all the data.
"""

from __future__ import annotations

import numpy as np

from sharedrep.core import solver
from sharedrep.core.backends._reuse import reuse_statistics, reusing
from sharedrep.core.backends._sources import (
    FileArray,
    LazyArray,
    TensorArray,
    check_sources,
    defers_conversion,
    has_sources,
    is_source,
    read_source,
)
from sharedrep.core.backends._streaming import behavior_total, full_total

__all__ = [
    "BACKENDS",
    "DTYPES",
    "Backend",
    "get_backend",
    "check_dtype",
    "FileArray",
    "LazyArray",
    "TensorArray",
    "check_sources",
    "defers_conversion",
    "has_sources",
    "is_source",
    "read_source",
    "full_total",
    "behavior_total",
    "reuse_statistics",
    "reusing",
]

BACKENDS = ("numpy", "dask", "torch")
DTYPES = ("float64", "float32")


def check_dtype(dtype) -> np.dtype:
    """The numpy dtype of a ``dtype`` option (``"float64"`` or ``"float32"``)."""
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise ValueError(f"dtype must be 'float64' or 'float32'; got {dtype!r}")
    return np.dtype(dtype)


class Backend:
    """Interface of a backend (the numpy implementation; others override both methods).

    ``statistics`` receives one entry per subject in ``neural``, ``behavior`` and
    ``groups``: validated float64 arrays, or sources from :func:`check_sources`.
    """

    name = "numpy"

    def statistics(
        self,
        neural: list,
        behavior: list,
        groups: list,
        lags: np.ndarray,
        n_folds: int,
        *,
        gap: int = 0,
        folds_by_trial: bool = True,
        random_state=None,
        nan_policy: str = "raise",
        dtype="float64",
        form: str = "primal",
        reduce_alphas=None,
        keep_totals: bool = True,
    ) -> list[solver.SubjectData]:
        """CV chunk statistics of every subject.

        See :func:`sharedrep.core.data_pass.subject_statistics`.

        ``form`` is the ridge form (``"primal"``, ``"dual"``, ``"auto"``; see
        :mod:`sharedrep.core.dual`); the torch backend solves the primal form only.

        ``reduce_alphas`` (an alpha grid; numpy backend only, others ignore it): reduce
        each primal subject's statistics, as soon as they are computed, to its solved CV
        folds for that grid (``p x p`` per fold and alpha) and its total statistics, and
        release its chunk statistics (:mod:`sharedrep.core.backends._streaming`); the
        subjects' ``stats`` are then :class:`~sharedrep.core.backends._streaming.ReducedStats`,
        which this backend's :meth:`cv_errors` (for that grid) and :meth:`final_fit` accept.
        With ``keep_totals`` False the reduced subjects keep not even their total
        statistics: the final fit and the private components read each subject again.
        """
        opts = dict(
            lags=lags,
            n_folds=n_folds,
            gap=gap,
            folds_by_trial=folds_by_trial,
            random_state=random_state,
            nan_policy=nan_policy,
            dtype=check_dtype(dtype) if isinstance(dtype, str) else np.dtype(dtype),
            form=form,
        )
        if reduce_alphas is not None and self.reduces:
            alphas = np.atleast_1d(np.asarray(reduce_alphas, dtype=float))
            return self._reduced(
                list(neural), list(behavior), list(groups), opts, alphas, keep_totals
            )
        return self._statistics(list(neural), list(behavior), list(groups), opts)

    #: whether :meth:`statistics` honours ``reduce_alphas``
    reduces = False

    def _reduced(
        self, neural: list, behavior: list, groups: list, opts: dict, alphas, keep_totals=True
    ) -> list:
        """The data pass with the per-subject reduction (backends with ``reduces``)."""
        raise NotImplementedError

    def _statistics(self, neural: list, behavior: list, groups: list, opts: dict) -> list:
        """Each backend's data pass; ``opts`` are the keyword options of
        :func:`sharedrep.core.backends._sources.subject_task` (dtype already a numpy dtype)."""
        raise NotImplementedError

    def cv_errors(self, chunks_stats, chunks, weights, alphas, k_max, metric, shrinkage, **kw):
        """Held-out errors of every fold, alpha and dimension (see :func:`solver.cv_errors`)."""
        return solver.cv_errors(
            chunks_stats, chunks, weights, alphas, k_max, metric, shrinkage, **kw
        )

    def final_fit(self, chunks_stats, weights, alpha, k, metric, shrinkage) -> solver.Fit:
        """The model at the selected ``alpha`` and ``k`` from every subject's total statistics.

        See :func:`solver.fit_from_stats`; ``chunks_stats`` is as for :meth:`cv_errors`.
        """
        totals = [solver.subject_total(chunk_stats) for chunk_stats in chunks_stats]
        return solver.fit_from_stats(totals, weights, alpha, k, metric, shrinkage)

    def __repr__(self) -> str:
        return f"<sharedrep {self.name} backend>"


def get_backend(name: str = "numpy", **options) -> Backend:
    """The backend called ``name``.

    Parameters
    ----------
    name : {"numpy", "dask", "torch"}
    **options
        ``numpy``: none (``device`` must be ``"cpu"``). ``dask``: ``client`` (a
        ``distributed.Client``) or ``address`` (scheduler address); by default the
        cluster set with :func:`sharedrep.core.backends.dask.use_cluster`, else the
        ``SHAREDREP_DASK_SCHEDULER`` environment variable, else the current default
        ``distributed`` client, else a private ``LocalCluster``. ``torch``: ``device``
        (``"cpu"``, ``"cuda"``, ``"cuda:1"``...), ``batch_size`` (subjects per batched
        solve; default all).

    Raises
    ------
    ValueError
        Unknown name or option.
    ImportError
        The backend's optional dependency is missing (with the extra to install).
    """
    device = options.pop("device", "cpu")
    if name == "numpy":
        from sharedrep.core.backends.numpy import NumpyBackend

        _no_device(name, device)
        return NumpyBackend(**options)
    if name == "dask":
        from sharedrep.core.backends.dask import DaskBackend

        _no_device(name, device)
        return DaskBackend(**options)
    if name == "torch":
        from sharedrep.core.backends.torch import TorchBackend

        return TorchBackend(device=device, **options)
    raise ValueError(f"backend must be one of {BACKENDS}; got {name!r}")


def _no_device(name, device):
    if device != "cpu":
        raise ValueError(
            f"device={device!r} needs backend='torch'; the {name} backend runs on the CPU"
        )
