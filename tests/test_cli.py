"""The command line: help everywhere, and one clear line (exit 2) for mistakes a user can fix."""

import json

import pytest
from typer.testing import CliRunner

from shopguide.cli import app

runner = CliRunner()
COMMANDS = [
    ["demo"],
    ["import", "online-retail"],
    ["generate"],
    ["run"],
    ["backfill"],
    ["status"],
    ["search"],
    ["ui"],
    ["report"],
    ["evaluate"],
    ["setup"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "--date", "14/03/2011"], "is not a date; use YYYY-MM-DD"),
        (["backfill", "--start", "2011-03-10", "--end", "2011-03-01"], "is before --start"),
        (["run", "--date", "1999-01-01"], "before the first partition"),
        (["run", "--date", "2999-01-01"], "has no partition yet"),
        (["generate", "--events", "5"], "out of range"),
        (["generate", "--format", "csv"], "use jsonl or parquet"),
        (["generate", "--products", "0"], "--products 0 is out of range"),
        (["generate", "--shoppers", "10000001"], "--shoppers 10000001 is out of range"),
        (["generate", "--events", "1000", "--products", "5000"], "cannot hold the catalog"),
        (["status"], "No warehouse at"),
        (["search", "mug"], "No product embeddings yet"),
        (["import", "online-retail", "--path", "/nonexistent.parquet"], "does not exist"),
    ],
)
def test_user_errors_are_one_clear_line(home, args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_generate_then_status_json_has_stable_keys(home, dbt_manifest):
    result = runner.invoke(app, ["generate", "--events", "2000", "--days", "2", "--start-date", "2024-01-01"])
    assert result.exit_code == 0, result.output
    assert "2,000 events" in result.output
    from datetime import date

    from warehouse.ingest import ingest_landing_day
    from warehouse.store import connect, replace_partition

    with connect(home.warehouse) as con:
        day = date(2024, 1, 1)
        result_day = ingest_landing_day(home.landing, day)
        replace_partition(con, day, result_day.accepted, result_day.quarantined, len(result_day.files))
    status = runner.invoke(app, ["status", "--json"])
    assert status.exit_code == 0, status.output
    report = json.loads(status.output)
    assert set(report) == {"warehouse", "home", "tables"}
    raw = next(t for t in report["tables"] if t["table"] == "raw_events")
    assert set(raw) == {"table", "kind", "rows", "checksum", "latest_partition"}
    assert raw["rows"] == result_day.lines_read - len(result_day.quarantined)
    assert raw["latest_partition"] == "2024-01-01"


def test_generate_products_and_shoppers_size_the_shop(home):
    def ids_on_disk():
        products, users = set(), set()
        for path in home.landing.rglob("*.jsonl"):
            for line in path.read_text().splitlines():
                event = json.loads(line)
                products.add(event["product_id"])
                users.add(event["user_id"])
        return products - {None}, users - {None}

    base = ["generate", "--events", "3000", "--days", "3", "--malformed-share", "0"]
    assert runner.invoke(app, base).exit_code == 0
    default_products, default_users = ids_on_disk()
    assert len(default_products) == 200 and len(default_users) > 40  # 3,000 events: 200 products, 100 users

    for path in home.landing.rglob("*.jsonl"):
        path.unlink()
    result = runner.invoke(app, [*base, "--products", "40", "--shoppers", "25"])
    assert result.exit_code == 0, result.output
    products, users = ids_on_disk()
    assert len(products) == 40  # every product is upserted within the days generated
    assert 0 < len(users) <= 25
    assert max(int(user.removeprefix("U-")) for user in users) <= 25
