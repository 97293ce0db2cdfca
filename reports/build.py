"""Build the monitoring report: collect, derive alerts, write HTML, `.prom` and the alerts table.

Used by the `monitoring_report` asset (with the run's Dagster instance) and by
`shopguide report` (with the instance under SHOPGUIDE_HOME). Files, under
SHOPGUIDE_HOME/reports/monitoring/:

    report.html               the latest report (self-contained: opens from the file, offline)
    history/report-DAY.html   one copy per UTC day, the day's latest build
    shopguide.prom            the figures as Prometheus text-format metrics
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from core.settings import Paths
from reports.alerts import Alert, Thresholds, derive_alerts, record_alerts
from reports.collect import MonitoringData, collect

REPORT_DIR = "monitoring"
REPORT_FILE = "report.html"
PROM_FILE = "shopguide.prom"


@dataclass(frozen=True)
class ReportOutcome:
    html_path: Path
    prom_path: Path
    alerts: list[Alert]
    data: MonitoringData
    seconds: float


def report_dir(paths: Paths) -> Path:
    return paths.reports / REPORT_DIR


def build_report(
    paths: Paths,
    now: datetime,
    run_id: str,
    instance=None,
    asset_keys: list[str] | None = None,
    thresholds: Thresholds | None = None,
    record: bool = True,
) -> ReportOutcome:
    """Build every output; `record=False` leaves the warehouse untouched (no alerts table)."""
    from core.files import atomic_write_bytes
    from reports.html import render
    from reports.prometheus import write_prom
    from warehouse.store import connect

    started = time.perf_counter()
    thresholds = thresholds or Thresholds()
    # Inside a Dagster run, the failed checks of that run; from the command line, the latest run.
    checks_run = run_id if instance is not None and instance.has_run(run_id) else None
    data = collect(paths, now, instance=instance, asset_keys=asset_keys, run_id=checks_run)
    alerts = derive_alerts(data, thresholds)
    if record:
        with connect(paths.warehouse) as con:
            record_alerts(con, run_id, data.now, alerts)
    folder = report_dir(paths)
    (folder / "history").mkdir(parents=True, exist_ok=True)
    page = render(data, alerts, run_id, thresholds).encode()
    html_path = folder / REPORT_FILE
    dated = folder / "history" / f"report-{data.now:%Y-%m-%d}.html"
    # One folder deeper: relative links (the Data Docs) get one more "../".
    for path, body in ((html_path, page), (dated, page.replace(b'href="../', b'href="../../'))):
        atomic_write_bytes(path, body)
    seconds = time.perf_counter() - started
    prom_path = write_prom(folder / PROM_FILE, data, alerts, build_seconds=seconds)
    return ReportOutcome(html_path, prom_path, alerts, data, seconds)
