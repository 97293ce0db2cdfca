"""Landing day → event log rows and quarantined rows. No warehouse here (the fast path
runs its SQL in a private in-memory DuckDB).

Every line read ends up in exactly one of the two lists, so
`lines_read == accepted + quarantined` holds by construction and is checked again
in the warehouse by an asset check.

Two roads, one verdict: `ingest_landing_day` gives a whole day's JSON Lines to the
vectorised fast path (`warehouse.fastpath`), which accepts the plain lines in SQL, and
decides every other line, Parquet row and damaged file with the per-line code below.
`ingest_landing_day_per_line` is that per-line code alone, as it decided every line before
the fast path existed: the reference the fast path is tested against.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from warehouse.accepted import AcceptedRows, as_row
from warehouse.envelope import MAX_LINE_BYTES, InvalidEvent, Window, validate_event
from warehouse.fastpath import fast_accept
from warehouse.landing import RawLine, UnreadableFile, WholeFile, landing_files, read_lines, whole_file
from warehouse.store import RAW_EVENTS_SCHEMA

RAW_TEXT_LIMIT = 4096  # keep enough of a bad line to debug it, not a whole oversized blob
BATCH_LINES = 200_000  # lines per fast-path query: amortises its fixed cost, bounds memory


@dataclass
class IngestResult:
    accepted: list[dict] | AcceptedRows = field(default_factory=list)
    quarantined: list[dict] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def lines_read(self) -> int:
        return len(self.accepted) + len(self.quarantined)

    def reasons(self) -> dict[str, int]:
        return dict(sorted(Counter(q["reason"] for q in self.quarantined).items()))


def _decode(line: RawLine) -> object:
    if isinstance(line.data, dict):
        return line.data
    if len(line.data) > MAX_LINE_BYTES:
        raise InvalidEvent("oversized", f"{len(line.data)} bytes > {MAX_LINE_BYTES}")
    try:
        line.data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidEvent("not_utf8", f"byte {error.start} is not UTF-8") from None
    try:
        value = orjson.loads(line.data)
    except orjson.JSONDecodeError as error:
        raise InvalidEvent("malformed_json", str(error)) from None
    if isinstance(value, (dict, list)) and _may_repeat_a_key(line.data, value):
        _refuse_duplicate_keys(line.data)
    return value


def _may_repeat_a_key(data: bytes, value: dict | list) -> bool:
    """Whether the line may hold a key twice, which orjson silently resolves (last wins).

    Counting colons decides it at C speed for almost every line: outside strings a JSON
    text has exactly one colon per object member, and orjson escapes no colon, so when the
    raw line has no \\u escape (the only way to write a colon without the byte), both texts
    hold the same colons inside strings, and the raw line has more colons exactly when it
    has more members than the parsed value kept. Lines with \\u take the exact path."""
    if b"\\" in data and b"\\u" in data:  # one-byte search first: it is three times faster
        return True
    return data.count(b":") > orjson.dumps(value).count(b":")


class _DuplicateKey(ValueError):
    pass


def _pairs_without_duplicates(pairs: list[tuple[str, object]]) -> dict:
    seen = set()
    for key, _ in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen.add(key)
    return dict(pairs)


def _refuse_duplicate_keys(data: bytes) -> None:
    try:
        json.loads(data, object_pairs_hook=_pairs_without_duplicates)
    except _DuplicateKey as error:
        raise InvalidEvent("malformed_json", f"duplicate key {str(error)[:100]!r}") from None
    except RecursionError:  # orjson's depth limit is above the stdlib parser's
        raise InvalidEvent("malformed_json", "nested too deeply to check for duplicate keys") from None
    except json.JSONDecodeError as error:  # never seen (orjson is the stricter), but not a crash
        raise InvalidEvent("malformed_json", str(error)) from None


def _raw_text(line: RawLine) -> str:
    if isinstance(line.data, dict):
        try:
            return orjson.dumps(line.data, default=str).decode()[:RAW_TEXT_LIMIT]
        except orjson.JSONEncodeError:  # an integer beyond 64 bits, nesting beyond orjson's limit
            return repr(line.data)[:RAW_TEXT_LIMIT]
    return line.data[:RAW_TEXT_LIMIT].decode("utf-8", errors="backslashreplace")


def _printable_name(relative: str) -> str | None:
    """The file name escaped as text when it is not valid UTF-8 (None when it is): such a
    name cannot be stored, and the file is refused whole so that the producer renames it."""
    try:
        relative.encode("utf-8")
    except UnicodeEncodeError:
        return relative.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return None


def ingest_lines(lines, window: Window, result: IngestResult | None = None) -> IngestResult:
    result = result or IngestResult()
    for line in lines:
        try:
            row = validate_event(_decode(line), window)
        except InvalidEvent as error:
            result.quarantined.append(
                {
                    "source_file": line.file,
                    "line_number": line.line_number,
                    "reason": error.reason,
                    "detail": error.detail[:500],
                    "raw_text": _raw_text(line),
                }
            )
            continue
        row["source_file"] = line.file
        row["line_number"] = line.line_number
        result.accepted.append(row)
    return result


def ingest_landing_day(
    landing_root: Path, day: date, con: duckdb.DuckDBPyConnection | None = None
) -> IngestResult:
    """Read and validate every file that landed on `day` (see `ingest_landing_days`)."""
    return next(ingest_landing_days(landing_root, [day], con))[1]


def ingest_landing_days(
    landing_root: Path,
    days: list[date],
    con: duckdb.DuckDBPyConnection | None = None,
    batch_lines: int = BATCH_LINES,
) -> Iterator[tuple[date, IngestResult]]:
    """Each day's result, in order: its JSON Lines files through the fast path (one query for
    a batch of days, as a query costs ~20 ms however few its lines: most of an Online Retail
    day), the lines the fast path does not accept and every other file line by line.

    `con` is a DuckDB connection for the fast path's SQL (a private in-memory one when None);
    not the warehouse: nothing is written to it, but the fast path sets its optimizer
    options (`warehouse.fastpath.fast_accept`)."""
    if con is None:
        with duckdb.connect() as private:
            yield from ingest_landing_days(landing_root, days, private, batch_lines)
        return
    pending: list[_Day] = []
    for day in days:
        pending.append(_read_day(landing_root, day))
        if sum(len(f.ends) for d in pending for f in d.whole) >= batch_lines:
            yield from _decide(con, pending)
            pending = []
    yield from _decide(con, pending)


@dataclass
class _Day:
    day: date
    window: Window
    result: IngestResult
    whole: list[WholeFile]  # the files for the fast path


def _read_day(landing_root: Path, day: date) -> _Day:
    result = IngestResult(accepted=AcceptedRows())
    window = Window.for_landing_day(day)
    whole = []
    for path in landing_files(landing_root, day):
        relative = _admit(path, landing_root, result)
        if relative is None:
            continue
        lines = whole_file(path, relative)
        if lines is None:  # Parquet, or a damaged file
            _ingest_file_per_line(path, landing_root, relative, window, result)
        else:
            whole.append(lines)
    return _Day(day, window, result, whole)


def _decide(con: duckdb.DuckDBPyConnection, days: list[_Day]) -> Iterator[tuple[date, IngestResult]]:
    files = [(d, f) for d in days for f in d.whole]
    if files:
        lines = pa.concat_tables(
            [f.arrow(n, d.window.earliest, d.window.latest) for n, (d, f) in enumerate(files)]
        )
        accepted = fast_accept(con, lines)
        _hand_out(accepted, files)
    for d in days:
        order = {name: n for n, name in enumerate(d.result.files)}
        d.result.quarantined.sort(key=lambda row: (order[row["source_file"]], row["line_number"]))
        yield d.day, d.result


def _hand_out(accepted: pa.Table, files: list[tuple[_Day, WholeFile]]) -> None:
    """The fast path's rows to their days' results; the lines it did not accept, and the
    first it accepted in each file, to the per-line path."""
    index = accepted["file_index"].to_numpy()
    order = np.argsort(index, kind="stable")
    accepted = accepted.take(order).combine_chunks()  # once: then each file's rows are a slice
    bounds = np.searchsorted(index[order], np.arange(len(files) + 1))
    names = pa.array([f.name for _, f in files], pa.string())
    for n, (d, f) in enumerate(files):
        rows = accepted.slice(bounds[n], bounds[n + 1] - bounds[n])
        taken = np.zeros(len(f.ends), dtype=bool)
        taken[rows["line_number"].to_numpy() - 1] = True
        if rows.num_rows:
            columns = {name: rows[name] for name in RAW_EVENTS_SCHEMA.names[:-2]}
            columns["_source_file"] = pc.take(names, rows["file_index"])
            columns["_line_number"] = rows["line_number"]
            table = pa.table(columns).cast(RAW_EVENTS_SCHEMA)
            _check_first(table, f, d.window)
            d.result.accepted.tables.append(table)
        # What the fast path did not accept is decided line by line, exactly as before.
        ingest_lines(
            (RawLine(f.name, int(k) + 1, f.line(int(k) + 1)) for k in np.flatnonzero(~taken)),
            d.window,
            d.result,
        )


class FastPathMismatch(AssertionError):
    """The fast path accepted a line differently from the per-line path: a bug."""


def _check_first(table: pa.Table, whole: WholeFile, window: Window) -> None:
    """Decide the first line the fast path accepted in a file again, line by line, and
    compare: a cheap guard (one line per file) that the two roads still agree, so that a
    change to the envelope that the SQL misses, or a bug in validation, fails the run."""
    first = int(np.argmin(table["_line_number"].to_numpy()))
    fast = as_row(table.slice(first, 1).to_pylist()[0])
    line = RawLine(whole.name, fast["line_number"], whole.line(fast["line_number"]))
    row = validate_event(_decode(line), window)
    row.update(source_file=line.file, line_number=line.line_number)
    text = table["properties"][first].as_py()
    if row != fast or text != (
        None if row["properties"] is None else orjson.dumps(row["properties"]).decode()
    ):
        raise FastPathMismatch(f"{line.file} line {line.line_number}: fast path {fast!r} != per line {row!r}")


def ingest_landing_day_per_line(landing_root: Path, day: date) -> IngestResult:
    """Every line decided in Python, one by one: the reference for `ingest_landing_day`."""
    result = IngestResult()
    window = Window.for_landing_day(day)
    for path in landing_files(landing_root, day):
        relative = _admit(path, landing_root, result)
        if relative is not None:
            _ingest_file_per_line(path, landing_root, relative, window, result)
    return result


def _admit(path: Path, landing_root: Path, result: IngestResult) -> str | None:
    """The file's name relative to the landing root, listed in `result.files`; None (and the
    file refused whole) when the name is not valid UTF-8."""
    relative = path.relative_to(landing_root).as_posix()
    escaped = _printable_name(relative)
    if escaped is None:
        result.files.append(relative)
        return relative
    result.files.append(escaped)
    result.quarantined.append(
        {
            "source_file": escaped,
            "line_number": 1,
            "reason": "unreadable_file",
            "detail": "the file name is not valid UTF-8; rename it (none of its lines were read)",
            "raw_text": "",
        }
    )
    return None


def _ingest_file_per_line(path: Path, landing_root: Path, relative: str, window: Window, result) -> None:
    lines = _CountingLines(read_lines(path, landing_root))
    try:
        ingest_lines(lines, window, result)
    except UnreadableFile as error:
        # A truncated gzip or a corrupt Parquet file: the lines read so far stand, and
        # the unreadable rest is one quarantined entry that names the file and the error.
        result.quarantined.append(
            {
                "source_file": relative,
                "line_number": lines.last + 1,
                "reason": "unreadable_file",
                "detail": str(error)[:500],
                "raw_text": "",
            }
        )


class _CountingLines:
    """Wraps a line iterator and remembers the last line number it handed out."""

    def __init__(self, lines):
        self._lines = lines
        self.last = 0

    def __iter__(self):
        for line in self._lines:
            self.last = line.line_number
            yield line
