import duckdb

from warehouse.status import warehouse_status


def status_of(rows, extra_sql=""):
    con = duckdb.connect()
    con.execute("create table t (id int, name varchar, _ingested_at timestamp, _partition_date date)")
    con.executemany("insert into t values (?, ?, ?, ?)", rows)
    if extra_sql:
        con.execute(extra_sql)
    return {s["table"]: s for s in warehouse_status(con)}["t"]


ROWS = [(1, "a", "2024-01-01 00:00:00", "2024-01-01"), (2, "b", "2024-01-01 00:00:00", "2024-01-02")]


def test_checksum_ignores_row_order_and_ingestion_time():
    first = status_of(ROWS)
    reordered = status_of([(r[0], r[1], "2030-05-05 12:00:00", r[3]) for r in reversed(ROWS)])
    assert first["checksum"] == reordered["checksum"]
    assert first["rows"] == 2 and first["latest_partition"] == "2024-01-02"


def test_checksum_changes_with_content_and_with_a_duplicate_row():
    base = status_of(ROWS)["checksum"]
    assert status_of([ROWS[0], (2, "B", *ROWS[1][2:])])["checksum"] != base
    assert status_of(ROWS + [ROWS[0]])["checksum"] != base


def test_views_are_listed_as_views():
    con = duckdb.connect()
    con.execute("create table t as select 1 as id")
    con.execute("create view v as select * from t")
    kinds = {s["table"]: s["kind"] for s in warehouse_status(con)}
    assert kinds == {"t": "table", "v": "view"}
