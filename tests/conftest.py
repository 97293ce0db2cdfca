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


@pytest.fixture(scope="session")
def capped_shop():
    """A trained ranker, its inputs and a category-capped configuration (trained once, for
    the user-table tests of test_ranker.py and test_compiled_booster.py)."""
    from datetime import timedelta

    from recommendations.config import RecommendationConfig
    from recommendations.ranker import fit_ranker
    from recommendations.shop import inputs_as_of
    from tests.shops import FAST_RANKER, cycling_shop

    data = cycling_shop()
    as_of = data.events["occurred_at"].max() + timedelta(seconds=1)
    config = RecommendationConfig()
    model = fit_ranker(data, as_of, config, FAST_RANKER)
    inputs = inputs_as_of(data, as_of, config)
    return model, inputs, RecommendationConfig(k=6, max_per_category=2)
