"""The storefront's read side: recommendations from the published snapshot.

Why it looks like this:
- It reads only `CURRENT.json` and the snapshot's Parquet files, never the pipeline's
  DuckDB file, so it keeps serving while a nightly run holds that file (../shared/STACK.md).
- It reads the pointer once per call (a tiny JSON file, atomically replaced by publishers)
  and then takes every row of the answer, titles included, from that one snapshot, so an
  answer is never a mix of two versions even while a publish happens.
- Snapshots are immutable, so tables loaded for a snapshot id are cached in memory for as
  long as that id is served (a small LRU of snapshots: current, canary, one spare).
- Tables are sorted by their grain and looked up by binary search (`search_sorted`), so a
  lookup costs O(log n) and no Python dict of millions of rows is built.
- An overlay (intraday lists of the shoppers with new events, serving/overlays.py) named by
  the same pointer read is applied on top of the snapshot it was built for: its shoppers'
  lists come from the overlay, everything else from the snapshot. Overlay files are
  immutable too, so the pointer read decides old overlay or new for the whole answer.
- Canary routing hashes the user id with SHA-256 (Python's `hash()` is salted per process),
  so a user lands in the same bucket in every process and on every machine.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from pathlib import Path

import polars as pl

from serving.errors import ServingError
from serving.overlays import read_overlay_rows
from serving.publish import POINTER, read_pointer
from serving.snapshots import SORT_KEYS, snapshot_key
from serving.store import Store, open_store

POPULAR_LISTS = ("popular", "trending")


def canary_bucket(user_id: str, salt: str) -> int:
    """A stable bucket in [0, 100) for a user; the user is in a canary when bucket < percent."""
    digest = hashlib.sha256(f"{salt}\x1f{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ServingError(f"k must be a whole number of at least 1, got {k!r}.")
    return k


def _rows_for(df: pl.DataFrame, column: str, value: str) -> pl.DataFrame:
    keys = df[column]
    lo = keys.search_sorted(value, side="left")
    hi = keys.search_sorted(value, side="right")
    return df.slice(lo, hi - lo)


class _Snapshot:
    """The tables of one snapshot, loaded on first use (thread-safe)."""

    overlay_id: str | None = None

    def __init__(self, root: Store | Path | str, snapshot_id: str):
        self.snapshot_id = snapshot_id
        self.store = open_store(root)
        self.folder = snapshot_key(snapshot_id)
        self._tables: dict[str, pl.DataFrame] = {}
        self._products: dict[str, dict] | None = None
        self._lock = threading.Lock()

    def table(self, name: str) -> pl.DataFrame:
        table = self._tables.get(name)
        if table is None:
            with self._lock:
                table = self._tables.get(name)
                if table is None:
                    table = self._load(name)
                    self._tables[name] = table
        return table

    def _load(self, name: str) -> pl.DataFrame:
        try:
            df = self.store.read_parquet(f"{self.folder}/{name}.parquet")
        except FileNotFoundError:
            raise ServingError(
                f"published snapshot {self.snapshot_id} has no {name}.parquet (deleted?); "
                "roll back or publish another version (`shopguide versions` lists them)."
            ) from None
        keys = SORT_KEYS[name]
        return df.filter(pl.col(keys[0]).is_not_null()).sort(keys, nulls_last=True, maintain_order=True)

    def preload(self) -> _Snapshot:
        """Load every table (and the product index) now, not on a request's path."""
        for name in SORT_KEYS:
            self.table(name)
        self.product("")
        return self

    def user_rows(self, user_id: str) -> pl.DataFrame:
        """A shopper's published list rows (none for an unknown shopper)."""
        return _rows_for(self.table("user_recommendations"), "user_id", user_id)

    def product(self, product_id: str) -> dict:
        if self._products is None:
            products = self.table("products")
            with self._lock:
                if self._products is None:
                    self._products = {row["product_id"]: row for row in products.iter_rows(named=True)}
        return self._products.get(product_id) or {}


class _Overlaid:
    """A snapshot with an overlay applied: the overlay's shoppers get the overlay's lists,
    every other table and shopper comes from the snapshot. Built per request from one
    pointer read, so an answer never mixes two overlays."""

    def __init__(self, base: _Snapshot, overlay_id: str, rows: pl.DataFrame):
        self.base, self.overlay_id, self.rows = base, overlay_id, rows
        self.snapshot_id = base.snapshot_id

    def table(self, name: str) -> pl.DataFrame:
        return self.base.table(name)

    def product(self, product_id: str) -> dict:
        return self.base.product(product_id)

    def user_rows(self, user_id: str) -> pl.DataFrame:
        rows = _rows_for(self.rows, "user_id", user_id)
        return rows if rows.height else self.base.user_rows(user_id)


def overlay_for(pointer: dict, snapshot_id: str) -> str | None:
    """The overlay id to apply to `snapshot_id` under this pointer (overlays are built on the
    current snapshot; a canary's shoppers see the canary's lists unchanged)."""
    overlay = pointer.get("overlay")
    return overlay["id"] if overlay and overlay.get("snapshot") == snapshot_id else None


class Reader:
    """Serve recommendations from the published snapshot under `root` (SHOPGUIDE_HOME/serving,
    or the object store SHOPGUIDE_SERVING_URI names)."""

    def __init__(self, root: Store | Path | str, cache_size: int = 3):
        self.store = open_store(root)
        self.root = self.store.root
        self.cache_size = max(1, cache_size)
        self._cache: OrderedDict[str, _Snapshot] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._overlays: OrderedDict[str, pl.DataFrame] = OrderedDict()

    # routing --------------------------------------------------------------------------
    def pointer(self) -> dict:
        try:
            pointer = read_pointer(self.store)
        except json.JSONDecodeError as error:  # never happens with atomic replaces; say so if it does
            raise ServingError(
                f"{self.store.describe(POINTER)} is not valid JSON ({error}); republish."
            ) from None
        if pointer["current"] is None:
            raise ServingError(
                f"nothing is published yet under {self.root}; publish a version first (`shopguide publish`)."
            )
        return pointer

    @staticmethod
    def _route(pointer: dict, user_id: str | None) -> str:
        canary = pointer.get("canary")
        if canary and user_id is not None and canary_bucket(user_id, canary["salt"]) < canary["percent"]:
            return canary["snapshot"]
        return pointer["current"]

    def version_for(self, user_id: str | None) -> str:
        """The snapshot id this user is served from (the canary's for users in its share)."""
        return self._route(self.pointer(), user_id)

    def _snapshot(self, snapshot_id: str) -> _Snapshot:
        with self._cache_lock:
            snap = self._cache.get(snapshot_id)
            if snap is None:
                snap = _Snapshot(self.store, snapshot_id)
                self._cache[snapshot_id] = snap
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
            else:
                self._cache.move_to_end(snapshot_id)
            return snap

    def _overlay_rows(self, overlay_id: str) -> pl.DataFrame:
        with self._cache_lock:
            rows = self._overlays.get(overlay_id)
        if rows is None:
            rows = read_overlay_rows(self.store, overlay_id)
            with self._cache_lock:
                self._overlays[overlay_id] = rows
                while len(self._overlays) > 2:
                    self._overlays.popitem(last=False)
        return rows

    def _serving_snapshot(self, user_id: str | None) -> _Snapshot | _Overlaid:
        """The one snapshot (with its overlay, if any) a call by this user is answered from."""
        pointer = self.pointer()  # read once: snapshot and overlay come from the same read
        snapshot_id = self._route(pointer, user_id)
        snap = self._snapshot(snapshot_id)
        overlay_id = overlay_for(pointer, snapshot_id)
        return snap if overlay_id is None else _Overlaid(snap, overlay_id, self._overlay_rows(overlay_id))

    def _display(self, snap: _Snapshot, product_id: str) -> dict:
        product = snap.product(product_id)
        return {
            "title": product.get("title"),
            "category_path": product.get("category_path"),
            "price": product.get("price"),
        }

    # queries --------------------------------------------------------------------------
    def get_recommendations(
        self, user_id: str | None, k: int = 10, snapshot: _Snapshot | None = None
    ) -> list[dict]:
        """Top-k for a user; a user with no list (or a guest, user_id None) gets the overall
        popular list (longest window) with source "fallback_global". `snapshot` pins the
        answer to a snapshot already chosen for this request (default: route the user)."""
        k = _check_k(k)
        snap = snapshot or self._serving_snapshot(user_id)
        rows = pl.DataFrame()
        if user_id is not None:
            rows = snap.user_rows(str(user_id))
            rows = rows.filter(pl.col("product_id").is_not_null()).head(k)
        if rows.height == 0:
            popular = self._popular_rows(snap, "popular", "overall", "all", None, k)
            return [
                {
                    "rank": rank,
                    "product_id": row["product_id"],
                    **self._display(snap, row["product_id"]),
                    "score": row["score"],
                    "content_score": None,
                    "graph_score": None,
                    "popularity_score": row["score"],
                    "reason": row["reason"],
                    "source": "fallback_global",
                    "snapshot_id": snap.snapshot_id,
                }
                for rank, row in enumerate(popular.iter_rows(named=True), start=1)
            ]
        return [
            {
                "rank": row["rank"],
                "product_id": row["product_id"],
                **self._display(snap, row["product_id"]),
                "score": row["score"],
                "content_score": row["content_score"],
                "graph_score": row["graph_score"],
                "popularity_score": row["popularity_score"],
                "reason": row["reason"],
                "source": row["source"],
                "snapshot_id": snap.snapshot_id,
            }
            for row in rows.iter_rows(named=True)
        ]

    def get_similar(
        self, product_id: str, k: int = 10, user_id: str | None = None, snapshot: _Snapshot | None = None
    ) -> list[dict]:
        """Products similar to `product_id` (`product_id` in each row is the similar one);
        [] for a product with no list. `user_id` routes the call like the user's other calls."""
        k = _check_k(k)
        snap = snapshot or self._serving_snapshot(user_id)
        rows = _rows_for(snap.table("similar_products"), "product_id", str(product_id))
        rows = rows.filter(pl.col("similar_product_id").is_not_null()).head(k)
        return [
            {
                "rank": row["rank"],
                "product_id": row["similar_product_id"],
                **self._display(snap, row["similar_product_id"]),
                "for_product_id": row["product_id"],
                "score": row["score"],
                "content_score": row["content_score"],
                "cooccurrence_score": row["cooccurrence_score"],
                "reason": row["reason"],
                "source": row["source"],
                "snapshot_id": snap.snapshot_id,
            }
            for row in rows.iter_rows(named=True)
        ]

    def get_popular(
        self,
        category: str | None = None,
        k: int = 10,
        window_days: int | None = None,
        list: str = "popular",  # shadows the builtin: the name the storefront API uses
        country: str | None = None,
        user_id: str | None = None,
        snapshot: _Snapshot | None = None,
    ) -> list[dict]:
        """Popular (or trending) products overall, in a category or in a country; the longest
        window present when window_days is None; [] when that segment has no list."""
        k = _check_k(k)
        if list not in POPULAR_LISTS:
            raise ServingError(f"list must be one of {POPULAR_LISTS}, got {list!r}.")
        if category is not None and country is not None:
            raise ServingError("pass category or country, not both.")
        if category is not None:
            segment_type, segment = "category", category
        elif country is not None:
            segment_type, segment = "country", country
        else:
            segment_type, segment = "overall", "all"
        snap = snapshot or self._serving_snapshot(user_id)
        rows = self._popular_rows(snap, list, segment_type, segment, window_days, k)
        return [
            {
                "rank": rank,
                "product_id": row["product_id"],
                **self._display(snap, row["product_id"]),
                "score": row["score"],
                "reason": row["reason"],
                "list": row["list"],
                "segment_type": row["segment_type"],
                "segment": row["segment"],
                "window_days": row["window_days"],
                "snapshot_id": snap.snapshot_id,
            }
            for rank, row in enumerate(rows.iter_rows(named=True), start=1)
        ]

    @staticmethod
    def _popular_rows(
        snap: _Snapshot, list_name: str, segment_type: str, segment: str, window_days: int | None, k: int
    ) -> pl.DataFrame:
        rows = snap.table("popular_products").filter(
            (pl.col("list") == list_name)
            & (pl.col("segment_type") == segment_type)
            & (pl.col("segment") == segment)
            & pl.col("product_id").is_not_null()
        )
        if rows.height == 0:
            return rows
        window = rows["window_days"].max() if window_days is None else window_days
        return rows.filter(pl.col("window_days") == window).sort("rank").head(k)
