"""Immutable snapshots of the recommendation tables: what a storefront reads.

Why files and not the warehouse: the pipeline's DuckDB file cannot be opened by any reader
while a run writes it (../shared/STACK.md, "DuckDB locking"). So each publish candidate is
copied out to `root/snapshots/<snapshot_id>/`: one Parquet file per table plus
`manifest.json`. Nothing ever rewrites those files, so a reader that picked a snapshot keeps
a consistent view however many versions are published meanwhile.

Complete or absent: in a local folder a snapshot is written into a hidden temporary folder
next to the final one and renamed into place in one `os.rename`; a crash leaves at most a
`.tmp-*` folder. On an object store (no rename) the Parquet files are put first and
`manifest.json` last, only if absent; a crash leaves files without a manifest. Either way
`list_snapshots` ignores the leftovers and `sweep_temp` removes them once old (serving/store.py).
`gate.json`, written later by `serving.publish`, is the one mutable sidecar of a snapshot
folder; Parquet files and the manifest are made read-only.

Checksums are order-independent (sum of per-row hashes modulo 2**64, as in
warehouse/status.py) so the same rows in another order give the same checksum and a
duplicated row changes it. They must stay comparable across years and library upgrades:
serving/checksum.py defines them by BLAKE2b and bit patterns only, computed by columns.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path

import polars as pl

from core.clock import iso_utc, utc_now
from core.frames import sorted_by
from serving.checksum import table_checksum
from serving.errors import ServingError, SnapshotExists, SnapshotNotFound
from serving.store import TEMP_PREFIX, bytes_writer, open_store, parquet_writer  # noqa: F401 - TEMP_PREFIX re-exported

# 2: checksums by serving/checksum.py's columnar rule (1: BLAKE2b of each row's JSON text).
FORMAT_VERSION = 2
SNAPSHOTS_DIR = "snapshots"
MANIFEST = "manifest.json"
SNAPSHOT_ID_PATTERN = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")
TABLE_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")

# The contract with the storefront: columns and types of the published tables. Known
# columns are cast to these types (so Int32 vs Int64 upstream does not change checksums)
# and written first, in this order; extra columns are kept after them.
SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "user_recommendations": {
        "user_id": pl.String,
        "rank": pl.Int64,
        "product_id": pl.String,
        "score": pl.Float64,
        "content_score": pl.Float64,
        "graph_score": pl.Float64,
        "popularity_score": pl.Float64,
        "reason": pl.String,
        "source": pl.String,
    },
    "similar_products": {
        "product_id": pl.String,
        "rank": pl.Int64,
        "similar_product_id": pl.String,
        "score": pl.Float64,
        "content_score": pl.Float64,
        "cooccurrence_score": pl.Float64,
        "reason": pl.String,
        "source": pl.String,
    },
    "popular_products": {
        "list": pl.String,
        "segment_type": pl.String,
        "segment": pl.String,
        "window_days": pl.Int64,
        "rank": pl.Int64,
        "product_id": pl.String,
        "score": pl.Float64,
        "reason": pl.String,
    },
    "products": {
        "product_id": pl.String,
        "title": pl.String,
        "category_path": pl.String,
        "price": pl.Float64,
    },
}
REQUIRED_TABLES = tuple(SCHEMAS)
# Sort order on disk: the grain. Deterministic files, and readers can binary-search.
SORT_KEYS = {
    "user_recommendations": ["user_id", "rank"],
    "similar_products": ["product_id", "rank"],
    "popular_products": ["list", "segment_type", "segment", "window_days", "rank"],
    "products": ["product_id"],
}
KNOWN_MANIFEST_FIELDS = ("partition_date", "embedding_version", "model_fingerprint", "config")


@dataclass(frozen=True)
class SnapshotManifest:
    """What `manifest.json` holds. `extra` keeps caller fields this version does not know."""

    snapshot_id: str
    created_at: str
    partition_date: str | None
    row_counts: dict[str, int]
    checksums: dict[str, str]
    columns: dict[str, dict[str, str]]
    content_checksum: str
    embedding_version: object = None
    model_fingerprint: str | None = None
    config: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> SnapshotManifest:
        known = {name for name in cls.__dataclass_fields__}
        return cls(**{key: value for key, value in data.items() if key in known})


def snapshots_dir(root: Path) -> Path:
    return Path(root) / SNAPSHOTS_DIR


def snapshot_key(snapshot_id: str) -> str:
    """A snapshot's folder, relative to the serving root; refuses ids that are not snapshot ids
    (no `../` tricks)."""
    if not isinstance(snapshot_id, str) or not SNAPSHOT_ID_PATTERN.match(snapshot_id):
        raise SnapshotNotFound(
            f"{snapshot_id!r} is not a snapshot id (expected e.g. 20111209T020000Z-1a2b3c4d); "
            "`shopguide versions` lists them."
        )
    return f"{SNAPSHOTS_DIR}/{snapshot_id}"


def snapshot_dir(root: Path, snapshot_id: str) -> Path:
    """The folder of a snapshot in a local serving root."""
    return Path(root) / snapshot_key(snapshot_id)


def _canonical(df: pl.DataFrame, name: str) -> pl.DataFrame:
    schema = SCHEMAS.get(name, {})
    missing = [column for column in schema if column not in df.columns]
    if missing:
        raise ServingError(
            f"table {name!r} lacks columns {missing}; the serving contract (serving.snapshots.SCHEMAS) "
            f"needs {list(schema)}."
        )
    extras = sorted(column for column in df.columns if column not in schema)
    try:
        known = [pl.col(column).cast(dtype, strict=True) for column, dtype in schema.items()]
        out = df.select(*known, *extras)
    except pl.exceptions.PolarsError as error:
        raise ServingError(f"table {name!r} does not fit the serving contract: {error}") from None
    keys = [key for key in SORT_KEYS.get(name, []) if key in out.columns]
    return sorted_by(out, keys)


def content_checksum(checksums: dict[str, str], row_counts: dict[str, int]) -> str:
    lines = "\n".join(f"{name}:{row_counts[name]}:{checksums[name]}" for name in sorted(checksums))
    return hashlib.blake2b(lines.encode(), digest_size=8).hexdigest()


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))


def write_snapshot(
    root: Path,
    tables: dict[str, pl.DataFrame],
    manifest_fields: dict,
    *,
    created_at: datetime | None = None,
) -> SnapshotManifest:
    """Write the tables as a new immutable snapshot and return its manifest.

    `tables` must hold the four contract tables (SCHEMAS); other tables are written too.
    `manifest_fields`: partition_date, embedding_version, model_fingerprint, config (a dict);
    other keys land in the manifest's `extra`. Raises SnapshotExists if the id is taken
    (same content written within the same second).
    """
    missing = [name for name in REQUIRED_TABLES if name not in tables]
    if missing:
        raise ServingError(f"a snapshot needs tables {list(REQUIRED_TABLES)}; missing {missing}.")
    for name in tables:
        if not TABLE_NAME_PATTERN.match(name):
            raise ServingError(f"table name {name!r} must be lower_snake_case.")
    canonical = {name: _canonical(df, name) for name, df in tables.items()}
    row_counts = {name: df.height for name, df in canonical.items()}
    checksums = {name: table_checksum(df) for name, df in canonical.items()}
    content = content_checksum(checksums, row_counts)
    moment = created_at or utc_now()
    snapshot_id = f"{moment.strftime('%Y%m%dT%H%M%SZ')}-{content[:8]}"

    fields = dict(manifest_fields or {})
    partition = fields.get("partition_date")
    manifest = SnapshotManifest(
        snapshot_id=snapshot_id,
        created_at=iso_utc(moment),
        partition_date=partition.isoformat() if isinstance(partition, date) else partition,
        row_counts=row_counts,
        checksums=checksums,
        columns={name: {c: str(t) for c, t in df.schema.items()} for name, df in canonical.items()},
        content_checksum=content,
        embedding_version=_jsonable(fields.get("embedding_version")),
        model_fingerprint=fields.get("model_fingerprint"),
        config=_jsonable(fields.get("config") or {}),
        extra=_jsonable({k: v for k, v in fields.items() if k not in KNOWN_MANIFEST_FIELDS}),
    )

    files = {f"{name}.parquet": parquet_writer(df) for name, df in canonical.items()}
    files[MANIFEST] = bytes_writer(json.dumps(manifest.to_dict(), indent=2).encode() + b"\n")
    try:
        open_store(root).write_folder(SNAPSHOTS_DIR, snapshot_id, files, marker=MANIFEST)
    except FileExistsError:
        raise SnapshotExists(
            f"snapshot {snapshot_id} already exists; snapshots are never overwritten."
        ) from None
    return manifest


def list_snapshots(root: Path) -> list[str]:
    """Ids of complete snapshots (folder renamed into place, or manifest put last), oldest first."""
    names = open_store(root).complete_folders(SNAPSHOTS_DIR, MANIFEST)
    return sorted(name for name in names if SNAPSHOT_ID_PATTERN.match(name))


def read_manifest(root: Path, snapshot_id: str) -> SnapshotManifest:
    key = f"{snapshot_key(snapshot_id)}/{MANIFEST}"
    try:
        return SnapshotManifest.from_dict(json.loads(open_store(root).read_bytes(key)))
    except FileNotFoundError:
        raise SnapshotNotFound(f"no snapshot {snapshot_id!r}; `shopguide versions` lists them.") from None


def read_table(root: Path, snapshot_id: str, name: str) -> pl.DataFrame:
    """One table of a snapshot (e.g. the current user_recommendations, for the gate's overlap check)."""
    manifest = read_manifest(root, snapshot_id)
    if name not in manifest.row_counts:
        raise ServingError(
            f"snapshot {snapshot_id} has no table {name!r}; it has {sorted(manifest.row_counts)}."
        )
    return open_store(root).read_parquet(f"{snapshot_key(snapshot_id)}/{name}.parquet")


def sweep_temp(root: Path, older_than_s: float = 3600.0) -> list[str]:
    """Remove what a crashed writer left behind (only old leftovers: a live writer's are young).
    Returns the names removed."""
    return open_store(root).sweep_incomplete(SNAPSHOTS_DIR, MANIFEST, older_than_s)
