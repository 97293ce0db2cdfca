"""`shopguide serve`: assemble the HTTP API for this SHOPGUIDE_HOME and run it on uvicorn.

The app factory (`app_from_env`) is what every uvicorn worker process calls: it reads the
home from the environment, builds product search from the shop's LanceDB and the search
model (`SHOPGUIDE_SEARCH_MODEL`, multilingual e5 by default; loaded in the background, so a
worker is ready as soon as its snapshot is), and hands both to `serving.api.create_app`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading

from core.settings import Paths
from serving import serving_root
from serving.api import create_app
from serving.metrics import MULTIPROCESS_ENV

APP_FACTORY = "shopguide.server:app_from_env"


class ProductSearch:
    """search(query, k, category, min_price, max_price) → rows, over the shop's products.

    The model loads once, under a lock: the first load chooses the model's precision, and
    two threads doing it at once mixed bf16 and fp32 weights (a 500 under load). The app
    calls `warm_up` as the worker starts and reports not-ready until it is done, so the
    load's seconds of held GIL never land on live requests."""

    def __init__(self, paths: Paths):
        self.paths = paths
        self._lock = threading.Lock()
        self._loaded: tuple | None = None

    def _backend(self) -> tuple:
        with self._lock:
            if self._loaded is None:
                from embeddings.encoder import cached_encoder
                from embeddings.models import search_model_name
                from embeddings.store import connect as connect_lancedb

                # Not through the Dagster resource: a worker need not import Dagster.
                encoder = cached_encoder(search_model_name())
                encoder.warm_up()
                self._loaded = (connect_lancedb(self.paths.lancedb_uri), encoder)
            return self._loaded

    def warm_up(self) -> None:
        self._backend()

    def __call__(
        self, query: str, k: int, category: str | None, min_price: float | None, max_price: float | None
    ):
        from embeddings.search import SearchFilters, search_products

        db, encoder = self._backend()
        filters = SearchFilters(category=category, min_price=min_price, max_price=max_price)
        return search_products(db, encoder, query, k, filters)


def app_from_env():
    paths = Paths.from_env()
    search = ProductSearch(paths)
    return create_app(serving_root(paths), search=search, warm_up=search.warm_up)


def serve(host: str, port: int, workers: int) -> None:
    """Run the API until interrupted. With several workers, Prometheus samples go through a
    fresh multiprocess folder, so /metrics on any worker counts every worker's requests."""
    import uvicorn

    Paths.from_env().export()
    folder = None
    if workers > 1 and not os.environ.get(MULTIPROCESS_ENV):
        folder = tempfile.mkdtemp(prefix="shopguide-metrics-")
        os.environ[MULTIPROCESS_ENV] = folder
    try:
        uvicorn.run(
            APP_FACTORY,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            loop="uvloop",
            http="httptools",
            access_log=False,  # a line per request would cost more than the request
            log_level="warning",
        )
    finally:
        if folder:
            shutil.rmtree(folder, ignore_errors=True)
