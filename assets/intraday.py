"""Intraday refresh of active shoppers: new landing files → their lists, within a minute.

The nightly run rebuilds every list once a day. In between, `refresh_active_shoppers`
(run by `intraday_sensor`, or `shopguide refresh`):

1. finds the landing files of the days after the current snapshot's landing day that are
   new or changed since the served overlay recorded them;
2. appends them to the event log (raw_events; a landing day is re-read whole, as ingestion
   always does, so a re-run changes nothing);
3. recomputes, only for the signed-in shoppers with events in those files, their vectors
   (embeddings.users.user_vectors over their whole history, what the nightly sync computes)
   and their lists (recommendations.user_lists.ranked_user_table with `user_ids`), with the
   snapshot's configuration, its ranker (the saved model it names) and its product vectors
   (the LanceDB version it names), at the cut-off the next nightly run will use (the end of
   the latest landing day);
4. gates those rows with the publish gate's checks restricted to them (the new purchases
   among the already-bought pairs), and publishes them as an overlay of the snapshot
   (serving/overlays.py): the served overlay's other shoppers are carried over, so one
   overlay holds every shopper refreshed since the snapshot.

The shop-wide signals (co-occurrence, popularity, ALS and EASE, the popular lists) are
fitted on the log as it stands, as the nightly fits them: so a refreshed shopper's list is
exactly the list a nightly run over the same log gives them (tests/test_intraday.py checks
it against the real next nightly run). The catalog (dim_products) and the other shoppers'
lists wait for the night. The nightly publish drops the overlay (its snapshot holds those
events); a rollback drops it too.
"""

from __future__ import annotations

import time as clock
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from assets.intraday_log import IntradayLog, read_log, shoppers_in
from core.dbt_manifest import interaction_weights
from core.errors import NotReady
from core.frames import vector_matrix
from core.settings import Paths
from embeddings.store import PRODUCT_TABLE, connect, open_table
from embeddings.users import user_vectors
from evaluation.champion import config_from_manifest
from recommendations.config import RecommendationConfig
from recommendations.inputs import VectorsById, build_inputs
from recommendations.model_store import model_root
from recommendations.ranker import RankerModel
from recommendations.user_lists import ranked_user_table
from serving import serving_root
from serving.gate import GateContext, GateResult, GateThresholds, evaluate_gate
from serving.overlays import (
    OverlayManifest,
    empty_rows,
    prune_overlays,
    read_overlay_manifest,
    read_overlay_rows,
    write_overlay,
)
from serving.publish import read_pointer, set_overlay
from serving.snapshots import SnapshotManifest, read_manifest, read_table
from warehouse.ingest import ingest_landing_day
from warehouse.landing import landing_days, landing_files
from warehouse.store import connect as connect_warehouse
from warehouse.store import replace_partition


@dataclass
class RefreshResult:
    status: str  # "published", "nothing_new" or "blocked" (the gate failed: nothing served)
    snapshot_id: str
    overlay_id: str | None = None
    new_files: list[str] = field(default_factory=list)
    new_events: int = 0
    refreshed: int = 0  # shoppers recomputed by this refresh
    overlaid: int = 0  # shoppers the served overlay holds
    gate: GateResult | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        if self.status == "nothing_new":
            return f"no new landing file since the last refresh of snapshot {self.snapshot_id}"
        head = (
            f"overlay {self.overlay_id} on {self.snapshot_id}: "
            if self.status == "published"
            else f"BLOCKED (nothing served changed) on {self.snapshot_id}: "
        )
        timing = ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items())
        text = (
            f"{head}{len(self.new_files)} new file(s), {self.new_events:,} events, "
            f"{self.refreshed:,} shoppers refreshed, {self.overlaid:,} in the overlay ({timing})"
        )
        return text if self.gate is None or self.gate.passed else f"{text}\n{self.gate.summary()}"


class Stopwatch:
    """Seconds per step: `lap(name)` records the time since the previous lap."""

    def __init__(self):
        self.started = self._last = clock.perf_counter()
        self.seconds: dict[str, float] = {}

    def __call__(self, name: str) -> None:
        now = clock.perf_counter()
        self.seconds[name] = round(now - self._last, 2)
        self._last = now


def landing_since(landing_root: Path, after: date) -> dict[str, tuple[date, str]]:
    """Landing files of the days after `after`: landing-relative path → (day, size:mtime)."""
    found = {}
    for day in (d for d in landing_days(landing_root) if d > after):
        for path in landing_files(landing_root, day):
            stat = path.stat()
            found[path.relative_to(landing_root).as_posix()] = (day, f"{stat.st_size}:{stat.st_mtime_ns}")
    return found


def served_overlay(root: Path, pointer: dict) -> OverlayManifest | None:
    """The overlay served on the current snapshot (None when there is none)."""
    overlay = pointer.get("overlay")
    if not overlay or overlay.get("snapshot") != pointer["current"]:
        return None
    return read_overlay_manifest(root, overlay["id"])


def new_files(files: dict[str, tuple[date, str]], previous: OverlayManifest | None) -> dict[str, date]:
    """The files (→ their landing day) the served overlay has not seen as they are now."""
    seen = previous.files if previous else {}
    return {name: day for name, (day, mark) in files.items() if seen.get(name) != mark}


def pending(paths: Paths) -> tuple[str, dict[str, str]] | None:
    """What a refresh would pick up now: (current snapshot, {new file: its size:mtime}), or
    None when nothing is published or no file is new. Cheap (file stats and two small JSON
    files): what the sensor evaluates every tick."""
    root = serving_root(paths)
    pointer = read_pointer(root)
    if pointer["current"] is None:
        return None
    partition = read_manifest(root, pointer["current"]).partition_date
    files = landing_since(paths.landing, date.fromisoformat(partition))
    new = new_files(files, served_overlay(root, pointer))
    return (pointer["current"], {name: files[name][1] for name in sorted(new)}) if new else None


def refresh_active_shoppers(paths: Paths, thresholds: GateThresholds | None = None) -> RefreshResult:
    """One intraday tick (module docstring). Raises NotReady before any snapshot is published."""
    lap = Stopwatch()
    seconds = lap.seconds

    root = serving_root(paths)
    pointer = read_pointer(root)
    snapshot_id = pointer["current"]
    if snapshot_id is None:
        raise NotReady(
            "Nothing is published yet: the intraday refresh overlays the current snapshot. "
            "Run the nightly job first (`shopguide run --date D`)."
        )
    manifest = read_manifest(root, snapshot_id)
    base_day = date.fromisoformat(manifest.partition_date)
    previous = served_overlay(root, pointer)
    files = landing_since(paths.landing, base_day)
    new = new_files(files, previous)
    if not new:
        return RefreshResult("nothing_new", snapshot_id, previous.overlay_id if previous else None)

    with connect_warehouse(paths.warehouse) as con:
        for day in sorted(set(new.values())):
            result = ingest_landing_day(paths.landing, day)
            replace_partition(con, day, result.accepted, result.quarantined, len(result.files))
        lap("ingest")
        log = read_log(con, base_day, set(new))
    lap("read_log")
    touched = shoppers_in(log.intraday, set(new))
    as_of = datetime.combine(max(day for day, _ in files.values()) + timedelta(days=1), time())
    config = config_from_manifest(manifest.config)
    carried = read_overlay_rows(root, previous.overlay_id) if previous else empty_rows()
    carried = carried.filter(~pl.col("user_id").is_in(touched))
    rows, gate = empty_rows(), None
    if touched:  # new files of guests only: the ledger moves on, no list changes
        rows, context = lists_for(paths, manifest, log, touched, as_of, config, lap)
        context.current_recommendations = _served_rows(root, snapshot_id, previous, touched)
        context.current_snapshot_id = snapshot_id
        gate = evaluate_gate(
            {"user_recommendations": rows}, context, thresholds, scope=("user_recommendations",)
        )
        lap("gate")
    outcome = RefreshResult(
        "published",
        snapshot_id,
        new_files=sorted(new),
        new_events=int(log.intraday.filter(pl.col("source_file").is_in(sorted(new))).height),
        refreshed=len(touched),
        gate=gate,
        seconds=seconds,
    )
    if gate is not None and not gate.passed:
        outcome.status = "blocked"
        return outcome
    overlay_rows = pl.concat([carried, rows.select(carried.columns)]) if rows.height else carried
    written = write_overlay(
        root,
        snapshot_id,
        overlay_rows,
        as_of=as_of,
        refreshed=len(touched),
        files={name: mark for name, (_, mark) in files.items()},
        gate=gate.to_dict() if gate is not None else {"skipped": "no signed-in shopper in the new files"},
        seconds=seconds,
        extra={"ranker_model_id": manifest.extra.get("ranker_model_id")},
    )
    set_overlay(root, written.overlay_id, snapshot_id, reason=f"{len(touched)} shoppers with new events")
    prune_overlays(root, written.overlay_id)
    lap("publish")
    seconds["total"] = round(clock.perf_counter() - lap.started, 2)
    outcome.overlay_id, outcome.overlaid = written.overlay_id, len(written.user_ids)
    return outcome


def lists_for(
    paths: Paths,
    manifest: SnapshotManifest,
    log: IntradayLog,
    touched: list[str],
    as_of: datetime,
    config: RecommendationConfig,
    lap,
) -> tuple[pl.DataFrame, GateContext]:
    """The touched shoppers' lists (user_recommendations rows) and the gate's context for them."""
    model = _snapshot_model(paths, manifest)
    weights = interaction_weights()
    product_vectors = _snapshot_product_vectors(paths, manifest)
    events = log.events.filter(pl.col("product_id").is_not_null(), pl.col("occurred_at") < as_of)
    ids = pl.Series("user_id", touched, dtype=pl.Utf8).implode()
    history = events.filter(pl.col("user_id").is_in(ids), pl.col("is_merchandise"))
    vectors = user_vectors(
        history.select("user_id", "product_id", "event_type", "occurred_at"),
        product_vectors["product_id"].to_list(),
        vector_matrix(product_vectors["vector"]),
        config.history_half_life_days,
        weights,
    )
    lap("user_vectors")
    # Only the touched shoppers' vectors are needed: a shopper's vector is read for their own
    # rows only (the content generator and feature), never by a shop-wide fit.
    dimension = vector_matrix(product_vectors["vector"][:1]).shape[1]
    matrix = vectors.vectors if len(vectors.user_ids) else np.zeros((0, dimension), np.float32)
    inputs = build_inputs(
        log.products,
        product_vectors,
        log.users,
        VectorsById(pl.Series("user_id", vectors.user_ids, dtype=pl.Utf8), matrix),
        events.drop("is_merchandise"),
        as_of,
        set(config.excluded_product_ids),
        config.history_half_life_days,
        config.popularity_half_life_days,
        weights,
    )
    lap("inputs")
    rows = ranked_user_table(model, inputs, config, user_ids=touched)
    lap("rank")
    purchased = None
    if not config.allow_repurchase:  # the intraday purchases included: "just bought" is excluded
        purchased = (
            events.filter(pl.col("event_type") == "purchase", pl.col("user_id").is_in(ids))
            .select("user_id", "product_id")
            .unique()
        )
    context = GateContext(
        active_user_ids=touched,
        excluded_product_ids=set(inputs.products.filter(~pl.Series(inputs.recommendable))["product_id"]),
        excluded_pairs=purchased,
    )
    return rows, context


def _snapshot_model(paths: Paths, manifest: SnapshotManifest) -> RankerModel:
    model_id = manifest.extra.get("ranker_model_id")
    folder = model_root(paths.home) / str(model_id)
    if not model_id or not (folder / "meta.json").is_file():
        raise NotReady(
            f"Snapshot {manifest.snapshot_id} names no saved ranker ({model_id!r} not under "
            f"{model_root(paths.home)}): run the nightly job again (it saves the model it uses)."
        )
    return RankerModel.load(folder)


def _snapshot_product_vectors(paths: Paths, manifest: SnapshotManifest) -> pl.DataFrame:
    """The product vectors the snapshot was built with (the LanceDB version it names)."""
    table = open_table(connect(paths.lancedb_uri), PRODUCT_TABLE)
    if table is None:
        raise NotReady("No product embeddings: run the nightly job first.")
    version = manifest.embedding_version
    if isinstance(version, int) and version != table.version:
        table.checkout(version)
    return pl.from_arrow(table.to_arrow().select(["product_id", "vector"]))


def _served_rows(root: Path, snapshot_id: str, previous, touched: list[str]) -> pl.DataFrame:
    """What the touched shoppers are served now (the overlay's list, else the snapshot's):
    the gate's overlap check compares the new lists with these."""
    ids = pl.Series("user_id", touched, dtype=pl.Utf8).implode()
    served = read_table(root, snapshot_id, "user_recommendations").filter(pl.col("user_id").is_in(ids))
    if previous is not None:
        overlaid = read_overlay_rows(root, previous.overlay_id).filter(pl.col("user_id").is_in(ids))
        served = pl.concat(
            [served.filter(~pl.col("user_id").is_in(overlaid["user_id"].implode())), overlaid],
            how="vertical_relaxed",
        )
    return served
