"""The landing area: one folder per landing day, any number of files in it.

    $SHOPGUIDE_HOME/landing/2011-03-14/<any-name>.jsonl      one JSON object per line
    $SHOPGUIDE_HOME/landing/2011-03-14/<any-name>.jsonl.gz   the same, gzipped
    $SHOPGUIDE_HOME/landing/2011-03-14/<any-name>.parquet    one event per row

The folder is the *landing* day (when the data arrived), not the day the events
occurred: late events land in a later folder and carry their true `occurred_at`.
Producers write a file under a temporary name and rename it into place, so a
reader never sees half a file (see `write_jsonl`).
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa

from core.errors import BadInput
from core.files import atomic_path

LANDING_SUFFIXES = (".jsonl", ".jsonl.gz", ".parquet")


@dataclass(frozen=True)
class RawLine:
    """One line (or Parquet row) as it arrived, before any validation."""

    file: str  # relative to the landing root, e.g. "2011-03-14/online_retail.jsonl.gz"
    line_number: int  # 1-based
    data: bytes | dict  # bytes for JSON Lines, a dict for a Parquet row


def day_folder(landing_root: Path, day: date) -> Path:
    return landing_root / day.isoformat()


def landing_files(landing_root: Path, day: date) -> list[Path]:
    folder = day_folder(landing_root, day)
    if not folder.is_dir():
        return []
    # Hidden files are producers' work in progress (core.files.atomic_path's ".name.*.tmp").
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.name.endswith(LANDING_SUFFIXES) and not p.name.startswith(".")
    )


def landing_days(landing_root: Path) -> list[date]:
    """Every landing day that has at least one file, in order."""
    days = []
    if not landing_root.is_dir():
        return days
    for folder in landing_root.iterdir():
        try:
            day = date.fromisoformat(folder.name)
        except ValueError:
            continue
        if landing_files(landing_root, day):
            days.append(day)
    return sorted(days)


def landing_days_between(landing_root: Path, first: date, last: date) -> list[date]:
    """The landing days from `first` to `last` (inclusive) that have at least one file."""
    days = (first + timedelta(days=n) for n in range((last - first).days + 1))
    return [day for day in days if landing_files(landing_root, day)]


class UnreadableFile(BadInput):
    """A landing file that cannot be read on (a truncated or corrupt gzip, a corrupt Parquet
    file): the lines read before the damage stand."""


def read_errors() -> tuple[type[Exception], ...]:
    """What reading a damaged file raises: gzip's OSError, EOFError and zlib.error, Arrow's
    errors, and ValueError (ArrowInvalid is one, and so is a Parquet value that does not
    convert to Python). Caught only around the reading: an error in what a
    caller does with a line (validation, say) is a bug and must not pass for a damaged file."""
    from pyarrow import ArrowException  # pyarrow loads only where Parquet is read

    return (OSError, EOFError, zlib.error, ValueError, ArrowException)


def read_lines(path: Path, landing_root: Path) -> Iterator[RawLine]:
    """Every line (or Parquet row) of one landing file, numbered from 1; `UnreadableFile`
    when the file turns out to be damaged, after the lines read before the damage."""
    relative = path.relative_to(landing_root).as_posix()
    try:
        yield from _read_lines(path, relative)
    except read_errors() as error:
        raise UnreadableFile(f"{type(error).__name__}: {error}") from error


def _read_lines(path: Path, relative: str) -> Iterator[RawLine]:
    if path.name.endswith(".parquet"):
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        for number, row in enumerate(table.to_pylist(), start=1):
            yield RawLine(relative, number, row)
        return
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            yield RawLine(relative, number, line.rstrip(b"\r\n"))


@dataclass
class WholeFile:
    """A JSON Lines file read to its end and split into lines without a Python loop: line k
    (1-based) is data[offsets[k-1]:ends[k-1]], split exactly where `read_lines` splits
    (after each b"\n") and trimmed as it trims (rstrip(b"\r\n"))."""

    name: str  # relative to the landing root
    data: bytes
    offsets: np.ndarray  # int64, n + 1: where each line starts, its line end included
    ends: np.ndarray  # int64, n: where each line's content ends
    utf8: np.ndarray  # bool, n: whether the line decodes as UTF-8

    def line(self, number: int) -> bytes:
        return self.data[self.offsets[number - 1] : self.ends[number - 1]]

    def arrow(self, index: int, earliest: datetime, latest: datetime) -> pa.Table:
        """The lines as Arrow columns over the file's own bytes (no copy), for the fast path;
        `raw` keeps each line's line end, which JSON reads as whitespace."""
        n = len(self.ends)
        raw = pa.LargeBinaryArray.from_buffers(
            pa.large_binary(), n, [None, pa.py_buffer(self.offsets), pa.py_buffer(self.data)]
        )
        moment = pa.timestamp("us")
        return pa.table(
            {
                "file_index": pa.array(np.full(n, index, dtype=np.int32)),
                "line_number": pa.array(np.arange(1, n + 1, dtype=np.int64)),
                "nbytes": pa.array(self.ends - self.offsets[:-1]),
                "utf8": pa.array(self.utf8),
                "earliest": pa.array(np.full(n, np.datetime64(earliest.replace(tzinfo=None), "us")), moment),
                "latest": pa.array(np.full(n, np.datetime64(latest.replace(tzinfo=None), "us")), moment),
                "raw": raw,
            }
        )


def whole_file(path: Path, name: str) -> WholeFile | None:
    """A JSON Lines file as a `WholeFile`; None when it must be read line by line instead:
    Parquet, or a file that does not read to its end (a damaged gzip, whose lines before
    the damage `read_lines` hands out before raising)."""
    if path.name.endswith(".parquet"):
        return None
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except read_errors():
        return None
    buffer = np.frombuffer(data, dtype=np.uint8)
    offsets = np.concatenate([[0], np.flatnonzero(buffer == ord("\n")) + 1]).astype(np.int64)
    if offsets[-1] != len(data):  # a last line without a line end is a line too
        offsets = np.append(offsets, np.int64(len(data)))
    starts, ends = offsets[:-1], offsets[1:].copy()
    for byte in (b"\n", b"\r"):  # one "\n" ends a line; any "\r"s before it go too
        while True:
            trailing = ends > starts
            trailing[trailing] = buffer[ends[trailing] - 1] == ord(byte)
            if not trailing.any():
                break
            ends -= trailing
            if byte == b"\n":
                break
    try:
        data.decode("utf-8")
        utf8 = np.ones(len(ends), dtype=bool)
    except UnicodeDecodeError:  # rare: find the lines that are not, for the per-line path
        utf8 = np.array([_decodes(data[a:b]) for a, b in zip(starts, ends, strict=True)], dtype=bool)
    return WholeFile(name, data, offsets, ends, utf8)


def _decodes(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def write_jsonl(path: Path, records: Iterable[dict | bytes]) -> int:
    """Write records atomically (temp file + rename); bytes are written as they are."""
    path.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if path.name.endswith(".gz") else open
    count = 0
    with atomic_path(path) as tmp, opener(tmp, "wb") as handle:
        for record in records:
            handle.write(record if isinstance(record, bytes) else orjson.dumps(record))
            handle.write(b"\n")
            count += 1
    return count
