"""Distributed backend: one ``dask.distributed`` task per subject, statistics left there.

Each task reads its subject where the data live (a file path on storage the workers can
see, a zarr/HDF5/NWB dataset, or the chunks of a dask array), lag-embeds it and forms the
cross-validation chunk statistics, which **stay on that worker** (a future). The driver
receives only a summary per subject (the folds of the chunks, the preconditioning centres
and the ``p x p`` behaviour part of every chunk: :class:`RemoteStats`).

Cross-validation and the final fit then run in per-subject phases
(:mod:`sharedrep.core.backends._phases`) whose results are small: per fold, the workers
send the behaviour part of each subject's training statistics (``p x p``), the driver
pools the behaviour scale; the workers solve their folds for the whole alpha grid and keep
the solutions, sending back ``M_s`` (``n_alphas x p x p``) and ``S_yy`` (``p x p``); the
driver pools them and solves the axes (``p x k`` per alpha and shrinkage), which go back;
the workers return the held-out errors (``n_alphas x k`` numbers). The final fit is the
same with one problem per subject; only the encoders (``q x k``) and the standardisation
vectors (``q``, plus the ``q x p`` cross-products) of each subject are gathered, at the
end. The driver's memory therefore does not grow with the ``q x q`` statistics of the
subjects: it holds ``O(S (q k + q p + n_chunks p^2))`` numbers, ``O(p^2 n_alphas)`` per
fold in flight and the bookkeeping of about six tasks per subject and fold
(``tests/core/test_dask_memory.py`` bounds its peak). The numbers are those of the numpy
backend without its low-memory reduction (``ShaReD(low_memory=False)``, or ``"auto"``
below its threshold: same arithmetic in the same order; equal bit for bit on one
machine); the reduced numpy fit agrees to rounding (~1e-14 relative).

What still needs a subject's statistics on the driver fetches them on demand, one chunk
at a time, and does not keep them: the private components (``private=True``, computed by
the estimator on the driver; with thread_map one subject per thread at a time) and the
kernel form's data (``form="dual"``: the workers keep the rows; the private components
fetch them). The fold solutions kept for the private components stay on the workers:
each private fold is formed there and only its ``q x p`` part travels.

Which cluster (first that applies):

1. ``get_backend("dask", client=...)`` or ``address=...`` (programmatic use);
2. the cluster set with :func:`use_cluster` (the documented way for ``ShaReD``)::

       from sharedrep.core.backends.dask import use_cluster
       with use_cluster("tcp://scheduler:8786"):
           ShaReD(backend="dask").fit(neural_paths, behavior_paths)

3. the ``SHAREDREP_DASK_SCHEDULER`` environment variable (a scheduler address);
4. the current default ``distributed.Client`` of this process, if any;
5. a private ``LocalCluster`` (processes, dask's default worker count for this machine),
   started once per process and closed at exit.

In-memory arrays given with ``backend="dask"`` are scattered to the workers (they travel
once); give paths or lazy arrays to avoid moving them.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
from collections.abc import Sequence

import numpy as np

from sharedrep.core import solver
from sharedrep.core.backends import Backend, _phases
from sharedrep.core.backends._sources import subject_task
from sharedrep.utils.parallel import small_blas

__all__ = ["DaskBackend", "RemoteStats", "use_cluster", "shutdown", "ENV_VAR"]

ENV_VAR = "SHAREDREP_DASK_SCHEDULER"

_lock = threading.Lock()
_configured = None  # address string or Client set by use_cluster
_local = None  # (cluster, client) started by this module
_clients: dict = {}  # address -> Client opened by this module


def _import_distributed():
    try:
        import distributed
    except ImportError as exc:  # pragma: no cover - exercised without the extra
        raise ImportError(
            "backend='dask' needs dask.distributed: pip install 'sharedrep[dask]' "
            "(or pip install 'dask[distributed]' zarr)"
        ) from exc
    return distributed


class _ClusterSetting(contextlib.AbstractContextManager):
    def __init__(self, previous, address=None):
        self._previous = previous
        self._address = address

    def __exit__(self, *exc):
        global _configured
        _configured = self._previous
        if self._address is not None and self._address != _configured:
            # the client opened here for the block's cluster: closed with the block, so
            # that it does not outlive (and keep reconnecting to) a cluster closed next
            with _lock:
                client = _clients.pop(self._address, None)
            if client is not None:
                with contextlib.suppress(Exception):
                    client.close()
        return False


def use_cluster(cluster=None) -> contextlib.AbstractContextManager:
    """Run ``backend="dask"`` fits on ``cluster``.

    Parameters
    ----------
    cluster : str, distributed.Client, cluster object or None
        A scheduler address (``"tcp://host:8786"``), a ``Client``, or a cluster object
        (``LocalCluster``, dask-jobqueue's ``SLURMCluster``...; its scheduler address is
        used). ``None`` returns to the default resolution (see the module docstring).

    Returns
    -------
    A context manager: used in a ``with`` block the previous setting comes back at its
    end (and the client this module opened to the cluster is closed); called plainly the
    setting stays for the process.
    """
    global _configured
    previous = _configured
    if cluster is not None and not isinstance(cluster, str):
        if hasattr(cluster, "scheduler_address") and not hasattr(cluster, "submit"):
            cluster = cluster.scheduler_address
        elif not hasattr(cluster, "submit"):
            raise TypeError(
                "use_cluster needs a scheduler address, a distributed.Client or a cluster "
                f"object; got {type(cluster).__name__}"
            )
    _configured = cluster
    return _ClusterSetting(previous, cluster if isinstance(cluster, str) else None)


def _client_for(address: str):
    distributed = _import_distributed()
    with _lock:
        client = _clients.get(address)
        if client is None or client.status in ("closed", "closing"):
            client = distributed.Client(address, set_as_default=False)
            _clients[address] = client
    return client


def _local_client():
    global _local
    distributed = _import_distributed()
    with _lock:
        if _local is None or _local[1].status in ("closed", "closing"):
            cluster = distributed.LocalCluster(processes=True, dashboard_address=None)
            client = distributed.Client(cluster, set_as_default=False)
            _local = (cluster, client)
    return _local[1]


@atexit.register
def shutdown():
    """Close the clients and the private ``LocalCluster`` this module opened.

    Clients and clusters given by the user (``use_cluster(client)``) are left open.
    Called automatically at interpreter exit.
    """
    global _local
    for client in list(_clients.values()):
        with contextlib.suppress(Exception):
            client.close()
    _clients.clear()
    if _local is not None:
        with contextlib.suppress(Exception):
            _local[1].close()
            _local[0].close()
        _local = None


class DaskBackend(Backend):
    """One ``dask.distributed`` task per subject, statistics kept on the workers, the
    cross-validation and final fit in per-subject phases (see the module docstring).

    Parameters
    ----------
    client : distributed.Client, optional
    address : str, optional
        Scheduler address; ignored when ``client`` is given.
    """

    name = "dask"

    def __init__(self, client=None, address=None):
        _import_distributed()
        self._client_opt = client
        self._address = address

    def client(self):
        """The ``distributed.Client`` used (resolved as in the module docstring)."""
        if self._client_opt is not None:
            return self._client_opt
        if self._address is not None:
            return _client_for(self._address)
        if _configured is not None:
            return _configured if not isinstance(_configured, str) else _client_for(_configured)
        address = os.environ.get(ENV_VAR)
        if address:
            return _client_for(address)
        distributed = _import_distributed()
        try:
            return distributed.default_client()
        except ValueError:
            return _local_client()

    def _statistics(self, neural, behavior, groups, opts):
        """One task per subject; its statistics stay on the worker.

        Returns one :class:`solver.SubjectData` per subject whose ``stats`` is a
        :class:`RemoteStats`, ``rows`` None and ``chunks`` without ``order`` (the row
        positions stay on the worker with the statistics).
        """
        client = self.client()
        futures = []
        for s, (X, Y, g) in enumerate(zip(neural, behavior, groups, strict=True)):
            args = [X, Y, g]
            # in-memory arrays travel once, outside the task graph
            mem = [i for i, a in enumerate(args) if isinstance(a, np.ndarray)]
            if mem:
                # unique keys (hash=False): consecutive fits of the same data (refits of
                # a permutation test) would otherwise reuse a key whose release from the
                # previous fit is still in flight, and lose it ("lost dependencies")
                scattered = client.scatter([args[i] for i in mem], hash=False)
                for i, fut in zip(mem, scattered, strict=True):
                    args[i] = fut
            futures.append(
                client.submit(
                    subject_task,
                    *args,
                    s,
                    **opts,
                    pure=False,
                    key=f"sharedrep-statistics-{s}-{os.urandom(4).hex()}",
                )
            )
        summaries = _gather_in_order(
            client, [client.submit(_phases.summary, fut, pure=False) for fut in futures]
        )
        return [
            solver.SubjectData(
                None, sm.chunks, RemoteStats(client, fut, sm), sm.x_center, sm.y_center
            )
            for fut, sm in zip(futures, summaries, strict=True)
        ]

    def cv_errors(
        self,
        chunks_stats,
        chunks,
        weights,
        alphas,
        k_max,
        metric,
        shrinkage,
        *,
        y_scale=None,
        axes=None,
        keep_solutions=False,
        folds=None,
    ):
        """As :func:`solver.cv_errors`, in per-subject phases on the workers.

        ``chunks_stats`` are the :class:`RemoteStats` of :meth:`statistics` (anything else,
        or ``folds``, runs :func:`solver.cv_errors` on the driver). Only ``p``-sized
        results travel (see the module docstring). With ``keep_solutions`` the fold
        solutions stay on the workers: ``solutions[s][f]`` is a :class:`RemoteSolution`.
        """
        kw = dict(y_scale=y_scale, axes=axes, keep_solutions=keep_solutions)
        if folds is not None or not _all_remote(chunks_stats):
            return super().cv_errors(
                chunks_stats, chunks, weights, alphas, k_max, metric, shrinkage, folds=folds, **kw
            )
        setting = (np.asarray(weights, dtype=float), np.asarray(alphas, dtype=float), k_max)
        return _RemoteCV(chunks_stats, chunks, setting, metric, shrinkage, **kw).run()

    @small_blas
    def final_fit(self, chunks_stats, weights, alpha, k, metric, shrinkage) -> solver.Fit:
        """As :func:`solver.fit_from_stats` of the subjects' totals, on the workers.

        Only ``p x p`` moments travel before the axes are solved; then each subject's
        encoder (``q x k``) and standardisation (without its ``q x q`` Gram matrix, as
        with the torch backend) are gathered. ``Fit.kernels`` is None (the private
        components solve a kernel-form subject's whole problem again).
        """
        if not _all_remote(chunks_stats):
            return super().final_fit(chunks_stats, weights, alpha, k, metric, shrinkage)
        client = chunks_stats[0].client
        totals = [_submit(client, _phases.subject_total, st.future) for st in chunks_stats]
        y_behavior = client.gather([_submit(client, _phases.total_behavior, t) for t in totals])
        y_scale = solver.pooled_y_scale(y_behavior, weights)
        problems = [
            _submit(client, _phases.whole_problem, t, y_scale, float(alpha)) for t in totals
        ]
        del totals
        moments = client.gather([_submit(client, _phases.whole_moments, pr) for pr in problems])
        p = y_scale.shape[0]
        M, C = np.zeros((p, p)), np.zeros((p, p))
        for w, (M_s, yy, n) in zip(weights, moments, strict=True):
            M += w / n * M_s
            C += w / n * yy
        V, rho, explained, Cm = solver.shared_axes(M, C, k, metric, shrinkage)
        encoded = client.gather([_submit(client, _phases.whole_encoder, pr, V) for pr in problems])
        encoders = [enc for enc, _ in encoded]
        stds = [std for _, std in encoded]
        return solver.Fit(V, rho, explained, encoders, stds, y_scale, C, Cm, None)


def _submit(client, func, *args):
    """``client.submit`` of a phase (a new key every time: results are not reused)."""
    return client.submit(func, *args, pure=False)


def _gather_in_order(client, futures: list) -> list:
    """Results of ``futures``; the first failure in list order is raised (as a loop would)."""
    try:
        return client.gather(futures)
    except Exception:
        for fut in futures:
            if fut.status == "error":
                fut.result()  # raises that task's exception
        raise


def _all_remote(chunks_stats) -> bool:
    return len(chunks_stats) > 0 and all(isinstance(st, RemoteStats) for st in chunks_stats)


class _RemoteCV:
    """:func:`solver.cv_errors` on statistics left on the workers (see the module docstring).

    ``setting`` is ``(weights (S,), alphas (n_alphas,), k_max)``. Every pooled quantity is
    formed on the driver in subject order, with the arithmetic of :func:`solver.cv_errors`.
    """

    def __init__(
        self, remote, chunks, setting, metric, shrinkage, *, y_scale, axes, keep_solutions
    ):
        self.remote, self.chunks = list(remote), list(chunks)
        self.client = self.remote[0].client
        self.weights, self.alphas, self.k_max = setting
        self.metric, self.y_scale, self.axes = metric, y_scale, axes
        self.grid = np.ndim(shrinkage) > 0
        self.shrinkages = np.atleast_1d(np.asarray(shrinkage, dtype=float))
        self.keep_solutions = keep_solutions

    @small_blas
    def run(self) -> dict:
        client, S = self.client, len(self.remote)
        n_folds, n_alpha = self.chunks[0].n_folds, self.alphas.size
        shape = (self.shrinkages.size, n_folds, n_alpha, S, self.k_max)
        out = {
            "sse": np.zeros(shape),
            "sst": np.zeros(shape),
            "sst_behavior": np.zeros((n_folds, S)),
            "n_test": np.zeros((n_folds, S)),
        }
        futures = [st.future for st in self.remote]
        totals = [_submit(client, _phases.subject_total, fut) for fut in futures]
        keep = [False] * S
        if self.keep_solutions:
            keep = client.gather(
                [_submit(client, _phases.worth_keeping, fut, n_folds, n_alpha) for fut in futures]
            )
        kept = [[] if keep[s] else None for s in range(S)]
        for f in range(n_folds):
            ysc, solved = self._solve_fold(f, futures, totals)
            self._score_fold(f, ysc, solved, out)
            for s in range(S):
                if kept[s] is not None:
                    sol = _submit(client, _phases.fold_solution, solved[s], self.alphas)
                    kept[s].append(RemoteSolution(client, sol))
        if not self.grid:
            out["sse"], out["sst"] = out["sse"][0], out["sst"][0]
        if self.keep_solutions:
            out["solutions"] = kept
        return out

    def _solve_fold(self, f: int, futures: list, totals: list) -> tuple:
        """Phases a and b of fold ``f``: ``(behaviour scale (p,), solved folds)``, the solved
        folds as futures (kept on the workers)."""
        client = self.client
        folds = [
            _submit(client, _phases.make_fold, fut, ch.train_mask(f), ch.test_mask(f), tot)
            for fut, ch, tot in zip(futures, self.chunks, totals, strict=True)
        ]
        ysc = self.y_scale
        if ysc is None:
            y_train = client.gather([_submit(client, _phases.train_behavior, fd) for fd in folds])
            ysc = solver.pooled_y_scale(y_train, self.weights)
        return ysc, [_submit(client, _phases.solve_fold, fd, ysc, self.alphas) for fd in folds]

    def _score_fold(self, f: int, ysc: np.ndarray, solved: list, out: dict) -> None:
        """Pooled moments, axes of every shrinkage and alpha, held-out errors of fold ``f``."""
        client, n_alpha, k_max = self.client, self.alphas.size, self.k_max
        moments = client.gather([_submit(client, _phases.fold_moments, sv) for sv in solved])
        axes = list(
            zip(
                *solver.shrinkage_axes(
                    self.weights, moments, self.metric, self.shrinkages, k_max, self.axes
                ),
                strict=True,
            )
        )  # (Vs (n_alpha, p, k), V_all (p, n_alpha * k)) of each shrinkage
        results = client.gather(
            [_submit(client, _phases.fold_errors, sv, axes, ysc) for sv in solved]
        )
        for s, res in enumerate(results):
            if res is None:
                continue
            n_test, errors = res
            for i_shrink, (e, t, tb) in enumerate(errors):
                out["sse"][i_shrink, f, :, s] = e.reshape(n_alpha, k_max)
                out["sst"][i_shrink, f, :, s] = t.reshape(n_alpha, k_max)
                out["sst_behavior"][f, s] = tb
            out["n_test"][f, s] = n_test


class RemoteChunk:
    """One chunk's :class:`solver.SufficientStats` left on a worker.

    The behaviour part (``n``, ``sy`` (p,), ``yy`` (p, p)) is here; the neural parts
    (``sx``, ``xx``, ``xy``) are fetched on first use and kept by this object only (it
    is made anew by every ``RemoteStats[i]``).
    """

    def __init__(self, owner: RemoteStats, index: int, behavior):
        self.n, self.sy, self.yy = behavior.n, behavior.sy, behavior.yy
        self._owner, self._index, self._full = owner, index, None

    def full(self) -> solver.SufficientStats:
        """The chunk's statistics, fetched from the worker (once per object)."""
        if self._full is None:
            self._full = self._owner.fetch(self._index)
        return self._full

    @property
    def sx(self) -> np.ndarray:
        return self.full().sx

    @property
    def xx(self) -> np.ndarray:
        return self.full().xx

    @property
    def xy(self) -> np.ndarray:
        return self.full().xy

    def transform_behavior(self, T: np.ndarray) -> solver.SufficientStats:
        return self.full().transform_behavior(T)

    def __add__(self, other) -> solver.SufficientStats:
        return self.full() + other

    def __sub__(self, other) -> solver.SufficientStats:
        return self.full() - other

    def __repr__(self) -> str:
        return f"RemoteChunk({self._index} of {self._owner!r})"


class RemoteStats(Sequence):
    """One subject's CV chunk statistics, left on the worker that computed them.

    Behaves as the subject's statistics for the driver's few readers: a sequence of
    :class:`RemoteChunk` (primal form; the behaviour parts are here, the rest is fetched
    chunk by chunk on use), or, in the kernel form (``form == "dual"``), an object whose
    ``chunk_y_stats()`` is answered here and whose other attributes are those of the
    :class:`sharedrep.core.dual.KernelData` fetched on use. Nothing fetched is kept.

    Attributes
    ----------
    client : distributed.Client
    future : distributed.Future
        The subject's :class:`solver.SubjectData` on its worker (released with this object).
    form : {"primal", "dual"}
    """

    def __init__(self, client, future, summary: _phases.SubjectSummary):
        self.client, self.future = client, future
        self.form = summary.form
        self._behavior = list(summary.chunk_behavior)

    def __len__(self) -> int:
        return len(self._behavior)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = int(i)
        if not -len(self) <= i < len(self):
            raise IndexError(f"chunk {i} of {len(self)}")
        i %= len(self)
        return RemoteChunk(self, i, self._behavior[i])

    def fetch(self, index: int | None = None):
        """Chunk ``index`` of the statistics (all of them, as held, when None)."""
        return _submit(self.client, _phases.chunk, self.future, index).result()

    def chunk_y_stats(self) -> list:
        """Behaviour-only statistics of every chunk (as ``KernelData.chunk_y_stats``)."""
        return list(self._behavior)

    def __getattr__(self, name):
        if name.startswith("_") or self.__dict__.get("form") != "dual":
            raise AttributeError(name)
        return getattr(self.fetch(), name)  # kernel form: the rows, read from the worker

    def __repr__(self) -> str:
        return f"RemoteStats({len(self)} chunks, {self.form} form, {self.future.key!r})"


class RemoteSolution:
    """One subject's solved CV fold (:class:`solver.FoldSolution` or its kernel-form
    counterpart), left on the worker; :meth:`fold` forms the private problem there."""

    def __init__(self, client, future):
        self.client, self.future = client, future

    def fold(self, alpha: float, T: np.ndarray, test=None):
        """As ``FoldSolution.fold``: only the ``q x p'`` result travels; ``test`` (the
        held-out statistics, primal form) is attached here."""
        fold = _submit(self.client, _phases.solution_fold, self.future, alpha, T).result()
        if test is not None:
            fold = solver.SolvedFold(fold.std, fold.P, fold.alpha, test)
        return fold
