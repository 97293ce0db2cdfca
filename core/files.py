"""Crash-safe file writes: the one way this project replaces a file that others read.

A reader must see a file either as it was or as it is after the write, never half of it:
write a temporary file in the same folder (same file system, so the rename is atomic),
fsync it, `os.replace` it over the target, then fsync the folder so the rename itself
survives a power cut.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` for the block to write (with any writer: gzip, Parquet,
    plain bytes); when the block ends, it replaces `path` in one rename. On an error the
    temporary file is removed and `path` is left as it was.

    The temporary name is hidden (`.name.<random>.tmp`): readers of a folder (the landing
    reader among them) skip hidden files as work in progress, and the random part keeps two
    writers of the same file from writing into each other's temporary file. The writer
    creates the file, so it gets the usual permissions (the umask), like any other file."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def dump_json(payload) -> bytes:
    return (json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n").encode()


def atomic_write_json(path: Path, payload) -> None:
    atomic_write_bytes(path, dump_json(payload))
