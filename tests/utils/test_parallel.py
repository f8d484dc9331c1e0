"""The per-subject thread pool (sharedrep.utils.parallel)."""

import multiprocessing
import os
import threading
import time

import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from sharedrep.utils import parallel as _parallel


def test_results_in_order_and_nested_calls_run_in_the_worker():
    outer_threads = set()

    def inner(x):
        return (x, threading.current_thread().name)

    def outer(x):
        outer_threads.add(threading.current_thread().name)
        res = _parallel.thread_map(inner, [x, x + 1, x + 2])
        # nested work stays in the calling worker: no pool inside the pool
        assert {name for _, name in res} == {threading.current_thread().name}
        return [v for v, _ in res]

    got = _parallel.thread_map(outer, list(range(10)))
    assert got == [[x, x + 1, x + 2] for x in range(10)]
    if _parallel._n_workers(10) > 1:
        assert all(name.startswith("sharedrep") for name in outer_threads)


def test_workers_run_with_one_blas_thread_without_setting_it_again(monkeypatch):
    from threadpoolctl import threadpool_info

    if _parallel._n_workers(4) < 2:
        pytest.skip("one CPU: thread_map runs in the calling thread")
    _parallel.single_threaded_blas()  # builds the controller
    real, callers = _parallel._CONTROLLER, []

    class Recording:  # which threads ask threadpoolctl for a limit
        def limit(self, **kw):
            callers.append(threading.current_thread().name)
            return real.limit(**kw)

        def __getattr__(self, name):  # reading the thread counts is not a limit
            return getattr(real, name)

    monkeypatch.setattr(_parallel, "_CONTROLLER", Recording())

    def in_worker(_):
        with _parallel.single_threaded_blas():  # nested: already limited
            return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}

    assert _parallel.thread_map(in_worker, [0, 1, 2, 3]) == [{1}] * 4
    assert callers == [threading.current_thread().name]  # only the calling thread


def test_first_error_in_item_order_after_every_item_finished():
    finished = []

    def func(x):
        if x == 3:
            raise ValueError("item 3")
        if x == 5:
            raise KeyError("item 5")
        time.sleep(0.01)
        finished.append(x)
        return x

    with pytest.raises(ValueError, match="item 3"):
        _parallel.thread_map(func, list(range(8)))
    n_done = len(finished)
    time.sleep(0.05)
    assert len(finished) == n_done  # nothing still running after the raise
    assert _parallel.thread_map(lambda x: 2 * x, [1, 2, 3]) == [2, 4, 6]  # pool still usable


def _child(queue):
    queue.put(_parallel.thread_map(lambda x: x * x, list(range(6))))


def test_forked_child_gets_its_own_threads():
    _parallel.thread_map(abs, [-1, -2, -3])  # the parent's pool exists
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue,))
    proc.start()
    try:
        assert queue.get(timeout=30) == [0, 1, 4, 9, 16, 25]
    finally:
        proc.join(timeout=30)
        if proc.is_alive():
            proc.kill()
    assert proc.exitcode == 0


def test_number_of_threads_from_the_environment_or_the_affinity(monkeypatch):
    monkeypatch.setenv("SHAREDREP_NUM_THREADS", "3")
    assert _parallel.n_threads() == 3
    assert _parallel._n_workers(2) == 2 and _parallel._n_workers(10) == 3
    monkeypatch.setenv("SHAREDREP_NUM_THREADS", "1")
    names = _parallel.thread_map(lambda _: threading.current_thread().name, [0, 1, 2])
    assert set(names) == {threading.current_thread().name}  # serial, in this thread
    for bad in ("0", "-2", "two"):
        monkeypatch.setenv("SHAREDREP_NUM_THREADS", bad)
        with pytest.raises(ValueError, match="SHAREDREP_NUM_THREADS must be a positive"):
            _parallel.n_threads()
    monkeypatch.delenv("SHAREDREP_NUM_THREADS")
    if hasattr(os, "sched_getaffinity") and not hasattr(os, "process_cpu_count"):
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 5})
        assert _parallel.n_threads() == 2  # the CPUs this process may use, not the node's
    assert _parallel.n_threads() >= 1


def _blas_counts():
    return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}


def test_fewer_items_than_threads_give_the_idle_cores_to_blas(monkeypatch):
    monkeypatch.setenv("SHAREDREP_NUM_THREADS", "4")
    with threadpool_limits(limits=4, user_api="blas"):  # the caller's BLAS: 4 threads
        assert _parallel.thread_map(lambda _: _blas_counts(), [0]) == [{4}]
        assert _parallel.thread_map(lambda _: _blas_counts(), [0, 1]) == [{2}] * 2
        assert _parallel.thread_map(lambda _: _blas_counts(), [0, 1, 2]) == [{1}] * 3
        with _parallel.single_threaded_blas():  # nested in the library's own limit
            assert _parallel.thread_map(lambda _: _blas_counts(), [0]) == [{4}]
        assert _blas_counts() == {4}  # restored
    with threadpool_limits(limits=1, user_api="blas"):  # a caller's limit is kept
        assert _parallel.thread_map(lambda _: _blas_counts(), [0]) == [{1}]


def test_thread_cap_limits_only_the_calling_thread(monkeypatch):
    monkeypatch.setenv("SHAREDREP_NUM_THREADS", "4")
    with _parallel.thread_cap(2):
        assert _parallel.n_threads() == 2
        with _parallel.thread_cap(3):  # nested caps never raise the outer one
            assert _parallel.n_threads() == 2
        seen = []
        other = threading.Thread(target=lambda: seen.append(_parallel.n_threads()))
        other.start()
        other.join()
        assert seen == [4]  # another thread is not capped
    assert _parallel.n_threads() == 4
    with pytest.raises(ValueError, match="n >= 1"):
        with _parallel.thread_cap(0):
            pass


def test_parallel_refits_share_the_cores(monkeypatch):
    from joblib import delayed, parallel_config

    from sharedrep.inference._resampling import _progress_map

    monkeypatch.setenv("SHAREDREP_NUM_THREADS", "4")
    tasks = [delayed(_parallel.n_threads)() for _ in range(4)]
    with parallel_config(backend="threading"):  # workers in this process: same environment
        assert _progress_map(tasks, 2, False, "test") == [2] * 4  # 4 threads // 2 jobs
        assert _progress_map(tasks, 4, False, "test") == [1] * 4
    assert _progress_map(tasks, 1, False, "test") == [4] * 4  # one job: every thread
