"""A small crafted SHOPGUIDE_HOME with known answers, shared by the monitoring tests.

Forty days of events (views steady around 100 a day, purchases at 10) and a last day with a
view spike and events for a product the catalog does not know; two versions of the product
vectors (five of twenty moved, two added); three recommendation snapshots (the first two
published, the newest blocked by its gate: lists too short); two data-quality runs, the
latest with one failed `error` expectation. Built with the project's own writers where
they exist (event-log DDL, LanceDB upsert, serving publish).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl

from core.settings import Paths

NOW = datetime(2024, 3, 1, 6, 0, tzinfo=UTC)
FIRST_DAY = date(2024, 1, 21)
LAST_DAY = date(2024, 2, 29)  # 40 days
PRODUCTS = [f"P{i:02d}" for i in range(1, 21)]
USERS = [f"U{i:02d}" for i in range(1, 13)]
SPIKE_VIEWS = 400
UNKNOWN_ON_LAST_DAY = 44  # events for product X99 on the last day: 44 / (400 + 10 + 44) product events


def _events() -> pl.DataFrame:
    rows = []
    days = (LAST_DAY - FIRST_DAY).days + 1
    for d in range(days):
        day = FIRST_DAY + timedelta(days=d)
        last = day == LAST_DAY
        views = SPIKE_VIEWS if last else 100 + (d % 3)  # a steady series with a small wobble
        for kind, count in (
            ("view", views),
            ("purchase", 10),
            ("view_unknown", UNKNOWN_ON_LAST_DAY if last else 0),
        ):
            for n in range(count):
                rows.append(
                    {
                        "event_id": f"{day}-{kind}-{n}",
                        "event_type": "view" if kind == "view_unknown" else kind,
                        "occurred_at": datetime.combine(day, datetime.min.time()) + timedelta(minutes=n),
                        "user_id": USERS[n % len(USERS)],
                        "product_id": "X99" if kind == "view_unknown" else PRODUCTS[n % len(PRODUCTS)],
                        "_partition_date": day,
                    }
                )
    return pl.DataFrame(rows)


def _warehouse(paths: Paths) -> None:
    from warehouse.store import connect, ensure_event_log

    events = _events()  # noqa: F841 - read by DuckDB below
    with connect(paths.warehouse) as con:
        ensure_event_log(con)
        con.execute(
            """
            insert into raw_events
            select event_id, event_type, occurred_at, user_id, 's1', product_id, 1, 1.0, 'GBP', null, null,
                   'tracker.jsonl', row_number() over (), occurred_at, _partition_date
            from events
            """
        )
        con.execute(
            "create table fct_events as select event_id, event_type, occurred_at::date as event_date, "
            "occurred_at, user_id, product_id from raw_events"
        )
        con.execute("create table dim_products as select unnest($1::varchar[]) as product_id", [PRODUCTS])
        con.execute("create table dim_users as select unnest($1::varchar[]) as user_id", [USERS])
        con.execute(
            """
            create table data_quality_results (
                checked_at timestamp, run_id varchar, suite varchar, expectation varchar,
                column_name varchar, partition_key varchar, success boolean, severity varchar,
                observed_value varchar
            )
            """
        )
        rows = []
        for run, at, fail in (
            ("dq-1", NOW - timedelta(days=1), False),
            ("dq-2", NOW - timedelta(hours=1), True),
        ):
            for suite, expectation, column in (
                ("raw_events", "expect_column_values_to_not_be_null", "event_id"),
                ("raw_events", "expect_column_values_to_be_unique", "event_id"),
                ("dim_products", "expect_column_values_to_not_be_null", "product_id"),
                ("dim_products", "expect_table_row_count_to_be_between", None),
            ):
                failed = fail and expectation == "expect_column_values_to_be_unique"
                rows.append(
                    [
                        at.replace(tzinfo=None),
                        run,
                        suite,
                        expectation,
                        column,
                        str(LAST_DAY),
                        not failed,
                        "error",
                        "3 duplicates" if failed else None,
                    ]
                )
        con.executemany("insert into data_quality_results values (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def _vectors(ids: list[str], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(len(ids), 8)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _embeddings(paths: Paths) -> None:
    import pyarrow as pa

    from embeddings.store import PRODUCT_TABLE, connect, upsert

    def rows(ids, vectors):
        flat = pa.array(vectors.reshape(-1), pa.float32())
        return pa.table({"product_id": ids, "vector": pa.FixedSizeListArray.from_arrays(flat, 8)})

    db = connect(paths.lancedb)
    first = _vectors(PRODUCTS, 1)
    upsert(db, PRODUCT_TABLE, rows(PRODUCTS, first), key="product_id")  # version 1
    moved = PRODUCTS[:5] + ["P21", "P22"]
    upsert(db, PRODUCT_TABLE, rows(moved, _vectors(moved, 2)), key="product_id")  # version 2


def recommendations(users: list[str], length: int, shift: int) -> pl.DataFrame:
    """Each user's list: `length` products starting at an offset, so versions overlap partly."""
    rows = []
    for u, user in enumerate(users):
        for rank in range(1, length + 1):
            product = PRODUCTS[(u + rank - 1 + shift) % len(PRODUCTS)]
            rows.append(
                {
                    "user_id": user,
                    "rank": rank,
                    "product_id": product,
                    "score": 1.0 / rank,
                    "content_score": 0.5,
                    "graph_score": 0.3,
                    "popularity_score": 0.2,
                    "reason": "because you viewed P01",
                    "source": "personal" if u % 4 else "fallback_global",
                }
            )
    return pl.DataFrame(rows)


def _tables(recs: pl.DataFrame) -> dict[str, pl.DataFrame]:
    similar = pl.DataFrame(
        [
            {
                "product_id": p,
                "rank": r,
                "similar_product_id": PRODUCTS[(i + r) % len(PRODUCTS)],
                "score": 0.9,
                "content_score": 0.9,
                "cooccurrence_score": 0.0,
                "reason": "similar title",
                "source": "content",
            }
            for i, p in enumerate(PRODUCTS)
            for r in range(1, 11)
        ]
    )
    popular = pl.DataFrame(
        [
            {
                "list": "popular",
                "segment_type": "overall",
                "segment": "all",
                "window_days": 7,
                "rank": r,
                "product_id": p,
                "score": 1.0 / r,
                "reason": "popular",
            }
            for r, p in enumerate(PRODUCTS, start=1)
        ]
    )
    products = pl.DataFrame({"product_id": PRODUCTS, "title": PRODUCTS, "category_path": None, "price": 1.0})
    return {
        "user_recommendations": recs,
        "similar_products": similar,
        "popular_products": popular,
        "products": products,
    }


def _serving(paths: Paths) -> None:
    from serving import PublishBlocked, serving_root
    from serving.gate import GateContext
    from serving.publish import publish_tables

    root = serving_root(paths)
    for index, (length, shift) in enumerate(((10, 0), (10, 1), (4, 1))):
        created = NOW - timedelta(days=3 - index)
        try:
            publish_tables(
                root,
                _tables(recommendations(USERS, length, shift)),
                {"partition_date": str(created.date()), "embedding_version": 2},
                GateContext(active_user_ids=USERS),
                created_at=created,
            )
        except PublishBlocked:
            pass  # the newest, by design: its lists are too short


def craft_home(paths: Paths) -> Paths:
    _warehouse(paths)
    _embeddings(paths)
    _serving(paths)
    return paths


FAILING_CHECK = "row_count_plausible"  # a WARN check the stand-in publish fails, every run


def materialize_report(paths: Paths):
    """Materialise monitoring_report in the home's Dagster instance, after stand-ins for the
    assets upstream of it (so the instance has materialisations and step timings, and the
    run a failed asset check)."""
    from dagster import (
        AssetCheckResult,
        AssetCheckSeverity,
        AssetCheckSpec,
        BackfillPolicy,
        DagsterInstance,
        MaterializeResult,
        asset,
        materialize,
    )

    from assets.monitoring import monitoring_report
    from assets.partitions import daily_partitions
    from assets.resources import ShopguideHome

    def stand_in(name, check=None):
        @asset(
            name=name,
            partitions_def=daily_partitions,
            backfill_policy=BackfillPolicy.single_run(),
            check_specs=[AssetCheckSpec(check, asset=name)] if check else None,
        )
        def _stand_in():
            results = [AssetCheckResult(check_name=check, passed=False, severity=AssetCheckSeverity.WARN)]
            return MaterializeResult(check_results=results if check else None)

        return _stand_in

    upstream = [
        stand_in("raw_events"),
        stand_in("fct_events"),
        stand_in("published_recommendations", FAILING_CHECK),
    ]
    with DagsterInstance.get() as instance:
        return materialize(
            [*upstream, monitoring_report],
            instance=instance,
            partition_key=str(LAST_DAY),
            resources={"shopguide": ShopguideHome()},
        )


def test_the_crafted_home_holds_what_the_other_tests_expect(home):
    from serving import serving_root
    from serving.publish import current_snapshot, read_gate
    from serving.snapshots import list_snapshots
    from warehouse.store import connect

    craft_home(home)
    with connect(home.warehouse, read_only=True) as con:
        assert (
            con.execute(
                "select count(*) from raw_events where event_type = 'view' and occurred_at::date = ?",
                [LAST_DAY],
            ).fetchall()[0][0]
            == SPIKE_VIEWS + UNKNOWN_ON_LAST_DAY
        )
    root = serving_root(home)
    ids = list_snapshots(root)
    assert len(ids) == 3 and current_snapshot(root) == ids[1]
    assert read_gate(root, ids[2])["passed"] is False
