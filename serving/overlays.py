"""Overlays: intraday lists of the shoppers with new events, served on top of a snapshot.

A snapshot is rebuilt once a night; a shopper who buys at 10:00 would keep the morning's
list until then. The intraday refresh (assets/intraday.py) recomputes the lists of the
shoppers with new events and writes them here, as an overlay of the current snapshot:

    root/overlays/<overlay_id>/user_recommendations.parquet   (their whole lists, sorted)
    root/overlays/<overlay_id>/manifest.json                  (base snapshot, shoppers, files)

An overlay is cumulative: it holds every shopper refreshed since its base snapshot was
published (the previous overlay's lists plus this tick's), so the pointer names one overlay
and a reader applies one. It is written like a snapshot (complete or absent: serving/store.py)
and switched on by the pointer (`serving.publish.set_overlay`, the same atomic
replace of CURRENT.json), so a reader sees the old overlay or the new one, never half. An
overlay only applies to the snapshot it was built on: publishing another snapshot (the
nightly run, which folds the day's events in), a rollback or a canary promotion drops it.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import polars as pl

from core.clock import iso_utc, utc_now
from serving.errors import ServingError
from serving.snapshots import MANIFEST, SCHEMAS, SNAPSHOT_ID_PATTERN, _canonical
from serving.store import bytes_writer, open_store, parquet_writer

OVERLAYS_DIR = "overlays"
TABLE = "user_recommendations"
# Overlays kept besides the served one, and none younger than MIN_AGE_S is deleted: a reader
# that read the pointer just before a switch still finds its overlay's file.
KEEP = 5
MIN_AGE_S = 600.0


@dataclass(frozen=True)
class OverlayManifest:
    overlay_id: str
    snapshot_id: str  # the base it applies to
    created_at: str
    as_of: str  # the cut-off its lists were computed at
    user_ids: list[str]  # every shopper it holds a list for (sorted)
    refreshed_user_ids: int  # of them, how many this refresh recomputed
    files: dict[str, str] = field(default_factory=dict)  # landing file → fingerprint, seen so far
    gate: dict = field(default_factory=dict)  # the gate on this refresh's rows
    seconds: dict = field(default_factory=dict)  # where the refresh's time went
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> OverlayManifest:
        known = set(cls.__dataclass_fields__)
        return cls(**{key: value for key, value in data.items() if key in known})


def overlays_dir(root: Path) -> Path:
    return Path(root) / OVERLAYS_DIR


def overlay_key(overlay_id: str) -> str:
    """An overlay's folder relative to the serving root; ids look like snapshot ids (no `../` tricks)."""
    if not isinstance(overlay_id, str) or not SNAPSHOT_ID_PATTERN.match(overlay_id):
        raise ServingError(f"{overlay_id!r} is not an overlay id (expected e.g. 20111209T101500Z-1a2b3c4d).")
    return f"{OVERLAYS_DIR}/{overlay_id}"


def overlay_dir(root: Path, overlay_id: str) -> Path:
    """An overlay's folder in a local serving root."""
    return Path(root) / overlay_key(overlay_id)


def write_overlay(
    root: Path,
    snapshot_id: str,
    rows: pl.DataFrame,
    *,
    as_of: datetime,
    refreshed: int,
    files: dict[str, str],
    gate: dict,
    seconds: dict | None = None,
    extra: dict | None = None,
) -> OverlayManifest:
    """Write `rows` (user_recommendations rows of the overlaid shoppers) as a new overlay of
    `snapshot_id`; it is served once `serving.publish.set_overlay` points at it."""
    table = _canonical(rows, TABLE)
    moment = utc_now()
    overlay_id = f"{moment.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:8]}"
    manifest = OverlayManifest(
        overlay_id=overlay_id,
        snapshot_id=snapshot_id,
        created_at=iso_utc(moment),
        as_of=as_of.isoformat(),
        user_ids=sorted(table["user_id"].unique().to_list()),
        refreshed_user_ids=refreshed,
        files=dict(files),
        gate=gate,
        seconds=seconds or {},
        extra=extra or {},
    )
    files = {
        f"{TABLE}.parquet": parquet_writer(table),
        MANIFEST: bytes_writer(json.dumps(manifest.to_dict(), indent=2).encode() + b"\n"),
    }
    open_store(root).write_folder(OVERLAYS_DIR, overlay_id, files, marker=MANIFEST)
    return manifest


def read_overlay_manifest(root: Path, overlay_id: str) -> OverlayManifest:
    store = open_store(root)
    try:
        return OverlayManifest.from_dict(
            json.loads(store.read_bytes(f"{overlay_key(overlay_id)}/{MANIFEST}"))
        )
    except FileNotFoundError:
        raise ServingError(f"no overlay {overlay_id!r} under {store.describe(OVERLAYS_DIR)}.") from None


def read_overlay_rows(root: Path, overlay_id: str) -> pl.DataFrame:
    """The overlay's lists, sorted by (user_id, rank) as readers binary-search them."""
    try:
        return (
            open_store(root)
            .read_parquet(f"{overlay_key(overlay_id)}/{TABLE}.parquet")
            .sort("user_id", "rank")
        )
    except FileNotFoundError:
        raise ServingError(f"overlay {overlay_id} has no {TABLE}.parquet (deleted?).") from None


def empty_rows() -> pl.DataFrame:
    return pl.DataFrame(schema=SCHEMAS[TABLE])


def list_overlays(root: Path) -> list[str]:
    """Complete overlays, oldest first (by creation time: ids made within one second differ
    in a random suffix)."""
    ids = [
        o for o in open_store(root).complete_folders(OVERLAYS_DIR, MANIFEST) if SNAPSHOT_ID_PATTERN.match(o)
    ]
    return sorted(ids, key=lambda o: (read_overlay_manifest(root, o).created_at, o))


def prune_overlays(
    root: Path, served: str | None, keep: int = KEEP, min_age_s: float = MIN_AGE_S
) -> list[str]:
    """Delete overlays beyond the newest `keep` that are older than `min_age_s`, never the
    served one; and what a crashed writer left (older than an hour). Returns the ids removed."""
    store = open_store(root)
    ids = list_overlays(root)
    cutoff = time.time() - min_age_s
    doomed = [
        o
        for o in ids[: max(len(ids) - keep, 0)]
        if o != served and store.folder_time(overlay_key(o), MANIFEST) < cutoff
    ]
    for overlay_id in doomed:
        store.remove_folder(overlay_key(overlay_id), ignore_errors=True)
    store.sweep_incomplete(OVERLAYS_DIR, MANIFEST, 3600)
    return doomed
