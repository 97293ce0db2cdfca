"""Similar products from the title neighbours (recommendations.similar_neighbours) against the
dense products × products pass on random catalogs: the same lists, explain columns and
reasons; only exactly tied scores may be exchanged. And the publish computes the nearest
titles once, for both the content generator and similar products."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

import recommendations.candidates as candidates_module
import recommendations.similar as similar_module
from recommendations.config import RecommendationConfig
from recommendations.neighbours import nearest_neighbours
from recommendations.ranker import RankerSettings, fit_ranker
from recommendations.shop import inputs_as_of
from recommendations.similar import similar_products
from recommendations.similar_neighbours import holds_top
from recommendations.tables import recommendation_tables
from recommendations.user_lists import ranked_user_table
from tests.shops import START, catalog, cycling_shop, shop

N = 30
TOL = 1e-6  # float32 rounding: dot products pair by pair here, by a matrix product there


def random_catalog(seed: int, cooccurrence: bool, twins: int = 0, zero: bool = False):
    """N products with random unit vectors (the first `twins` copied onto the next ones: equal
    titles), a fifth not recommendable, and random co-occurrence on two thirds of the rows."""
    products, vectors = catalog(N, seed=seed, dim=6)
    rows = [("u1", "s1", "p0000", "purchase", START + timedelta(days=1), "UK")]
    inputs = inputs_as_of(shop(rows, products, vectors), START + timedelta(days=10), RecommendationConfig())
    rng = np.random.default_rng(seed)
    matrix = inputs.product_matrix.copy()
    matrix[twins : 2 * twins] = matrix[:twins]
    if zero:
        matrix[N - 1] = 0.0  # no direction: every product is as close to it as any other
    recommendable = rng.random(N) > 0.2
    together = sp.csr_matrix((N, N), dtype=np.float32)
    if cooccurrence:
        together = sp.random(N, N, density=0.2, format="csr", dtype=np.float32, random_state=seed)
        together = sp.diags((rng.random(N) < 0.67).astype(np.float32)) @ together
        together.setdiag(0)
        together.eliminate_zeros()
        together = together.tocsr().astype(np.float32)
    return replace(inputs, product_matrix=matrix, recommendable=recommendable, cooccurrence=together)


def true_scores(inputs, w: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(blended score, cos, normalised co-occurrence) for every pair, in float64."""
    vectors = inputs.product_matrix.astype(np.float64)
    cos = vectors @ vectors.T
    together = inputs.cooccurrence.toarray().astype(np.float64)
    peak = together.max(axis=1, keepdims=True)
    together = np.divide(together, peak, out=np.zeros_like(together), where=peak > 0)
    scores = w * cos + (1 - w) * together
    scores[:, ~inputs.recommendable] = -np.inf
    np.fill_diagonal(scores, -np.inf)
    return scores, cos, together


def assert_same_lists(dense: pl.DataFrame, shared: pl.DataFrame, inputs, w: float, exact: bool) -> None:
    """Row for row the same scores; each shared pick truly scores what it says, with its
    explain columns; ids, reasons and sources equal wherever the picks are (all of them when
    `exact`: no ties)."""
    scores, cos, together = true_scores(inputs, w)
    row = {p: i for i, p in enumerate(inputs.product_ids)}
    assert dense.columns == shared.columns and dense.height == shared.height
    assert (dense["product_id"] == shared["product_id"]).all() and (dense["rank"] == shared["rank"]).all()
    assert np.allclose(dense["score"], shared["score"], atol=TOL, rtol=0)
    p = np.array([row[x] for x in shared["product_id"]])
    q = np.array([row[x] for x in shared["similar_product_id"]])
    assert np.allclose(scores[p, q], shared["score"], atol=TOL, rtol=0)  # finite: allowed, never itself
    assert np.allclose(cos[p, q], shared["content_score"], atol=TOL, rtol=0)
    assert np.allclose(together[p, q] if w < 1 else 0.0, shared["cooccurrence_score"], atol=TOL, rtol=0)
    assert (
        shared.group_by("product_id")
        .agg(pl.col("similar_product_id").n_unique() == pl.len())["similar_product_id"]
        .all()
    )
    same = (dense["similar_product_id"] == shared["similar_product_id"]).to_numpy()
    assert same.all() or not exact
    assert (dense["source"] == shared["source"]).all()
    for column in ("reason",):
        assert (dense[column].to_numpy()[same] == shared[column].to_numpy()[same]).all()
    for column in ("content_score", "cooccurrence_score"):
        assert np.allclose(dense[column].to_numpy()[same], shared[column].to_numpy()[same], atol=TOL, rtol=0)


@pytest.mark.parametrize("w", [0.0, 0.6, 1.0])
@pytest.mark.parametrize("cooccurrence", [True, False], ids=["cooccurrence", "content_only"])
@pytest.mark.parametrize("k", [3, 20, N - 2, N + 3])
def test_similar_products_from_title_neighbours_equal_the_dense_pass(w, cooccurrence, k):
    for seed in (1, 2):
        inputs = random_catalog(seed, cooccurrence)
        config = RecommendationConfig(k=k, similar_content_weight=w)
        titles = nearest_neighbours(inputs.product_matrix, inputs.recommendable, k + 1)
        assert holds_top(titles, inputs.recommendable, k)
        dense = similar_products(inputs, config)
        shared = similar_products(inputs, config, titles)
        allowed = int(inputs.recommendable.sum()) - inputs.recommendable  # never itself
        assert dense.height == np.minimum(k, allowed).sum()
        # w = 0: every product that never co-occurs with the anchor scores 0, a tie.
        assert_same_lists(dense, shared, inputs, w, exact=w > 0)
        if w > 0 and not cooccurrence:
            assert (shared["reason"].str.starts_with("similar to ") | (shared["content_score"] < 0)).all()


def test_equal_titles_and_a_product_without_direction_only_exchange_tied_products():
    # Twin titles score exactly alike: the dense pass's torch.topk and the lowest row here may
    # keep different twins at the cut (or order them differently), but nothing else differs.
    for seed in (3, 4, 5):
        inputs = random_catalog(seed, cooccurrence=True, twins=10, zero=True)
        for k in (4, 9):
            config = RecommendationConfig(k=k, similar_content_weight=0.6)
            titles = nearest_neighbours(inputs.product_matrix, inputs.recommendable, k + 1)
            assert_same_lists(
                similar_products(inputs, config), similar_products(inputs, config, titles), inputs, 0.6, False
            )


def test_too_few_title_neighbours_fall_back_to_the_dense_pass(monkeypatch):
    inputs = random_catalog(6, cooccurrence=True)
    config = RecommendationConfig(k=5)
    short = nearest_neighbours(inputs.product_matrix, inputs.recommendable, 5)  # k, not k + 1
    assert not holds_top(short, inputs.recommendable, 5)
    dense = similar_products(inputs, config)

    def refuse(*args, **kwargs):
        raise AssertionError("scored from too few title neighbours")

    monkeypatch.setattr(similar_module, "top_from_titles", refuse)
    assert similar_products(inputs, config, short).equals(dense)


def test_title_neighbours_must_be_among_the_recommendable_products():
    inputs = random_catalog(7, cooccurrence=False)
    everyone = nearest_neighbours(inputs.product_matrix, np.ones(N, dtype=bool), 6)
    with pytest.raises(ValueError, match="recommendable"):
        similar_products(inputs, RecommendationConfig(k=5), everyone)


def test_a_large_catalog_publish_computes_the_nearest_titles_once(monkeypatch):
    """Past CONTENT_SCAN (lowered here) one products × recommendable pass serves both the
    content generator and similar products: the per-user lists are those the generators
    build with their own pass, similar products those of the dense pass."""
    data = cycling_shop(n_users=60, days=90)
    as_of = data.events["occurred_at"].max() + timedelta(seconds=1)
    config = RecommendationConfig(k=6)
    model = fit_ranker(data, as_of, config, RankerSettings(cutoffs=2, label_window_days=14, max_rounds=30))
    inputs = inputs_as_of(data, as_of, config)
    monkeypatch.setattr(candidates_module, "CONTENT_SCAN", 10)
    assert inputs.recommendable.sum() > 10
    passes = []

    def counted(vectors, targets, m, *args):
        passes.append((targets.copy(), m))
        return nearest_neighbours(vectors, targets, m, *args)

    monkeypatch.setattr(candidates_module, "nearest_neighbours", counted)
    tables = recommendation_tables(inputs, config, model)
    over_recommendable = [m for targets, m in passes if (targets == inputs.recommendable).all()]
    assert over_recommendable == [max(model.settings.limits.content_neighbors, config.k + 1)]
    assert tables["user_recommendations"].equals(ranked_user_table(model, inputs, config))
    assert_same_lists(similar_products(inputs, config), tables["similar_products"], inputs, 0.6, exact=True)
