"""Offline-evaluation baselines on hand-made data: buy-again by count, TIFU-KNN, the sparse
item-kNN, EASE on the most-touched products, and the memory they need on a 50k × 200k shop."""

from __future__ import annotations

import math
import time
import tracemalloc
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from core.dbt_manifest import interaction_weights
from evaluation.baselines import EASE, BuyAgainByCount, ItemKNN, ease_weights, item_cosine, top_per_row
from evaluation.next_basket import TIFUKNN, neighbour_means, unit_rows
from recommendations.inputs import RecInputs, VectorsById, build_inputs

AS_OF = datetime(2024, 3, 1)


def day(n: float) -> datetime:
    return AS_OF + timedelta(days=n)


def shop(purchases: list[tuple], n_products: int, users: list[str]) -> RecInputs:
    """RecInputs from (user_id or None, session_id or None, product index, when) purchases."""
    product_ids = [f"p{i:02d}" for i in range(n_products)]
    products = pl.DataFrame(
        {
            "product_id": product_ids,
            "title": product_ids,
            "category_path": ["c"] * n_products,
            "top_category": ["c"] * n_products,
            "price": [1.0] * n_products,
            "is_recommendable": [True] * n_products,
        }
    )
    vectors = pl.DataFrame(
        {"product_id": product_ids, "vector": [[1.0, 0.0]] * n_products},
        schema={"product_id": pl.Utf8, "vector": pl.List(pl.Float32)},
    )
    events = pl.DataFrame(
        [(user, session, product_ids[p], "purchase", at, "UK") for user, session, p, at in purchases],
        schema={
            "user_id": pl.Utf8,
            "session_id": pl.Utf8,
            "product_id": pl.Utf8,
            "event_type": pl.Utf8,
            "occurred_at": pl.Datetime("us"),
            "country": pl.Utf8,
        },
        orient="row",
    )
    people = pl.DataFrame({"user_id": users, "country": ["UK"] * len(users)})
    no_vectors = pl.DataFrame(schema={"user_id": pl.Utf8, "vector": pl.List(pl.Float32)})
    return build_inputs(
        products,
        vectors,
        people,
        VectorsById.from_frame(no_vectors, "user_id"),
        events,
        AS_OF,
        set(),
        30,
        14,
        interaction_weights(),
    )


def bare_inputs(history: sp.csr_matrix, orders: pl.DataFrame, purchases: pl.DataFrame | None = None):
    """Only what the baselines read, for data too large or too odd for build_inputs."""
    n_users, n_products = history.shape
    return RecInputs(
        as_of=AS_OF,
        products=pl.DataFrame({"product_id": [f"p{i}" for i in range(n_products)], "row": range(n_products)}),
        product_matrix=np.zeros((n_products, 1), np.float32),
        recommendable=np.ones(n_products, bool),
        users=pl.DataFrame({"user_row": range(n_users)}),
        user_matrix=np.zeros((n_users, 1), np.float32),
        has_vector=np.zeros(n_users, bool),
        history=history,
        purchased=history,
        cooccurrence=sp.csr_matrix((n_products, n_products), dtype=np.float32),
        popularity=np.zeros(n_products, np.float32),
        purchases=purchases
        if purchases is not None
        else pl.DataFrame(schema={"product_id": pl.Utf8, "occurred_at": pl.Datetime("us")}),
        orders=orders,
    )


def ranked(scores: np.ndarray, alltime: np.ndarray) -> list[int]:
    """The protocol's order: scores plus 1e-6 × all-time popularity, float32, best first."""
    tiebreak = (1e-6 * alltime / max(alltime.max(), 1)).astype(np.float32)
    return np.argsort(-(scores.astype(np.float32) + tiebreak), kind="stable").tolist()


# ---------------------------------------------------------------- buy again by count


def buy_again_shop() -> RecInputs:
    a = [
        *[("a", f"a3-{d}", 3, day(d)) for d in (-40, -39, -38)],  # three times, long ago
        ("a", "a1-1", 1, day(-20)),
        ("a", "a1-2", 1, day(-3)),  # twice, latest 3 days ago
        ("a", "a0-1", 0, day(-10)),
        ("a", "a0-2", 0, day(-5)),  # twice, latest 5 days ago
        ("a", "a2", 2, day(-1)),  # once, yesterday
        ("a", "a89", 8, day(-15)),
        ("a", "a89", 9, day(-15)),  # once each, same basket: equal count and recency
    ]
    b = [
        *[("b", f"b4-{d}", 4, day(d)) for d in (-2, -4, -6, -7)],
        *[("b", f"b6-{d}", 6, day(d)) for d in (-8, -9)],
        ("b", "b5", 5, day(-9)),
        *[("b", f"b9-{d}", 9, day(d)) for d in (-11, -12)],
    ]
    guests = [(None, f"g{i}", 7, day(-40)) for i in range(5)]  # popular, but not recently
    return shop(a + b + guests, 11, ["a", "b", "c"])


def test_buy_again_by_count_hand_computed_order():
    inputs = buy_again_shop()
    model = BuyAgainByCount(days=30).fit(inputs)
    assert model.name == "buy_again_count" and model.params == {"days": 30}
    alltime = np.bincount(inputs.purchases.join(inputs.products, on="product_id")["row"], minlength=11)
    scores = model.scores(np.array([0, 2]))
    # a: p3 (3 purchases) > p1 (2, latest day −3) > p0 (2, latest day −5) > p2 (1, day −1) >
    # p9 = p8 (1, day −15; p9 has 3 recent purchases, p8 1), then never bought by recent
    # popularity: p4 (4) > p6 (2) > p5 (1), then p7 (0 recent, 5 all-time) and p10 (never).
    assert ranked(scores[0], alltime) == [3, 1, 0, 2, 9, 8, 4, 6, 5, 7, 10]
    # c bought nothing: recent popularity (p4 4, p9 3), a plain best-seller list.
    assert ranked(scores[1], alltime)[:2] == [4, 9]
    recent = np.array([2, 2, 1, 0, 4, 1, 2, 0, 1, 3, 0]) / 4
    assert np.allclose(scores[1], recent)
    # a's levels (dense rank of (count, latest) within a): p8 = p9 = 0, p2 = 1, p0 = 2,
    # p1 = 3, p3 = 4; score = 2 + level + recent popularity / 2.
    assert scores[0, 2] == pytest.approx(2 + 1 + recent[2] / 2)
    assert scores[0, 3] == pytest.approx(2 + 4 + recent[3] / 2)


def test_buy_again_tiers_survive_float32_and_the_tiebreak():
    # 2,000 products each bought once a microsecond apart in 2030 (raw timestamps would all
    # round to the same float32), one bought twice in 2000, and recent and all-time
    # best-seller lists that favour the older purchases: if either leaked into the recency
    # order, it would reverse it.
    n = 2000
    base = datetime(2030, 1, 1)
    orders = pl.DataFrame(
        {
            "user_row": [0] * (n + 2),
            "row": [*range(n), n, n],
            "occurred_at": [base + timedelta(microseconds=i) for i in range(n)] + [datetime(2000, 1, 1)] * 2,
            "basket": [f"s{i}" for i in range(n)] + ["old1", "old2"],
        }
    ).sort("user_row", "occurred_at")
    popular = pl.DataFrame(
        {
            "product_id": [f"p{i}" for i in range(n + 3) for _ in range((n + 3 - i) // 300)],
            "occurred_at": [AS_OF - timedelta(days=1)] * sum((n + 3 - i) // 300 for i in range(n + 3)),
        }
    )
    history = sp.csr_matrix((2, n + 3), dtype=np.float32)
    model = BuyAgainByCount().fit(bare_inputs(history, orders, popular))
    scores = model.scores(np.array([0]))
    assert scores.dtype == np.float32
    alltime = np.arange(n + 3, dtype=np.float64)[::-1]
    order = ranked(scores[0], alltime)
    assert order[: n + 1] == [n, *range(n - 1, -1, -1)]
    assert sorted(order[n + 1 :]) == [n + 1, n + 2]


# ---------------------------------------------------------------- TIFU-KNN


def tifu_shop() -> RecInputs:
    """a: baskets {p0} (day −5), {p0, p1} (−4), {p2} (−3); b: {p1, p3}; c: {p0} twice; d: none.
    c's second basket holds p0 twice (one basket: still counted once)."""
    return shop(
        [
            ("a", "a1", 0, day(-5)),
            ("a", "a2", 0, day(-4)),
            ("a", "a2", 1, day(-4) + timedelta(minutes=5)),
            ("a", "a3", 2, day(-3)),
            ("b", "b1", 1, day(-2)),
            ("b", "b1", 3, day(-2)),
            ("c", "c1", 0, day(-6)),
            ("c", "c2", 0, day(-1)),
            ("c", "c2", 0, day(-1) + timedelta(minutes=1)),
        ],
        4,
        ["a", "b", "c", "d"],
    )


def test_tifu_knn_vectors_and_prediction_by_hand():
    m, rb, rg, alpha = 2, 0.5, 0.25, 0.6
    model = TIFUKNN(neighbors=2, group_size=m, within_decay=rb, group_decay=rg, alpha=alpha)
    model.fit(tifu_shop())
    # a: 3 baskets, groups of m = 2 from the recent end: {b2, b3} and {b1}.
    #   last group  = (rb¹·[1,1,0,0] + rb⁰·[0,0,1,0]) / 2 = [0.25, 0.25, 0.5, 0]
    #   first group = [1, 0, 0, 0] / 1
    #   u_a = (rg⁰·last + rg¹·first) / 2 = [0.25, 0.125, 0.25, 0]
    # b: one basket: [0, 1, 0, 1].  c: one group (rb¹·[1,0,0,0] + rb⁰·[1,0,0,0]) / 2 = [0.75, 0, 0, 0].
    a = np.array([0.25, 0.125, 0.25, 0.0])
    b = np.array([0.0, 1.0, 0.0, 1.0])
    c = np.array([0.75, 0.0, 0.0, 0.0])
    assert np.allclose(model.vectors.toarray(), [a, b, c, np.zeros(4)])
    # Cosine: a·b/(|a||b|) = 0.125/(0.375·√2) = 0.2357, a·c = 2/3, b·c = 0; d has no vector.
    # a's two neighbours are c and b; b's only one sharing a product is a (itself excluded,
    # though its own similarity, 1, is the highest); d has none.
    expected = [
        alpha * a + (1 - alpha) * (c + b) / 2,  # [0.30, 0.275, 0.15, 0.20]
        alpha * b + (1 - alpha) * a,  # [0.10, 0.65, 0.10, 0.60]
        np.zeros(4),
    ]
    assert np.allclose(model.scores(np.array([0, 1, 3])), expected)
    assert np.allclose(expected[0], [0.30, 0.275, 0.15, 0.20])
    # One neighbour: a's nearest is c (2/3 > 0.2357).
    one = TIFUKNN(neighbors=1, group_size=m, within_decay=rb, group_decay=rg, alpha=alpha).fit(tifu_shop())
    assert np.allclose(one.scores(np.array([0])), [alpha * a + (1 - alpha) * c])


def test_tifu_knn_neighbours_exclude_the_user_and_chunks_agree():
    rng = np.random.default_rng(3)
    vectors = sp.random(60, 30, density=0.2, format="csr", random_state=4, dtype=np.float32)
    unit = unit_rows(vectors)
    users = rng.permutation(60)[:25]
    means = neighbour_means(unit[users] @ unit.T.tocsr(), users, 5)
    assert means.shape == (25, 60)
    assert all(users[i] not in means[i].indices for i in range(25))
    assert set(np.diff(means.indptr)) <= set(range(6))
    others = (unit @ unit.T).toarray()
    np.fill_diagonal(others, 0.0)
    expected = dense_top(others[users], 5)
    assert np.array_equal(means.toarray() > 0, expected > 0)
    assert np.allclose(means.sum(axis=1), (expected > 0).any(axis=1))  # a mean: weights sum to 1
    model = TIFUKNN(neighbors=5, group_size=2).fit(tifu_shop())
    tiny_chunks = TIFUKNN(neighbors=5, group_size=2, budget=1).fit(tifu_shop())  # one user per chunk
    rows = np.array([3, 0, 2, 1])
    assert np.allclose(model.scores(rows), tiny_chunks.scores(rows))


def test_tifu_knn_params_and_empty_orders():
    model = TIFUKNN()
    assert model.name == "tifu_knn"
    assert model.params == {
        "neighbors": 300,
        "group_size": 7,
        "within_decay": 0.9,
        "group_decay": 0.7,
        "alpha": 0.7,
    }
    empty = bare_inputs(sp.csr_matrix((3, 4), dtype=np.float32), pl.DataFrame())
    assert not model.fit(empty).scores(np.array([0, 2])).any()


# ---------------------------------------------------------------- item-kNN, EASE


def dense_item_cosine(x: sp.csr_matrix) -> np.ndarray:
    """The former dense computation, unpruned: products × products, zero diagonal."""
    counts = (x.T @ x).toarray().astype(np.float32)
    np.fill_diagonal(counts, 0.0)
    norms = np.sqrt(np.asarray(x.sum(axis=0)).ravel()).astype(np.float32)
    norms[norms == 0] = 1.0
    return counts / norms[:, None] / norms[None, :]


def dense_top(matrix: np.ndarray, n: int) -> np.ndarray:
    """Each row's n largest positive values, ties to the lowest column, the rest zero."""
    pruned = np.zeros_like(matrix)
    for row, values in enumerate(matrix):
        best = np.lexsort((np.arange(len(values)), -values))[:n]
        best = best[values[best] > 0]
        pruned[row, best] = values[best]
    return pruned


def test_sparse_item_cosine_equals_the_dense_computation():
    x = sp.random(80, 30, density=0.15, format="csr", random_state=1, dtype=np.float32)
    x.data[:] = 1.0  # binary, as interactions() gives: many equal similarities
    dense = dense_item_cosine(x)
    # A budget of 1 forces one block per product; the default takes them all at once.
    for budget in (1, 2**24):
        full = item_cosine(x, neighbors=30, budget=budget)
        assert sp.issparse(full) and full.dtype == np.float32
        assert np.allclose(full.toarray(), dense, atol=1e-6)
        for n in (1, 3, 8):
            pruned = item_cosine(x, neighbors=n, budget=budget)
            assert np.diff(pruned.indptr).max() <= n
            assert np.allclose(pruned.toarray(), dense_top(dense, n), atol=1e-6)


def test_item_knn_scores_are_x_times_the_sparse_similarity():
    x = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 0], [0, 1, 1]], dtype=np.float32))
    inputs = bare_inputs(x, pl.DataFrame())
    model = ItemKNN(neighbors=1).fit(inputs)
    s01, s12 = 2 / math.sqrt(2 * 3), 1 / math.sqrt(3 * 1)
    # Rows keep their nearest: 0 → 1, 1 → 0 (0.816 > 0.577), 2 → 1.
    assert np.allclose(model.similarity.toarray(), [[0, s01, 0], [s01, 0, 0], [0, s12, 0]])
    # User 2 touched products 1 and 2: rows 1 + 2 of S.
    assert np.allclose(model.scores(np.array([2])), [[s01, s12, 0]])


def test_top_per_row_keeps_the_largest_and_the_lowest_columns_on_ties():
    matrix = sp.csr_matrix(
        np.array([[0.1, 0.5, 0.3, 0], [0, 0, 0.2, 0], [0, 0, 0, 0], [0.4, 0.2, 0.4, 0.4]], dtype=np.float32)
    )
    assert np.allclose(
        top_per_row(matrix, 2).toarray(),
        [[0, 0.5, 0.3, 0], [0, 0, 0.2, 0], [0, 0, 0, 0], [0.4, 0, 0.4, 0]],
    )
    # Stored out of column order, the same ties still keep the lowest columns.
    shuffled = sp.csr_matrix(
        (np.float32([0.4, 0.4, 0.2, 0.4]), np.array([3, 2, 1, 0]), np.array([0, 4])), shape=(1, 4)
    )
    assert np.allclose(top_per_row(shuffled, 2).toarray(), [[0.4, 0, 0.4, 0]])
    assert top_per_row(matrix, 0).nnz == 0


def test_ease_on_the_most_touched_products():
    rng = np.random.default_rng(2)
    dense = (rng.random((40, 8)) < 0.35).astype(np.float32)
    dense[:, 7] = 0.0  # nobody touched product 7
    dense[:, 0] = 1.0  # everybody touched product 0
    x = sp.csr_matrix(dense)
    inputs = bare_inputs(x, pl.DataFrame())
    rows = np.arange(40)
    full = EASE(l2=3.0, max_products=8).fit(inputs)
    assert full.params == {"l2": 3.0, "max_products": 8}
    assert np.allclose(full.scores(rows), dense @ ease_weights(x, 3.0), atol=1e-5)
    assert np.allclose(EASE(l2=3.0, max_products=100).fit(inputs).scores(rows), full.scores(rows))
    # N = 3: the three products most users touched; the others score zero.
    users = dense.sum(axis=0)
    top3 = np.sort(np.argsort(-users, kind="stable")[:3])
    assert 0 in top3
    small = EASE(l2=3.0, max_products=3).fit(inputs)
    assert small.kept.tolist() == top3.tolist()
    scores = small.scores(rows)
    assert not np.delete(scores, top3, axis=1).any()
    expected = dense[:, top3] @ ease_weights(sp.csr_matrix(dense[:, top3]), 3.0)
    assert np.allclose(scores[:, top3], expected, atol=1e-5)


# ---------------------------------------------------------------- memory at scale


def random_shop(n_users: int, n_products: int, seed: int = 0) -> RecInputs:
    """1-5 purchases per user in 1-3 baskets, products drawn from a long-tailed popularity
    (the best-seller ~100 × the median), so co-occurrence has a dense head as real shops do."""
    rng = np.random.default_rng(seed)
    per_user = rng.integers(1, 6, size=n_users)
    users = np.repeat(np.arange(n_users), per_user)
    weights = 1.0 / (np.arange(n_products) + 100.0)
    products = rng.choice(n_products, size=len(users), p=weights / weights.sum())
    history = sp.csr_matrix((np.ones(len(users), np.float32), (users, products)), shape=(n_users, n_products))
    basket = rng.integers(0, 3, size=len(users))
    orders = (
        pl.DataFrame({"user_row": users, "row": products, "basket": basket})
        .with_columns(
            occurred_at=pl.lit(AS_OF) - pl.duration(days=pl.col("basket") * 7 + 1),
            basket=pl.format("{}-{}", "user_row", "basket"),
        )
        .sort("user_row", "occurred_at")
    )
    return bare_inputs(history, orders)


# Ceilings on the numpy/scipy allocations (tracemalloc) of a fit plus one block of scores,
# from what each method must hold, plus 48 MB for sparse matrices and small temporaries.
# The block returned is 1,024 × 50,000 float32 = 195 MB; a dense products × products matrix
# would be 9.3 GB (float32), and EASE on all 50k products 18.6 GB (float64). Measured when
# written: ease 314 MB, item_knn 210 MB, tifu_knn 216 MB.
MB = 2**20
SLACK = 48 * MB
BLOCK = 1024 * 50_000 * 4
KEPT = 5000  # EASE's default max_products
CEILINGS = {
    # Fit: the float64 Gram matrix (inverted in place) and the float32 weights; scoring:
    # the weights, the block and the block's kept columns.
    "ease": max(KEPT**2 * (8 + 4), KEPT**2 * 4 + BLOCK + 1024 * KEPT * 4) + SLACK,
    # The block; similarity blocks are pruned as they are made and densified in place.
    "item_knn": BLOCK + SLACK,
    # The block; one chunk of user similarities (sparse: far below its budget here).
    "tifu_knn": BLOCK + SLACK,
}


def test_memory_stays_bounded_on_a_large_sparse_shop():
    inputs = random_shop(200_000, 50_000)
    rows = np.arange(0, 200_000, 195)[:1024]
    started = time.perf_counter()
    peaks = {}
    tracemalloc.start()
    try:
        for model in (EASE(), ItemKNN(), TIFUKNN()):
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            scores = model.fit(inputs).scores(rows)
            peaks[model.name] = tracemalloc.get_traced_memory()[1] - before
            assert scores.shape == (1024, 50_000) and scores.dtype == np.float32 and scores.any()
            del model, scores
    finally:
        tracemalloc.stop()
    print({name: round(peak / MB) for name, peak in peaks.items()}, round(time.perf_counter() - started, 1))
    for name, peak in peaks.items():
        assert peak < CEILINGS[name], (name, peak / MB, CEILINGS[name] / MB)
