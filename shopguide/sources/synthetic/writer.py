"""Landing: routes each day's envelopes to landing days and writes one file per day.

Landing quirks the ingester has to cope with: late events (land 1-3 days after they
occurred), duplicates (same event_id, byte-identical payload, same or a later landing
day) and, in JSON Lines only, malformed extra lines of five kinds. Files are written
under a temporary name and renamed into place.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import orjson

from core.files import atomic_path
from shopguide.sources.synthetic.config import DAY, FILE_STEM, SyntheticConfig, SyntheticSummary
from shopguide.sources.synthetic.sampling import categorical
from shopguide.sources.synthetic.simulation import DayColumns
from warehouse.envelope import EVENT_TYPES
from warehouse.landing import day_folder, write_jsonl


class LandingWriter:
    """Routes each day's payloads to landing days (late, duplicated) and writes the files."""

    def __init__(
        self,
        landing_root: Path,
        config: SyntheticConfig,
        fmt: str,
        rng: np.random.Generator,
        next_malformed: int = 1,
    ):
        """`next_malformed` numbers the bad lines' ids where a continued shop left off."""
        self.root = landing_root
        self.config = config
        self.fmt = fmt
        self.rng = rng
        self.pending: dict[int, list[tuple[float, object]]] = {}
        self.summary = SyntheticSummary(by_type={name: 0 for name in EVENT_TYPES})
        self.next_malformed = next_malformed

    def add_day(self, rng: np.random.Generator, day: int, columns: DayColumns, payloads: list) -> None:
        n = len(payloads)
        config, summary = self.config, self.summary
        summary.events += n
        for code, count in zip(*np.unique(columns.etype, return_counts=True), strict=True):
            summary.by_type[EVENT_TYPES[code]] += int(count)
        late = rng.random(n) < config.late_share
        landing = day + np.where(late, rng.integers(1, 4, n), 0)
        summary.late += int(late.sum())
        duplicate = np.flatnonzero(rng.random(n) < config.duplicate_share)
        dup_landing = landing[duplicate] + categorical(rng, (0.6, 0.25, 0.15), len(duplicate))
        summary.duplicates += len(duplicate)
        extra_keys = rng.random(int(late.sum()) + len(duplicate)) * DAY
        moved = [(int(landing[i]), i) for i in np.flatnonzero(late).tolist()]
        moved += [(int(d), int(i)) for d, i in zip(dup_landing.tolist(), duplicate.tolist(), strict=True)]
        for key, (target, i) in zip(extra_keys.tolist(), moved, strict=True):
            self.pending.setdefault(target, []).append((key, payloads[i]))
        on_time = np.flatnonzero(~late)
        keys = columns.time[on_time].astype(float).tolist()
        self._write(day, list(zip(keys, (payloads[i] for i in on_time.tolist()), strict=True)), rng)

    def finish(self) -> SyntheticSummary:
        """Flush landing days after the last day (late lines and duplicates only)."""
        for target in sorted(self.pending):
            self._write(target, [], self.rng)
        return self.summary

    def _write(self, landing: int, lines: list[tuple[float, object]], rng: np.random.Generator) -> None:
        lines = lines + self.pending.pop(landing, [])
        if not lines:
            return
        keys = np.array([key for key, _ in lines])
        payloads = [payload for _, payload in lines]
        landing_day = self.config.start_date + timedelta(days=landing)
        if self.fmt == "jsonl":
            bad = self._malformed(
                rng,
                landing_day,
                int(rng.binomial(len(lines), self.config.malformed_share)),
                payloads,
            )
            keys = np.concatenate([keys, rng.random(len(bad)) * DAY])
            payloads += bad
            self.summary.malformed += len(bad)
        order = np.argsort(keys, kind="stable").tolist()
        ordered = [payloads[i] for i in order]
        folder = day_folder(self.root, landing_day)
        if self.fmt == "jsonl":
            path = folder / f"{FILE_STEM}.jsonl"
            write_jsonl(path, ordered)
        else:
            path = folder / f"{FILE_STEM}.parquet"
            _write_parquet(path, ordered)
        self.summary.files.append(path)
        self.summary.days += 1

    def _malformed(self, rng, landing_day: date, count: int, payloads: list[bytes]) -> list[bytes]:
        """Bad lines of five kinds, each failing the envelope for its own reason."""
        out = []
        kinds = rng.integers(0, 5, count).tolist()
        sources = rng.integers(0, len(payloads), count).tolist()
        for kind, source in zip(kinds, sources, strict=True):
            out.append(_malformed_line(kind, payloads[source], f"M{self.next_malformed:09d}", landing_day))
            self.next_malformed += 1
        return out


def _malformed_line(kind: int, template: bytes, bad_id: str, landing_day: date) -> bytes:
    """Kind 0 truncated JSON, 1 unknown type, 2 missing event_id, 3 zone-less time, 4 Latin-1."""
    if kind == 0:
        return template[: max(1, len(template) // 2)]
    record = orjson.loads(template)
    record["event_id"] = bad_id
    if kind == 1:
        record["event_type"] = ("wishlist_add", "page_ping", "checkout_started")[len(template) % 3]
    elif kind == 2:
        del record["event_id"]
    elif kind == 3:
        record["occurred_at"] = f"{landing_day.isoformat()} {record['occurred_at'][11:19]}"
    else:
        record["event_type"] = "search"
        record["product_id"] = None
        record["query"] = "CAFE_PLACEHOLDER"
        return orjson.dumps(record).replace(b"CAFE_PLACEHOLDER", "caf\u00e9 cr\u00e8me".encode("latin-1"))
    return orjson.dumps(record)


PROPERTY_FIELDS = (
    "country",
    "device",
    "title",
    "description",
    "category",
    "brand",
    "reason",
    "purchase_event_id",
)


def _parquet_schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("event_id", pa.string()),
            ("event_type", pa.string()),
            ("occurred_at", pa.string()),
            ("user_id", pa.string()),
            ("session_id", pa.string()),
            ("product_id", pa.string()),
            ("quantity", pa.int64()),
            ("price", pa.float64()),
            ("currency", pa.string()),
            ("query", pa.string()),
            ("properties", pa.struct([(name, pa.string()) for name in PROPERTY_FIELDS])),
        ]
    )


def _write_parquet(path: Path, rows: list[dict]) -> None:
    """Valid events only; properties as a struct so `to_pylist()` gives dicts back."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows, schema=_parquet_schema())
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
