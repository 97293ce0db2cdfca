"""recommendations.parallel: side by side, but the same result as a serial loop."""

import threading
import time

import pytest

from recommendations import parallel


def test_results_come_back_in_the_order_of_the_items_whatever_finishes_first():
    def slow_for_small(n: int) -> int:
        time.sleep(0.02 * (5 - n))  # the first items finish last
        return n * n

    assert parallel.map_in_threads(slow_for_small, range(5)) == [0, 1, 4, 9, 16]


def test_items_run_on_several_threads_when_the_machine_has_cores(monkeypatch):
    monkeypatch.setattr(parallel, "workers", lambda memory_each=None: 2)
    both_started = threading.Barrier(2, timeout=5)

    def wait_for_the_other(n: int) -> str:
        both_started.wait()  # would time out (BrokenBarrierError) if run one after the other
        return threading.current_thread().name

    names = parallel.map_in_threads(wait_for_the_other, [1, 2])
    assert len(set(names)) == 2


def test_one_worker_runs_in_the_calling_thread(monkeypatch):
    monkeypatch.setattr(parallel, "workers", lambda memory_each=None: 1)
    here = threading.current_thread().name
    assert parallel.map_in_threads(lambda _: threading.current_thread().name, [1, 2, 3]) == [here] * 3


def test_an_error_in_one_item_is_raised_to_the_caller(monkeypatch):
    monkeypatch.setattr(parallel, "workers", lambda memory_each=None: 2)

    def fails_on_two(n: int) -> int:
        if n == 2:
            raise ValueError("item 2")
        return n

    with pytest.raises(ValueError, match="item 2"):
        parallel.map_in_threads(fails_on_two, [1, 2, 3])


def test_workers_are_bounded_by_the_cores_and_the_memory_cap():
    assert 1 <= parallel.workers() <= parallel.MAX_WORKERS


def test_pieces_too_big_for_half_the_free_memory_run_one_at_a_time(monkeypatch):
    free = type("Memory", (), {"available": 8 * 2**30})()
    monkeypatch.setattr(parallel.psutil, "virtual_memory", lambda: free)
    monkeypatch.setattr(parallel.os, "sched_getaffinity", lambda _: set(range(8)))
    assert parallel.workers() == parallel.MAX_WORKERS
    assert parallel.workers(memory_each=1 * 2**30) == parallel.MAX_WORKERS  # 4 GB of 8 fit
    assert parallel.workers(memory_each=2 * 2**30) == 2
    assert parallel.workers(memory_each=5 * 2**30) == 1  # never fewer than one
    here = threading.current_thread().name
    names = parallel.map_in_threads(lambda _: threading.current_thread().name, [1, 2], memory_each=5 * 2**30)
    assert names == [here, here]


def test_results_one_at_a_time_come_in_order_before_the_last_item_is_done(monkeypatch):
    # The user table's blocks are written away as they come: the first result must be
    # handed over while later items still run, in the items' order whatever finishes first.
    monkeypatch.setattr(parallel, "workers", lambda memory_each=None: 2)
    first_taken = threading.Event()

    def last_waits_for_the_first_to_be_taken(n: int) -> int:
        if n == 3:
            assert first_taken.wait(timeout=5)
        else:
            time.sleep(0.02 * (3 - n))
        return n * n

    results = parallel.iter_in_threads(last_waits_for_the_first_to_be_taken, range(4))
    assert next(results) == 0
    first_taken.set()
    assert list(results) == [1, 4, 9]
