"""Alerts: what in the monitoring figures needs a person, with a severity and a sentence.

`derive_alerts` is pure (figures in, alerts out); `record_alerts` writes them to the
warehouse table `monitoring_alerts`, replacing whatever an earlier attempt of the same run
wrote, so a retried run never doubles its alerts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

import polars as pl
import pyarrow as pa

from reports.collect import MonitoringData
from warehouse.store import replace_rows

CRITICAL, WARNING = "critical", "warning"

ALERTS_DDL = """
create table if not exists monitoring_alerts (
    raised_at  timestamp not null,  -- UTC
    run_id     varchar   not null,  -- the Dagster run (or `report-...` for `shopguide report`)
    source     varchar   not null,  -- freshness | volume | event_mix | unknown_products | embeddings |
                                    -- recommendations | data_quality | asset_checks | pipeline
    severity   varchar   not null,  -- critical | warning
    subject    varchar   not null,  -- what it is about: an asset, an event type, a snapshot, ...
    message    varchar   not null   -- one human-readable sentence
)
"""
ALERTS_SCHEMA = pa.schema(
    [
        ("raised_at", pa.timestamp("us")),
        *((name, pa.string()) for name in ("run_id", "source", "severity", "subject", "message")),
    ]
)


@dataclass(frozen=True)
class Thresholds:
    """When a figure becomes an alert. Loose defaults for a nightly pipeline; tune per shop."""

    asset_stale_hours: float = 36.0  # nightly schedule plus slack
    event_log_stale_hours: float = 48.0  # warning; twice that is critical
    psi_warning: float = 0.25
    unknown_product_share: float = 0.05
    embedding_mean_cosine: float = 0.9  # below: most vectors moved (a model change?)
    embedding_centroid_shift: float = 0.05
    min_user_coverage: float = 0.95
    max_fallback_share: float = 0.5
    max_churn: float = 0.8
    max_gini: float = 0.95


@dataclass(frozen=True)
class Alert:
    source: str
    severity: str
    subject: str
    message: str


def _age(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:,.0f} days"


def freshness_alerts(data: MonitoringData, t: Thresholds) -> list[Alert]:
    alerts = []
    for row in data.freshness.iter_rows(named=True):
        age = row["age_seconds"]
        if row["kind"] == "event_log":
            if age is None:
                continue
            limit = t.event_log_stale_hours * 3600
            if age > limit:
                severity = CRITICAL if age > 2 * limit else WARNING
                alerts.append(
                    Alert(
                        "freshness",
                        severity,
                        "event log",
                        f"The newest event in the log happened {_age(age)} ago "
                        f"({row['at']:%Y-%m-%d %H:%M} UTC); expected within {t.event_log_stale_hours:.0f} h.",
                    )
                )
        elif age is None:
            alerts.append(Alert("freshness", WARNING, row["name"], f"{row['name']} was never materialised."))
        elif age > t.asset_stale_hours * 3600:
            alerts.append(
                Alert(
                    "freshness",
                    WARNING,
                    row["name"],
                    f"{row['name']} was last materialised {_age(age)} ago "
                    f"(expected within {t.asset_stale_hours:.0f} h).",
                )
            )
    return alerts


def event_alerts(data: MonitoringData, t: Thresholds) -> list[Alert]:
    alerts = []
    if not data.volume.is_empty():
        last = data.volume["day"].max()
        for row in data.volume.filter(pl.col("day") == last, pl.col("anomalous")).iter_rows(named=True):
            direction = "spike" if row["z"] > 0 else "drop"
            alerts.append(
                Alert(
                    "volume",
                    WARNING,
                    row["event_type"],
                    f"{row['event_type']} events on {last}: {row['events']:,} — a {direction} against the "
                    f"trailing median {row['median']:,.0f} (robust z {row['z']:+.1f}).",
                )
            )
    mix = data.event_mix.drop_nulls("psi")
    if not mix.is_empty() and mix["psi"][-1] > t.psi_warning:
        alerts.append(
            Alert(
                "event_mix",
                WARNING,
                "event mix",
                f"The mix of event types on {mix['day'][-1]} moved from the trailing 28 days: "
                f"PSI {mix['psi'][-1]:.2f} (> {t.psi_warning}).",
            )
        )
    unknown = data.unknown_products
    if not unknown.is_empty() and unknown["share"][-1] > t.unknown_product_share:
        alerts.append(
            Alert(
                "unknown_products",
                WARNING,
                "product ids",
                f"{unknown['share'][-1]:.1%} of product events on {unknown['day'][-1]} name a product the "
                f"catalog does not know ({unknown['unknown'][-1]:,} of {unknown['events'][-1]:,}).",
            )
        )
    return alerts


def embedding_alerts(data: MonitoringData, t: Thresholds) -> list[Alert]:
    if data.embeddings.is_empty():
        return []
    last = data.embeddings.row(-1, named=True)
    alerts = []
    subject = f"product vectors v{last['from_version']}→v{last['to_version']}"
    if last["mean_cosine"] is not None and last["mean_cosine"] < t.embedding_mean_cosine:
        alerts.append(
            Alert(
                "embeddings",
                WARNING,
                subject,
                f"Product vectors moved: mean cosine between old and new vector {last['mean_cosine']:.3f} "
                f"(< {t.embedding_mean_cosine}); a model change re-encodes everything.",
            )
        )
    if last["centroid_shift"] is not None and last["centroid_shift"] > t.embedding_centroid_shift:
        alerts.append(
            Alert(
                "embeddings",
                WARNING,
                subject,
                f"The centre of the product vectors shifted by {last['centroid_shift']:.3f} "
                f"(1 − cosine; > {t.embedding_centroid_shift}).",
            )
        )
    return alerts


def recommendation_alerts(data: MonitoringData, t: Thresholds) -> list[Alert]:
    if data.recommendations.is_empty():
        return []
    last = data.recommendations.row(-1, named=True)
    subject = f"snapshot {last['snapshot_id']}"
    alerts = []
    if last["gate_passed"] is False:
        failed = "; ".join(data.gate_failures) or "see `shopguide versions`"
        alerts.append(
            Alert(
                "recommendations",
                CRITICAL,
                subject,
                f"The newest snapshot failed its quality gate and was not published: {failed}",
            )
        )
    checks = [
        (
            "user_coverage",
            lambda v: v < t.min_user_coverage,
            "user coverage {v:.1%} (< {x:.0%})",
            t.min_user_coverage,
        ),
        (
            "fallback_share",
            lambda v: v > t.max_fallback_share,
            "fallback share {v:.1%} (> {x:.0%})",
            t.max_fallback_share,
        ),
        (
            "churn",
            lambda v: v > t.max_churn,
            "churn against the previous version {v:.1%} (> {x:.0%})",
            t.max_churn,
        ),
        ("gini", lambda v: v > t.max_gini, "popularity concentration: Gini {v:.3f} (> {x})", t.max_gini),
    ]
    for name, bad, text, threshold in checks:
        value = last[name]
        if value is not None and bad(value):
            alerts.append(Alert("recommendations", WARNING, subject, text.format(v=value, x=threshold) + "."))
    return alerts


def quality_alerts(data: MonitoringData) -> list[Alert]:
    alerts = []
    for row in data.quality_failures.iter_rows(named=True):
        column = f" on {row['column_name']}" if row.get("column_name") else ""
        partition = f" for {row['partition_key']}" if row.get("partition_key") else ""
        observed = f" (observed {row['observed']})" if row.get("observed") not in (None, "") else ""
        alerts.append(
            Alert(
                "data_quality",
                CRITICAL if row["severity"] == "error" else WARNING,
                f"{row['suite']}.{row['expectation']}",
                f"Data-quality expectation {row['expectation']}{column} in suite {row['suite']} "
                f"failed{partition}{observed}.",
            )
        )
    return alerts


def pipeline_alerts(data: MonitoringData) -> list[Alert]:
    if data.pipeline.is_empty():
        return []
    finished = data.pipeline.filter(pl.col("status").is_in(["SUCCESS", "FAILURE", "CANCELED"]))
    if finished.is_empty() or finished["status"][-1] != "FAILURE":
        return []
    last = finished.row(-1, named=True)
    return [
        Alert(
            "pipeline",
            WARNING,
            f"run {last['run_id'][:8]}",
            f"The last finished run of {last['job']} ({last['run_id']}) failed; see the Dagster UI.",
        )
    ]


def check_alerts(data: MonitoringData) -> list[Alert]:
    alerts = []
    for row in data.failed_checks.iter_rows(named=True):
        rows = f" ({row['failed_rows']:,} failing rows)" if row["failed_rows"] is not None else ""
        alerts.append(
            Alert(
                "asset_checks",
                CRITICAL if row["severity"] == "ERROR" else WARNING,
                f"{row['asset']}:{row['check']}",
                f"Asset check {row['check']} on {row['asset']} failed{rows} in run {row['run_id'][:8]} "
                f"(severity {row['severity']}).",
            )
        )
    return alerts


def _canary_ended(data: MonitoringData, snapshot_id: str) -> bool:
    """True when the snapshot is listed and no longer the canary: someone (or the readout's
    automation) already acted, and "says abort" would ask for what is done. Unlisted (older
    than the report's snapshots) counts as unknown: the alert stays."""
    recs = data.recommendations
    if recs.is_empty() or "is_canary" not in recs.columns:
        return False
    row = recs.filter(pl.col("snapshot_id") == snapshot_id)
    return row.height > 0 and not row["is_canary"].any()


def experiment_alerts(data: MonitoringData) -> list[Alert]:
    """A broken split, or a readout that says abort, while the experiment is current: its
    latest readout is of the newest landing day (the asset records one a night while the
    canary runs; an older one is of an experiment that has ended)."""
    if data.experiment.is_empty():
        return []
    last = data.experiment.filter(pl.col("as_of") == data.experiment["as_of"].max()).row(0, named=True)
    newest = data.event_log.get("latest_landing_day")
    if newest is not None and last["as_of"] < newest:
        return []
    subject = f"experiment {last['snapshot_id']}"
    alerts = []
    if last["srm_mismatch"]:
        alerts.append(
            Alert(
                "experiment",
                WARNING,
                subject,
                f"Sample ratio mismatch (p = {last['srm_p_value']:.2g}): {last['canary_shoppers']:,} canary "
                f"vs {last['control_shoppers']:,} control shoppers for a {last['canary_percent']}% canary; "
                "the split is broken, no lift can be trusted.",
            )
        )
    if last["decision"] == "abort" and not _canary_ended(data, last["snapshot_id"]):
        alerts.append(
            Alert(
                "experiment",
                WARNING,
                subject,
                f"The readout says abort: {last['reason']} (`shopguide experiment abort`).",
            )
        )
    return alerts


def derive_alerts(data: MonitoringData, thresholds: Thresholds | None = None) -> list[Alert]:
    """Every alert the figures call for, critical first."""
    t = thresholds or Thresholds()
    alerts = [
        *freshness_alerts(data, t),
        *event_alerts(data, t),
        *embedding_alerts(data, t),
        *recommendation_alerts(data, t),
        *quality_alerts(data),
        *check_alerts(data),
        *pipeline_alerts(data),
        *experiment_alerts(data),
    ]
    return sorted(alerts, key=lambda a: a.severity != CRITICAL)


def record_alerts(con, run_id: str, raised_at: datetime, alerts: list[Alert]) -> int:
    """Replace this run's alerts in `monitoring_alerts` (idempotent per run_id)."""
    con.execute(ALERTS_DDL)
    naive = raised_at.replace(tzinfo=None) if raised_at.tzinfo else raised_at
    rows = pa.Table.from_pylist(
        [
            {
                "raised_at": naive,
                "run_id": run_id,
                "source": a.source,
                "severity": a.severity,
                "subject": a.subject,
                "message": a.message,
            }
            for a in alerts
        ],
        schema=ALERTS_SCHEMA,
    )
    return replace_rows(con, "monitoring_alerts", "run_id = ?", [run_id], rows)


def alerts_markdown(alerts: list[Alert]) -> str:
    """A markdown table for the Dagster UI."""
    if not alerts:
        return "No alerts."
    lines = ["| severity | source | subject | message |", "|---|---|---|---|"]
    for a in alerts:
        cells = [asdict(a)[k].replace("|", "\\|") for k in ("severity", "source", "subject", "message")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
