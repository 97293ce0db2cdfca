"""Semantic search over the product vectors: query text → the nearest products."""

from __future__ import annotations

from dataclasses import dataclass

from embeddings.encoder import Encoder
from embeddings.store import PRODUCT_TABLE, open_table

RESULT_COLUMNS = ["product_id", "title", "category_path", "brand", "price", "is_listed", "in_stock"]


@dataclass(frozen=True)
class SearchFilters:
    category: str | None = None  # a category path prefix, e.g. "Home > Kitchen"
    min_price: float | None = None
    max_price: float | None = None
    in_stock_only: bool = True
    merchandise_only: bool = True

    def where(self) -> str | None:
        clauses = []
        if self.category:
            escaped = self.category.replace("'", "''").replace("%", r"\%")
            clauses.append(f"category_path LIKE '{escaped}%'")
        if self.min_price is not None:
            clauses.append(f"price >= {float(self.min_price)}")
        if self.max_price is not None:
            clauses.append(f"price <= {float(self.max_price)}")
        if self.in_stock_only:
            clauses.append("in_stock")
        if self.merchandise_only:
            clauses.append("is_merchandise")
        return " AND ".join(clauses) or None


def search_products(
    db, encoder: Encoder, query: str, k: int = 10, filters: SearchFilters = SearchFilters()
) -> list[dict]:
    if not query.strip():
        raise ValueError("The search query is empty.")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}.")
    table = open_table(db, PRODUCT_TABLE)
    if table is None:
        raise ValueError("No product embeddings yet: run `shopguide demo` or the nightly job first.")
    stored = table.search().limit(1).select(["model_fingerprint"]).to_list()
    if stored and stored[0]["model_fingerprint"] != encoder.fingerprint:
        raise ValueError(
            f"The product vectors were made by model fingerprint {stored[0]['model_fingerprint']}, "
            f"but the query encoder is {encoder.name} ({encoder.fingerprint}). Search with the same "
            "model, or re-run product_embeddings with the new one."
        )
    vector = encoder.encode([query])[0]
    search = table.search(vector).distance_type("cosine").limit(k)
    where = filters.where()
    if where:
        search = search.where(where, prefilter=True)
    rows = search.select([*RESULT_COLUMNS, "_distance"]).to_list()
    return [
        {**{c: row[c] for c in RESULT_COLUMNS}, "score": round(1.0 - float(row["_distance"]), 6)}
        for row in rows
    ]
