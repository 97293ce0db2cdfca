"""Loads that can run ahead on a spare core while a step only waits on another process.

A nightly run on a small machine spends seconds importing libraries and loading models that
its later steps need, and, during the dbt step, this process does little but wait for dbt's
own process, which leaves much of a core idle. `alongside` runs such loads in a thread for
the duration of a block and waits for them when the block ends, so that no later step meets
a half-finished load (the caches the loads fill are not locked). A load that fails is logged
and forgotten: the step that needs the thing loads it again and reports the error itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class Preloads:
    """What ran in the background: seconds per load, and the loads that failed."""

    seconds: dict[str, float] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def describe(self) -> dict:
        return {"seconds": {k: round(v, 2) for k, v in self.seconds.items()}, "failed": dict(self.failed)}


@contextmanager
def alongside(loads: Sequence[tuple[str, Callable[[], object]]]) -> Iterator[Preloads]:
    """Run the named `loads` one after another in a background thread while the block runs;
    wait for the last of them before leaving the block (also when it raises)."""
    done = Preloads()
    if not loads:
        yield done
        return

    def run() -> None:
        for name, load in loads:
            started = time.perf_counter()
            try:
                load()
            except Exception as error:  # noqa: BLE001: an optimisation; the step that needs it reports it
                done.failed[name] = f"{type(error).__name__}: {error}"
                log.warning("preloading %s failed (its step will load it again): %s", name, error)
            done.seconds[name] = time.perf_counter() - started

    thread = threading.Thread(target=run, name="preload", daemon=True)
    thread.start()
    try:
        yield done
    finally:
        thread.join()
