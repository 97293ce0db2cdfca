"""Landing day → event log rows and quarantined rows. Pure: no database here.

Every line read ends up in exactly one of the two lists, so
`lines_read == accepted + quarantined` holds by construction and is checked again
in the warehouse by an asset check.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import orjson
from pyarrow import ArrowException

from warehouse.envelope import MAX_LINE_BYTES, InvalidEvent, Window, validate_event
from warehouse.landing import RawLine, landing_files, read_lines

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
        return orjson.loads(line.data)
    except orjson.JSONDecodeError as error:
        raise InvalidEvent("malformed_json", str(error)) from None


def _raw_text(line: RawLine) -> str:
    if isinstance(line.data, dict):
        return orjson.dumps(line.data, default=str).decode()[:RAW_TEXT_LIMIT]
    return line.data[:RAW_TEXT_LIMIT].decode("utf-8", errors="backslashreplace")


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
        result.files.append(relative)
        lines = _CountingLines(read_lines(path, landing_root))
        try:
            ingest_lines(lines, window, result)
        except (OSError, EOFError, ValueError, ArrowException) as error:
            # A truncated gzip or a corrupt Parquet file: the lines read so far stand, and
            # the unreadable rest is one quarantined entry that names the file and the error.
            result.quarantined.append(
                {
                    "source_file": relative,
                    "line_number": lines.last + 1,
                    "reason": "unreadable_file",
                    "detail": f"{type(error).__name__}: {error}"[:500],
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
