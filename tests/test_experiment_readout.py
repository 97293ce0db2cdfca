"""The readout end to end: a simulated experiment written as landing events, through the
envelope and dbt, read back per shopper, equals the simulation's own per-shopper rows; the
history table; `shopguide experiment status|promote|abort`."""

from datetime import date, datetime, timedelta

import polars as pl
import pytest
from typer.testing import CliRunner

from core.settings import Paths
from experiments.readout import PROMOTE, compute_readout
from experiments.warehouse import (
    Experiment,
    current_readout,
    read_readouts,
    readout_as_of,
    record_readout,
    running_experiment,
)
from serving import serving_root
from serving.gate import GateContext, evaluate_gate
from serving.publish import history, publish, read_pointer, start_canary
from serving.snapshots import read_manifest, read_table, write_snapshot
from shopguide.cli import app
from shopguide.sources.experiment import ExperimentSimulation, simulate_shoppers, write_experiment_landing
from tests.exposure_log import build_warehouse
from tests.recommendation_tables import USERS, make_tables
from warehouse.store import connect

pytestmark = pytest.mark.integration

START = date(2024, 6, 3)
SIM = ExperimentSimulation(
    shoppers=3_000, ctr_lift=0.3, conversion_lift=0.6, days=8, seed=11, base_conversion=0.1
)
PRODUCTS = [f"SKU-{i:06d}" for i in range(1, 41)]
runner = CliRunner()


def gated(root, snapshot_id):
    tables = {
        name: read_table(root, snapshot_id, name) for name in read_manifest(root, snapshot_id).row_counts
    }
    return evaluate_gate(tables, GateContext(active_user_ids=USERS))


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    root = serving_root(Paths(home))
    control = write_snapshot(root, make_tables(0), {}, created_at=datetime(2024, 6, 1)).snapshot_id
    canary = write_snapshot(root, make_tables(1), {}, created_at=datetime(2024, 6, 2)).snapshot_id
    # Gated, as the nightly publish does (the report reads the gate results).
    publish(root, control, gated(root, control))
    start_canary(root, canary, 50, gated(root, canary))
    write_experiment_landing(
        home / "landing", SIM, START, PRODUCTS, canary_snapshot=canary, control_snapshot=control
    )
    build_warehouse(home)
    return home


@pytest.fixture
def cli_home(home, monkeypatch):
    monkeypatch.setenv("SHOPGUIDE_HOME", str(home))
    return home


def test_warehouse_path_gives_the_simulations_own_readout(home):
    experiment = running_experiment(home / "serving")
    assert experiment.canary_percent == 50
    readout, in_both = current_readout(home / "warehouse" / "shopguide.duckdb", experiment)
    expected = compute_readout(simulate_shoppers(SIM), 0.5, readout.days_running)
    # 8 days of exposures; a purchase minutes after the last day's last exposure is on day 9.
    assert in_both == 0 and readout.days_running == SIM.days + 1
    assert readout.shoppers == expected.shoppers and readout.exposures == expected.exposures
    for name, metric in expected.metrics.items():
        got = readout.metrics[name]
        assert (got.control, got.canary) == pytest.approx((metric.control, metric.canary), rel=1e-9)
        assert (got.lift.low, got.lift.high) == pytest.approx((metric.lift.low, metric.lift.high), rel=1e-9)
    assert readout.decision == PROMOTE  # +60 % conversion over 8 days, 1,500 shoppers an arm


def test_readout_history_is_one_set_of_rows_per_day(home):
    experiment = running_experiment(home / "serving")
    with connect(home / "warehouse" / "shopguide.duckdb") as con:
        for day in (START, date(2024, 6, 5), date(2024, 6, 5)):
            readout, _ = readout_as_of(con, experiment, day)
            record_readout(con, experiment, day, readout, "run-1", datetime(2024, 6, 6))
        assert readout_as_of(con, experiment, date(2024, 6, 2)) is None  # before the first exposure
        rows = read_readouts(con)
    assert rows.group_by("as_of").len().sort("as_of")["len"].to_list() == [4, 4]
    first = rows.filter((pl.col("as_of") == START) & (pl.col("metric") == "ctr")).row(0, named=True)
    later = rows.filter((pl.col("as_of") == date(2024, 6, 5)) & (pl.col("metric") == "ctr")).row(
        0, named=True
    )
    assert first["days_running"] == 1 and later["days_running"] == 3
    assert later["control_exposures"] > first["control_exposures"]


def test_the_asset_records_each_day_of_its_run(home, tmp_path):
    from dagster import DagsterInstance, materialize

    from assets.experiments import experiment_readout
    from assets.resources import ExperimentSettings, ShopguideHome

    resources = {"shopguide": ShopguideHome(home=str(home)), "experiment": ExperimentSettings()}
    with DagsterInstance.ephemeral() as instance:
        result = materialize(
            [experiment_readout], resources=resources, partition_key="2024-06-10", instance=instance
        )
    assert result.success
    metadata = result.asset_materializations_for_node("experiment_readout")[0].metadata
    assert metadata["decision"].value == "promote" and metadata["days_recorded"].value == 1
    with connect(home / "warehouse" / "shopguide.duckdb", read_only=True) as con:
        rows = read_readouts(con).filter(pl.col("as_of") == date(2024, 6, 10))
    assert sorted(rows["metric"]) == ["add_to_cart_rate", "conversion_rate", "ctr", "revenue_per_shopper"]
    assert set(rows["decision"]) == {"promote"} and set(rows["days_running"]) == {8}
    empty = {"shopguide": ShopguideHome(home=str(tmp_path)), "experiment": ExperimentSettings()}
    with DagsterInstance.ephemeral() as instance:
        skipped = materialize(
            [experiment_readout], resources=empty, partition_key="2024-06-10", instance=instance
        )
    assert skipped.asset_materializations_for_node("experiment_readout")[0].metadata["skipped"].value == (
        "no canary is running"
    )


def test_the_asset_acts_by_the_rule_when_automation_is_on(home, tmp_path):
    """On a copy of the home (later tests need the canary running): a day older than the
    warehouse's latest does not act; the latest day promotes and the history says why; a
    re-run of it finds nothing to act on."""
    import shutil

    from dagster import DagsterInstance, materialize

    from assets.experiments import experiment_readout
    from assets.resources import ExperimentSettings, ShopguideHome

    copy = tmp_path / "home"
    shutil.copytree(home, copy)
    root = copy / "serving"
    canary = read_pointer(root)["canary"]["snapshot"]
    # The launchpad's way: the resource configured at launch, the option as plain text.
    resources = {
        "shopguide": ShopguideHome(home=str(copy)),
        "experiment": ExperimentSettings.configure_at_launch(),
    }
    config = {"resources": {"experiment": {"config": {"automation": "on"}}}}

    def materialize_day(day: str):
        with DagsterInstance.ephemeral() as instance:
            result = materialize(
                [experiment_readout],
                resources=resources,
                partition_key=day,
                instance=instance,
                run_config=config,
            )
        return result.asset_materializations_for_node("experiment_readout")[0].metadata, result.run_id

    # The last exposures are on 2024-06-10, their purchases minutes later on 2024-06-11.
    older, _ = materialize_day("2024-06-10")
    assert older["decision"].value == "promote" and older["automation_action"].value == "none"
    assert "not the latest day (2024-06-11)" in older["automation_message"].value
    assert read_pointer(root)["canary"]["snapshot"] == canary
    latest, run_id = materialize_day("2024-06-11")
    assert latest["automation"].value == "on" and latest["automation_action"].value == "promote"
    assert read_pointer(root)["current"] == canary and read_pointer(root)["canary"] is None
    line = history(root, limit=1)[0]
    assert line["action"] == "promote_canary" and line["by"] == "automation" and line["run_id"] == run_id
    assert line["readout"]["as_of"] == "2024-06-11" and line["readout"]["days_running"] == 9
    with connect(copy / "warehouse" / "shopguide.duckdb", read_only=True) as con:
        recorded = read_readouts(con).filter(
            (pl.col("as_of") == date(2024, 6, 11)) & (pl.col("metric") == "conversion_rate")
        )
    assert line["readout"]["metrics"]["conversion_rate"]["lift_low"] == pytest.approx(recorded["lift_low"][0])
    again, _ = materialize_day("2024-06-11")
    assert again["skipped"].value == "no canary is running" and len(history(root)) == 3


def test_report_section_and_prom_metrics(home):
    from prometheus_client.parser import text_string_to_metric_families

    from core.settings import Paths
    from reports.build import build_report

    experiment = running_experiment(home / "serving")
    with connect(home / "warehouse" / "shopguide.duckdb") as con:
        for day in (date(2024, 6, 4), date(2024, 6, 6), date(2024, 6, 10)):
            readout, _ = readout_as_of(con, experiment, day)
            record_readout(con, experiment, day, readout, "run-2", datetime(2024, 6, 11))
    outcome = build_report(Paths(home), datetime(2024, 6, 11, 6), "run-r", record=False)
    page = outcome.html_path.read_text()
    assert '<section id="experiment">' in page and 'data-plot="experiment"' in page
    assert "conversion_rate *" in page and '<p class="note">promote: ' in page
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(outcome.prom_path.read_text())
        for s in f.samples
    }
    assert samples[("shopguide_experiment_lift_ratio", (("metric", "conversion_rate"),))] == pytest.approx(
        readout.metrics["conversion_rate"].lift.estimate
    )
    assert samples[("shopguide_experiment_shoppers", (("arm", "canary"),))] == readout.shoppers["canary"]
    assert samples[("shopguide_experiment_decision", (("decision", "promote"),))] == 1
    assert samples[("shopguide_experiment_srm_mismatch", ())] == 0
    assert not [a for a in outcome.alerts if a.source == "experiment"]  # promote: nothing to alert


def test_a_broken_split_is_an_alert(home):
    from reports.alerts import experiment_alerts
    from reports.collect import collect_experiment

    # Its own readout row (re-recording a day replaces it), not one an earlier test left.
    experiment = running_experiment(home / "serving")
    with connect(home / "warehouse" / "shopguide.duckdb") as con:
        readout, _ = readout_as_of(con, experiment, date(2024, 6, 10))
        record_readout(con, experiment, date(2024, 6, 10), readout, "run-alert", datetime(2024, 6, 11))
        rows = collect_experiment(con)
    last_day = rows["as_of"].max()
    broken = rows.with_columns(
        srm_mismatch=pl.lit(True), srm_p_value=pl.lit(1e-9), decision=pl.lit("abort"), reason=pl.lit("SRM")
    )
    snapshot = rows["snapshot_id"][0]
    running = pl.DataFrame({"snapshot_id": [snapshot], "is_canary": [True]})
    # experiment_alerts reads these three fields of MonitoringData only.
    fields = {"experiment": broken, "event_log": {"latest_landing_day": last_day}, "recommendations": running}
    data = type("Data", (), fields)()
    alerts = experiment_alerts(data)
    assert [a.source for a in alerts] == ["experiment", "experiment"]
    assert "Sample ratio mismatch" in alerts[0].message and "says abort: SRM" in alerts[1].message
    # Aborted already (by a person or the automation): the broken split is still worth a look,
    # "says abort" is not.
    data.recommendations = running.with_columns(is_canary=pl.lit(False))
    assert [a.message[:21] for a in experiment_alerts(data)] == ["Sample ratio mismatch"]
    data.recommendations = pl.DataFrame({"snapshot_id": ["another"], "is_canary": [False]})
    assert len(experiment_alerts(data)) == 2  # the experiment's snapshot not listed: unknown, kept
    data.recommendations = running
    data.event_log = {"latest_landing_day": last_day + timedelta(days=1)}  # an experiment that has ended
    assert experiment_alerts(data) == []


def test_status_prints_the_readout(cli_home):
    result = runner.invoke(app, ["experiment", "status"])
    assert result.exit_code == 0, result.output
    assert "*conversion_rate" in result.output and "decision:   promote" in result.output
    as_json = runner.invoke(app, ["experiment", "status", "--json"])
    assert '"decision": "promote"' in as_json.output


def test_status_of_an_unknown_snapshot_is_one_line(cli_home):
    result = runner.invoke(app, ["experiment", "status", "--snapshot", "nope", "--percent", "10"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: no exposure of canary snapshot nope in the warehouse yet "
        "(recommendation_shown events with arm canary and that snapshot_id)."
    ]
    half = runner.invoke(app, ["experiment", "status", "--snapshot", "nope"])
    assert half.exit_code == 2 and "go together" in half.output and "Traceback" not in half.output


def test_promote_by_the_readout_records_why_then_nothing_left_to_act_on(cli_home):
    root = cli_home / "serving"
    canary = read_pointer(root)["canary"]["snapshot"]
    result = runner.invoke(app, ["experiment", "promote"])
    assert result.exit_code == 0, result.output
    assert read_pointer(root)["current"] == canary and read_pointer(root)["canary"] is None
    last = history(root, limit=1)[0]
    assert last["action"] == "promote_canary" and last["reason"].startswith(
        "readout: promote: primary significantly better: conversion_rate +"
    )
    assert last["by"] == "operator" and last["readout"]["decision"] == "promote"
    assert last["readout"]["shoppers"] == {"control": 1_472, "canary": 1_528}
    for command in (["experiment", "promote"], ["experiment", "abort"], ["experiment", "status"]):
        refused = runner.invoke(app, command)
        assert refused.exit_code == 2 and len(refused.output.strip().splitlines()) == 1
        assert refused.output.startswith("error: no canary is running")


def test_promote_against_the_readout_needs_force_and_abort_is_always_allowed(tmp_path, monkeypatch):
    monkeypatch.setenv("SHOPGUIDE_HOME", str(tmp_path))
    root = tmp_path / "serving"
    a = write_snapshot(root, make_tables(0), {}, created_at=datetime(2024, 6, 1)).snapshot_id
    b = write_snapshot(root, make_tables(1), {}, created_at=datetime(2024, 6, 2)).snapshot_id
    publish(root, a, None, force=True)
    start_canary(root, b, 10, None, force=True)
    (tmp_path / "warehouse").mkdir()
    with connect(tmp_path / "warehouse" / "shopguide.duckdb"):
        pass  # an empty warehouse: no exposure logged yet
    refused = runner.invoke(app, ["experiment", "promote"])
    assert refused.exit_code == 2 and "use --force" in refused.output
    assert read_pointer(root)["canary"]["snapshot"] == b
    aborted = runner.invoke(app, ["experiment", "abort"])
    assert aborted.exit_code == 0, aborted.output
    assert read_pointer(root)["canary"] is None and history(root, limit=1)[0]["reason"].startswith(
        "no exposure"
    )
    assert history(root, limit=1)[0]["by"] == "operator" and "readout" not in history(root, limit=1)[0]
    start_canary(root, b, 10, None, force=True)
    forced = runner.invoke(app, ["experiment", "promote", "--force"])
    assert forced.exit_code == 0 and read_pointer(root)["current"] == b
    assert history(root, limit=1)[0]["reason"].startswith("forced against the no exposure")


def test_experiment_snapshot_must_match_to_act():
    assert Experiment("s", 25).canary_share == 0.25
