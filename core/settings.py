"""Where shopguide keeps its state: one data directory, `SHOPGUIDE_HOME`.

Everything a run writes lives under it, so one directory is the whole installation:
landing files (the event log's inbox), the DuckDB warehouse, LanceDB, the Dagster
instance and the reports. Moving to bigger engines means changing these paths (an
object store for LanceDB, another dbt target), not the code that uses them.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from core.errors import ShopguideError
from core.instance import write_instance_config

HOME_ENV = "SHOPGUIDE_HOME"
# LanceDB somewhere else than under the home: an object-store URI (s3://bucket/prefix, gs://,
# az://) or another folder. Credentials and endpoint come from the store's own standard
# variables (AWS_ACCESS_KEY_ID, AWS_ENDPOINT, AWS_REGION, ...), read by LanceDB itself.
LANCEDB_URI_ENV = "SHOPGUIDE_LANCEDB_URI"
# The published serving snapshots somewhere else than under the home: s3://bucket/prefix (an
# S3-compatible store) or another folder. The same AWS_* variables configure the client
# (serving/store_s3.py, docs/deployment.md).
SERVING_URI_ENV = "SHOPGUIDE_SERVING_URI"


def is_uri(location: str | Path) -> bool:
    """An object-store location (scheme://...), as opposed to a local path."""
    return "://" in str(location)


REPO_ROOT = Path(__file__).resolve().parent.parent
# Where the dbt models run (dbt_project/profiles.yml): the embedded DuckDB file, or Apache
# Spark (local here; a cluster by changing the profile, docs/architecture.md).
DBT_TARGETS = ("duckdb", "spark")


def default_home() -> Path:
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "shopguide"


@dataclass(frozen=True)
class Paths:
    home: Path

    @classmethod
    def from_env(cls) -> Paths:
        raw = os.environ.get(HOME_ENV)
        return cls(Path(raw).expanduser().resolve() if raw else default_home())

    @property
    def landing(self) -> Path:
        return self.home / "landing"

    @property
    def warehouse(self) -> Path:
        return self.home / "warehouse" / "shopguide.duckdb"

    @property
    def lake(self) -> Path:
        """The event log as Parquet, one file per landing day: what the `spark` dbt target
        reads (warehouse/lake.py writes it before each Spark run)."""
        return self.home / "warehouse" / "lake"

    @property
    def spark_warehouse(self) -> Path:
        """The `spark` dbt target's tables (Parquet, one folder per table under main.db/) and
        its metastore (dbt_project/profiles.yml)."""
        return self.home / "warehouse" / "spark"

    @property
    def lancedb(self) -> Path:
        """The local LanceDB folder (used unless SHOPGUIDE_LANCEDB_URI names another place)."""
        return self.home / "lancedb"

    @property
    def lancedb_uri(self) -> str:
        """Where LanceDB lives: SHOPGUIDE_LANCEDB_URI, else the folder under the home. Every
        reader and writer of vectors connects through this one value."""
        return os.environ.get(LANCEDB_URI_ENV, "").strip() or str(self.lancedb)

    @property
    def serving(self) -> Path:
        """The local folder of the published recommendation snapshots and their pointer
        (serving/), used unless SHOPGUIDE_SERVING_URI names another place."""
        return self.home / "serving"

    @property
    def serving_uri(self) -> str:
        """Where the published snapshots live: SHOPGUIDE_SERVING_URI (s3://bucket/prefix, or a
        folder), else the folder under the home. Every publisher and reader asks this one value
        (serving.serving_root)."""
        return os.environ.get(SERVING_URI_ENV, "").strip() or str(self.serving)

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def reports(self) -> Path:
        return self.home / "reports"

    def dbt_target(self, target: str) -> Path:
        """Where dbt writes its artifacts for this home and dbt target: one folder kept from
        run to run, so that dbt's partial parse (partial_parse.msgpack, which records the
        profile it was parsed with, and so this home's path) is reused by the next run."""
        return self.home / "dbt" / target

    def ensure(self) -> Paths:
        """Create the directory tree and the Dagster instance config (telemetry off; SQLite, or
        PostgreSQL when SHOPGUIDE_DAGSTER_STORAGE says so: core/instance.py)."""
        folders = [self.landing, self.warehouse.parent, self.dagster_home, self.reports]
        if not is_uri(self.lancedb_uri):  # an object store needs no folder here
            folders.append(Path(self.lancedb_uri))
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
        write_instance_config(self.dagster_home)
        return self

    def export(self) -> None:
        """Make the paths visible to child processes (dbt, `dagster dev`)."""
        os.environ[HOME_ENV] = str(self.home)
        os.environ["DAGSTER_HOME"] = str(self.dagster_home)
        os.environ["DO_NOT_TRACK"] = "1"  # dbt's anonymous usage tracking
        os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        # Dagster hands per-partition events to the event log in batches only when this is
        # set; orchestration/event_log.py then commits each batch once (docs/architecture.md).
        # A batch is one asset's partitions in a step, or a run's planned events; the bound
        # keeps the buffer (and a rolled-back transaction) small on a multi-year backfill.
        os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", "2000")


class HomeError(ShopguideError):
    """SHOPGUIDE_HOME cannot be used as asked: a file stands in its way, or it cannot be written."""


def probe_write(folder: Path) -> None:
    """Create and remove a file in `folder`. An actual write, because os.access answers yes to
    root on a read-only mount; raises OSError when the folder cannot be written."""
    handle, name = tempfile.mkstemp(prefix=".write-probe-", dir=folder)
    os.close(handle)
    os.unlink(name)


def can_write(folder: Path) -> bool:
    try:
        probe_write(folder)
    except OSError:
        return False
    return True


def _file_in_the_way(path: Path) -> Path | None:
    """The nearest existing ancestor of `path` (or `path` itself) when it is not a folder."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return None if candidate.is_dir() else candidate
    return None


def check_home(paths: Paths, *, writable: bool) -> Paths:
    """Check the data directory once, before a command does anything, so that a bad home is
    one clear message and not a traceback from whichever file is touched first.

    Commands that write get the directory tree created (`ensure`) and a write probed. Read
    commands (status, recommend, versions, search) create nothing: a home that does not
    exist yet stays absent, and a read-only one is fine."""
    blocker = _file_in_the_way(paths.home)
    if blocker is not None:
        raise HomeError(
            f"SHOPGUIDE_HOME {paths.home} cannot be a folder: {blocker} is a file. "
            "Point SHOPGUIDE_HOME at a folder (or move the file)."
        )
    if writable:
        try:
            paths.ensure()
            probe_write(paths.home)
        except OSError as error:
            raise HomeError(
                f"SHOPGUIDE_HOME {paths.home} is not writable ({error.strerror}); this command "
                "writes there. Point SHOPGUIDE_HOME at a writable folder; status, recommend, "
                "versions and search work on a read-only one."
            ) from None
    return paths
