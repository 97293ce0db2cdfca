"""The dbt project as Python needs it: the manifest Dagster loads its dbt assets from, kept
in step with the models, and the dbt vars Python shares with the SQL.

`@dbt_assets` reads target/manifest.json when the definitions are imported, so it must
exist before anything loads them. It is a build artefact (not committed): `dbt parse`
writes it in a few seconds, and it is redone whenever a model, macro or config is newer.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

import yaml

from core.errors import ShopguideError
from core.settings import REPO_ROOT, Paths

DBT_DIR = REPO_ROOT / "dbt_project"
MANIFEST = DBT_DIR / "target" / "manifest.json"
# The dbt beside this interpreter: the venv need not be activated (it may not be on PATH).
DBT_EXECUTABLE = Path(sys.executable).with_name("dbt")


@functools.cache
def interaction_weights() -> dict[str, float]:
    """dbt's `interaction_weights` var: what a view, a cart, a purchase, a removal and a return
    weigh. The marts and the Python user vectors use the same numbers, so they are read from
    where dbt reads them; callers pass them on (embeddings/users.py takes them as arguments)."""
    config = yaml.safe_load((DBT_DIR / "dbt_project.yml").read_text())
    return {k: float(v) for k, v in config["vars"]["interaction_weights"].items()}


def mart_models() -> list[str]:
    """The marts (models/marts/), by name: what a consumer of the warehouse reads."""
    return sorted(p.stem for p in (DBT_DIR / "models" / "marts").glob("*.sql"))


class ManifestError(ShopguideError, RuntimeError):
    """`dbt parse` failed: the dbt project does not parse (or dbt cannot run)."""


def _newest_source_mtime() -> float:
    files = [DBT_DIR / "dbt_project.yml", DBT_DIR / "profiles.yml"]
    for folder in ("models", "macros", "seeds", "tests"):
        root = DBT_DIR / folder
        if root.is_dir():
            files.extend(p for p in root.rglob("*") if p.is_file())
    return max(p.stat().st_mtime for p in files if p.exists())


def manifest_is_current() -> bool:
    return MANIFEST.exists() and MANIFEST.stat().st_mtime >= _newest_source_mtime()


def ensure_manifest() -> Path:
    """The manifest, parsed first when missing or older than the dbt sources: every command
    that loads the Dagster definitions calls this, so `shopguide setup` is not a must."""
    if manifest_is_current():
        return MANIFEST
    env = dict(os.environ)
    env.setdefault("SHOPGUIDE_HOME", str(Paths.from_env().home))
    env["DO_NOT_TRACK"] = "1"
    result = subprocess.run(
        [
            str(DBT_EXECUTABLE),
            "parse",
            "--quiet",
            "--project-dir",
            str(DBT_DIR),
            "--profiles-dir",
            str(DBT_DIR),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        output = (result.stdout + "\n" + result.stderr).strip().splitlines() or ["no output"]
        raise ManifestError(
            f"could not prepare the dbt manifest: `dbt parse` failed (exit {result.returncode}): "
            f"{output[-1].strip()} (dbt's log: {DBT_DIR / 'logs' / 'dbt.log'})"
        )
    return MANIFEST
