"""What the nightly's later steps load, started on the spare core while dbt runs.

On Online Retail's new day, loading the definitions and the steps' libraries and models was
~20 s of ~58 s on 2 cores, while during the dbt step (~11 s) this process only waits on
dbt's. The vector steps' imports and models are loaded then instead (core/background.py),
but only for assets the run will materialise, and only when all its steps share this
process. Measured: one new day 5-10 s shorter (README's Figures).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Collection

from dagster import AssetKey

from assets.resources import EmbeddingEncoder, SearchEncoder

# The assets that open LanceDB (its import alone is ~2.3 s: its REST namespace client).
VECTOR_ASSETS = ("product_embeddings", "product_search", "user_embeddings", "published_recommendations")


def later_step_loads(
    selected: Collection[AssetKey], encoder: EmbeddingEncoder, search_encoder: SearchEncoder
) -> list[tuple[str, Callable[[], object]]]:
    """(name, load) for each import or model that the selected assets will need."""
    names = {key.to_user_string() for key in selected}
    loads: list[tuple[str, Callable[[], object]]] = []
    if names.intersection(VECTOR_ASSETS):
        loads.append(("lancedb", lambda: importlib.import_module("lancedb")))
    # The encoders are built inside the loads too: a misconfigured model is reported by the
    # step that uses it, not raised here, while dbt's process is already running.
    if "product_embeddings" in names:
        loads.append(("product encoder", lambda: encoder.encoder().warm_up()))
    if "product_search" in names:
        loads.append(("search encoder", lambda: search_encoder.encoder().warm_up()))
    if "monitoring_report" in names:
        loads.append(("report renderer", lambda: importlib.import_module("reports.html")))  # matplotlib
    return loads
