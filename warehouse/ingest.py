"""Landing day → event log rows and quarantined rows. Pure: no database here.

Every line read ends up in exactly one of the two lists, so
`lines_read == accepted + quarantined` holds by construction and is checked again
in the warehouse by an asset check.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import orjson

from warehouse.envelope import MAX_LINE_BYTES, InvalidEvent, Window, validate_event
from warehouse.landing import RawLine, UnreadableFile, landing_files, read_lines

RAW_TEXT_LIMIT = 4096  # keep enough of a bad line to debug it, not a whole oversized blob


@dataclass
class IngestResult:
    accepted: list[dict] = field(default_factory=list)
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


def ingest_landing_day(landing_root: Path, day: date) -> IngestResult:
    """Read and validate every file that landed on `day`."""
    result = IngestResult()
    window = Window.for_landing_day(day)
    for path in landing_files(landing_root, day):
        relative = path.relative_to(landing_root).as_posix()
        escaped = _printable_name(relative)
        if escaped is not None:
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
            continue
        result.files.append(relative)
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
    return result


class _CountingLines:
    """Wraps a line iterator and remembers the last line number it handed out."""

    def __init__(self, lines):
        self._lines = lines
        self.last = 0

    def __iter__(self):
        for line in self._lines:
            self.last = line.line_number
            yield line
