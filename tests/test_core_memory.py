"""core.memory: freed C-heap pages go back to the system."""

import numpy as np

from core.memory import release_free_memory


def _rss() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1])


def test_pages_numpy_freed_in_the_middle_of_the_heap_are_handed_back():
    # 256 MB in 64 KB arrays (below glibc's mmap threshold: they live in the heap), all freed
    # but the last, which pins the heap's top so that glibc cannot shrink it on its own.
    arrays = [np.ones(8_192) for _ in range(4_096)]
    last = arrays.pop()
    del arrays
    before = _rss()
    assert release_free_memory()
    assert before - _rss() > 100 * 2**20 // 4096  # pages: most of the 256 MB came back
    assert last.sum() == 8_192  # what is still held is untouched
