"""`shopguide demo`: the shipped real shop data, end to end, with a short summary."""

from __future__ import annotations

from dataclasses import dataclass

from core.settings import Paths
from shopguide.runner import RunOutcome, run_range
from shopguide.sources.online_retail import DEFAULT_PATH, ImportSummary, import_online_retail
from warehouse.landing import landing_days
from warehouse.store import connect

SUMMARY_TABLES = (
    "raw_events",
    "quarantined_events",
    "fct_events",
    "fct_sessions",
    "dim_products",
    "dim_users",
    "fct_user_product_interactions",
    "fct_daily_product_metrics",
)


@dataclass
class DemoSummary:
    paths: Paths
    imported: ImportSummary
    outcome: RunOutcome
    rows: dict[str, int]
    quarantine_reasons: dict[str, int]
    published: str | None

    @property
    def success(self) -> bool:
        return self.outcome.success

    def render(self, seconds: float) -> str:
        lines = [
            f"Online Retail: {self.imported.source_lines:,} source lines → "
            f"{self.imported.line_events + self.imported.catalog_events:,} events in "
            f"{self.imported.days} landing days",
            f"Dagster run {self.outcome.run_id}: "
            f"{'succeeded' if self.outcome.success else 'FAILED'} for "
            f"{self.outcome.first_day}..{self.outcome.last_day}",
        ]
        if self.outcome.failed_checks:
            lines.append(f"checks failed: {', '.join(self.outcome.failed_checks)}")
        if self.outcome.warnings:
            lines.append(f"check warnings: {', '.join(self.outcome.warnings)}")
        lines.append("")
        lines += [f"  {name:<32}{count:>12,}" for name, count in self.rows.items()]
        lines.append(f"  quarantined by reason: {self.quarantine_reasons}")
        lines += [
            "",
            f"data directory: {self.paths.home}",
            f"warehouse:      {self.paths.warehouse}",
            f"published:      {self.published or 'nothing (see `shopguide versions`)'}",
            'try:            shopguide recommend --user 17850   |   shopguide search "christmas lights"',
            "browse:         shopguide ui   (Dagster UI on http://127.0.0.1:3000)",
            "tables:         shopguide status --json",
            f"monitoring:     {self.paths.reports / 'monitoring' / 'report.html'}",
            f"data quality:   {self.paths.reports / 'data_docs' / 'list.html'}",
            "evaluation:     shopguide evaluate   (the ranker against baselines, ~1 min)",
            f"wall time:      {seconds:.0f} s",
        ]
        return "\n".join(lines)


def run_demo(paths: Paths) -> DemoSummary:
    paths.ensure()
    imported = import_online_retail(paths.landing, DEFAULT_PATH)
    days = landing_days(paths.landing)
    outcome = run_range(paths, days[0], days[-1])
    with connect(paths.warehouse, read_only=True) as con:
        rows = {
            name: con.execute(f"select count(*) from {name}").fetchone()[0]
            for name in SUMMARY_TABLES
            if con.execute(
                "select count(*) from information_schema.tables where table_name = ?", [name]
            ).fetchone()[0]
        }
        reasons = dict(
            con.execute(
                "select reason, count(*) from quarantined_events group by reason order by reason"
            ).fetchall()
        )
    from serving import serving_root
    from serving.publish import current_snapshot

    return DemoSummary(paths, imported, outcome, rows, reasons, current_snapshot(serving_root(paths)))
