"""The storefront's HTTP read API over the published snapshots (`shopguide serve`).

What it answers comes from `LiveReader` (the reader library's answers, from snapshots held
in memory and swapped whole when the pointer moves), so the service never opens the
pipeline's DuckDB file and a nightly run never blocks it. Every answer names the snapshot it
came from (the `X-Snapshot-Id` header and `snapshot_id` in the body); a shopper's list that
an intraday overlay answered also names it (`X-Overlay-Id`, `overlay_id`).

Bad requests get a 4xx and a one-line JSON `{"error": ...}`: parameters are bounded and
typed in the signatures (FastAPI validates them and documents them in /openapi.json), ids
must look like ids, and over-long URLs are refused before routing.

Handlers are `async` where they only look up preloaded tables (a thread hop would cost more
than the lookup); search encodes the query, so it runs in the thread pool.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Literal

import orjson
from fastapi import FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from core.errors import NotReady
from serving.errors import ServingError
from serving.live import DEFAULT_POLL_S, LiveReader
from serving.metrics import CONTENT_TYPE, ApiMetrics

log = logging.getLogger("shopguide.api")

# The warehouse's identifier rule (docs/events.md): printable, trimmed, at most 128
# characters; any script, inner spaces allowed ("BANK CHARGES"). A "/" never reaches a
# path parameter, so no id can walk out of its route.
_VISIBLE = r"[^\s\x00-\x1f\x7f-\x9f]"
ID_PATTERN = rf"^{_VISIBLE}(?:[^\x00-\x1f\x7f-\x9f]{{0,126}}{_VISIBLE})?$"
MAX_K = 100
MAX_SEARCH_K = 50
MAX_URL_BYTES = 4096
SNAPSHOT_HEADER = "X-Snapshot-Id"
OVERLAY_HEADER = "X-Overlay-Id"

# search(query, k, category, min_price, max_price) → rows; assembled by the CLI from the
# product search of `embeddings.search` (the serving layer does not load models itself).
SearchFunction = Callable[[str, int, str | None, float | None, float | None], list[dict]]

UserId = Annotated[str, PathParam(pattern=ID_PATTERN, description="The shop's user id.")]
ProductId = Annotated[str, PathParam(pattern=ID_PATTERN, description="The shop's product id.")]
K = Annotated[int, Query(ge=1, le=MAX_K, description="How many products (1-100).")]
Category = Annotated[
    str | None,
    Query(min_length=1, max_length=200, description="A category path prefix, e.g. 'Home > Kitchen'."),
]


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content) -> bytes:
        return orjson.dumps(content)


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def answer(body: dict, snapshot_id: str) -> JSONResponse:
    return JSONResponse({**body, "snapshot_id": snapshot_id}, headers={SNAPSHOT_HEADER: snapshot_id})


def _items(rows: list[dict]) -> list[dict]:
    return [{key: value for key, value in row.items() if key != "snapshot_id"} for row in rows]


def _in_category(rows: list[dict], category: str | None) -> list[dict]:
    if category is None:
        return rows
    return [row for row in rows if (row.get("category_path") or "").startswith(category)]


class MetricsMiddleware:
    """Times every request and counts it by route template and status; refuses over-long
    URLs (414) before any parsing. Plain ASGI: Starlette's BaseHTTPMiddleware costs more
    than a whole lookup."""

    def __init__(self, app, metrics: ApiMetrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        if len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"") > MAX_URL_BYTES:
            response = error(414, f"the URL is longer than {MAX_URL_BYTES} bytes; shorten the query")
            await response(scope, receive, send)
            self.metrics.observe("unmatched", 414, started)
            return
        status = 500

        async def send_and_note(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = scope.get("route")
            self.metrics.observe(getattr(route, "path", "unmatched"), status, started)


def create_app(
    root: Path,
    search: SearchFunction | None = None,
    poll_s: float = DEFAULT_POLL_S,
    reader: LiveReader | None = None,
    warm_up: Callable[[], None] | None = None,
) -> FastAPI:
    """The API over the serving root `root` (SHOPGUIDE_HOME/serving). `warm_up` (loading the
    search model) runs in a thread as the app starts; /readyz says not ready until it ends."""
    live = reader or LiveReader(root, poll_s)
    metrics = ApiMetrics()
    warming = {"done": warm_up is None, "problem": None}

    def run_warm_up() -> None:
        try:
            warm_up()
        except Exception as exc:  # noqa: BLE001 - reported by /readyz; search answers 503 itself
            warming["problem"] = f"search is unavailable: {' '.join(str(exc).split())}"
            log.exception("warming up search failed")
        finally:
            warming["done"] = True

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if warm_up is not None:
            threading.Thread(target=run_warm_up, name="warm-up", daemon=True).start()
        yield
        live.close()

    app = FastAPI(
        title="shopguide storefront API",
        version="1",
        description="Recommendations, similar products, popular lists and product search, "
        "read from the published snapshot.",
        lifespan=lifespan,
    )
    app.state.reader = live
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("query", "path"))
        message = " ".join(str(first.get("msg", "invalid request")).split())[:300]
        return error(422, f"{where}: {message}" if where else message)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        if exc.status_code == 404 and exc.detail == "Not Found":
            return error(404, f"no endpoint {request.url.path}; see /docs for the API")
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(ServingError)
    async def not_served(request: Request, exc: ServingError):
        return error(503, str(exc))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.exception("unexpected error answering %s", request.url.path)
        return error(500, "internal error; the server log has the details")

    @app.get("/v1/users/{user_id}/recommendations", summary="A shopper's recommendations")
    async def recommendations(user_id: UserId, k: K = 10, category: Category = None):
        """The published list, best first, each with its reason and source. A user without a
        list (unknown, or a guest's made-up id) gets the shop's popular list, with
        `personalized: false` and source `fallback_global`."""
        snap = live.snapshot_for(user_id)
        rows = live.get_recommendations(user_id, k if category is None else MAX_K, snapshot=snap)
        rows = _in_category(rows, category)[:k]
        personalized = any(row["source"] != "fallback_global" for row in rows)
        body = {"user_id": user_id, "personalized": personalized, "items": _items(rows)}
        if snap.overlay_id is None:
            return answer(body, snap.snapshot_id)
        # The overlay applies to the whole answer (one state), whether or not it holds this shopper.
        response = answer({**body, "overlay_id": snap.overlay_id}, snap.snapshot_id)
        response.headers[OVERLAY_HEADER] = snap.overlay_id
        return response

    @app.get("/v1/products/{product_id}/similar", summary="Products similar to one product")
    async def similar(
        product_id: ProductId, k: K = 10, user_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None
    ):
        """Similar products with reasons; 404 for a product the snapshot does not know.
        `user_id` routes the call to the user's canary arm, like their other calls."""
        snap = live.snapshot_for(user_id)
        if not snap.product(product_id):
            raise HTTPException(404, f"unknown product {product_id!r} in snapshot {snap.snapshot_id}")
        rows = live.get_similar(product_id, k, snapshot=snap)
        return answer({"product_id": product_id, "items": _items(rows)}, snap.snapshot_id)

    @app.get("/v1/popular", summary="Popular or trending products")
    async def popular(
        list: Literal["popular", "trending"] = "popular",
        segment_type: Literal["overall", "category", "country"] = "overall",
        segment: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
        window_days: Annotated[int | None, Query(ge=1, le=366)] = None,
        k: K = 10,
        user_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    ):
        """The shop's, a category's or a country's list; the longest window published when
        `window_days` is not given. An unpublished segment or window gives an empty list."""
        if (segment_type == "overall") != (segment is None):
            raise HTTPException(
                422, "segment is required with segment_type category or country, and not allowed with overall"
            )
        snap = live.snapshot_for(user_id)
        rows = live.get_popular(
            category=segment if segment_type == "category" else None,
            country=segment if segment_type == "country" else None,
            k=k,
            window_days=window_days,
            list=list,
            snapshot=snap,
        )
        body = {
            "list": list,
            "segment_type": segment_type,
            "segment": segment or "all",
            "items": _items(rows),
        }
        return answer(body, snap.snapshot_id)

    @app.get("/v1/search", summary="Product search")
    def search_products(
        q: Annotated[str, Query(min_length=1, max_length=200, description="What the shopper typed.")],
        k: Annotated[int, Query(ge=1, le=MAX_SEARCH_K)] = 10,
        category: Category = None,
        min_price: Annotated[float | None, Query(ge=0, le=1e9)] = None,
        max_price: Annotated[float | None, Query(ge=0, le=1e9)] = None,
    ):
        """Products matching the query, in stock and for sale, with the filters applied
        inside the search."""
        if not q.strip():
            raise HTTPException(422, "q: the query is blank")
        if min_price is not None and max_price is not None and min_price > max_price:
            raise HTTPException(422, "min_price is above max_price")
        if search is None:
            raise HTTPException(503, "search is not configured on this server")
        snap = live.snapshot_for(None)
        try:
            rows = search(q, k, category, min_price, max_price)
        except NotReady as exc:  # no search index yet: a server-side state, said plainly
            raise HTTPException(503, " ".join(str(exc).split())) from None
        return answer({"query": q, "items": rows}, snap.snapshot_id)

    @app.get("/healthz", summary="The process is up")
    async def healthz():
        return JSONResponse({"status": "ok", "pid": os.getpid()})  # which worker answered

    @app.get("/readyz", summary="A published snapshot is loaded")
    async def readyz():
        try:
            state = live.state
        except ServingError as exc:
            return JSONResponse({"ready": False, "problem": str(exc)}, status_code=503)
        if not warming["done"]:
            return JSONResponse({"ready": False, "problem": "loading the search model"}, status_code=503)
        current = state.pointer["current"]
        return JSONResponse(
            {
                "ready": True,
                "snapshot_id": current,
                "age_seconds": round(live.age_seconds(current), 1),
                "canary": state.pointer.get("canary"),
                "overlay": state.pointer.get("overlay"),
                "problem": live.problem or warming["problem"],
            },
            headers={SNAPSHOT_HEADER: current},
        )

    @app.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def prometheus():
        try:
            state = live.state
            current = state.pointer["current"]
            metrics.set_serving(current, live.age_seconds(current), state.pointer.get("canary"))
        except ServingError:
            metrics.set_serving(None, None, None)
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    return app
