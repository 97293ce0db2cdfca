"""Handing freed C-heap memory back to the operating system.

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


@functools.cache
def _trim():
    """glibc's malloc_trim, or None where there is none (macOS, musl)."""
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except OSError:
        return None


def release_free_memory() -> bool:
    """Return the C heap's free pages to the system; False where the platform cannot."""
    trim = _trim()
    if trim is None:
        return False
    trim(0)
    return True
