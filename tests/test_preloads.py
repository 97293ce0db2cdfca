"""What the dbt step preloads for the nightly's later steps (assets/preloads.py)."""

import subprocess
import sys
from pathlib import Path

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


def test_loading_the_definitions_leaves_lancedb_torch_and_scipy_stats_to_the_steps():
    """Every `shopguide` command and Dagster run loads the definitions first: LanceDB (~2.3 s),
    torch (2.1-2.7 s on a busy machine) and scipy.stats (~1 s) are imported by the steps that
    use them (or the preloads, while dbt runs), not there."""
    heavy = ("lancedb", "torch", "scipy.stats")
    code = f"import sys, orchestration.definitions; print([m for m in {heavy!r} if m in sys.modules])"
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    assert out.stdout.strip() == "[]"
