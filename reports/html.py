"""One self-contained HTML page: headline numbers, the alerts, then a section per concern.

Self-contained means it opens from a file with no network: the CSS is inline, every plot is
an inline `<svg>`, and there is no script and no external URL (tests check both).

The page is a Jinja2 template (`reports/templates/`) rendered with autoescaping: this
module decides what the page says (cards, tables, sections, as plain values) and the
template how it looks. Values from the data (event types, check names, observed values,
job names) are escaped on the way in; only the plots are inserted as markup.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import polars as pl
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from reports import plots
from reports.alerts import CRITICAL, WARNING, Alert, Thresholds
from reports.collect import MonitoringData

DATA_DOCS = "data_docs/index.html"  # written by the data-quality checks, next to this report's folder
SECTIONS = (
    ("freshness", "Freshness"),
    ("volume", "Event volume"),
    ("event-mix", "Event mix and unknown products"),
    ("embeddings", "Embedding drift"),
    ("recommendations", "Recommendation health"),
    ("quality", "Data quality"),
    ("experiment", "Online experiment"),
    ("pipeline", "Pipeline durations"),
)


@dataclass(frozen=True)
class Card:
    label: str
    value: str
    sub: str = ""
    status: str = ""  # ok, warn, bad, or "" (no verdict)


@dataclass(frozen=True)
class Table:
    titles: list[str]
    numeric: list[bool]  # per column: right-aligned figures
    rows: list[list[str]]  # formatted, not yet escaped
    heading: str = ""


@dataclass(frozen=True)
class Section:
    anchor: str
    title: str
    lead: str
    plot: Markup | None = None
    tables: list[Table] = field(default_factory=list)
    note: str | None = None  # why there is no plot
    data_docs: str | None = None  # relative path of the GX Data Docs, linked from the lead
    facts: list[str] = field(default_factory=list)  # short lines above the plot (plain text)


@functools.cache
def environment() -> Environment:
    """Autoescape on for every template (they are all HTML); a missing name is an error, not ''."""
    return Environment(
        loader=PackageLoader("reports", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _plot(svg: str) -> Markup:
    # Trusted markup: matplotlib writes the SVG and escapes every text it draws (titles,
    # tick labels, legends may hold event types or check names from the data).
    return Markup(svg)


def _fmt(value, kind: str = "num") -> str:
    if value is None:
        return "–"
    if kind == "pct":
        return f"{value:.1%}"
    if kind == "f3":
        return f"{value:.3f}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return f"{value:,}" if isinstance(value, int) else str(value)  # escaped by the template


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:,.0f} days"


def _level(value, warn_if, bad_if=None) -> str:
    if value is None:
        return ""
    if bad_if is not None and bad_if(value):
        return "bad"
    return "warn" if warn_if(value) else "ok"


def headline(data: MonitoringData, alerts: list[Alert], t: Thresholds) -> list[Card]:
    critical = sum(a.severity == CRITICAL for a in alerts)
    warning = sum(a.severity == WARNING for a in alerts)
    cards = [
        Card(
            "Alerts",
            f"{critical} critical" if critical else f"{warning} warning{'s' if warning != 1 else ''}",
            (f"and {warning} warning{'s' if warning != 1 else ''} · " if critical else "")
            + ("see the table below" if alerts else "nothing needs attention"),
            "bad" if critical else "warn" if warning else "ok",
        )
    ]
    event_log = data.freshness.filter(pl.col("kind") == "event_log")
    age = event_log["age_seconds"][0] if event_log.height else None
    latest = data.event_log.get("latest_event_at")
    cards.append(
        Card(
            "Newest event",
            f"{_age(age)} ago",
            f"{latest:%Y-%m-%d %H:%M} UTC" if latest else "no events yet",
            _level(
                age,
                lambda a: a > t.event_log_stale_hours * 3600,
                lambda a: a > 2 * t.event_log_stale_hours * 3600,
            ),
        )
    )
    if not data.volume.is_empty():
        last_day = data.volume["day"].max()
        day = data.volume.filter(pl.col("day") == last_day)
        flagged = int(day["anomalous"].sum())
        cards.append(
            Card(
                "Events on latest day",
                f"{int(day['events'].sum()):,}",
                f"{last_day} · {flagged} anomalous type{'s' if flagged != 1 else ''}",
                "warn" if flagged else "ok",
            )
        )
    mix = data.event_mix.drop_nulls("psi") if not data.event_mix.is_empty() else data.event_mix
    if not mix.is_empty():
        value = mix["psi"][-1]
        cards.append(
            Card(
                "Event-mix PSI",
                f"{value:.3f}",
                "vs trailing 28 days",
                _level(value, lambda v: v > t.psi_warning),
            )
        )
    if not data.unknown_products.is_empty():
        value = data.unknown_products["share"][-1]
        cards.append(
            Card(
                "Unknown products",
                f"{value:.2%}",
                "of the latest day's product events",
                _level(value, lambda v: v > t.unknown_product_share),
            )
        )
    if not data.recommendations.is_empty():
        rec = data.recommendations.row(-1, named=True)
        gate = {True: "gate passed", False: "gate FAILED", None: "not gated"}[rec["gate_passed"]]
        cards.append(
            Card(
                "User coverage",
                _fmt(rec["user_coverage"], "pct"),
                f"newest snapshot · {gate}",
                "bad"
                if rec["gate_passed"] is False
                else _level(rec["user_coverage"], lambda v: v < t.min_user_coverage),
            )
        )
        cards.append(
            Card(
                "Fallback share",
                _fmt(rec["fallback_share"], "pct"),
                "users with no personal item",
                _level(rec["fallback_share"], lambda v: v > t.max_fallback_share),
            )
        )
        cards.append(
            Card(
                "Churn",
                _fmt(rec["churn"], "pct"),
                "top 10 vs previous snapshot",
                _level(rec["churn"], lambda v: v > t.max_churn),
            )
        )
    if not data.embedding_versions.is_empty():
        version = data.embedding_versions.row(-1, named=True)
        cosine = data.embeddings["mean_cosine"][-1] if not data.embeddings.is_empty() else None
        cards.append(
            Card(
                "Product vectors",
                f"v{version['version']}",
                f"{version['products']:,} products · mean cosine vs previous {_fmt(cosine, 'f3')}",
                _level(cosine, lambda v: v < t.embedding_mean_cosine),
            )
        )
    if data.quality.is_empty():
        cards.append(Card("Data quality", "–", "no data-quality results yet"))
    else:
        latest_run = data.quality.sort("checked_at")["run_id"][-1]
        run = data.quality.filter(pl.col("run_id") == latest_run)
        rate = run["passed"].sum() / run["evaluated"].sum()
        cards.append(
            Card(
                "Data quality",
                f"{rate:.1%}",
                f"expectations passed, latest run ({run.height} suites)",
                "ok" if rate == 1 else "warn",
            )
        )
    finished = data.pipeline.drop_nulls("run_seconds") if not data.pipeline.is_empty() else data.pipeline
    if not finished.is_empty():
        last = finished.row(-1, named=True)
        cards.append(
            Card(
                "Last finished run",
                f"{last['run_seconds']:,.0f} s",
                f"{last['job']} · {last['status'].lower()}",
                "bad" if last["status"] == "FAILURE" else "ok",
            )
        )
    return cards


def _table(frame: pl.DataFrame, columns: list[tuple[str, str, str]], heading: str = "") -> Table:
    """Columns are (name, title, kind): kind `text` as is, else a figure formatted by `_fmt`."""
    rows = [
        [str(row[name]) if kind == "text" else _fmt(row[name], kind) for name, _, kind in columns]
        for row in frame.iter_rows(named=True)
    ]
    return Table(
        titles=[title for _, title, _ in columns],
        numeric=[kind != "text" for _, _, kind in columns],
        rows=rows,
        heading=heading,
    )


def sections(data: MonitoringData, t: Thresholds) -> list[Section]:
    notes = data.notes
    out = [
        Section(
            "freshness",
            "Freshness",
            "How long ago each asset was last materialised, and how old the newest event in the log is, "
            "at the time of this report. Green within its limit, amber beyond it, red beyond twice.",
            _plot(plots.freshness(data.freshness, t)),
        )
    ]
    if data.volume.is_empty():
        out.append(Section("volume", "Event volume", "Daily events by type.", note=notes.get("events")))
    else:
        out.append(
            Section(
                "volume",
                "Event volume",
                "Events per day and type (by the day they happened). The band is the trailing 28-day "
                f"median ± {plots.Z_THRESHOLD} robust standard deviations (1.4826 × MAD); red points fall "
                "outside it. Days with no event at all are left out.",
                _plot(plots.volume(data.volume)),
            )
        )
    out.append(
        Section(
            "event-mix",
            "Event mix and unknown products",
            "Population stability index of each day's mix of event types against the 28 days before it, and "
            "the share of product events whose product id is not in the catalog.",
            _plot(plots.event_mix(data.event_mix, data.unknown_products, t)),
        )
    )
    if data.embedding_versions.is_empty():
        out.append(
            Section(
                "embeddings",
                "Embedding drift",
                "Product vectors per LanceDB version.",
                note=notes.get("embeddings"),
            )
        )
    else:
        tables = (
            [
                _table(
                    data.embeddings,
                    [
                        ("from_version", "from", "num"),
                        ("to_version", "to", "num"),
                        ("products_common", "in both", "num"),
                        ("products_added", "added", "num"),
                        ("products_removed", "removed", "num"),
                        ("mean_cosine", "mean cosine", "f3"),
                        ("changed_share", "vectors changed", "pct"),
                        ("centroid_shift", "centroid shift", "f3"),
                    ],
                )
            ]
            if not data.embeddings.is_empty()
            else []
        )
        out.append(
            Section(
                "embeddings",
                "Embedding drift",
                "Product vectors across LanceDB versions: the cosine between each product's old and new "
                "vector (1 = unchanged) and the shift of the centre of all vectors (1 − cos of the means).",
                _plot(plots.embeddings(data.embedding_versions, data.embeddings)),
                tables,
                notes.get("embeddings"),
            )
        )
    if data.recommendations.is_empty():
        out.append(
            Section(
                "recommendations", "Recommendation health", "Per snapshot.", note=notes.get("recommendations")
            )
        )
    else:
        frame = data.recommendations.with_columns(
            # Cast first: snapshots that were never gated make an all-null column of no type.
            gate=pl.col("gate_passed")
            .cast(pl.Boolean)
            .replace_strict({True: "passed", False: "FAILED"}, default="–", return_dtype=pl.String),
            state=pl.when(pl.col("is_current"))
            .then(pl.lit("current"))
            .when(pl.col("is_canary"))
            .then(pl.lit("canary"))
            .otherwise(pl.lit("")),
        )
        table = _table(
            frame.reverse(),
            [
                ("snapshot_id", "snapshot", "text"),
                ("state", "", "text"),
                ("gate", "gate", "text"),
                ("users", "users", "num"),
                ("user_coverage", "user cov.", "pct"),
                ("catalog_coverage", "catalog cov.", "pct"),
                ("fallback_share", "fallback", "pct"),
                ("gini", "Gini", "f3"),
                ("diversity", "diversity", "f3"),
                ("churn", "churn", "pct"),
            ],
        )
        out.append(
            Section(
                "recommendations",
                "Recommendation health",
                "Per snapshot (oldest left): users and catalog covered, users served only fallbacks, how "
                "concentrated recommendations are on few products (Gini), how different the top 10 of a list "
                "are from each other (1 − mean pairwise cosine), and how much each user's top 10 changed "
                "from the previous snapshot (1 − Jaccard). Red ✕: gate failed; green ring: current.",
                _plot(plots.recommendations(data.recommendations)),
                [table],
            )
        )
    if data.quality.is_empty():
        out.append(
            Section(
                "quality",
                "Data quality",
                "Pass rates of the data-quality suites.",
                note=notes.get("quality", "No data-quality results yet."),
            )
        )
    else:
        failures = []
        if not data.quality_failures.is_empty():
            failures.append(
                _table(
                    data.quality_failures.fill_null(""),
                    [(c, c.replace("_", " "), "text") for c in data.quality_failures.columns],
                    heading="Failed in the latest run",
                )
            )
        out.append(
            Section(
                "quality",
                "Data quality",
                "Share of expectations passed per suite and data-quality run.",
                _plot(plots.quality(data.quality)),
                failures,
                data_docs=DATA_DOCS if (data.home / "reports" / DATA_DOCS).exists() else None,
            )
        )
    out.append(experiment_section(data))
    if data.pipeline.is_empty():
        out.append(
            Section("pipeline", "Pipeline durations", "Step durations per run.", note=notes.get("pipeline"))
        )
    else:
        out.append(
            Section(
                "pipeline",
                "Pipeline durations",
                "Seconds per step (asset or dbt build) for the last runs recorded in the Dagster instance.",
                _plot(plots.pipeline(data.pipeline)),
            )
        )
    return out


def experiment_section(data: MonitoringData) -> Section:
    lead = (
        "The running canary as an A/B test (docs/experiments.md): per arm, the figures over every exposure "
        "since it started; relative lift canary/control − 1 with its 95% interval (delta method, shopper "
        "level) and the minimum detectable effect at this sample; the primary metric is starred."
    )
    frame = data.experiment
    if frame.is_empty():
        return Section("experiment", "Online experiment", lead, note=data.notes.get("experiment"))
    latest = frame.filter(pl.col("as_of") == frame["as_of"].max())
    first = latest.row(0, named=True)
    srm = "–" if first["srm_p_value"] is None else f"{first['srm_p_value']:.3g}"
    facts = [
        f"{first['decision']}: {first['reason']}",
        f"Canary {first['snapshot_id']} at {first['canary_percent']}% · as of {first['as_of']} · "
        f"{first['days_running']} day(s) · shoppers control {first['control_shoppers']:,} / canary "
        f"{first['canary_shoppers']:,} · exposures {first['control_exposures']:,} / "
        f"{first['canary_exposures']:,} · SRM p = {srm}{' (mismatch)' if first['srm_mismatch'] else ''}",
    ]
    table = _table(
        latest.with_columns(
            metric=pl.when(pl.col("is_primary")).then(pl.col("metric") + " *").otherwise(pl.col("metric"))
        ),
        [
            ("metric", "metric", "text"),
            ("control_value", "control", "f3"),
            ("canary_value", "canary", "f3"),
            ("lift", "lift", "pct"),
            ("lift_low", "95% low", "pct"),
            ("lift_high", "95% high", "pct"),
            ("p_value", "p", "f3"),
            ("mde", "MDE", "pct"),
        ],
    )
    primary = frame.filter(pl.col("is_primary")).drop_nulls("lift")
    plot = _plot(plots.experiment(primary)) if not primary.is_empty() else None
    return Section("experiment", "Online experiment", lead, plot, [table], facts=facts)


def render(data: MonitoringData, alerts: list[Alert], run_id: str, t: Thresholds | None = None) -> str:
    t = t or Thresholds()
    return (
        environment()
        .get_template("report.html")
        .render(
            built=f"{data.now:%Y-%m-%d %H:%M} UTC",
            home=str(data.home),
            run_id=run_id,
            nav=SECTIONS,
            cards=headline(data, alerts, t),
            alerts=alerts,
            sections=sections(data, t),
        )
    )
