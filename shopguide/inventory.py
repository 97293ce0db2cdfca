"""`shopguide status`: the warehouse tables joined with what Dagster has materialised.

A reader must never break a run: DuckDB lets no other process open the file, not even
read-only, while one writes it, and a reader that has it open makes the writer fail (see
../shared/STACK.md). So status opens the warehouse only while no run holds this home
(shopguide/runlock.py), and while one does, it shows the figures that run recorded before
it started writing (`record_figures`, a small JSON file replaced atomically), saying so.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from core.errors import MissingFile
from core.files import atomic_write_json
from core.settings import Paths
from shopguide.runlock import current_run, reading_warehouse
from warehouse.status import warehouse_status
from warehouse.store import WRITER_WAIT_S, WarehouseBusy, connect


def figures_path(paths: Paths):
    return paths.warehouse.parent / "status.json"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _warehouse_mtime(paths: Paths) -> float:
    """When the warehouse last changed on disk (the file or its write-ahead log)."""
    wal = paths.warehouse.with_name(paths.warehouse.name + ".wal")
    return max((p.stat().st_mtime for p in (paths.warehouse, wal) if p.exists()), default=0.0)


def record_figures(paths: Paths, run_id: str, moment: str, *, only_if_stale: bool = False) -> None:
    """Write every table's figures where status finds them while a run holds the warehouse.
    Called by the run holding the home, before it writes (`only_if_stale`: the last run's
    "after" figures usually still hold, and a checksum pass over millions of rows costs
    seconds) and when it ends, successful or not."""
    target = figures_path(paths)
    if only_if_stale and target.exists() and target.stat().st_mtime >= _warehouse_mtime(paths):
        return
    tables = []
    if paths.warehouse.exists():
        # The run's own children can still hold the file for a moment after its last step
        # (dbt closes its DuckDB connection as it exits): wait for them as a writer would.
        with connect(paths.warehouse, read_only=True, wait=WRITER_WAIT_S) as con:
            tables = warehouse_status(con)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(target, {"as_of": _now(), "recorded": f"{moment} run {run_id}", "tables": tables})


def _read_figures(paths: Paths, why: str) -> dict:
    try:
        figures = json.loads(figures_path(paths).read_text())
    except FileNotFoundError:
        raise WarehouseBusy(f"{why}, and no figures were recorded yet: try again when it ends.") from None
    return {
        "source": "snapshot",
        "as_of": f"{figures['as_of']} ({figures['recorded']})",
        "tables": figures["tables"],
    }


def _read_warehouse(paths: Paths) -> dict | None:
    """Figures from the warehouse itself, or None when a run holds it after all."""
    with reading_warehouse(paths) as may_open:
        if not may_open:
            return None
        try:
            with connect(paths.warehouse, read_only=True) as con:
                return {"source": "warehouse", "as_of": _now(), "tables": warehouse_status(con)}
        except WarehouseBusy:
            if figures_path(paths).exists():
                return None  # a writer outside shopguide's locks (e.g. `dagster dev`): use the figures
            raise


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


def _ui_run(paths: Paths) -> str | None:
    """A run from the Dagster UI in progress (it takes no shopguide lock), described."""
    paths.export()
    from dagster import DagsterInstance

    from shopguide.run_records import describe, live_runs

    with DagsterInstance.get() as instance:
        runs = live_runs(instance)
        return describe(runs[0], instance) if runs else None


def inventory(paths: Paths, with_dagster: bool = True) -> dict:
    """Every table's figures; `with_dagster` False leaves Dagster's records unread (they
    cannot be opened in a read-only home), so views keep no latest partition. `running`
    names the run that holds the warehouse when the figures come from its snapshot."""
    if not paths.warehouse.exists():
        raise MissingFile(
            f"No warehouse at {paths.warehouse}. Run `shopguide demo` or `shopguide run --date D` first."
        )
    run = current_run(paths)
    running = run.describe() if run is not None else (_ui_run(paths) if with_dagster else None)
    figures = None if running else _read_warehouse(paths)
    if figures is None:
        running = running or "a run"
        figures = _read_figures(paths, f"{running} is writing the warehouse")
    tables = figures["tables"]
    names = [t["table"] for t in tables]
    dagster_latest = latest_materialized_partitions(paths, names) if with_dagster else {}
    for table in tables:
        # The data's own partition column where it has one; else the last day Dagster built.
        table["latest_partition"] = table["latest_partition"] or dagster_latest.get(table["table"])
    return {
        "warehouse": str(paths.warehouse),
        "home": str(paths.home),
        "source": figures["source"],
        "as_of": figures["as_of"],
        "running": running if figures["source"] == "snapshot" else None,
        "tables": tables,
        "serving": serving_status(paths),
    }


def serving_status(paths: Paths) -> dict:
    """What the storefront is served: the current snapshot, the canary, and the intraday
    overlay on top (its shoppers, cut-off, when it was made); never opens the warehouse."""
    from serving import serving_root
    from serving.overlays import read_overlay_manifest
    from serving.publish import read_pointer

    root = serving_root(paths)
    pointer = read_pointer(root)
    overlay = None
    if pointer.get("overlay"):
        manifest = read_overlay_manifest(root, pointer["overlay"]["id"])
        overlay = {
            "id": manifest.overlay_id,
            "snapshot": manifest.snapshot_id,
            "shoppers": len(manifest.user_ids),
            "refreshed_last": manifest.refreshed_user_ids,
            "as_of": manifest.as_of,
            "created_at": manifest.created_at,
            "landing_files": len(manifest.files),
        }
    return {"current": pointer["current"], "canary": pointer["canary"], "overlay": overlay}
