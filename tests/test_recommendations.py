"""Recommendation tables on tiny hand-made inputs: filters, fallbacks, reasons, top-K."""

from dataclasses import replace
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest
import torch

from core.dbt_manifest import interaction_weights
from recommendations.config import RecommendationConfig
from recommendations.inputs import VectorsById, build_inputs
from recommendations.popular import popular_tables
from recommendations.ranker import RankerModel, RankerSettings
from recommendations.signals import cooccurrence_matrix
from recommendations.tables import recommendation_tables as build_tables
from recommendations.topk import top_k_in_blocks
from recommendations.user_lists import cap_per_category

AS_OF = datetime(2024, 1, 31)


def untrained_ranker(cold_start: str = "country_30d") -> RankerModel:
    """What fit_ranker gives a log too short to label: no boosters, the heuristic order."""
    return RankerModel(
        RankerSettings(), AS_OF, {"repurchase": None, "new_items": None}, {"list": cold_start}, {}
    )


def recommendation_tables(inputs, config):
    return build_tables(inputs, config, untrained_ranker())


def test_block_top_k_equals_brute_force():
    rng = np.random.default_rng(3)
    scores = rng.standard_normal((37, 23)).astype(np.float32)
    scores[rng.random(scores.shape) < 0.3] = -np.inf
    scores[5] = -np.inf  # a row with nothing allowed
    full = torch.from_numpy(scores)
    for block_size in (1, 4, 37, 100):
        indices, values, parts = top_k_in_blocks(
            lambda a, b: (full[a:b], lambda top, a=a, b=b: {"same": torch.gather(full[a:b], 1, top)}),
            37,
            23,
            5,
            block_size,
        )
        for row in range(37):
            allowed = np.flatnonzero(np.isfinite(scores[row]))
            expected = allowed[np.argsort(-scores[row, allowed], kind="stable")][:5]
            got = indices[row][indices[row] >= 0]
            assert np.array_equal(np.sort(scores[row, got])[::-1], np.sort(scores[row, expected])[::-1])
            assert set(got) <= set(allowed)
        assert (indices[5] == -1).all() and np.isneginf(values[5]).all()
        assert np.allclose(parts["same"][indices >= 0], values[indices >= 0])


def test_cooccurrence_is_cosine_normalised_with_an_empty_diagonal():
    pairs = pl.DataFrame({"session_key": ["s1", "s1", "s2", "s2", "s3"], "row": [0, 1, 0, 1, 0]})
    matrix = cooccurrence_matrix(pairs, 3).toarray()
    # products 0 and 1 share 2 sessions; 0 is in 3, 1 in 2 → 2 / sqrt(3·2)
    assert matrix[0, 1] == pytest.approx(2 / np.sqrt(6))
    assert matrix[0, 0] == 0 and matrix[2].sum() == 0


def test_cap_per_category_keeps_order_and_the_cap():
    categories = np.array(["a", "a", "a", "b", "b", "c"], dtype=object)
    chosen = cap_per_category(np.array([[0, 1, 2, 3, 4, 5]]), categories, k=4, cap=2)
    assert chosen.tolist() == [[0, 1, 3, 4]]


def unit(*values):
    vector = np.asarray(values, dtype=np.float32)
    return (vector / np.linalg.norm(vector)).tolist()


@pytest.fixture
def tiny():
    products = pl.DataFrame(
        {
            "product_id": ["MUG1", "MUG2", "MUG3", "TEA1", "OLD", "POST"],
            "title": ["Red Mug", "Blue Mug", "Green Mug", "Green Tea", "Old Mug", "Postage"],
            "category_path": ["Home", "Home", "Home", "Food", "Home", None],
            "top_category": ["Home", "Home", "Home", "Food", "Home", None],
            "price": [5.0, 5.0, 6.0, 3.0, 4.0, 10.0],
            "is_recommendable": [True, True, True, True, False, False],  # OLD delisted, POST a fee
        }
    )
    vectors = pl.DataFrame(
        {
            "product_id": ["MUG1", "MUG2", "MUG3", "TEA1", "OLD", "POST"],
            "vector": [
                unit(1, 0.1, 0),
                unit(1, 0.2, 0),
                unit(0.9, 0.3, 0.1),
                unit(0, 1, 0),
                unit(1, 0, 0),
                unit(0, 0, 1),
            ],
        }
    )
    users = pl.DataFrame({"user_id": ["u1", "u2", "u3", "u4"], "country": ["UK", "UK", "FR", None]})
    user_vectors = pl.DataFrame({"user_id": ["u1", "u2"], "vector": [unit(1, 0.1, 0), unit(0.2, 1, 0)]})
    t = AS_OF - timedelta(days=1)
    rows = [
        ("u1", "s1", "MUG1", "purchase", t, "UK"),
        ("u1", "s1", "POST", "purchase", t, "UK"),
        ("u2", "s2", "TEA1", "purchase", t, "UK"),
        ("u2", "s2", "MUG2", "purchase", t, "UK"),
        ("g1", "s3", "MUG1", "purchase", t - timedelta(days=2), "FR"),
        ("g1", "s3", "MUG3", "purchase", t - timedelta(days=2), "FR"),
        ("g2", "s4", "MUG3", "purchase", t - timedelta(days=3), "FR"),
        ("u1", "s5", "OLD", "view", t, "UK"),
    ]
    events = pl.DataFrame(
        rows,
        schema=["user_id", "session_id", "product_id", "event_type", "occurred_at", "country"],
        orient="row",
    )
    # g1/g2 are guests: no user id, their baskets still teach co-occurrence and popularity.
    events = events.with_columns(
        user_id=pl.when(pl.col("user_id").str.starts_with("g")).then(None).otherwise(pl.col("user_id"))
    )
    return build_inputs(
        products,
        vectors,
        users,
        VectorsById.from_frame(user_vectors, "user_id"),
        events,
        AS_OF,
        set(),
        30,
        14,
        interaction_weights(),
    )


def test_every_list_is_filtered_unique_and_explained(tiny):
    tables = recommendation_tables(tiny, RecommendationConfig(k=3, allow_repurchase=False))
    recs = tables["user_recommendations"]
    assert set(recs["user_id"]) == {"u1", "u2", "u3", "u4"}
    assert recs.filter(pl.col("product_id").is_in(["OLD", "POST"])).is_empty()
    assert recs.group_by("user_id", "product_id").len()["len"].max() == 1
    assert recs["reason"].null_count() == 0
    # repurchase off: nobody is shown what they bought
    bought = {("u1", "MUG1"), ("u2", "TEA1"), ("u2", "MUG2")}
    assert not bought & set(zip(recs["user_id"], recs["product_id"], strict=True))
    sources = dict(recs.group_by("user_id").agg(pl.col("source").first()).iter_rows())
    assert sources == {"u1": "personal", "u2": "personal", "u3": "fallback_segment", "u4": "fallback_global"}
    # u1 bought a red mug: the mug that shares a basket with it comes with a reason saying so.
    u1 = recs.filter(pl.col("user_id") == "u1").sort("rank")
    assert u1["product_id"][0] in {"MUG2", "MUG3"}
    assert any(r.startswith(("bought with Red Mug", "similar to Red Mug")) for r in u1["reason"])
    # A French shopper without history gets France's list first.
    assert recs.filter(pl.col("user_id") == "u3").sort("rank")["product_id"][0] == "MUG3"


def test_a_shop_without_shopper_vectors_still_gets_lists_without_what_they_bought(tiny):
    """No shopper has a vector (the user_embeddings table missing or empty): content proposes
    nothing, the other generators still do. It raised IndexError with repurchase off."""
    blind = replace(
        tiny, user_matrix=np.zeros_like(tiny.user_matrix), has_vector=np.zeros_like(tiny.has_vector)
    )
    recs = recommendation_tables(blind, RecommendationConfig(k=3, allow_repurchase=False))[
        "user_recommendations"
    ]
    assert set(recs["user_id"]) == {"u1", "u2", "u3", "u4"}
    bought = {("u1", "MUG1"), ("u2", "TEA1"), ("u2", "MUG2")}
    assert not bought & set(zip(recs["user_id"], recs["product_id"], strict=True))
    assert (recs["content_score"].fill_null(0) == 0).all()


def test_repurchase_allowed_keeps_bought_items_eligible(tiny):
    recs = recommendation_tables(tiny, RecommendationConfig(k=4))["user_recommendations"]
    u2 = set(recs.filter(pl.col("user_id") == "u2")["product_id"])
    assert {"TEA1", "MUG2"} <= u2


def test_exclusion_list_is_applied(tiny):
    tiny.recommendable[tiny.products["product_id"].to_list().index("MUG3")] = False
    tables = recommendation_tables(tiny, RecommendationConfig(k=4))
    for name, column in (
        ("user_recommendations", "product_id"),
        ("similar_products", "similar_product_id"),
        ("popular_products", "product_id"),
    ):
        assert "MUG3" not in set(tables[name][column]), name


def test_similar_products_never_self_and_content_only_for_new_products(tiny):
    similar = recommendation_tables(tiny, RecommendationConfig(k=2))["similar_products"]
    assert similar.filter(pl.col("product_id") == pl.col("similar_product_id")).is_empty()
    assert similar.filter(pl.col("product_id") == "MUG1")["source"][0] == "content+cooccurrence"
    assert similar.filter(pl.col("product_id") == "OLD")["source"][0] == "content"  # never in a basket


def test_diversity_cap_limits_a_category(tiny):
    recs = recommendation_tables(tiny, RecommendationConfig(k=3, max_per_category=1))["user_recommendations"]
    personal = recs.filter(pl.col("source") == "personal").join(
        tiny.products.select("product_id", "top_category"), on="product_id"
    )
    assert personal.group_by("user_id", "top_category").len()["len"].max() == 1


def test_popular_and_trending_known_answer():
    def purchase(product, days_ago, country="UK"):
        return (product, AS_OF - timedelta(days=days_ago, hours=1), "Home", country)

    rows = (
        [purchase("A", 1)] * 5
        + [purchase("B", 2)] * 3
        + [purchase("B", 10)] * 6
        + [purchase("C", 3, "FR")] * 4
    )
    purchases = pl.DataFrame(
        rows, schema=["product_id", "occurred_at", "top_category", "country"], orient="row"
    )
    table = popular_tables(purchases, {"A", "B", "C"}, AS_OF, (7,), k=5, min_count=3)
    overall = table.filter(pl.col("segment_type") == "overall", pl.col("list") == "popular")
    assert overall.sort("rank")["product_id"].to_list() == ["A", "C", "B"]
    trending = table.filter(pl.col("segment_type") == "overall", pl.col("list") == "trending").sort("rank")
    # A: 5 now, 0 before → 6.0; C: 4/0 → 5.0; B: 3 now, 6 before → 4/7
    assert trending["product_id"].to_list() == ["A", "C", "B"]
    assert trending["score"].to_list() == pytest.approx([6.0, 5.0, 4 / 7])
    france = table.filter(pl.col("segment") == "FR", pl.col("list") == "popular")
    assert france["product_id"].to_list() == ["C"]


def test_bad_configuration_is_refused():
    with pytest.raises(ValueError, match=r"\bk\n.*greater than or equal to 1"):
        RecommendationConfig(k=0)
    with pytest.raises(ValueError, match="similar_content_weight"):
        RecommendationConfig(similar_content_weight=1.5)
    with pytest.raises(ValueError, match="cutoffs must be at least 1"):
        RankerSettings(cutoffs=0)


def test_an_empty_catalog_gives_empty_tables_not_an_error():
    empty = build_inputs(
        pl.DataFrame(
            schema={
                "product_id": pl.Utf8,
                "title": pl.Utf8,
                "category_path": pl.Utf8,
                "top_category": pl.Utf8,
                "price": pl.Float64,
                "is_recommendable": pl.Boolean,
            }
        ),
        pl.DataFrame(schema={"product_id": pl.Utf8, "vector": pl.List(pl.Float32)}),
        pl.DataFrame({"user_id": ["u1"], "country": ["UK"]}),
        VectorsById.from_frame(
            pl.DataFrame(schema={"user_id": pl.Utf8, "vector": pl.List(pl.Float32)}), "user_id"
        ),
        pl.DataFrame(
            schema={
                "user_id": pl.Utf8,
                "session_id": pl.Utf8,
                "product_id": pl.Utf8,
                "event_type": pl.Utf8,
                "occurred_at": pl.Datetime,
                "country": pl.Utf8,
            }
        ),
        AS_OF,
        set(),
        30,
        14,
        interaction_weights(),
    )
    tables = recommendation_tables(empty, RecommendationConfig(k=5))
    assert tables["user_recommendations"].is_empty() and tables["similar_products"].is_empty()


def test_exclusion_list_comes_from_data_and_bad_files_say_what_is_wrong(tmp_path):
    from recommendations.exclusions import load_exclusions

    assert load_exclusions(tmp_path) == {}  # the shipped default is empty
    (tmp_path / "exclusions.yaml").write_text('products:\n  - {product_id: " 22423 ", reason: freight}\n')
    assert load_exclusions(tmp_path) == {"22423": "freight"}
    (tmp_path / "exclusions.yaml").write_text("products:\n  - {reason: no id}\n")
    with pytest.raises(ValueError, match="not a valid exclusion list"):
        load_exclusions(tmp_path)


def test_a_picks_reason_family_is_the_same_given_the_rankings_own_predictions():
    # The user table hands driving_family the ranker's predictions for its picks instead of
    # predicting them again: the families must be exactly those it computes itself.
    import lightgbm

    from recommendations.features import FEATURES
    from recommendations.reasons import driving_family

    rng = np.random.default_rng(7)
    features = rng.standard_normal((400, len(FEATURES))).astype(np.float32)
    labels = (features[:, 0] + 0.5 * features[:, 3] + rng.standard_normal(400) > 0).astype(int)
    booster = lightgbm.train(
        {"objective": "binary", "verbose": -1, "num_threads": 1, "seed": 0},
        lightgbm.Dataset(features, labels),
        num_boost_round=20,
    )
    families = driving_family(booster, features)
    assert len(set(families)) > 1
    given = driving_family(booster, features, predicted=booster.predict(features, num_threads=2))
    assert np.array_equal(given, families)
