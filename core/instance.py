"""The Dagster instance's `dagster.yaml`: the embedded SQLite storage by default, PostgreSQL
when `SHOPGUIDE_DAGSTER_STORAGE=postgres`.

One switch rather than a hand-edited file, so that the same image or checkout runs as a
laptop install (SQLite files under `SHOPGUIDE_HOME/dagster`) or as a service (webserver,
daemon and runs sharing one PostgreSQL database) by its environment alone. The connection
itself is read by Dagster from the `DAGSTER_POSTGRES_*` variables when the instance loads,
so no password is ever written to disk.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.errors import ConfigError
from core.files import atomic_write_bytes

STORAGE_ENV = "SHOPGUIDE_DAGSTER_STORAGE"
STORAGES = ("sqlite", "postgres")
# Read by Dagster itself ({env: ...} in the file below), never by shopguide's code.
POSTGRES_ENV = {
    "hostname": "DAGSTER_POSTGRES_HOST",
    "port": "DAGSTER_POSTGRES_PORT",
    "username": "DAGSTER_POSTGRES_USER",
    "password": "DAGSTER_POSTGRES_PASSWORD",
    "db_name": "DAGSTER_POSTGRES_DB",
}
MARKER = "# Written by shopguide"
# What `Paths.ensure` wrote before the storage switch existed: still ours to rewrite.
LEGACY_CONTENT = "telemetry:\n  enabled: false\n"


def storage_kind() -> str:
    kind = os.environ.get(STORAGE_ENV, "").strip().lower() or "sqlite"
    if kind not in STORAGES:
        raise ConfigError(f"{STORAGE_ENV}={kind!r}: use one of {', '.join(STORAGES)}.")
    return kind


def missing_postgres_settings() -> list[str]:
    return [name for name in POSTGRES_ENV.values() if not os.environ.get(name)]


def instance_yaml(kind: str) -> str:
    header = (
        f"{MARKER} ({STORAGE_ENV}={kind}); it rewrites this file when that setting changes.\n"
        "# Remove this first line to keep a hand-edited file as it is.\n"
    )
    telemetry = "telemetry:\n  enabled: false\n"
    if kind == "sqlite":
        # Dagster's SQLite files beside this one. The stock event log commits once per event;
        # the batched one (orchestration/event_log.py) once per batch of per-partition events:
        # same files, same schema.
        return (
            header
            + telemetry
            + "event_log_storage:\n  module: orchestration.event_log\n  class: BatchedSqliteEventLogStorage\n"
        )
    # dagster-postgres installs psycopg2; SQLAlchemy 2.1's plain `postgresql` means psycopg 3.
    fields = "".join(f"      {field}: {{env: {name}}}\n" for field, name in POSTGRES_ENV.items())
    database = "  config:\n    postgres_db:\n" + fields + "      scheme: postgresql+psycopg2\n"
    return (
        header
        + telemetry
        # Runs, the event log and schedule/sensor state in one database, each storage named
        # (not the one-line `storage: postgres`) so that the event log can be ours: one
        # planned event per asset per run, partition status kept (orchestration/planned_subsets.py).
        + storage_block("run_storage", "dagster_postgres.run_storage", "PostgresRunStorage", database)
        + storage_block(
            "event_log_storage",
            "orchestration.event_log_postgres",
            "SubsetPlannedPostgresEventLogStorage",
            database,
        )
        + storage_block(
            "schedule_storage", "dagster_postgres.schedule_storage", "PostgresScheduleStorage", database
        )
        # Runs wait in a queue the daemon drains, so a burst of landing days (the sensor
        # asks for one run each) cannot start more runs than the machine can hold.
        + "run_coordinator:\n"
        + "  module: dagster._core.run_coordinator\n"
        + "  class: QueuedRunCoordinator\n"
        + "  config:\n"
        + "    max_concurrent_runs: 1\n"
    )


def storage_block(key: str, module: str, class_name: str, config: str) -> str:
    return f"{key}:\n  module: {module}\n  class: {class_name}\n" + config


def write_instance_config(dagster_home: Path) -> Path:
    """Write `dagster.yaml` for the storage the environment selects, unless the file there was
    written by hand (no marker). Raises ConfigError when PostgreSQL is selected without its
    connection settings: Dagster's own message would come later, from deep in a stack trace."""
    kind = storage_kind()
    if kind == "postgres" and (missing := missing_postgres_settings()):
        raise ConfigError(
            f"{STORAGE_ENV}=postgres needs {', '.join(POSTGRES_ENV.values())}; missing: {', '.join(missing)}."
        )
    path = dagster_home / "dagster.yaml"
    wanted = instance_yaml(kind)
    if path.exists():
        current = path.read_text()
        if current == wanted or not (current.startswith(MARKER) or current == LEGACY_CONTENT):
            return path
    atomic_write_bytes(path, wanted.encode())
    return path
