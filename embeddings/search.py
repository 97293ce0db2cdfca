"""Product search: what a shopper types → products, by meaning and by words.

Two legs over one LanceDB table, each with the filters applied inside the query
(prefilter), so k results come back even when most products are filtered out:

- vector: the query embedded by the search model (`encode_query`), nearest product
  vectors by cosine. Finds meaning across wording, typos and languages ("weihnachtsdeko").
- text: BM25 over the product text through the table's full-text index: exact words,
  plurals by stemming, typos when `fuzziness` > 0.

Mode "vector" uses the first, "text" the second, "hybrid" fuses both by reciprocal rank
fusion (embeddings/fusion.py). The default is vector: on the labelled Online Retail
queries it matched or beat every hybrid tried (bench/bench_search.py, docs/search.md).
A table without a full-text index yet is searched by vector alone in hybrid mode, with a
warning in the log once per table.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

from core.errors import BadInput, ConfigError, NotReady
from embeddings.encoder import Encoder
from embeddings.fusion import RRF_K, reciprocal_rank_fusion
from embeddings.store import PRODUCT_TABLE, SEARCH_TABLE, TEXT_COLUMN, open_table, text_index

log = logging.getLogger(__name__)
RESULT_COLUMNS = ["product_id", "title", "category_path", "brand", "price", "is_listed", "in_stock"]
MODES = ("vector", "hybrid", "text")


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


@dataclass(frozen=True)
class SearchSettings:
    """How a query is answered. The default mode is the one that measured best on the
    labelled Online Retail queries (docs/search.md): vector search with multilingual e5.
    The hybrid defaults are standard RRF; the variants measured are in docs/search.md."""

    mode: str = "vector"  # vector | hybrid | text
    candidates: int = 50  # taken from each leg before fusion (at least k)
    rrf_k: int = RRF_K
    text_weight: float = 1.0  # the text leg's weight in the fusion (the vector leg's is 1)
    text_operator: str = "or"  # "or": any query word matches; "and": every word must
    fuzziness: int = 0  # edits allowed per query word in the text leg

    def __post_init__(self):
        if self.mode not in MODES:
            raise ConfigError(f"Search mode {self.mode!r}: use one of {', '.join(MODES)}.")
        if self.text_operator not in ("or", "and"):
            raise ConfigError(f"text_operator {self.text_operator!r}: use 'or' or 'and'.")
        if self.text_weight <= 0:
            raise ConfigError(f"text_weight must be positive, got {self.text_weight}.")
        if self.candidates < 1:
            raise ConfigError(f"candidates must be at least 1, got {self.candidates}.")
        if not 0 <= self.fuzziness <= 2:
            raise ConfigError(f"fuzziness must be 0, 1 or 2 edits, got {self.fuzziness}.")


def _fingerprint(table) -> str | None:
    stored = table.search().limit(1).select(["model_fingerprint"]).to_list()
    return stored[0]["model_fingerprint"] if stored else None


def search_table(db, encoder: Encoder):
    """The table whose vectors this encoder made: the search table first, then the
    recommender's (the two models may be the same). Vectors from different models are
    never compared, so a mismatch is an error that says what to run."""
    tables = [(name, open_table(db, name)) for name in (SEARCH_TABLE, PRODUCT_TABLE)]
    tables = [(name, table) for name, table in tables if table is not None]
    if not tables:
        raise NotReady("No product embeddings yet: run `shopguide demo` or the nightly job first.")
    found = []
    for name, table in tables:
        fingerprint = _fingerprint(table)
        if fingerprint in (None, encoder.fingerprint):
            return table
        found.append(f"{name} by model fingerprint {fingerprint}")
    raise NotReady(
        f"No product vectors from the query encoder {encoder.name} ({encoder.fingerprint}): "
        f"{'; '.join(found)}. Search with the same model, or build its vectors (the nightly "
        "job's product_search, or product_embeddings for the recommender's model)."
    )


@functools.cache
def _warn_vector_only(table_name: str) -> None:
    log.warning(
        "No full-text index on %s: searching by vector only. The product_search asset builds "
        "one on the search table; the recommender's table has none.",
        table_name,
    )


def _vector_leg(table, encoder: Encoder, query: str, limit: int, where: str | None) -> list[dict]:
    search = table.search(encoder.encode_query([query])[0]).distance_type("cosine").limit(limit)
    if where:
        search = search.where(where, prefilter=True)
    return search.select([*RESULT_COLUMNS, "_distance"]).to_list()


def _text_leg(table, query: str, limit: int, where: str | None, settings: SearchSettings) -> list[dict]:
    from lancedb.query import FullTextOperator, MatchQuery

    # A MatchQuery, not the raw string: the words are matched as words (BM25 ranked),
    # never parsed as query syntax, whatever punctuation a shopper types.
    operator = FullTextOperator.AND if settings.text_operator == "and" else FullTextOperator.OR
    match = MatchQuery(query, TEXT_COLUMN, fuzziness=settings.fuzziness, operator=operator)
    search = table.search(match, query_type="fts").limit(limit)
    if where:
        search = search.where(where, prefilter=True)
    return search.select([*RESULT_COLUMNS, "_score"]).to_list()


def _result(row: dict, score: float) -> dict:
    return {**{c: row[c] for c in RESULT_COLUMNS}, "score": round(float(score), 6)}


def search_products(
    db,
    encoder: Encoder,
    query: str,
    k: int = 10,
    filters: SearchFilters = SearchFilters(),
    settings: SearchSettings = SearchSettings(),
) -> list[dict]:
    """Up to k products for the query, best first: RESULT_COLUMNS plus `score`. When the
    vector leg answers alone (vector mode, or hybrid without a text index) the score is the
    cosine similarity, as it always was; otherwise it is the fused rank score in (0, 1]
    (1.0: first in every leg that found anything)."""
    if not query.strip():
        raise BadInput("The search query is empty.")
    if k < 1:
        raise BadInput(f"k must be at least 1, got {k}.")
    table = search_table(db, encoder)
    where = filters.where()
    has_text_index = text_index(table) is not None
    if settings.mode == "text" and not has_text_index:
        raise NotReady(
            f"No full-text index on {table.name}: text search reads the search table, which the "
            "nightly job's product_search builds."
        )
    if settings.mode == "hybrid" and not has_text_index:
        _warn_vector_only(table.name)
    if settings.mode == "vector" or not has_text_index:
        rows = _vector_leg(table, encoder, query, k, where)
        return [_result(row, 1.0 - row["_distance"]) for row in rows]

    limit = max(k, settings.candidates)  # fusion needs more than k from each leg
    legs = [_text_leg(table, query, limit, where, settings)]
    weights = [settings.text_weight]
    if settings.mode == "hybrid":
        legs.insert(0, _vector_leg(table, encoder, query, limit, where))
        weights.insert(0, 1.0)
    rows = {row["product_id"]: row for leg in legs for row in leg}
    rankings = [[row["product_id"] for row in leg] for leg in legs]
    fused = reciprocal_rank_fusion(rankings, settings.rrf_k, weights)
    return [_result(rows[product_id], score) for product_id, score in fused[:k]]
