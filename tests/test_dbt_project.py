"""The dbt project: how it is declared (one actor_key, grain and keys, relationships, source
freshness, incremental unit tests) and what it does when run on a tiny event log without
Dagster (a late event merging two sessions, a re-run with no duplicates, the unit tests,
`dbt source freshness` warning and failing)."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from core.dbt_manifest import DBT_DIR, DBT_EXECUTABLE
from warehouse.ingest import ingest_landing_day
from warehouse.store import connect, ensure_event_log, replace_partition

D1, D2 = date(2024, 1, 1), date(2024, 1, 2)
MARTS = ["dim_products", "dim_users", "fct_daily_product_metrics", "fct_events", "fct_sessions"]
MARTS += ["fct_user_product_interactions"]


@pytest.fixture(scope="module")
def manifest(dbt_manifest) -> dict:
    return json.loads(Path(dbt_manifest).read_text())


def _nodes(manifest: dict, resource_type: str) -> list[dict]:
    return [n for n in manifest["nodes"].values() if n["resource_type"] == resource_type]


def test_actor_key_is_defined_once_and_used_by_both_models():
    """int_events_sessionized numbers sessions per actor and fct_sessions picks the actors to
    recompute by the same key: a copy in each could drift and silently skip actors."""
    models = DBT_DIR / "models"
    for name in ("intermediate/int_events_sessionized.sql", "marts/fct_sessions.sql"):
        assert "{{ actor_key() }}" in (models / name).read_text(), name
    copies = [p.name for p in models.rglob("*.sql") if "'user:'" in p.read_text()]
    assert copies == []
    assert "'user:'" in (DBT_DIR / "macros" / "actor_key.sql").read_text()


def test_every_model_states_its_grain_and_tests_its_key(manifest):
    models = [n for n in _nodes(manifest, "model") if n["package_name"] == "shopguide"]
    assert {n["name"] for n in models} >= set(MARTS)
    tests = _nodes(manifest, "test")
    for model in models:
        assert model["description"].startswith("One row per"), model["name"]
        on_model = [t for t in tests if t.get("attached_node") == model["unique_id"]]
        keyed = {}
        for test in on_model:
            keyed.setdefault(test.get("column_name"), set()).add(test["test_metadata"]["name"])
        assert any({"not_null", "unique"} <= kinds for kinds in keyed.values()), model["name"]


@pytest.mark.parametrize(
    ("model", "column", "parent"),
    [
        ("fct_events", "product_id", "dim_products"),
        ("fct_sessions", "user_id", "dim_users"),
        ("fct_daily_product_metrics", "product_id", "dim_products"),
        ("fct_user_product_interactions", "product_id", "dim_products"),
        ("fct_user_product_interactions", "user_id", "dim_users"),
    ],
)
def test_foreign_keys_have_relationship_tests(manifest, model, column, parent):
    found = [
        t
        for t in _nodes(manifest, "test")
        if t.get("test_metadata", {}).get("name") == "relationships"
        and t["attached_node"] == f"model.shopguide.{model}"
        and t["column_name"] == column
    ]
    assert len(found) == 1
    assert f"model.shopguide.{parent}" in found[0]["depends_on"]["nodes"]


def test_raw_events_declares_a_daily_freshness(manifest):
    source = manifest["sources"]["source.shopguide.shop.raw_events"]
    assert source["loaded_at_field"] == "_ingested_at"
    warn, error = source["freshness"]["warn_after"], source["freshness"]["error_after"]
    assert (warn["count"], warn["period"], error["count"], error["period"]) == (36, "hour", 60, "hour")
    quarantine = manifest["sources"]["source.shopguide.shop.quarantined_events"]
    assert not (quarantine.get("freshness") or {}).get("warn_after", {}).get("count")


@pytest.mark.parametrize("model", ["fct_events", "fct_sessions"])
def test_incremental_models_have_incremental_unit_tests(manifest, model):
    tests = [t for t in manifest["unit_tests"].values() if t["model"] == model]
    incremental = [t for t in tests if t["overrides"]["macros"].get("is_incremental") is True]
    assert len(incremental) >= 2
    for test in incremental:
        assert "this" in [given["input"] for given in test["given"]]
        assert test["overrides"]["vars"].keys() == {"min_date", "max_date"}


# --- run on a tiny event log -----------------------------------------------------------------


def _line(event_id, event_type, at, product=None, user=None, session=None, **extra):
    record = {"event_id": event_id, "event_type": event_type, "occurred_at": at, "product_id": product}
    record |= {"user_id": user, "session_id": session, **extra}
    return orjson.dumps(record)


LANDING = {
    D1: [
        _line("c1", "product_upserted", "2024-01-01T00:00:00Z", "P1", price=5.0, properties={"title": "Mug"}),
        _line("a1", "view", "2024-01-01T10:00:00Z", "P1", "u1", "s1"),
        _line("a2", "purchase", "2024-01-01T10:40:00Z", "P1", "u1", "s1", quantity=1, price=5.0),
        _line("b1", "view", "2024-01-01T11:00:00Z", "P1", "u2", "s2"),
    ],
    # a9 happened between a1 and a2 and lands a day late: u1's two sessions become one.
    D2: [
        _line("a9", "view", "2024-01-01T10:20:00Z", "P1", "u1", "s1"),
        _line("g1", "search", "2024-01-02T08:00:00Z", query="mug"),  # a guest with no session id
    ],
}


class Dbt:
    """dbt against one SHOPGUIDE_HOME, writing its target/ and logs under tmp (not the project's)."""

    def __init__(self, home: Path, scratch: Path):
        self.env = {**os.environ, "SHOPGUIDE_HOME": str(home), "DO_NOT_TRACK": "1"}
        self.scratch = scratch

    def __call__(self, *args: str, first: date | None = None, last: date | None = None, env=None):
        command = [str(DBT_EXECUTABLE), *args, "--project-dir", str(DBT_DIR), "--profiles-dir", str(DBT_DIR)]
        command += ["--target-path", str(self.scratch / "target"), "--log-path", str(self.scratch / "logs")]
        if first:
            command += ["--vars", json.dumps({"min_date": str(first), "max_date": str(last or first)})]
        return subprocess.run(command, env={**self.env, **(env or {})}, capture_output=True, text=True)

    def build(self, first: date, last: date | None = None) -> None:
        # The pipeline's own arguments and window (assets/dbt_args.py).
        from assets.dbt_args import dbt_build_args, dbt_window_env

        result = self(*dbt_build_args(), env=dbt_window_env(first, last or first))
        assert result.returncode == 0, result.stdout[-3000:]


def _land(home, days) -> None:
    with connect(home.warehouse) as con:
        ensure_event_log(con)
        for day in days:
            folder = home.landing / day.isoformat()
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "tracker.jsonl").write_bytes(b"\n".join(LANDING[day]) + b"\n")
            result = ingest_landing_day(home.landing, day)
            replace_partition(con, day, result.accepted, result.quarantined, len(result.files))


def _rows(home, sql: str) -> list[tuple]:
    with connect(home.warehouse, read_only=True) as con:
        return con.execute(sql).fetchall()


SESSIONS = "select actor_key, session_number, events, started_at from fct_sessions order by all"


@pytest.fixture
def dbt(home, tmp_path) -> Dbt:
    _land(home, [D1, D2])
    return Dbt(home.home, tmp_path)


@pytest.mark.integration
def test_a_late_event_merges_sessions_and_a_rerun_adds_no_duplicates(home, dbt):
    dbt.build(D1)
    assert [r[:3] for r in _rows(home, SESSIONS)] == [("user:u1", 1, 1), ("user:u1", 2, 1), ("user:u2", 1, 1)]
    dbt.build(D2)
    after_d2 = _rows(home, SESSIONS)
    # u1's old second session is gone, not left beside the merged one; u2 was not touched.
    assert [r[:3] for r in after_d2] == [
        ("guest:g1", 1, 1),  # the actor_key of an event with no session: its own id
        ("user:u1", 1, 3),
        ("user:u2", 1, 1),
    ]
    assert _rows(home, "select event_date, is_late from fct_events where event_id = 'a9'") == [(D1, True)]
    events = _rows(home, "select * from fct_events order by event_id")

    dbt.build(D2)  # a re-run of an already-loaded day
    dbt.build(D1)
    assert _rows(home, SESSIONS) == after_d2
    assert _rows(home, "select * from fct_events order by event_id") == events
    for table, key in (("fct_events", "event_id"), ("fct_sessions", "session_key")):
        assert _rows(home, f"select count(*) - count(distinct {key}) from {table}") == [(0,)]


@pytest.mark.integration
def test_unit_tests_pass_under_any_run_window(home, dbt):
    dbt.build(D1, D2)  # unit tests of incremental models read the columns of their own table
    for first in (D1, date(2030, 1, 1)):  # the window must not change what a unit test sees
        result = dbt("test", "--select", "test_type:unit", first=first)
        assert result.returncode == 0, result.stdout[-3000:]
        assert "PASS=9 WARN=0 ERROR=0" in result.stdout  # 8, and the attribution window
    for name in (
        "test_fct_events_incremental_takes_a_late_event_under_its_own_day",
        "test_fct_events_incremental_rerun_of_a_loaded_day_selects_each_event_once",
        "test_fct_sessions_incremental_late_event_recomputes_its_actors_sessions",
        "test_fct_sessions_incremental_rerun_of_a_loaded_day_selects_each_session_once",
    ):
        assert f"PASS {name.split('_incremental')[0][5:]}::{name}" in result.stdout


@pytest.mark.integration
@pytest.mark.parametrize(("hours_ago", "status", "code"), [(2, "pass", 0), (40, "warn", 0), (70, "error", 1)])
def test_source_freshness_warns_after_a_missed_night_and_errors_after_two(home, dbt, hours_ago, status, code):
    loaded = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=hours_ago)
    with connect(home.warehouse) as con:
        con.execute("update raw_events set _ingested_at = ?", [loaded])
    result = dbt("source", "freshness")
    assert result.returncode == code, result.stdout[-3000:]
    sources = json.loads((dbt.scratch / "target" / "sources.json").read_text())
    assert {r["unique_id"]: r["status"] for r in sources["results"]} == {
        "source.shopguide.shop.raw_events": status
    }
