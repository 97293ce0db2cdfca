"""Candidate generation: a few hundred products per shopper worth ranking, and the scores
that proposed them.

Each generator proposes its top few per shopper (recommendations.proposals), from sparse
rows wherever it can, so the cost follows what shoppers touched, not the catalog's size:
- history: the shopper's own products (decayed views, carts and purchases);
- co-occurrence: history × the co-occurrence matrix, whose rows keep each product's strongest
  neighbours (recommendations.signals: every pair on Online Retail, 200 at 100k products);
- content: the shopper's vector against product vectors, the only way a product nobody has
  bought yet reaches anyone (a separate quota keeps room for new products). Up to
  CONTENT_SCAN targets, every shopper is scored against all of them (exact). Beyond, the
  candidates come from the title neighbours of what the shopper touched
  (recommendations.neighbours): history × neighbours ranks them, and the best
  CONTENT_POOL × quota are scored exactly;
- collaborative: ALS (exact top few from the factors, recommendations.inner_product) and
  EASE on the most touched products (shoppers × those products);
- popular: recent best-sellers in the shop and in the shopper's country, one ranked list
  per segment computed once in `fit`.
`propose` returns the union of the proposals with every generator's score at each pair (the
ranker's signal features), computed at those pairs only: no shoppers × catalog matrix. Where
a cap binds (co-occurrence and title neighbours per product, the content pool), proposals
approximate the exact top few of the dense scores; tests/test_candidates_sparse.py checks
that they equal them where no cap binds.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import polars as pl
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from recommendations.collaborative import ALS, EASE
from recommendations.features import SIGNAL_FEATURES, sample_at
from recommendations.inner_product import InnerProductIndex
from recommendations.inputs import RecInputs, purchase_counts
from recommendations.neighbours import nearest_neighbours, nearest_neighbours_among
from recommendations.parallel import map_in_threads
from recommendations.proposals import (
    Bought,
    Proposals,
    canonical,
    dense_top,
    dot_at,
    from_lists,
    nothing,
    pooled_top,
    top_cells,
    top_entries,
)
from recommendations.topk import top_per_row

# Shoppers whose candidates are built at once: their pairs (at most the limits' sum each)
# and the sparse products behind them stay in the tens of MB.
CANDIDATE_BLOCK = 1024
# Up to this many target products, content scores every shopper against all of them
# (~2M multiply-adds a shopper at 384 dimensions); beyond, it starts from title neighbours.
CONTENT_SCAN = 5_000
# Content candidates scored exactly per quota place when starting from title neighbours:
# history × neighbours keeps this many times the quota, the shopper's vector orders them.
# On Online Retail (neighbours forced) the neighbours of a shopper's items hold 95% of their
# exact top 30 and this pool 82%; the union of all generators keeps 96%.
CONTENT_POOL = 10

# Co-occurrence is held dense (P × P float32) when it is at most this big (128 MiB: up to
# 5,792 products) and at least this full. A block's history × co-occurrence is then a
# sparse × dense product: the same sums in the same order as the sparse × sparse one, each
# multiply-add ~15× cheaper, and its top few a dense top-k rather than a sort of its
# entries. On Online Retail (3,828 products, co-occurrence half full, 4,372 shoppers) the
# product and its top 50 took 0.50 s against 3.27 s (docs/recommendations.md). Below a
# tenth full the dense product would multiply mostly zeros.
DENSE_COOCCURRENCE_CELLS = 2**25
DENSE_COOCCURRENCE_FILL = 0.1

ContentIndex = sp.csr_matrix | InnerProductIndex | None


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
    content_neighbors: int = 50  # nearest titles kept per product, past CONTENT_SCAN targets

    @property
    def per_shopper(self) -> int:
        """The most candidates one shopper can get (every generator's quota, before overlaps)."""
        quotas = (self.history, self.cooccurrence, self.content, self.new_products, self.als, self.ease)
        return sum(quotas) + self.popular + self.country

    def __post_init__(self) -> None:
        negative = [name for name, value in vars(self).items() if value < 0]
        if negative:
            raise ValueError(f"candidate limits must be >= 0: {', '.join(negative)}")
        if self.new_product_days < 1 or self.popular_days < 1 or self.als_factors < 1:
            raise ValueError("new_product_days, popular_days and als_factors must be at least 1")


@dataclass
class Candidates:
    """A block's proposals: parallel arrays grouped by shopper (user rows ascending, products
    ascending within a shopper), and every generator's score at each pair."""

    users: np.ndarray  # user rows
    products: np.ndarray  # product rows
    signals: dict[str, np.ndarray]  # SIGNAL_FEATURES, float32 each (0 where a generator is off)


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
    popular_list: np.ndarray  # recommendable product rows with recent sales, best first
    country_lists: list[np.ndarray]  # the same for each country
    # Content's index over recommendable and over new products: every target scanned (an
    # InnerProductIndex), each product's nearest titles (P × P sparse), or None (quota 0).
    similar: ContentIndex
    similar_new: ContentIndex
    als_index: InnerProductIndex | None  # ALS's item factors of the recommendable products
    # torch threads while proposing: like LightGBM's (RankerSettings.threads), torch's threads
    # spin while they wait; on this busy 2-core machine one thread ran ALS's top 50 5× faster.
    threads: int = 1
    shoppers: np.ndarray | None = None  # the user rows `propose` may be asked for (None: any)
    cooccurrence_dense: np.ndarray | None = None  # inputs.cooccurrence, when dense pays (above)

    @classmethod
    def fit(
        cls,
        inputs: RecInputs,
        limits: CandidateLimits,
        threads: int = 1,
        titles: TitleNeighbours | None = None,
        shoppers: np.ndarray | None = None,
    ) -> Generators:
        """`titles`: each product's nearest recommendable (and new) titles when the caller has
        computed them already (`title_neighbours`, shared with similar products); content's
        indexes are then cut from them instead of another products × products pass.
        `shoppers`: the only user rows `propose` will be asked for (the ranker's sampled
        training shoppers). Content's neighbour index then holds only the rows of their
        history's products, the only rows their proposals read, with the same values: at 100k
        products, every row was a ~7.7 TFLOP pass."""
        has_history = inputs.history.nnz > 0
        fits = []
        if has_history and limits.als:
            fits.append(ALS(factors=limits.als_factors))
        if has_history and limits.ease:
            fits.append(EASE(max_products=limits.ease_products))
        # ALS (implicit) and EASE (LAPACK) are independent and release the GIL: side by side,
        # each on one BLAS thread (ALS's own solver threads are another pool: every core, the
        # same factors on any count; collaborative.ALS). The limit is process-wide, so it is
        # set once around both (ALS's own limit inside restores it to one): a thread count
        # that changed with the timing would change EASE's rounding, and a re-run would train
        # another ranker.
        with threadpool_limits(1, "blas"):
            fitted = {model.name: model for model in map_in_threads(lambda model: model.fit(inputs), fits)}
        als, ease = fitted.get("als"), fitted.get("ease")
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
        new_product = new_products(inputs, limits)
        recommendable = np.flatnonzero(inputs.recommendable)
        if titles is not None and not np.array_equal(titles.new_targets, new_product):
            raise ValueError("the title neighbours were computed for other new products")
        read = None if shoppers is None else np.unique(inputs.history[shoppers].indices)
        with torch_threads(threads):
            similar, similar_new = content_indexes(
                inputs,
                [
                    (inputs.recommendable, limits.content, None if titles is None else titles.recommendable),
                    (new_product, limits.new_products, None if titles is None else titles.new),
                ],
                limits.content_neighbors,
                rows=read,
            )
            return cls(
                inputs=inputs,
                limits=limits,
                als=als,
                ease=ease,
                popular=popular,
                country_popularity=by_country,
                user_country=user_country,
                new_product=new_product,
                popular_list=ranked_list(popular, inputs.recommendable, inputs.popularity),
                country_lists=[ranked_list(row, inputs.recommendable, popular) for row in by_country],
                similar=similar,
                similar_new=similar_new,
                als_index=InnerProductIndex(als.items[recommendable], recommendable, inputs.products.height)
                if als is not None
                else None,
                threads=threads,
                shoppers=None if shoppers is None else np.unique(shoppers),
                cooccurrence_dense=dense_cooccurrence(inputs.cooccurrence),
            )

    def propose(self, rows: np.ndarray, exclude_bought: bool) -> Candidates:
        """The union of every generator's proposals for the shoppers `rows`, with every
        generator's score at each pair. Only recommendable products are proposed; with
        `exclude_bought`, none the shopper bought."""
        inputs, limits = self.inputs, self.limits
        if self.shoppers is not None and not np.isin(rows, self.shoppers).all():
            raise ValueError("these generators were fitted for other shoppers: fit them with these")
        with torch_threads(self.threads):
            history = canonical(inputs.history[rows])
            bought = Bought(inputs.purchased[rows] if exclude_bought else None, inputs.products.height)
            if self.cooccurrence_dense is None:
                together = canonical(history @ inputs.cooccurrence)
                together_top = top_entries(together, limits.cooccurrence, inputs.recommendable, bought)
            else:
                together = history @ self.cooccurrence_dense
                together_top = top_cells(together, limits.cooccurrence, inputs.recommendable, bought)
            ease = self.ease.x[rows] @ self.ease.weights if self.ease else None
            proposals = [
                # A basket's products weigh the same: ties go to the more popular.
                top_entries(history, limits.history, inputs.recommendable, bought, inputs.popularity),
                together_top,
                self._content(rows, history, self.similar, limits.content, bought),
                self._content(rows, history, self.similar_new, limits.new_products, bought),
                self._als(rows, bought),
                self._ease(ease, bought),
                from_lists([self.popular_list], np.zeros(len(rows), dtype=np.int64), limits.popular, bought),
                from_lists(self.country_lists, self.user_country[rows], limits.country, bought),
            ]
        n_products = inputs.products.height
        keys = np.unique(np.concatenate([users * n_products + products for users, products in proposals]))
        local, products = keys // n_products, keys % n_products
        users = rows[local]
        country = self.user_country[users]
        zeros = np.zeros(len(keys), dtype=np.float32)
        signals = {
            "history_weight": sample_at(history, local, products),
            "cooccurrence": sample_at(together, local, products)
            if self.cooccurrence_dense is None
            else together[local, products],
            "content": dot_at(inputs.user_matrix, users, inputs.product_matrix, products),
            "als": dot_at(self.als.users, users, self.als.items, products) if self.als else zeros,
            "ease": self._ease_at(ease, local, products) if ease is not None else zeros,
            "country_popularity": np.where(
                country >= 0, self.country_popularity[np.maximum(country, 0), products], 0.0
            )
            if len(self.country_popularity)
            else zeros,
        }
        return Candidates(
            users, products, {name: signals[name].astype(np.float32) for name in SIGNAL_FEATURES}
        )

    def _content(
        self, rows: np.ndarray, history: sp.csr_matrix, index: ContentIndex, n: int, bought: Bought
    ) -> Proposals:
        """The `n` products with the highest user · product among the index's targets."""
        inputs = self.inputs
        with_vector = inputs.has_vector[rows]
        if index is None or n <= 0:
            return nothing()
        if isinstance(index, InnerProductIndex):
            scanned = np.flatnonzero(with_vector)
            users, products, _ = index.top(inputs.user_matrix[rows[scanned]], n, bought.pairs(scanned))
            return scanned[users], products

        def exact(users: np.ndarray, products: np.ndarray) -> np.ndarray:
            return dot_at(inputs.user_matrix, rows[users], inputs.product_matrix, products)

        pool = canonical(history @ index)
        return pooled_top(pool, n, CONTENT_POOL * n, with_vector, exact, bought)

    def _als(self, rows: np.ndarray, bought: Bought) -> Proposals:
        if self.als_index is None or self.limits.als <= 0:
            return nothing()
        users, products, _ = self.als_index.top(self.als.users[rows], self.limits.als, bought.pairs())
        return users, products

    def _ease(self, ease: np.ndarray | None, bought: Bought) -> Proposals:
        import torch

        if ease is None or self.limits.ease <= 0:
            return nothing()
        scores = torch.from_numpy(np.array(ease, dtype=np.float32))  # a copy: `ease` feeds the features
        scores[:, torch.from_numpy(~self.inputs.recommendable[self.ease.kept])] = float("-inf")
        return dense_top(scores, self.ease.kept, self.limits.ease, bought)

    def _ease_at(self, ease: np.ndarray, local: np.ndarray, products: np.ndarray) -> np.ndarray:
        position = np.full(self.inputs.products.height, -1, dtype=np.int64)
        position[self.ease.kept] = np.arange(len(self.ease.kept))
        at = position[products]
        return np.where(at >= 0, ease[local, np.maximum(at, 0)], 0.0)


def dense_cooccurrence(cooccurrence: sp.csr_matrix) -> np.ndarray | None:
    """The co-occurrence matrix as an array where that pays (DENSE_COOCCURRENCE_*), else None."""
    cells = cooccurrence.shape[0] * cooccurrence.shape[1]
    if cells == 0 or cells > DENSE_COOCCURRENCE_CELLS or cooccurrence.nnz < DENSE_COOCCURRENCE_FILL * cells:
        return None
    return cooccurrence.toarray()


def content_indexes(
    inputs: RecInputs,
    wanted: list[tuple[np.ndarray, int, sp.csr_matrix | None]],
    neighbors: int,
    rows: np.ndarray | None = None,
) -> list[ContentIndex]:
    """How content reaches each (targets, quota, titles) of `wanted` (targets: P bools): a
    scan of all of them up to CONTENT_SCAN, else each product's `neighbors` nearest targets;
    None when the quota is 0 or there is no target. `titles`, when given, are those targets'
    nearest titles already computed with at least `neighbors` a product (`title_neighbours`):
    each row keeps its best `neighbors` (what `nearest_neighbours` would return, but for ties
    at the cut, which keep the lowest columns). The sets left to compute share one pass over
    the similarities (`nearest_neighbours_among`), over `rows` only when given."""
    indexes: list[ContentIndex] = [None] * len(wanted)
    by_neighbours = []
    for i, (targets, quota, titles) in enumerate(wanted):
        if quota <= 0 or not targets.any():
            continue
        if targets.sum() <= CONTENT_SCAN:
            scanned = np.flatnonzero(targets)  # not `rows`: the pass below reads those
            indexes[i] = InnerProductIndex(inputs.product_matrix[scanned], scanned, len(targets))
        elif titles is not None:
            if np.diff(titles.indptr).min(initial=neighbors) < min(neighbors, int(targets.sum())):
                raise ValueError(
                    f"the title neighbours hold fewer than the {neighbors} a product content needs"
                )
            # Cut to `neighbors` a row, unless computed with that many (new products' titles).
            wider = np.diff(titles.indptr).max(initial=0) > neighbors
            indexes[i] = top_per_row(titles, neighbors) if wider else titles
        else:
            by_neighbours.append(i)
    found = nearest_neighbours_among(
        inputs.product_matrix, [wanted[i][0] for i in by_neighbours], neighbors, rows=rows
    )
    for i, index in zip(by_neighbours, found, strict=True):
        indexes[i] = index
    return indexes


def new_products(inputs: RecInputs, limits: CandidateLimits) -> np.ndarray:
    """P bools: the recommendable products listed less than `new_product_days` ago or never
    sold (the content generator's separate quota)."""
    listed = inputs.products.get_column("first_listed_at", default=None)
    recently_listed = (
        np.zeros(inputs.products.height, dtype=bool)
        if listed is None
        else (listed >= inputs.as_of - timedelta(days=limits.new_product_days)).fill_null(False).to_numpy()
    )
    never_sold = np.diff(inputs.purchased.tocsc().indptr) == 0
    return (recently_listed | never_sold) & inputs.recommendable


@dataclass(frozen=True)
class TitleNeighbours:
    """Each product's nearest titles among the recommendable products, and among the new
    ones (`new_targets`) when content needs an index over them (None: it scans them, or has
    no quota for them), from one pass over the similarities (`title_neighbours`)."""

    recommendable: sp.csr_matrix
    new_targets: np.ndarray
    new: sp.csr_matrix | None


def title_neighbours(inputs: RecInputs, limits: CandidateLimits, k: int) -> TitleNeighbours | None:
    """Each product's nearest recommendable titles, computed once per publish for both the
    content generator and similar products (recommendations.similar), past CONTENT_SCAN
    recommendable products, where content starts from them; None below (content scans every
    target, and similar products' dense pass stays small). Keeps max(content_neighbors,
    k + 1) a product: similar products' top k needs k + 1, as the anchor itself is nearly
    always among its own nearest and is never its own similar product. Past CONTENT_SCAN new
    products, content's index over them comes from the same pass (their columns are among the
    recommendable ones): at 100k products a second pass cost 65 s of the 10M publish."""
    if inputs.recommendable.sum() <= CONTENT_SCAN:
        return None
    kept = max(limits.content_neighbors, k + 1)
    new = new_products(inputs, limits)
    if limits.new_products <= 0 or new.sum() <= CONTENT_SCAN:
        titles = nearest_neighbours(inputs.product_matrix, inputs.recommendable, kept)
        return TitleNeighbours(titles, new, None)
    titles, new_titles = nearest_neighbours_among(
        inputs.product_matrix, [inputs.recommendable, new], [kept, limits.content_neighbors]
    )
    return TitleNeighbours(titles, new, new_titles)


def ranked_list(scores: np.ndarray, allowed: np.ndarray, then: np.ndarray) -> np.ndarray:
    """Allowed products with a positive score, best first; equal scores: the higher `then`
    (sales counts tie often), then the lower row."""
    rows = np.flatnonzero(allowed & (scores > 0))
    return rows[np.lexsort((-then[rows], -scores[rows]))]


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """torch's intra-op threads set to `threads` inside the block, restored after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
