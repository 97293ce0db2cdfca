"""The report's figures as Prometheus text-format metrics (`shopguide.prom`).

Written whole on every build (prometheus_client writes a temporary file and renames it), so
a node exporter's textfile collector, or anything serving the file, never reads half a file.
Names follow Prometheus conventions: a `shopguide_` prefix, base units in the name
(`_seconds`, `_timestamp_seconds`), `_ratio` for 0–1 shares, no `_total` on gauges. Labels
have bounded values (asset names, event types, suites, steps, severities); snapshot and run
ids go on `_info` metrics only.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

from reports.alerts import CRITICAL, WARNING, Alert
from reports.collect import MonitoringData

RECOMMENDATION_METRICS = (
    ("user_coverage_ratio", "user_coverage", "Share of active users with a list."),
    ("catalog_coverage_ratio", "catalog_coverage", "Share of the catalog in at least one list."),
    ("fallback_ratio", "fallback_share", "Share of users with no personal item."),
    ("popularity_gini", "gini", "Gini coefficient of recommendations per product (0 even, 1 concentrated)."),
    ("intra_list_diversity", "diversity", "Mean 1 - pairwise cosine of the vectors within a top-10 list."),
    ("churn_ratio", "churn", "Mean 1 - Jaccard of a user's top-10 against the previous snapshot."),
)


def _gauge(registry, name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
    return Gauge(name, doc, labelnames=labels, registry=registry)


def _set(gauge: Gauge, value, **labels) -> None:
    if value is None:
        return
    (gauge.labels(**labels) if labels else gauge).set(float(value))


def build_registry(data: MonitoringData, alerts: list[Alert], build_seconds: float | None = None):
    r = CollectorRegistry()
    g = {}

    def gauge(name, doc, *labels):
        g[name] = _gauge(r, f"shopguide_{name}", doc, labels)
        return g[name]

    # Report itself.
    _set(
        gauge("monitoring_report_timestamp_seconds", "When the monitoring report was built."),
        data.now.timestamp(),
    )
    if build_seconds is not None:
        _set(gauge("monitoring_report_build_duration_seconds", "Time to build the report."), build_seconds)
    by_severity = gauge("monitoring_alerts", "Alerts raised by the last report build.", "severity")
    for severity in (CRITICAL, WARNING):
        _set(by_severity, sum(a.severity == severity for a in alerts), severity=severity)

    # Freshness.
    materialized = gauge(
        "asset_last_materialization_timestamp_seconds", "Last materialisation of the asset.", "asset"
    )
    age = gauge("asset_staleness_seconds", "Seconds since the asset's last materialisation.", "asset")
    for row in data.freshness.filter(pl.col("kind") == "asset").iter_rows(named=True):
        if row["at"] is not None:
            _set(materialized, row["at"].timestamp(), asset=row["name"])
            _set(age, row["age_seconds"], asset=row["name"])
    latest = data.event_log.get("latest_event_at")
    if latest is not None:
        _set(
            gauge("event_log_latest_event_timestamp_seconds", "Newest event time in the log."),
            latest.timestamp(),
        )
        _set(
            gauge("event_log_staleness_seconds", "Seconds between the newest event and the report."),
            (data.now - latest).total_seconds(),
        )
    _set(gauge("event_log_events", "Events in the event log."), data.event_log.get("events"))
    _set(gauge("event_log_quarantined_events", "Lines in quarantine."), data.event_log.get("quarantined"))

    # Volume, mix, unknown products: the latest day of the log.
    if not data.volume.is_empty():
        last = data.volume.filter(pl.col("day") == data.volume["day"].max())
        events = gauge("events_latest_day", "Events of each type on the latest day in the log.", "event_type")
        z = gauge(
            "events_latest_day_robust_zscore", "Robust z-score against the trailing 28 days.", "event_type"
        )
        flag = gauge("events_latest_day_anomalous", "1 when the latest day is an anomaly.", "event_type")
        for row in last.iter_rows(named=True):
            _set(events, row["events"], event_type=row["event_type"])
            _set(z, row["z"], event_type=row["event_type"])
            _set(flag, int(bool(row["anomalous"])), event_type=row["event_type"])
    mix = data.event_mix.drop_nulls("psi") if not data.event_mix.is_empty() else data.event_mix
    if not mix.is_empty():
        _set(
            gauge("event_mix_population_stability_index", "PSI of the latest day's event mix vs 28 days."),
            mix["psi"][-1],
        )
    if not data.unknown_products.is_empty():
        _set(
            gauge(
                "events_unknown_product_ratio",
                "Share of the latest day's product events naming no known product.",
            ),
            data.unknown_products["share"][-1],
        )

    # Embeddings.
    if not data.embedding_versions.is_empty():
        _set(
            gauge("embeddings_version", "Latest LanceDB version of the product vectors."),
            data.embedding_versions["version"][-1],
        )
        _set(gauge("embeddings_products", "Products with a vector."), data.embedding_versions["products"][-1])
    if not data.embeddings.is_empty():
        last = data.embeddings.row(-1, named=True)
        _set(
            gauge("embeddings_centroid_shift", "1 - cosine between consecutive versions' mean vectors."),
            last["centroid_shift"],
        )
        _set(
            gauge("embeddings_mean_cosine_similarity", "Mean cosine of a product's old and new vector."),
            last["mean_cosine"],
        )
        _set(
            gauge("embeddings_changed_ratio", "Share of products whose vector changed."),
            last["changed_share"],
        )

    # Recommendations: the newest snapshot (published or not: `gate_passed` says which).
    if not data.recommendations.is_empty():
        last = data.recommendations.row(-1, named=True)
        info = gauge("recommendations_snapshot_info", "The newest snapshot.", "snapshot_id", "current")
        _set(info, 1, snapshot_id=last["snapshot_id"], current=str(bool(last["is_current"])).lower())
        if last["gate_passed"] is not None:
            _set(
                gauge("recommendations_gate_passed", "1 when the newest snapshot passed its gate."),
                int(last["gate_passed"]),
            )
        for name, column, doc in RECOMMENDATION_METRICS:
            _set(gauge(f"recommendations_{name}", doc), last[column])
        _set(gauge("recommendations_users", "Users with a list in the newest snapshot."), last["users"])

    # Data quality: the latest run, per suite.
    if not data.quality.is_empty():
        latest_run = data.quality.sort("checked_at")["run_id"][-1]
        rows = data.quality.filter(pl.col("run_id") == latest_run)
        ratio = gauge(
            "data_quality_pass_ratio", "Share of expectations that passed in the latest run.", "suite"
        )
        failed = gauge("data_quality_failed_expectations", "Failed expectations in the latest run.", "suite")
        for row in rows.iter_rows(named=True):
            _set(ratio, row["pass_rate"], suite=row["suite"])
            _set(failed, row["evaluated"] - row["passed"], suite=row["suite"])

    # The experiment: the newest readout of the newest experiment, per metric and arm.
    if not data.experiment.is_empty():
        latest = data.experiment.filter(pl.col("as_of") == data.experiment["as_of"].max())
        first = latest.row(0, named=True)
        info = gauge("experiment_info", "The experiment the figures are of.", "snapshot_id", "decision")
        _set(info, 1, snapshot_id=first["snapshot_id"], decision=first["decision"])
        _set(gauge("experiment_days_running", "Days of exposures in the readout."), first["days_running"])
        _set(
            gauge("experiment_canary_percent", "The canary's configured share, percent."),
            first["canary_percent"],
        )
        shoppers = gauge("experiment_shoppers", "Exposed signed-in shoppers per arm.", "arm")
        exposures = gauge("experiment_exposures", "Exposures per arm.", "arm")
        for arm in ("control", "canary"):
            _set(shoppers, first[f"{arm}_shoppers"], arm=arm)
            _set(exposures, first[f"{arm}_exposures"], arm=arm)
        _set(gauge("experiment_srm_p_value", "Sample-ratio chi-square p-value."), first["srm_p_value"])
        _set(
            gauge("experiment_srm_mismatch", "1 when the arm split mismatches the share."),
            int(first["srm_mismatch"]),
        )
        decision = gauge("experiment_decision", "1 for the decision rule's current verdict.", "decision")
        for verdict in ("promote", "abort", "keep_collecting"):
            _set(decision, int(first["decision"] == verdict), decision=verdict)
        value = gauge("experiment_metric_value", "Metric per arm.", "metric", "arm")
        lift = gauge("experiment_lift_ratio", "Relative lift canary/control - 1.", "metric")
        low = gauge("experiment_lift_low_ratio", "Lower end of the lift's 95% interval.", "metric")
        high = gauge("experiment_lift_high_ratio", "Upper end of the lift's 95% interval.", "metric")
        mde = gauge("experiment_mde_ratio", "Minimum detectable relative lift at this sample.", "metric")
        for row in latest.iter_rows(named=True):
            metric = row["metric"]
            _set(value, row["control_value"], metric=metric, arm="control")
            _set(value, row["canary_value"], metric=metric, arm="canary")
            _set(lift, row["lift"], metric=metric)
            _set(low, row["lift_low"], metric=metric)
            _set(high, row["lift_high"], metric=metric)
            _set(mde, row["mde"], metric=metric)

    # Asset checks that failed in the run the report looked at (gate and GX suites: above).
    checks = gauge("asset_checks_failed", "Failed asset checks in the latest run.", "severity")
    for severity in ("ERROR", "WARN"):
        count = data.failed_checks.filter(pl.col("severity") == severity).height
        _set(checks, count, severity=severity.lower())

    # Pipeline: the latest run with finished steps.
    if not data.pipeline.is_empty():
        latest_run = data.pipeline["run_id"][-1]
        rows = data.pipeline.filter(pl.col("run_id") == latest_run)
        step = gauge("pipeline_step_duration_seconds", "Step durations of the latest run.", "step")
        for row in rows.iter_rows(named=True):
            _set(step, row["duration_s"], step=row["step"])
        finished = data.pipeline.drop_nulls("run_seconds")
        if not finished.is_empty():
            _set(
                gauge("pipeline_run_duration_seconds", "Duration of the latest finished run."),
                finished["run_seconds"][-1],
            )
    return r


def write_prom(
    path: Path, data: MonitoringData, alerts: list[Alert], build_seconds: float | None = None
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), build_registry(data, alerts, build_seconds))
    return path
