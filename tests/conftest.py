from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.settings import Paths

os.environ.setdefault("DO_NOT_TRACK", "1")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    """A fresh SHOPGUIDE_HOME per test: nothing leaks between tests or into ~/.local."""
    monkeypatch.setenv("SHOPGUIDE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home" / "dagster"))
    # The deterministic fake encoder; tests that exercise the real model say so.
    monkeypatch.setenv("SHOPGUIDE_EMBEDDING_MODEL", "hashing:32")
    monkeypatch.setenv("SHOPGUIDE_SEARCH_MODEL", "hashing:32")
    return Paths.from_env().ensure()


@pytest.fixture(scope="session")
def dbt_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dbt manifest the Dagster definitions import; parsed once per session if stale."""
    from core.dbt_manifest import ensure_manifest

    if "SHOPGUIDE_HOME" not in os.environ:
        os.environ["SHOPGUIDE_HOME"] = str(tmp_path_factory.mktemp("parse-home"))
    return ensure_manifest()
