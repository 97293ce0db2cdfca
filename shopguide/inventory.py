"""`shopguide status`: the warehouse tables joined with what Dagster has materialised."""

from __future__ import annotations

from core.settings import Paths
from warehouse.status import warehouse_status
from warehouse.store import connect


def latest_materialized_partitions(paths: Paths, names: list[str]) -> dict[str, str]:
    """Highest partition key Dagster recorded per asset, read from the instance."""
    paths.export()
    from dagster import AssetKey, DagsterInstance

    latest = {}
    with DagsterInstance.get() as instance:
        for name in names:
            keys = instance.get_materialized_partitions(AssetKey(name))
            if keys:
                latest[name] = max(keys)
    return latest


def inventory(paths: Paths, with_dagster: bool = True) -> dict:
    """Every table's figures; `with_dagster` False leaves Dagster's records unread (they
    cannot be opened in a read-only home), so views keep no latest partition."""
    with connect(paths.warehouse, read_only=True) as con:
        tables = warehouse_status(con)
    names = [t["table"] for t in tables]
    dagster_latest = latest_materialized_partitions(paths, names) if with_dagster else {}
    for table in tables:
        # The data's own partition column where it has one; else the last day Dagster built.
        table["latest_partition"] = table["latest_partition"] or dagster_latest.get(table["table"])
    return {"warehouse": str(paths.warehouse), "home": str(paths.home), "tables": tables}
