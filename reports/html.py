"""One self-contained HTML page: headline numbers, the alerts, then a section per concern.

Self-contained means it opens from a file with no network: the CSS is inline, every plot is
an inline `<svg>`, and there is no script and no external URL (tests check both).
"""

from __future__ import annotations

from html import escape

import polars as pl

from reports import plots
from reports.alerts import CRITICAL, WARNING, Alert, Thresholds
from reports.collect import MonitoringData

CSS = """
:root { --ok:#3b8d5a; --warn:#d9952b; --bad:#c0392b; --ink:#1f2933; --muted:#6b7280; --line:#e5e7eb; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1080px; padding: 24px 28px 48px; color: var(--ink);
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
h1 { font-size: 24px; margin: 0; }
h2 { font-size: 18px; margin: 36px 0 4px; padding-top: 12px; border-top: 1px solid var(--line); }
p.meta, p.lead, .note { color: var(--muted); margin: 4px 0 12px; }
nav a { color: var(--muted); margin-right: 12px; font-size: 13px; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: 10px;
         margin: 18px 0; }
.card { border: 1px solid var(--line); border-left: 5px solid var(--muted); border-radius: 6px;
        padding: 8px 12px; }
.card.ok { border-left-color: var(--ok); } .card.warn { border-left-color: var(--warn); }
.card.bad { border-left-color: var(--bad); }
.card .label { font-size: 12px; color: var(--muted); text-transform: uppercase; letter-spacing: .03em; }
.card .value { font-size: 22px; font-weight: 600; }
.card .sub { font-size: 12px; color: var(--muted); }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin: 8px 0; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top;
         overflow-wrap: anywhere; }
th { font-weight: 600; color: var(--muted); }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.sev { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff; font-size: 12px; }
.sev.critical { background: var(--bad); } .sev.warning { background: var(--warn); }
svg.plot { width: 100%; height: auto; display: block; margin: 6px 0; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
"""

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


def _fmt(value, kind: str = "num") -> str:
    if value is None:
        return "–"
    if kind == "pct":
        return f"{value:.1%}"
    if kind == "f3":
        return f"{value:.3f}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return f"{value:,}" if isinstance(value, int) else escape(str(value))


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:,.0f} days"


def _card(label: str, value: str, sub: str = "", status: str = "") -> str:
    return (
        f'<div class="card {status}"><div class="label">{escape(label)}</div>'
        f'<div class="value">{value}</div><div class="sub">{sub}</div></div>'
    )


def _level(value, warn_if, bad_if=None) -> str:
    if value is None:
        return ""
    if bad_if is not None and bad_if(value):
        return "bad"
    return "warn" if warn_if(value) else "ok"


def headline(data: MonitoringData, alerts: list[Alert], t: Thresholds) -> str:
    critical = sum(a.severity == CRITICAL for a in alerts)
    warning = sum(a.severity == WARNING for a in alerts)
    cards = [
        _card(
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
        _card(
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
            _card(
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
            _card(
                "Event-mix PSI",
                f"{value:.3f}",
                "vs trailing 28 days",
                _level(value, lambda v: v > t.psi_warning),
            )
        )
    if not data.unknown_products.is_empty():
        value = data.unknown_products["share"][-1]
        cards.append(
            _card(
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
            _card(
                "User coverage",
                _fmt(rec["user_coverage"], "pct"),
                f"newest snapshot · {gate}",
                "bad"
                if rec["gate_passed"] is False
                else _level(rec["user_coverage"], lambda v: v < t.min_user_coverage),
            )
        )
        cards.append(
            _card(
                "Fallback share",
                _fmt(rec["fallback_share"], "pct"),
                "users with no personal item",
                _level(rec["fallback_share"], lambda v: v > t.max_fallback_share),
            )
        )
        cards.append(
            _card(
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
            _card(
                "Product vectors",
                f"v{version['version']}",
                f"{version['products']:,} products · mean cosine vs previous {_fmt(cosine, 'f3')}",
                _level(cosine, lambda v: v < t.embedding_mean_cosine),
            )
        )
    if data.quality.is_empty():
        cards.append(_card("Data quality", "–", "no data-quality results yet"))
    else:
        latest_run = data.quality.sort("checked_at")["run_id"][-1]
        run = data.quality.filter(pl.col("run_id") == latest_run)
        rate = run["passed"].sum() / run["evaluated"].sum()
        cards.append(
            _card(
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
            _card(
                "Last finished run",
                f"{last['run_seconds']:,.0f} s",
                f"{last['job']} · {last['status'].lower()}",
                "bad" if last["status"] == "FAILURE" else "ok",
            )
        )
    return '<section id="summary" class="cards">' + "".join(cards) + "</section>"


def alerts_table(alerts: list[Alert]) -> str:
    if not alerts:
        return (
            '<section id="alerts"><h2>Alerts</h2>'
            '<p class="note">No alerts: every figure is within its limits.</p></section>'
        )
    rows = "".join(
        f'<tr><td><span class="sev {a.severity}">{a.severity}</span></td><td>{escape(a.source)}</td>'
        f"<td>{escape(a.subject)}</td><td>{escape(a.message)}</td></tr>"
        for a in alerts
    )
    return (
        f'<section id="alerts"><h2>Alerts ({len(alerts)})</h2>'
        '<p class="lead">Also in the warehouse table <code>monitoring_alerts</code> and on the '
        "<code>monitoring_report</code> asset in the Dagster UI.</p>"
        "<table><thead><tr><th>severity</th><th>source</th><th>subject</th><th>message</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></section>"
    )


def _table(frame: pl.DataFrame, columns: list[tuple[str, str, str]]) -> str:
    head = "".join(f"<th>{escape(title)}</th>" for _, title, _ in columns)
    body = []
    for row in frame.iter_rows(named=True):
        cells = []
        for name, _, kind in columns:
            value = row[name]
            css = ' class="num"' if kind != "text" else ""
            cells.append(f"<td{css}>{_fmt(value, kind) if kind != 'text' else escape(str(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _section(anchor: str, title: str, lead: str, body: str, note: str | None = None) -> str:
    note_html = f'<p class="note">{escape(note)}</p>' if note else ""
    head = f'<section id="{anchor}"><h2>{escape(title)}</h2><p class="lead">{lead}</p>'
    return f"{head}{note_html}{body}</section>"


def sections(data: MonitoringData, t: Thresholds) -> list[str]:
    notes = data.notes
    out = [
        _section(
            "freshness",
            "Freshness",
            "How long ago each asset was last materialised, and how old the newest event in the log is, "
            "at the time of this report. Green within its limit, amber beyond it, red beyond twice.",
            plots.freshness(data.freshness, t),
        )
    ]
    if data.volume.is_empty():
        out.append(_section("volume", "Event volume", "Daily events by type.", "", notes.get("events")))
    else:
        out.append(
            _section(
                "volume",
                "Event volume",
                "Events per day and type (by the day they happened). The band is the trailing 28-day "
                f"median ± {plots.Z_THRESHOLD} robust standard deviations (1.4826 × MAD); red points fall "
                "outside it. Days with no event at all are left out.",
                plots.volume(data.volume),
            )
        )
    out.append(
        _section(
            "event-mix",
            "Event mix and unknown products",
            "Population stability index of each day's mix of event types against the 28 days before it, and "
            "the share of product events whose product id is not in the catalog.",
            plots.event_mix(data.event_mix, data.unknown_products, t),
        )
    )
    if data.embedding_versions.is_empty():
        out.append(
            _section(
                "embeddings",
                "Embedding drift",
                "Product vectors per LanceDB version.",
                "",
                notes.get("embeddings"),
            )
        )
    else:
        table = (
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
            if not data.embeddings.is_empty()
            else ""
        )
        out.append(
            _section(
                "embeddings",
                "Embedding drift",
                "Product vectors across LanceDB versions: the cosine between each product's old and new "
                "vector (1 = unchanged) and the shift of the centre of all vectors (1 − cos of the means).",
                plots.embeddings(data.embedding_versions, data.embeddings) + table,
                notes.get("embeddings"),
            )
        )
    if data.recommendations.is_empty():
        out.append(
            _section(
                "recommendations", "Recommendation health", "Per snapshot.", "", notes.get("recommendations")
            )
        )
    else:
        frame = data.recommendations.with_columns(
            gate=pl.col("gate_passed").replace_strict(
                {True: "passed", False: "FAILED"}, default="–", return_dtype=pl.String
            ),
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
            _section(
                "recommendations",
                "Recommendation health",
                "Per snapshot (oldest left): users and catalog covered, users served only fallbacks, how "
                "concentrated recommendations are on few products (Gini), how different the top 10 of a list "
                "are from each other (1 − mean pairwise cosine), and how much each user's top 10 changed "
                "from the previous snapshot (1 − Jaccard). Red ✕: gate failed; green ring: current.",
                plots.recommendations(data.recommendations) + table,
            )
        )
    if data.quality.is_empty():
        out.append(
            _section(
                "quality",
                "Data quality",
                "Pass rates of the data-quality suites.",
                "",
                notes.get("quality", "No data-quality results yet."),
            )
        )
    else:
        failures = ""
        if not data.quality_failures.is_empty():
            failures = "<h3>Failed in the latest run</h3>" + _table(
                data.quality_failures.fill_null(""),
                [(c, c.replace("_", " "), "text") for c in data.quality_failures.columns],
            )
        docs = ""
        if (data.home / "reports" / DATA_DOCS).exists():
            docs = f' The great-expectations <a href="../{DATA_DOCS}">Data Docs</a> show every validation.'
        out.append(
            _section(
                "quality",
                "Data quality",
                "Share of expectations passed per suite and data-quality run." + docs,
                plots.quality(data.quality) + failures,
            )
        )
    out.append(experiment_section(data))
    if data.pipeline.is_empty():
        out.append(
            _section("pipeline", "Pipeline durations", "Step durations per run.", "", notes.get("pipeline"))
        )
    else:
        out.append(
            _section(
                "pipeline",
                "Pipeline durations",
                "Seconds per step (asset or dbt build) for the last runs recorded in the Dagster instance.",
                plots.pipeline(data.pipeline),
            )
        )
    return out


def experiment_section(data: MonitoringData) -> str:
    lead = (
        "The running canary as an A/B test (docs/experiments.md): per arm, the figures over every exposure "
        "since it started; relative lift canary/control − 1 with its 95% interval (delta method, shopper "
        "level) and the minimum detectable effect at this sample; the primary metric is starred."
    )
    frame = data.experiment
    if frame.is_empty():
        return _section("experiment", "Online experiment", lead, "", data.notes.get("experiment"))
    latest = frame.filter(pl.col("as_of") == frame["as_of"].max())
    first = latest.row(0, named=True)
    srm = "–" if first["srm_p_value"] is None else f"{first['srm_p_value']:.3g}"
    summary = (
        f"<p><b>{escape(first['decision'])}</b>: {escape(first['reason'])}</p>"
        f'<p class="note">Canary <code>{escape(first["snapshot_id"])}</code> at {first["canary_percent"]}% · '
        f"as of {first['as_of']} · {first['days_running']} day(s) · shoppers control "
        f"{first['control_shoppers']:,} / canary {first['canary_shoppers']:,} · exposures "
        f"{first['control_exposures']:,} / {first['canary_exposures']:,} · SRM p = {srm}"
        f"{' <b>mismatch</b>' if first['srm_mismatch'] else ''}</p>"
    )
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
    plot = plots.experiment(primary) if not primary.is_empty() else ""
    return _section("experiment", "Online experiment", lead, summary + table + plot)


def render(data: MonitoringData, alerts: list[Alert], run_id: str, t: Thresholds | None = None) -> str:
    t = t or Thresholds()
    nav = "".join(f'<a href="#{anchor}">{escape(title)}</a>' for anchor, title in SECTIONS)
    built = f"{data.now:%Y-%m-%d %H:%M} UTC"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>shopguide monitoring · {built}</title><style>{CSS}</style></head><body>"
        f'<header><h1>shopguide monitoring</h1><p class="meta">Built {built} for '
        f"<code>{escape(str(data.home))}</code> · run <code>{escape(run_id)}</code></p>"
        f'<nav><a href="#alerts">Alerts</a>{nav}</nav></header>'
        + headline(data, alerts, t)
        + alerts_table(alerts)
        + "".join(sections(data, t))
        + "<footer>The same figures are in <code>shopguide.prom</code> next to this file (Prometheus "
        "text format). Built by <code>shopguide report</code> or the <code>monitoring_report</code> "
        "asset.</footer>"
        "</body></html>"
    )
