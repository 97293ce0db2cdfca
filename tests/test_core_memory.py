"""core.memory: freed C-heap pages go back to the system."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from core.memory import map_large_allocations, release_free_memory

REPO_ROOT = Path(__file__).resolve().parent.parent


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


def test_large_blocks_freed_go_back_at_once(tmp_path):
    # A fresh interpreter, since glibc's threshold is per process. By default, freeing one
    # 24 MiB array raises glibc's mmap threshold to 24 MiB, so the 8 MiB arrays after it come
    # from the heap, and freed they stay resident (up to twice the threshold). With the
    # threshold fixed below 8 MiB, each has pages of its own and freeing returns them.
    script = tmp_path / "blocks.py"
    script.write_text(
        "import numpy as np\n"
        "from core.memory import map_large_allocations\n"
        "def rss():\n"
        "    return int(open('/proc/self/statm').read().split()[1]) * 4096\n"
        "assert map_large_allocations()\n"
        "big = np.ones(3 << 20); del big\n"
        "before = rss()\n"
        "blocks = [np.ones(1 << 20) for _ in range(10)]\n"
        "del blocks\n"
        "print(rss() - before)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("MALLOC_MMAP_THRESHOLD_", None)
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, check=True)
    assert int(out.stdout) < 4 * 2**20  # the 80 MiB of freed blocks are not resident


def test_an_explicit_environment_setting_wins(monkeypatch):
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    assert not map_large_allocations()
