"""Where the serving files live: a local folder or an S3-compatible bucket, behind one interface.

`serving/` (snapshots, overlays, the pointer, gate records, the history) is written once
against the few operations below; `open_store(root)` picks the place from the serving root,
a folder (`Paths.serving`) or `s3://bucket/prefix` (`SHOPGUIDE_SERVING_URI`, core/settings.py).
Keys are relative, "/"-separated (`snapshots/<id>/manifest.json`).

The two stores keep the same promises by different means (docs/deployment.md, "Object storage"):

- A folder of immutable files appears whole. Locally: written into a hidden `.tmp-*` folder and
  renamed into place (one `os.rename`). An object store has no rename: the files are put first
  and the folder's marker file (`manifest.json`) last, with `If-None-Match: *`, so a folder is
  complete exactly when its marker exists, and a second writer of the same id is refused.
  Listings only name complete folders; readers only follow ids the pointer names.
- The pointer is replaced by one writer at a time, never lost. Locally: an exclusive `flock`
  around read-modify-write, the new file renamed over the old. On S3: read with its ETag, write
  back with `If-Match` on that ETag (`If-None-Match: *` for the first one); a writer that lost
  the race gets `PointerConflict` and changed nothing.
- The history is appended: one JSON line to `history.jsonl` locally; on S3 (no append), one
  object per event under `history/`, named by time so that listing them gives their order.

The S3 store is serving/store_s3.py (boto3, imported only for an s3:// root).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import polars as pl

from core.files import atomic_write_bytes, fsync_dir
from core.settings import is_uri
from serving.errors import ServingError

TEMP_PREFIX = ".tmp-"
LOCK = ".publish.lock"
S3_SCHEME = "s3://"
# Writes one file's content into an open binary file (Parquet straight from polars, so a large
# table is never held twice in memory).
Writer = Callable[[BinaryIO], object]


class StoreError(ServingError):
    """The object store could not be reached or refused a request (bucket, credentials, endpoint)."""


class PointerConflict(ServingError):
    """Another writer replaced the pointer between this writer's read and its write."""


class Store:
    """The operations serving/ needs; `LocalStore` and `S3Store` implement them."""

    root: Path | str

    def describe(self, key: str) -> str:
        """Where `key` is, for messages."""
        raise NotImplementedError

    def read_bytes(self, key: str) -> bytes:
        """The object's bytes; FileNotFoundError when absent."""
        raise NotImplementedError

    def read_parquet(self, key: str) -> pl.DataFrame:
        raise NotImplementedError

    def replace_bytes(self, key: str, data: bytes) -> None:
        """Write `key` whole (a reader sees the old bytes or the new ones)."""
        raise NotImplementedError

    def write_folder(self, prefix: str, name: str, files: dict[str, Writer], marker: str) -> None:
        """Create the immutable folder `prefix/name` holding `files` (`marker` among them),
        visible to `complete_folders` only once every file is there. FileExistsError when a
        complete folder of that name exists."""
        raise NotImplementedError

    def complete_folders(self, prefix: str, marker: str) -> list[str]:
        """Names of the folders under `prefix` that hold `marker` (complete ones), unsorted."""
        raise NotImplementedError

    def folder_time(self, key: str, marker: str) -> float:
        """When the complete folder `key` appeared, as a Unix time: a local folder's rename,
        or when its marker (put last) was written on an object store."""
        raise NotImplementedError

    def remove_folder(self, key: str, ignore_errors: bool = False) -> None:
        raise NotImplementedError

    def sweep_incomplete(self, prefix: str, marker: str, older_than_s: float) -> list[str]:
        """Remove what writers killed mid-write left under `prefix` (only older than
        `older_than_s`: a live writer's files are young). Returns the names removed."""
        raise NotImplementedError

    def pointer_update(self, key: str) -> contextlib.AbstractContextManager[PointerUpdate]:
        """A read-modify-write of `key`: `.data` is what it holds (None when absent);
        `.replace(data)` writes it unless another writer got there first."""
        raise NotImplementedError

    def append_line(self, key: str, line: str) -> None:
        raise NotImplementedError

    def read_lines(self, key: str, limit: int | None = None) -> list[str]:
        """The lines appended to `key`, oldest first (the last `limit`); [] when none."""
        raise NotImplementedError

    def __str__(self) -> str:
        return str(self.root)


class PointerUpdate:
    def __init__(self, data: bytes | None):
        self.data = data

    def replace(self, data: bytes) -> None:
        raise NotImplementedError


def open_store(root: Store | Path | str) -> Store:
    """The store of a serving root: a Store as is, `s3://bucket/prefix`, or a folder."""
    if isinstance(root, Store):
        return root
    text = str(root)
    if text.startswith(S3_SCHEME):
        from serving.store_s3 import S3Store  # boto3 is imported only for an s3:// root

        return S3Store(text)
    if is_uri(text):
        raise ServingError(
            f"serving root {text}: only s3:// object stores (or S3-compatible ones) are supported; "
            "set SHOPGUIDE_SERVING_URI to s3://bucket/prefix, or unset it to use SHOPGUIDE_HOME/serving."
        )
    return LocalStore(Path(root))


def parquet_writer(df: pl.DataFrame) -> Writer:
    return lambda handle: df.write_parquet(handle, compression="zstd")


def bytes_writer(data: bytes) -> Writer:
    return lambda handle: handle.write(data)


# the local folder --------------------------------------------------------------------------


class LocalStore(Store):
    def __init__(self, root: Path):
        self.root = Path(root)

    def describe(self, key: str) -> str:
        return str(self.root / key)

    def read_bytes(self, key: str) -> bytes:
        return (self.root / key).read_bytes()

    def read_parquet(self, key: str) -> pl.DataFrame:
        return pl.read_parquet(self.root / key)

    def replace_bytes(self, key: str, data: bytes) -> None:
        atomic_write_bytes(self.root / key, data)

    def write_folder(self, prefix: str, name: str, files: dict[str, Writer], marker: str) -> None:
        parent = self.root / prefix
        parent.mkdir(parents=True, exist_ok=True)
        final = parent / name
        if final.exists():
            raise FileExistsError(str(final))
        temp = parent / f"{TEMP_PREFIX}{name}-{uuid.uuid4().hex[:8]}"
        temp.mkdir()
        try:
            for file_name, write in files.items():
                _write_read_only(temp / file_name, write)
            fsync_dir(temp)
            try:
                # Fails with ENOTEMPTY/EEXIST if another writer got there first: never overwrites.
                os.rename(temp, final)
            except OSError:
                if final.exists():
                    raise FileExistsError(str(final)) from None
                raise
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
        fsync_dir(parent)

    def complete_folders(self, prefix: str, marker: str) -> list[str]:
        parent = self.root / prefix
        if not parent.is_dir():
            return []
        return [
            e.name for e in parent.iterdir() if not e.name.startswith(TEMP_PREFIX) and (e / marker).is_file()
        ]

    def folder_time(self, key: str, marker: str) -> float:
        return (self.root / key).stat().st_mtime

    def remove_folder(self, key: str, ignore_errors: bool = False) -> None:
        shutil.rmtree(self.root / key, ignore_errors=ignore_errors)

    def sweep_incomplete(self, prefix: str, marker: str, older_than_s: float) -> list[str]:
        # Locally an incomplete folder is a hidden temporary one: the rename never happened.
        parent = self.root / prefix
        if not parent.is_dir():
            return []
        removed = []
        cutoff = time.time() - older_than_s
        for entry in parent.iterdir():
            if entry.name.startswith(TEMP_PREFIX) and entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry.name)
        return removed

    @contextlib.contextmanager
    def pointer_update(self, key: str) -> Iterator[PointerUpdate]:
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                data = (self.root / key).read_bytes()
            except FileNotFoundError:
                data = None
            yield _LocalPointerUpdate(self.root / key, data)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def append_line(self, key: str, line: str) -> None:
        with open(self.root / key, "a") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def read_lines(self, key: str, limit: int | None = None) -> list[str]:
        try:
            lines = [line for line in (self.root / key).read_text().splitlines() if line.strip()]
        except FileNotFoundError:
            return []
        return lines[-limit:] if limit else lines


class _LocalPointerUpdate(PointerUpdate):
    def __init__(self, path: Path, data: bytes | None):
        super().__init__(data)
        self.path = path

    def replace(self, data: bytes) -> None:
        atomic_write_bytes(self.path, data)  # under the flock: no other writer in between


def _write_read_only(path: Path, write: Writer) -> None:
    with open(path, "wb") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(path, 0o444)  # immutable by convention and by permission
