"""Small file-system helpers for crash-safe writes.

A reader must see a file either as it was or as it is after the write, never half of it:
write a temporary file in the same folder (same file system, so the rename is atomic),
fsync it, `os.replace` it over the target, then fsync the folder so the rename itself
survives a power cut.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_utc(moment: datetime) -> str:
    """`2011-12-09T02:00:00.123456Z`: UTC, sortable as text."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)


def dump_json(payload) -> bytes:
    return (json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n").encode()


def atomic_write_json(path: Path, payload) -> None:
    atomic_write_bytes(path, dump_json(payload))
