"""core.background.alongside: loads run in another thread during a block, and are over when it ends."""

import threading

import pytest

from core.background import alongside


def test_loads_run_in_another_thread_while_the_block_runs_and_are_done_when_it_ends():
    block_started = threading.Event()
    seen = []

    def load():
        assert block_started.wait(timeout=30)  # runs while the block is still running
        seen.append(threading.current_thread().name)

    with alongside([("model", load)]) as preloaded:
        block_started.set()
    assert seen == ["preload"] and threading.current_thread().name != "preload"
    assert set(preloaded.seconds) == {"model"} and preloaded.failed == {}


def test_a_failed_load_is_recorded_and_the_next_one_still_runs():
    loaded = []

    def broken():
        raise OSError("no such model folder")

    with alongside([("broken", broken), ("next", lambda: loaded.append("next"))]) as preloaded:
        pass
    assert preloaded.failed == {"broken": "OSError: no such model folder"}
    assert loaded == ["next"] and set(preloaded.seconds) == {"broken", "next"}


def test_the_loads_are_waited_for_when_the_block_raises():
    release = threading.Event()
    finished = []

    def slow():
        release.wait(timeout=30)
        finished.append(True)

    with pytest.raises(RuntimeError, match="dbt failed"):
        with alongside([("slow", slow)]):
            release.set()
            raise RuntimeError("dbt failed")
    assert finished == [True]


def test_no_loads_start_no_thread(monkeypatch):
    import core.background

    def no_thread(*args, **kwargs):
        raise AssertionError("a thread was started for no loads")

    monkeypatch.setattr(core.background.threading, "Thread", no_thread)
    with alongside([]) as preloaded:
        pass
    assert preloaded.describe() == {"seconds": {}, "failed": {}}
