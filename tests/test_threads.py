"""The per-subject thread pool (solver.thread_map)."""

import multiprocessing
import threading
import time

import pytest

from sharedrep import solver


def test_results_in_order_and_nested_calls_run_in_the_worker():
    outer_threads = set()

    def inner(x):
        return (x, threading.current_thread().name)

    def outer(x):
        outer_threads.add(threading.current_thread().name)
        res = solver.thread_map(inner, [x, x + 1, x + 2])
        # nested work stays in the calling worker: no pool inside the pool
        assert {name for _, name in res} == {threading.current_thread().name}
        return [v for v, _ in res]

    got = solver.thread_map(outer, list(range(10)))
    assert got == [[x, x + 1, x + 2] for x in range(10)]
    if solver._n_workers(10) > 1:
        assert all(name.startswith("sharedrep") for name in outer_threads)


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
        solver.thread_map(func, list(range(8)))
    n_done = len(finished)
    time.sleep(0.05)
    assert len(finished) == n_done  # nothing still running after the raise
    assert solver.thread_map(lambda x: 2 * x, [1, 2, 3]) == [2, 4, 6]  # pool still usable


def _child(queue):
    queue.put(solver.thread_map(lambda x: x * x, list(range(6))))


def test_forked_child_gets_its_own_threads():
    solver.thread_map(abs, [-1, -2, -3])  # the parent's pool exists
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
