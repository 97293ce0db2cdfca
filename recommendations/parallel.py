"""Independent pieces of the nightly work side by side, one thread each.

Most of the recommendation step is LightGBM, LAPACK, scipy.sparse and torch calls, which
release the GIL; each piece runs them on one thread of its own (RankerSettings.threads and
torch_threads keep every library at one OpenMP thread, because their spinning workers cost
more than they save on a shared machine; ALS's fit, two long loops an iteration, is the
exception: collaborative.ALS). Two pieces on two cores then each get a core,
with nothing spinning. Only pieces that are independent and produce the same result in any
order go through here: the output is the same as a serial loop's, in the same order.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import psutil

T = TypeVar("T")
R = TypeVar("R")

# Memory grows with the pieces in flight (a block of shoppers' candidates is ~0.5 GB): past
# four, a large shop would trade its memory budget for little time on a small machine.
MAX_WORKERS = 4
# Pieces side by side may together take at most this share of the memory available when
# they start (a large shop's cut-offs then run one at a time rather than risk the budget).
MEMORY_SHARE = 0.5


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def workers(memory_each: int | None = None) -> int:
    """Threads for independent pieces: the cores this process may use, at most MAX_WORKERS,
    and, given a piece's estimated bytes, no more than fit in MEMORY_SHARE of what is free."""
    count = max(1, min(MAX_WORKERS, cores()))
    if memory_each:
        fit = int(psutil.virtual_memory().available * MEMORY_SHARE // memory_each)
        count = max(1, min(count, fit))
    return count


def map_in_threads(function: Callable[[T], R], items: Iterable[T], memory_each: int | None = None) -> list[R]:
    """`[function(item) for item in items]`, the items side by side (as many as `workers`
    allows for pieces of `memory_each` bytes); the first error raised is raised here."""
    return list(iter_in_threads(function, items, memory_each))


def iter_in_threads(
    function: Callable[[T], R], items: Iterable[T], memory_each: int | None = None
) -> Iterator[R]:
    """`map_in_threads`'s results one at a time, in order, as they are ready: a caller that
    writes each result away holds only the few finished ahead of it, not all of them."""
    items = list(items)
    count = min(workers(memory_each), len(items))
    if count <= 1:
        yield from map(function, items)
        return
    with ThreadPoolExecutor(max_workers=count) as pool:
        yield from pool.map(function, items)
