"""Distributed backend: one ``dask.distributed`` task per subject.

Each task reads its subject where the data live (a file path on storage the workers can
see, a zarr/HDF5/NWB dataset, or the chunks of a dask array), lag-embeds it, forms the
cross-validation chunk statistics and sends back only those: ``(q + p + 1)``-square
matrices per chunk plus the kept-row indices. The driver never holds the activity
matrices; cross-validation, the final fit and the private components then run on the
driver from the statistics, exactly as with the numpy backend (same numbers up to
rounding).

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

import numpy as np

from sharedrep.core.backends import Backend
from sharedrep.core.backends._sources import subject_task

__all__ = ["DaskBackend", "use_cluster", "shutdown", "ENV_VAR"]

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
    """One ``dask.distributed`` task per subject (see the module docstring).

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
        try:
            return client.gather(futures)
        finally:
            for fut in futures:
                fut.release()
