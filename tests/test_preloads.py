"""What the dbt step preloads for the nightly's later steps (assets/preloads.py)."""

import sys

from dagster import AssetKey

from assets.preloads import later_step_loads
from assets.resources import EmbeddingEncoder, SearchEncoder

ENCODERS = (EmbeddingEncoder(model="hashing:8"), SearchEncoder(model="hashing:8"))


def keys(*names):
    return {AssetKey(name) for name in names}


def test_only_what_the_selected_assets_need_is_loaded():
    assert later_step_loads(keys("raw_events", "fct_events"), *ENCODERS) == []
    names = [name for name, _ in later_step_loads(keys("dim_products", "product_embeddings"), *ENCODERS)]
    assert names == ["lancedb", "product encoder"]
    names = [name for name, _ in later_step_loads(keys("product_search", "monitoring_report"), *ENCODERS)]
    assert names == ["lancedb", "search encoder", "report renderer"]


def test_the_loads_import_lancedb_and_the_report_renderer():
    loads = dict(later_step_loads(keys("product_embeddings", "monitoring_report"), *ENCODERS))
    assert loads["lancedb"]() is sys.modules["lancedb"]
    assert loads["report renderer"]() is sys.modules["reports.html"]


def test_a_misconfigured_encoder_fails_its_load_not_the_dbt_step(tmp_path):
    from core.background import alongside

    missing = EmbeddingEncoder(model=str(tmp_path / "no-such-model"))
    loads = later_step_loads(keys("product_embeddings"), missing, ENCODERS[1])  # does not raise
    with alongside(loads) as preloaded:
        pass
    assert set(preloaded.failed) == {"product encoder"} and "lancedb" not in preloaded.failed
