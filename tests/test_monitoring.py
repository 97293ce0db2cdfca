"""The monitoring report on a crafted home: figures, alerts, the .prom file, the HTML page,
the alerts table, `shopguide report` and the Dagster asset with its check."""

import re
from datetime import timedelta

import polars as pl
import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_monitoring_home import (
    FAILING_CHECK,
    LAST_DAY,
    NOW,
    SPIKE_VIEWS,
    UNKNOWN_ON_LAST_DAY,
    craft_home,
    materialize_report,
)
from typer.testing import CliRunner

from reports.alerts import CRITICAL, WARNING, derive_alerts
from reports.build import build_report
from reports.collect import collect
from warehouse.store import connect


@pytest.fixture
def crafted(home):
    return craft_home(home)


def test_figures_have_the_known_answers(crafted):
    data = collect(crafted, NOW)
    last = data.volume.filter(pl.col("day") == LAST_DAY)
    views = last.filter(pl.col("event_type") == "view").row(0, named=True)
    assert views["events"] == SPIKE_VIEWS + UNKNOWN_ON_LAST_DAY and views["anomalous"] and views["z"] > 10
    assert not last.filter(pl.col("event_type") == "purchase")["anomalous"][0]  # 10 every day
    # Only the last day is anomalous for views; a steady 100-102 never is.
    assert data.volume.filter(pl.col("anomalous"))["day"].to_list() == [LAST_DAY]
    assert data.unknown_products["share"][-1] == pytest.approx(44 / (400 + 10 + 44))
    assert data.unknown_products["share"][:-1].max() == 0
    assert data.event_mix["psi"].drop_nulls()[:-1].max() < 0.01
    # Freshness vs a fixed `now`: the newest event is on the last day at 07:23 (443rd minute).
    event_log = data.freshness.filter(pl.col("kind") == "event_log").row(0, named=True)
    assert event_log["age_seconds"] == pytest.approx((NOW - event_log["at"]).total_seconds())
    assert event_log["at"].date() == LAST_DAY
    # Embeddings: v1 → v2 moved 5 of 20 products and added 2.
    drift_row = data.embeddings.row(0, named=True)
    assert (drift_row["from_version"], drift_row["to_version"]) == (1, 2)
    assert (drift_row["products_common"], drift_row["products_added"]) == (20, 2)
    assert drift_row["changed_share"] == pytest.approx(5 / 20)
    # Recommendations: three snapshots; the second shifted every list by one product.
    recs = data.recommendations
    assert recs["gate_passed"].to_list() == [True, True, False]
    assert recs["is_current"].to_list() == [False, True, False]
    assert recs["user_coverage"][0] == 1.0 and recs["fallback_share"][0] == pytest.approx(3 / 12)
    assert recs["churn"][0] is None
    assert recs["churn"][1] == pytest.approx(1 - 9 / 11)  # 10-item lists sharing 9 items
    assert data.gate_failures  # the newest snapshot's failed checks
    # Data quality: two runs; the latest failed one `error` expectation.
    assert (
        data.quality.filter(pl.col("run_id") == "dq-2", pl.col("suite") == "raw_events")["pass_rate"][0]
        == 0.5
    )
    assert data.quality_failures["expectation"].to_list() == ["expect_column_values_to_be_unique"]


def test_alerts_name_what_is_wrong(crafted):
    alerts = derive_alerts(collect(crafted, NOW))
    by_source = {}
    for alert in alerts:
        by_source.setdefault(alert.source, []).append(alert)
    assert set(by_source) == {"volume", "unknown_products", "embeddings", "recommendations", "data_quality"}
    assert [a.subject for a in by_source["volume"]] == ["view"] and "spike" in by_source["volume"][0].message
    assert by_source["data_quality"][0].severity == CRITICAL
    assert any(a.severity == CRITICAL and "quality gate" in a.message for a in by_source["recommendations"])
    assert alerts[0].severity == CRITICAL and alerts[-1].severity == WARNING  # critical first


def test_stale_event_log_is_an_alert_and_fresh_data_is_not(crafted):
    def freshness(now):
        return [a for a in derive_alerts(collect(crafted, now)) if a.source == "freshness"]

    assert freshness(NOW) == []
    stale = freshness(NOW + timedelta(days=3))
    assert [(a.severity, a.subject) for a in stale] == [(WARNING, "event log")]
    assert freshness(NOW + timedelta(days=30))[0].severity == CRITICAL


def test_prom_file_parses_and_follows_the_naming_conventions(crafted):
    outcome = build_report(crafted, NOW, "run-1")
    text = outcome.prom_path.read_text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in (
        "shopguide_recommendations_user_coverage_ratio",
        "shopguide_recommendations_catalog_coverage_ratio",
        "shopguide_recommendations_fallback_ratio",
        "shopguide_recommendations_popularity_gini",
        "shopguide_recommendations_intra_list_diversity",
        "shopguide_recommendations_churn_ratio",
        "shopguide_event_log_staleness_seconds",
        "shopguide_event_log_latest_event_timestamp_seconds",
        "shopguide_events_latest_day",
        "shopguide_event_mix_population_stability_index",
        "shopguide_events_unknown_product_ratio",
        "shopguide_embeddings_mean_cosine_similarity",
        "shopguide_embeddings_centroid_shift",
        "shopguide_data_quality_pass_ratio",
        "shopguide_monitoring_alerts",
    ):
        assert name in families, name
        assert families[name].type == "gauge"
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples
    }
    assert samples[("shopguide_events_latest_day_anomalous", (("event_type", "view"),))] == 1
    assert samples[("shopguide_events_latest_day_anomalous", (("event_type", "purchase"),))] == 0
    assert samples[("shopguide_recommendations_gate_passed", ())] == 0
    assert samples[("shopguide_data_quality_pass_ratio", (("suite", "raw_events"),))] == 0.5
    assert samples[("shopguide_monitoring_alerts", (("severity", "critical"),))] == 2
    assert all(name.startswith("shopguide_") for name, _ in samples)
    assert not [n for n, _ in samples if n.endswith("_total")]  # gauges, not counters


def test_html_is_one_self_contained_page(crafted):
    outcome = build_report(crafted, NOW, "run-1")
    page = outcome.html_path.read_text()
    assert page.startswith("<!doctype html>")
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.I)
    assert not re.search(r"@import|url\(\s*['\"]?(?:https?:)?//", page, re.I)
    assert "<script" not in page.lower() and "<link" not in page.lower()
    for section in (
        "freshness",
        "volume",
        "event-mix",
        "embeddings",
        "recommendations",
        "quality",
        "pipeline",
    ):
        assert f'<section id="{section}">' in page
    plots = re.findall(r'data-plot="([a-z_]+)"', page)
    assert plots == ["freshness", "volume", "event_mix", "embeddings", "recommendations", "quality"]
    assert "No Dagster instance given." in page  # built without one: said, not plotted
    # The headline comes before the alerts, the alerts before the sections.
    assert page.index('id="summary"') < page.index('id="alerts"') < page.index('id="freshness"')
    assert (outcome.html_path.parent / "history" / f"report-{NOW:%Y-%m-%d}.html").exists()


def test_no_quality_table_is_said_not_plotted(home):
    craft_home(home)
    with connect(home.warehouse) as con:
        con.execute("drop table data_quality_results")
    page = build_report(home, NOW, "run-1").html_path.read_text()
    assert "No data-quality results yet" in page
    assert 'data-plot="quality"' not in page


def test_alerts_table_is_replaced_per_run(crafted):
    first = build_report(crafted, NOW, "run-1")
    build_report(crafted, NOW, "run-1")  # a retry of the same run
    build_report(crafted, NOW, "run-2")
    with connect(crafted.warehouse, read_only=True) as con:
        counts = dict(con.execute("select run_id, count(*) from monitoring_alerts group by 1").fetchall())
        columns = [r[0] for r in con.execute("describe monitoring_alerts").fetchall()]
    assert counts == {"run-1": len(first.alerts), "run-2": len(first.alerts)}
    assert columns == ["raised_at", "run_id", "source", "severity", "subject", "message"]


def test_cli_report_prints_the_path(crafted):
    from shopguide.cli import app

    result = CliRunner().invoke(app, ["report"])
    assert result.exit_code == 0, result.output
    path = crafted.reports / "monitoring" / "report.html"
    assert str(path) in result.stdout.splitlines()
    assert path.exists() and (path.parent / "shopguide.prom").exists()


def test_cli_report_without_data_is_one_clear_line(home):
    from shopguide.cli import app

    result = CliRunner().invoke(app, ["report"])
    assert result.exit_code == 2
    assert "No warehouse at" in result.output and "Traceback" not in result.output


def test_the_asset_reports_its_alerts_through_a_warning_check(crafted):
    result = materialize_report(crafted)
    assert result.success
    [evaluation] = [e for e in result.get_asset_check_evaluations() if e.check_name == "no_alerts"]
    assert not evaluation.passed and evaluation.severity.value == "WARN"
    [materialization] = result.asset_materializations_for_node("monitoring_report")
    metadata = materialization.metadata
    # The two of the crafted data, plus the event log: its newest event (2024) is old by the clock.
    assert metadata["alerts_critical"].value == 3
    assert "expect_column_values_to_be_unique" in metadata["alerts"].value
    # The run's own failed asset checks are alerts too (the stand-in publish fails a WARN check).
    assert f"published_recommendations:{FAILING_CHECK}" in metadata["alerts"].value
    assert metadata["report"].value == str(crafted.reports / "monitoring" / "report.html")
    with connect(crafted.warehouse, read_only=True) as con:
        stored = con.execute(
            "select count(*) from monitoring_alerts where run_id = ?", [result.run_id]
        ).fetchall()
    assert stored[0][0] == metadata["alerts_critical"].value + metadata["alerts_warning"].value
    # A second run sees the first one's step timings and materialisations.
    again = materialize_report(crafted)
    page = (crafted.reports / "monitoring" / "report.html").read_text()
    assert again.success and 'data-plot="pipeline"' in page and result.run_id[:8] in page
    assert ">raw_events<" in page or "raw_events</text>" in page


@pytest.mark.integration
def test_the_nightly_job_ends_with_the_report(home, dbt_manifest):
    """The real pipeline on a small synthetic shop: the report is the last step of the run."""
    from datetime import date

    from orchestration.definitions import defs
    from shopguide.runner import run_range
    from shopguide.sources.synthetic import SyntheticConfig, generate

    generate(home.landing, SyntheticConfig(events=20_000, days=4, start_date=date(2024, 1, 1)))
    outcome = run_range(home, date(2024, 1, 1), date(2024, 1, 7))
    assert outcome.success, outcome
    # Its newest event (January 2024) is old by the clock: a critical freshness alert, shown
    # as the report's warning check (WARN never fails the run).
    assert "monitoring_report:no_alerts" in outcome.warnings
    page = (home.reports / "monitoring" / "report.html").read_text()
    graph = defs.resolve_job_def("nightly_job").asset_layer.asset_graph
    assets = {k.to_user_string() for k in graph.materializable_asset_keys} - {"monitoring_report"}
    missing = [name for name in assets if f">{name}</text>" not in page]
    assert not missing, missing  # every asset of the nightly job on the freshness plot
    assert 'data-plot="pipeline"' in page and "shop_dbt_models</text>" in page
    with connect(home.warehouse, read_only=True) as con:
        alerts = con.execute(
            "select source, severity from monitoring_alerts where run_id = ?", [outcome.run_id]
        ).fetchall()
    assert ("freshness", "critical") in alerts
    prom = (home.reports / "monitoring" / "shopguide.prom").read_text()
    staleness = [
        s
        for f in text_string_to_metric_families(prom)
        for s in f.samples
        if s.name == "shopguide_asset_staleness_seconds"
    ]
    assert {s.labels["asset"] for s in staleness} == assets
