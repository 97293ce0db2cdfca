"""Candidate generation: a few hundred products per shopper worth ranking, and the scores
that proposed them.

Each generator scores a block of shoppers against the whole catalog, and proposes its
top few:
- history: the shopper's own products (decayed views, carts and purchases);
- co-occurrence: neighbours, in baskets and sessions, of what the shopper touched;
- content: the shopper's vector against the product vectors (the only way a product nobody
  has bought yet can reach anyone; a separate quota keeps room for new products);
- collaborative: ALS factors, and EASE on the most popular products (bounded memory);
- popular: recent best-sellers in the shop and in the shopper's country.
A block is at most `block_users` × products floats per signal, never users × products.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import polars as pl
import torch

from recommendations.collaborative import ALS, EASE
from recommendations.inputs import RecInputs, purchase_counts

# Floats one signal may hold per block: block users × products ≤ this.
BLOCK_CELLS = 8_000_000


@dataclass(frozen=True)
class CandidateLimits:
    """How many products each generator may propose per shopper."""

    history: int = 100
    cooccurrence: int = 50
    content: int = 30
    new_products: int = 10
    als: int = 50
    ease: int = 50
    popular: int = 30
    country: int = 20
    new_product_days: int = 30  # listed less than this long ago (or never sold): "new"
    popular_days: int = 30  # the shop's and each country's best-sellers: sales in this many days
    ease_products: int = 3000
    als_factors: int = 64

    def __post_init__(self) -> None:
        negative = [name for name, value in vars(self).items() if value < 0]
        if negative:
            raise ValueError(f"candidate limits must be >= 0: {', '.join(negative)}")
        if self.new_product_days < 1 or self.popular_days < 1 or self.als_factors < 1:
            raise ValueError("new_product_days, popular_days and als_factors must be at least 1")


@dataclass
class Generators:
    """The fitted generators for one cut-off."""

    inputs: RecInputs
    limits: CandidateLimits
    als: ALS | None
    ease: EASE | None
    popular: np.ndarray  # P: recent sales, scaled to [0, 1]
    country_popularity: np.ndarray  # countries × P, each row scaled to [0, 1]
    user_country: np.ndarray  # U ints into country_popularity (-1: none)
    new_product: np.ndarray  # P bools

    @classmethod
    def fit(cls, inputs: RecInputs, limits: CandidateLimits) -> Generators:
        has_history = inputs.history.nnz > 0
        als = ALS(factors=limits.als_factors).fit(inputs) if has_history and limits.als else None
        ease = EASE(max_products=limits.ease_products).fit(inputs) if has_history and limits.ease else None
        recent = inputs.purchases.filter(
            pl.col("occurred_at") >= inputs.as_of - timedelta(days=limits.popular_days)
        ).join(inputs.products.select("product_id", "row"), on="product_id")
        popular = purchase_counts(inputs, limits.popular_days)
        popular /= max(float(popular.max(initial=0.0)), 1.0)
        countries = sorted(c for c in inputs.users["country"].unique().to_list() if c is not None)
        code = {c: i for i, c in enumerate(countries)}
        by_country = np.zeros((len(countries), inputs.products.height), dtype=np.float32)
        per_country = (
            recent.filter(pl.col("country").is_in(countries)).group_by("country", "row").agg(n=pl.len())
        )
        if per_country.height:
            by_country[[code[c] for c in per_country["country"].to_list()], per_country["row"].to_numpy()] = (
                per_country["n"].to_numpy()
            )
        by_country /= np.maximum(by_country.max(axis=1, keepdims=True, initial=0.0), 1.0)
        user_country = np.array([code.get(c, -1) for c in inputs.users["country"].to_list()], dtype=np.int64)
        listed = inputs.products.get_column("first_listed_at", default=None)
        recently_listed = (
            np.zeros(inputs.products.height, dtype=bool)
            if listed is None
            else (listed >= inputs.as_of - timedelta(days=limits.new_product_days))
            .fill_null(False)
            .to_numpy()
        )
        never_sold = np.diff(inputs.purchased.tocsc().indptr) == 0
        return cls(
            inputs=inputs,
            limits=limits,
            als=als,
            ease=ease,
            popular=popular,
            country_popularity=by_country,
            user_country=user_country,
            new_product=(recently_listed | never_sold) & inputs.recommendable,
        )

    def block_users(self) -> int:
        return int(np.clip(BLOCK_CELLS // max(self.inputs.products.height, 1), 16, 4096))

    def signals(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        """Every generator's scores for a block of shoppers: name → block × products."""
        inputs = self.inputs
        shape = (len(rows), inputs.products.height)
        out = {
            "history_weight": torch.from_numpy(inputs.history[rows].toarray()),
            "cooccurrence": torch.from_numpy((inputs.history[rows] @ inputs.cooccurrence).toarray()),
            "content": torch.from_numpy(inputs.user_matrix[rows]) @ torch.from_numpy(inputs.product_matrix).T,
            "als": torch.from_numpy(self.als.scores(rows)) if self.als else torch.zeros(shape),
            "ease": torch.from_numpy(self.ease.scores(rows)) if self.ease else torch.zeros(shape),
        }
        country = self.user_country[rows]
        country_rows = (
            self.country_popularity[np.maximum(country, 0)] if len(self.country_popularity) else None
        )
        out["country_popularity"] = (
            torch.from_numpy(np.where((country >= 0)[:, None], country_rows, 0.0).astype(np.float32))
            if country_rows is not None
            else torch.zeros(shape)
        )
        return {name: values.float() for name, values in out.items()}

    def candidates(
        self, rows: np.ndarray, signals: dict[str, torch.Tensor], exclude_bought: bool
    ) -> torch.Tensor:
        """block × products bools: the union of every generator's proposals."""
        inputs, limits = self.inputs, self.limits
        allowed = torch.from_numpy(inputs.recommendable).unsqueeze(0).expand(len(rows), -1).clone()
        if exclude_bought:
            coo = inputs.purchased[rows].tocoo()
            allowed[
                torch.from_numpy(coo.row.astype(np.int64)), torch.from_numpy(coo.col.astype(np.int64))
            ] = False
        chosen = torch.zeros_like(allowed)
        new = torch.from_numpy(self.new_product).unsqueeze(0)

        def propose(
            scores: torch.Tensor, limit: int, positive_only: bool, mask: torch.Tensor | None = None
        ) -> None:
            if limit <= 0:
                return
            usable = allowed if mask is None else allowed & mask
            masked = scores.masked_fill(~usable, float("-inf"))
            values, top = torch.topk(masked, min(limit, masked.shape[1]), dim=1)
            keep = values > 0 if positive_only else torch.isfinite(values)
            chosen.scatter_(1, top, keep | torch.gather(chosen, 1, top))

        propose(signals["history_weight"], limits.history, True)
        propose(signals["cooccurrence"], limits.cooccurrence, True)
        has_vector = torch.from_numpy(inputs.has_vector[rows]).unsqueeze(1)
        content = signals["content"].masked_fill(~has_vector, float("-inf"))
        propose(content, limits.content, False)
        propose(content, limits.new_products, False, new)
        if self.als:
            propose(signals["als"], limits.als, False)
        if self.ease:
            propose(signals["ease"], limits.ease, True)
        popular = torch.from_numpy(self.popular).unsqueeze(0).expand(len(rows), -1)
        propose(popular, limits.popular, True)
        propose(signals["country_popularity"], limits.country, True)
        return chosen
