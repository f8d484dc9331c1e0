"""Per-subject parallelism: a pool of worker threads and single-threaded BLAS.

Most of a fit is per-subject work on small matrices (data passes, fold solves, private
components). numpy and the LAPACK calls used here release the GIL (see
:mod:`sharedrep.core._lapack`), so subjects run on one thread per CPU, each with
single-threaded BLAS, rather than one subject at a time on a multithreaded BLAS, which
gains little on ``q x q`` matrices and can be far slower on a busy machine. The number
of threads is :func:`n_threads` (environment variable ``SHAREDREP_NUM_THREADS``).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait

from threadpoolctl import ThreadpoolController

__all__ = [
    "n_threads",
    "shared_blas",
    "single_threaded_blas",
    "small_blas",
    "thread_cap",
    "thread_map",
]

_CONTROLLER: ThreadpoolController | None = None


def single_threaded_blas():
    """Context manager limiting BLAS/LAPACK to one thread.

    The threadpool controller is built once (finding the loaded BLAS libraries costs a
    few milliseconds), so entering the context is cheap enough for inner loops. In a
    worker thread of :func:`thread_map` it does nothing: the call that started the
    worker holds the (process-wide) limit until every worker is done.
    """
    if getattr(_WORKER, "active", False):
        return contextlib.nullcontext()
    return _blas_limit(1)


_OUTER_BLAS: int | None = None  # BLAS threads before the outermost limit of this module


@contextlib.contextmanager
def _blas_limit(n: int):
    """BLAS limited to ``n`` threads; remembers the caller's count (outermost call) so
    that nested calls of :func:`shared_blas` never exceed it."""
    global _OUTER_BLAS
    outer = _OUTER_BLAS
    if outer is None:
        _OUTER_BLAS = _blas_threads()
    try:
        with _CONTROLLER.limit(limits=min(n, _OUTER_BLAS), user_api="blas"):
            yield
    finally:
        _OUTER_BLAS = outer


def _blas_threads() -> int:
    """The largest thread count of the loaded BLAS libraries now (1 when none is found)."""
    global _CONTROLLER
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    counts = [lib.num_threads for lib in _CONTROLLER.select(user_api="blas").lib_controllers]
    return max(counts, default=1)


def shared_blas(n_items: int):
    """Context manager for ``n_items`` tasks run side by side on :func:`n_threads` threads.

    With at least as many tasks as threads each task gets single-threaded BLAS (as
    :func:`single_threaded_blas`); with fewer, the cores the tasks leave idle go to BLAS:
    ``n_threads() // n_items`` threads each (one subject on two cores: two BLAS threads),
    never more than BLAS already had (a limit set by the caller, e.g. threadpoolctl, is
    kept). Does nothing in a worker thread of :func:`thread_map`.
    """
    if getattr(_WORKER, "active", False):
        return contextlib.nullcontext()
    return _blas_limit(max(1, n_threads() // max(n_items, 1)))


_CAP = threading.local()  # per-thread cap of n_threads (thread_cap)


@contextlib.contextmanager
def thread_cap(n: int):
    """Within the block, and in the calling thread only, :func:`n_threads` is at most ``n``.

    For work that runs several of these fits side by side (joblib workers running one
    refit each): each then uses its share of the cores, not every core.
    """
    if n < 1:
        raise ValueError(f"thread_cap needs n >= 1; got {n}")
    previous = getattr(_CAP, "n", None)
    _CAP.n = n if previous is None else min(previous, n)
    try:
        yield
    finally:
        _CAP.n = previous


def n_threads() -> int:
    """Threads for per-subject work.

    ``SHAREDREP_NUM_THREADS`` when set (a positive integer), else the number of CPUs
    this process may run on (its affinity mask: a SLURM or ``taskset`` allocation, not
    the whole node); at most the cap of an enclosing :func:`thread_cap` in this thread.
    """
    n = _available_threads()
    cap = getattr(_CAP, "n", None)
    return n if cap is None else min(n, cap)


def _available_threads() -> int:
    env = os.environ.get("SHAREDREP_NUM_THREADS", "").strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            n = 0
        if n < 1:
            raise ValueError(f"SHAREDREP_NUM_THREADS must be a positive integer; got {env!r}")
        return n
    counter = getattr(os, "process_cpu_count", None)  # Python >= 3.13
    if counter is not None:
        return counter() or 1
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def _n_workers(n_items: int) -> int:
    return max(1, min(n_items, n_threads()))


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()
_WORKER = threading.local()


def _mark_worker() -> None:
    _WORKER.active = True


def _reset_pool() -> None:  # a forked child has none of the parent's threads
    global _POOL, _POOL_LOCK
    _POOL, _POOL_LOCK = None, threading.Lock()


os.register_at_fork(after_in_child=_reset_pool)


def _pool(n: int) -> ThreadPoolExecutor:
    """The process's worker threads (created once, grown when more are needed)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL._max_workers < n:
            old, _POOL = _POOL, ThreadPoolExecutor(n, "sharedrep", initializer=_mark_worker)
            if old is not None:
                old.shutdown(wait=False)
        return _POOL


def thread_map(func, items: list) -> list:
    """``[func(x) for x in items]`` on one thread per core, BLAS single-threaded.

    With fewer items than threads the idle cores go to BLAS (:func:`shared_blas`). numpy
    copies and LAPACK/BLAS calls release the GIL, so per-subject work runs in
    parallel; results keep the order of ``items`` and do not depend on the scheduling.
    The threads are kept between calls; a call from one of them (nested work) runs in
    that thread. Each item runs in a copy of the caller's :mod:`contextvars` context.
    If a call raises, the first exception (in ``items`` order) is raised once every
    started item has finished.
    """
    n = _n_workers(len(items))
    with shared_blas(len(items)):
        if n == 1 or getattr(_WORKER, "active", False):
            return [func(x) for x in items]
        # each item runs in a copy of this context (e.g. an open neural cache block)
        futures = [_pool(n).submit(contextvars.copy_context().run, func, x) for x in items]
        try:
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            wait(futures)
            raise


def small_blas(func):
    """Run ``func`` with single-threaded BLAS/LAPACK.

    The decompositions here are of ``q x q`` matrices (q = units x lags, at most a few
    thousand). Multithreaded OpenBLAS gains little on them and, on a busy machine, can be
    tens of times slower than one thread; the large data pass stays multithreaded.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with single_threaded_blas():
            return func(*args, **kwargs)

    return wrapper
