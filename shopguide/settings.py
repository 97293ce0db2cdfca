"""Where shopguide keeps its state: one data directory, `SHOPGUIDE_HOME`.

Everything a run writes lives under it, so one directory is the whole installation:
landing files (the event log's inbox), the DuckDB warehouse, LanceDB, the Dagster
instance and the reports. Moving to bigger engines means changing these paths (an
object store for LanceDB, another dbt target), not the code that uses them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "SHOPGUIDE_HOME"
REPO_ROOT = Path(__file__).resolve().parent.parent


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
    def lancedb(self) -> Path:
        return self.home / "lancedb"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def reports(self) -> Path:
        return self.home / "reports"

    def ensure(self) -> Paths:
        """Create the directory tree and a Dagster instance config with telemetry off."""
        for folder in (self.landing, self.warehouse.parent, self.lancedb, self.dagster_home, self.reports):
            folder.mkdir(parents=True, exist_ok=True)
        dagster_yaml = self.dagster_home / "dagster.yaml"
        if not dagster_yaml.exists():
            dagster_yaml.write_text("telemetry:\n  enabled: false\n")
        return self

    def export(self) -> None:
        """Make the paths visible to child processes (dbt, `dagster dev`)."""
        os.environ[HOME_ENV] = str(self.home)
        os.environ["DAGSTER_HOME"] = str(self.dagster_home)
        os.environ["DO_NOT_TRACK"] = "1"  # dbt's anonymous usage tracking
        os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
