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


def test_a_views_checksum_is_its_definitions():
    con = duckdb.connect()
    con.execute("create table t (id int, landed_on date)")
    con.execute("insert into t values (1, '2024-01-01'), (2, '2024-01-03')")
    con.execute("create view v as select id, landed_on from t where id > 0")

    def figures():
        return {s["table"]: s for s in warehouse_status(con)}

    before = figures()
    assert before["v"]["rows"] == 2 and before["v"]["latest_partition"] == "2024-01-03"
    assert (before["v"]["checksum_of"], before["t"]["checksum_of"]) == ("definition", "rows")
    con.execute("insert into t values (3, '2024-01-04')")
    after = figures()
    assert after["t"]["checksum"] != before["t"]["checksum"]  # the data shows in the table's
    assert after["v"]["checksum"] == before["v"]["checksum"] and after["v"]["rows"] == 3
    con.execute("create or replace view v as select id, landed_on from t where id > 1")
    assert figures()["v"]["checksum"] != before["v"]["checksum"]
