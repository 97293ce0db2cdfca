"""Gather the monitoring figures from one SHOPGUIDE_HOME: read-only, nothing is written.

Sources: the warehouse (event log, marts, data-quality results), LanceDB's versions of the
product vectors, the serving snapshots, and the Dagster instance (reports/instance.py:
materialisations, step timings, failed checks). Each collector copes with its source being
absent (a fresh installation, a missing table) by returning empty frames and a note the
report prints instead of a plot.
`now` is a parameter: freshness is "age at `now`", so tests can fix it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from core.settings import Paths
from reports import drift
from reports.instance import (
    CHECKS_SCHEMA,
    FRESHNESS_SCHEMA,
    PIPELINE_SCHEMA,
    collect_failed_checks,
    collect_freshness,
    collect_pipeline,
)

QUALITY_TABLE = "data_quality_results"
EMBEDDING_VERSIONS = 10  # the last N LanceDB versions compared pairwise
SNAPSHOTS = 20  # the last N recommendation snapshots
TOP_K = 10  # churn and diversity over what a storefront shows first
BASELINE_DAYS = 28


@dataclass
class MonitoringData:
    now: datetime
    home: Path
    freshness: pl.DataFrame  # name, kind (asset | event_log), at, age_seconds
    event_log: dict  # latest_event_at, latest_landing_day, events, quarantined
    volume: pl.DataFrame  # day, event_type, events, median, scale, z, anomalous
    event_mix: pl.DataFrame  # day, psi
    unknown_products: pl.DataFrame  # day, events, unknown, share
    embeddings: pl.DataFrame  # from_version, to_version, at, products_new, centroid_shift, mean_cosine, ...
    embedding_versions: pl.DataFrame  # version, at, products
    recommendations: pl.DataFrame  # snapshot_id, created_at, gate_passed, is_current, figures ...
    gate_failures: list[str]  # failed gate checks of the newest snapshot
    quality: pl.DataFrame  # run_id, checked_at, suite, evaluated, passed, pass_rate
    quality_failures: pl.DataFrame  # the latest data-quality run's failed expectations
    pipeline: pl.DataFrame  # run_id, job, status, started_at, step, duration_s
    failed_checks: pl.DataFrame  # run_id, asset, check, severity, failed_rows (latest run)
    notes: dict[str, str] = field(default_factory=dict)  # section -> why it has no plot
    # experiment_readouts rows of the newest experiment (experiments/warehouse.py): one per as_of × metric
    experiment: pl.DataFrame = field(default_factory=pl.DataFrame)


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _has_table(con, name: str) -> bool:
    sql = "select count(*) from information_schema.tables where table_name = ?"
    return bool(con.execute(sql, [name]).fetchall()[0][0])


# --- the event log -------------------------------------------------------------------------


def event_volume(daily: pl.DataFrame, window: int = BASELINE_DAYS) -> pl.DataFrame:
    """Robust baseline and anomaly flag per event type and day.

    `daily`: day, event_type, events. Days with no event at all (the shop was closed, or
    nothing landed) are not in the log and are left out; a type missing on a day that has
    other events counts as 0 that day.
    """
    if daily.is_empty():
        return daily.with_columns(
            median=pl.lit(None, pl.Float64),
            scale=pl.lit(None, pl.Float64),
            z=pl.lit(None, pl.Float64),
            anomalous=pl.lit(None, pl.Boolean),
        )
    days = daily.select("day").unique().sort("day")
    frames = []
    for event_type in sorted(daily["event_type"].unique().to_list()):
        series = days.join(
            daily.filter(pl.col("event_type") == event_type), on="day", how="left"
        ).with_columns(event_type=pl.lit(event_type), events=pl.col("events").fill_null(0))
        baseline = drift.trailing_robust_z(series["events"].to_numpy(), window=window)
        frames.append(
            series.with_columns(
                median=pl.Series(baseline.median).fill_nan(None),
                scale=pl.Series(baseline.scale).fill_nan(None),
                z=pl.Series(baseline.z).fill_nan(None),
                anomalous=pl.Series(baseline.flagged),
            )
        )
    return pl.concat(frames).select("day", "event_type", "events", "median", "scale", "z", "anomalous")


def collect_event_log(con) -> tuple[dict, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Latest event, daily volume with anomalies, daily mix PSI, unknown-product share."""
    if not _has_table(con, "raw_events"):
        empty = pl.DataFrame(schema={"day": pl.Date})
        return {}, empty, empty, empty
    latest = con.execute(
        "select max(occurred_at), count(*), max(_partition_date), max(_ingested_at) from raw_events"
    ).fetchall()[0]
    quarantined = (
        con.execute("select count(*) from quarantined_events").fetchall()[0][0]
        if _has_table(con, "quarantined_events")
        else 0
    )
    info = {
        "latest_event_at": _utc(latest[0]),
        "events": latest[1],
        "latest_landing_day": latest[2],
        "latest_ingested_at": _utc(latest[3]),
        "quarantined": quarantined,
    }
    daily = con.sql(
        "select occurred_at::date as day, event_type, count(*) as events "
        "from raw_events group by all order by all"
    ).pl()
    volume = event_volume(daily)
    mix = drift.daily_psi(daily.rename({"event_type": "category", "events": "count"}))
    unknown = pl.DataFrame(
        schema={"day": pl.Date, "events": pl.Int64, "unknown": pl.Int64, "share": pl.Float64}
    )
    if _has_table(con, "fct_events") and _has_table(con, "dim_products"):
        unknown = con.sql(
            """
            select e.event_date as day,
                   count(*) as events,
                   count(*) filter (where d.product_id is null) as unknown,
                   count(*) filter (where d.product_id is null) / count(*) as share
            from fct_events e left join dim_products d using (product_id)
            where e.product_id is not null
            group by all order by all
            """
        ).pl()
    return info, volume, mix, unknown


# --- the online experiment (table written by the experiment_readout asset) -----------------


def collect_experiment(con) -> pl.DataFrame:
    """The readout history of the experiment computed most recently."""
    from experiments.warehouse import READOUTS_TABLE

    if not _has_table(con, READOUTS_TABLE):
        return pl.DataFrame()
    return con.sql(
        f"""
        select * from {READOUTS_TABLE}
        where snapshot_id = (
            select snapshot_id from {READOUTS_TABLE} order by computed_at desc, as_of desc limit 1
        )
        order by as_of, metric
        """
    ).pl()


# --- data quality (table written by the quality assets) ------------------------------------


def collect_quality(con) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Pass rate per data-quality run and suite; the latest run's failed expectations."""
    rates_schema = {
        "run_id": pl.String,
        "checked_at": pl.Datetime,
        "suite": pl.String,
        "evaluated": pl.Int64,
        "passed": pl.Int64,
        "pass_rate": pl.Float64,
    }
    if not _has_table(con, QUALITY_TABLE):
        return pl.DataFrame(schema=rates_schema), pl.DataFrame()
    rates = con.sql(
        f"""
        -- checked_at: when the run started checking, the same for all its suites
        select run_id, min(min(checked_at)) over (partition by run_id) as checked_at, suite,
               count(*) as evaluated, count(*) filter (where success) as passed,
               count(*) filter (where success) / count(*) as pass_rate
        from {QUALITY_TABLE} group by run_id, suite order by checked_at, suite
        """
    ).pl()
    failures = con.sql(
        f"""
        select suite, expectation, column_name, partition_key, severity, observed_value::varchar as observed
        from {QUALITY_TABLE}
        where not success and run_id = (select arg_max(run_id, checked_at) from {QUALITY_TABLE})
        order by severity, suite, expectation
        """
    ).pl()
    return rates, failures


# --- embeddings ----------------------------------------------------------------------------


def collect_embeddings(lancedb_path: Path | str, versions: int = EMBEDDING_VERSIONS):
    """Drift between consecutive LanceDB versions of the product vectors (the last `versions`)."""
    from embeddings.store import PRODUCT_TABLE, connect, database_exists, open_table

    version_schema = {"version": pl.Int64, "at": pl.Datetime("us", "UTC"), "products": pl.Int64}
    empty = pl.DataFrame(), pl.DataFrame(schema=version_schema)
    if not database_exists(lancedb_path):
        return empty
    table = open_table(connect(lancedb_path), PRODUCT_TABLE)
    if table is None:
        return empty
    listed = sorted(table.list_versions(), key=lambda v: v["version"])[-versions:]
    snapshots = []
    for entry in listed:
        table.checkout(entry["version"])
        data = table.to_arrow().select(["product_id", "vector"])
        ids = data.column("product_id").to_pylist()
        vectors = data.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        snapshots.append((entry["version"], _utc(entry["timestamp"]), ids, vectors.reshape(len(ids), -1)))
    table.checkout_latest()
    versions_frame = pl.DataFrame(
        [{"version": v, "at": at, "products": len(ids)} for v, at, ids, _ in snapshots], schema=version_schema
    )
    rows = []
    for (v0, _, ids0, vec0), (v1, at1, ids1, vec1) in zip(snapshots, snapshots[1:], strict=False):
        rows.append(
            {"from_version": v0, "to_version": v1, "at": at1, **drift.embedding_drift(ids0, vec0, ids1, vec1)}
        )
    return pl.DataFrame(rows), versions_frame


def current_vectors(lancedb_path: Path | str) -> tuple[list[str], np.ndarray]:
    from embeddings.store import PRODUCT_TABLE, connect, database_exists, open_table

    table = open_table(connect(lancedb_path), PRODUCT_TABLE) if database_exists(lancedb_path) else None
    if table is None:
        return [], np.zeros((0, 0), dtype=np.float32)
    data = table.to_arrow().select(["product_id", "vector"])
    ids = data.column("product_id").to_pylist()
    flat = data.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return ids, flat.reshape(len(ids), -1)


# --- recommendation snapshots --------------------------------------------------------------


def collect_recommendations(
    serving: Path,
    active_users: list[str] | None,
    vectors: tuple[list[str], np.ndarray],
    limit: int = SNAPSHOTS,
) -> tuple[pl.DataFrame, list[str]]:
    """Health figures per snapshot (the last `limit`), oldest first; failed gate checks of the newest."""
    from serving.publish import read_gate, read_pointer
    from serving.snapshots import list_snapshots, read_manifest, read_table

    ids = list_snapshots(serving)[-limit - 1 :]  # one more: the first shown needs its predecessor for churn
    pointer = read_pointer(serving)
    canary = (pointer.get("canary") or {}).get("snapshot")
    rows, previous = [], None
    for index, snapshot_id in enumerate(ids):
        recs = read_table(serving, snapshot_id, "user_recommendations").select(
            "user_id", "rank", "product_id", "source"
        )
        if index == 0 and len(ids) > limit:
            previous = recs
            continue
        manifest = read_manifest(serving, snapshot_id)
        gate = read_gate(serving, snapshot_id) or {}
        coverage = next(
            (c.get("observed") for c in gate.get("checks", []) if c.get("name") == "user_coverage"), None
        )
        if coverage is None and active_users is not None:
            coverage = drift.user_coverage(recs["user_id"].unique().to_list(), active_users)
        catalog = read_table(serving, snapshot_id, "products")["product_id"]
        counts = (
            pl.DataFrame({"product_id": catalog})
            .join(recs.group_by("product_id").agg(n=pl.len()), on="product_id", how="left")
            .with_columns(pl.col("n").fill_null(0))
        )
        churn, compared = drift.churn(previous, recs, TOP_K) if previous is not None else (None, 0)
        rows.append(
            {
                "snapshot_id": snapshot_id,
                "created_at": _utc(datetime.fromisoformat(manifest.created_at)),
                "partition_date": manifest.partition_date,
                "gate_passed": gate.get("passed"),
                "is_current": snapshot_id == pointer.get("current"),
                "is_canary": snapshot_id == canary,
                "users": recs["user_id"].n_unique(),
                "user_coverage": coverage,
                "catalog_coverage": drift.catalog_coverage(recs["product_id"].unique().to_list(), catalog),
                "fallback_share": drift.fallback_share(recs),
                "gini": drift.gini(counts["n"].to_numpy()),
                "diversity": drift.intra_list_diversity(recs, vectors[0], vectors[1], TOP_K),
                "churn": churn,
                "churn_users": compared,
            }
        )
        previous = recs
    failures = []
    if ids:
        gate = read_gate(serving, ids[-1]) or {}
        failures = [c["message"] for c in gate.get("checks", []) if not c.get("passed", True)]
        if gate.get("forced"):
            failures = [f"(published with --force) {message}" for message in failures]
    return pl.DataFrame(rows), failures


# --- all together --------------------------------------------------------------------------


def collect(
    paths: Paths,
    now: datetime,
    instance=None,
    asset_keys: list[str] | None = None,
    run_id: str | None = None,
) -> MonitoringData:
    """Every figure the report shows. Raises FileNotFoundError when there is no warehouse yet.

    `run_id`: the run whose failed asset checks become alerts (default: the latest run).
    """
    from serving import serving_root
    from warehouse.store import connect

    now = _utc(now)
    notes: dict[str, str] = {}
    with connect(paths.warehouse, read_only=True) as con:
        event_log, volume, mix, unknown = collect_event_log(con)
        quality, quality_failures = collect_quality(con)
        active_users = (
            [row[0] for row in con.execute("select user_id from dim_users").fetchall()]
            if _has_table(con, "dim_users")
            else None
        )
        if not _has_table(con, QUALITY_TABLE):
            notes["quality"] = "No data-quality results yet (no data_quality_results table in the warehouse)."
        experiment = collect_experiment(con)
    if experiment.is_empty():
        notes["experiment"] = (
            "No experiment readout yet (the experiment_readout asset records one while a canary runs)."
        )
    if not event_log:
        notes["events"] = "The event log is empty: nothing has been ingested yet."
    freshness_rows = []
    if instance is not None:
        freshness_rows.append(collect_freshness(instance, asset_keys, now))
        pipeline = collect_pipeline(instance)
        failed_checks = collect_failed_checks(instance, run_id)
    else:
        failed_checks = pl.DataFrame(schema=CHECKS_SCHEMA)
        pipeline = pl.DataFrame(schema=PIPELINE_SCHEMA)
        notes["pipeline"] = "No Dagster instance given."
    latest_event = event_log.get("latest_event_at")
    freshness_rows.append(
        pl.DataFrame(
            {
                "name": ["event log (latest event)"],
                "kind": ["event_log"],
                "at": [latest_event],
                "age_seconds": [(now - latest_event).total_seconds() if latest_event else None],
            },
            schema=FRESHNESS_SCHEMA,
        )
    )
    freshness = pl.concat(freshness_rows)
    embeddings, embedding_versions = collect_embeddings(paths.lancedb_uri)
    if embedding_versions.is_empty():
        notes["embeddings"] = "No product embeddings yet."
    elif embeddings.is_empty():
        notes["embeddings"] = "Only one version of the product vectors so far: drift needs two."
    recommendations, gate_failures = collect_recommendations(
        serving_root(paths), active_users, current_vectors(paths.lancedb_uri)
    )
    if recommendations.is_empty():
        notes["recommendations"] = "No recommendation snapshot yet."
    if pipeline.is_empty() and "pipeline" not in notes:
        notes["pipeline"] = "No finished Dagster step recorded in the instance yet."
    return MonitoringData(
        now=now,
        home=paths.home,
        freshness=freshness,
        event_log=event_log,
        volume=volume,
        event_mix=mix,
        unknown_products=unknown,
        embeddings=embeddings,
        embedding_versions=embedding_versions,
        recommendations=recommendations,
        gate_failures=gate_failures,
        quality=quality,
        quality_failures=quality_failures,
        pipeline=pipeline,
        failed_checks=failed_checks,
        notes=notes,
        experiment=experiment,
    )
