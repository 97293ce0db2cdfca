"""Handing freed C-heap memory back to the operating system, and keeping large blocks out
of the heap in the first place.

Why: numpy, scipy and LightGBM allocate through glibc's malloc, which keeps what they free in
its arenas (one per thread that allocated) for reuse instead of returning it. After the
per-user table's blocks (two worker threads, ~0.5 GB of candidates and features each, fifty
times over at a million shoppers) those arenas held freed memory that counted in the step's
peak RSS while the table was gated and written. `malloc_trim` returns the free pages of every
arena; it changes no value, only what the process keeps resident.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os

M_MMAP_THRESHOLD = -3  # mallopt's parameter number (glibc's malloc.h)
# Blocks from this size up get pages of their own, returned when freed. Measured with
# bench/bench_publish.py on the 1M-event home (a fresh process, the ranker trained): peak RSS
# 1.93-2.06 GiB by default, 1.57 GiB at 4 MiB (the same CPU seconds, 89.8 against
# 87.8-90.9), 1.52 GiB at 1 MiB (+3 % CPU), 1.51 GiB at 128 KiB (+5 %: a page fault for
# every page of every block past it).
LARGE_BLOCK_BYTES = 4 << 20


@functools.cache
def _libc():
    """glibc, or None where there is none (macOS, musl)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


def release_free_memory() -> bool:
    """Return the C heap's free pages to the system; False where the platform cannot."""
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


def map_large_allocations(threshold: int = LARGE_BLOCK_BYTES) -> bool:
    """Serve every block of `threshold` bytes or more from pages of its own (glibc's mmap
    threshold, fixed), so that freeing it gives the memory back at once.

    Why: by default glibc raises the threshold to the size of each mapped block freed, up to
    32 MiB. After the first few large numpy arrays, every array up to 32 MiB comes from the
    heap and, freed, stays there, scattered between live ones where neither reuse nor
    `malloc_trim` reclaims it all; a long run's RSS grows to the sum of its steps' worst
    moments. An explicit MALLOC_MMAP_THRESHOLD_ in the environment wins. False where the
    platform has no glibc or refused the value. Changes no result, only what is resident."""
    libc = _libc()
    if libc is None or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, threshold))
