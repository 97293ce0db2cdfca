"""Offline evaluation: metrics against hand-computed values, EASE and item-kNN on toy
matrices, a split that cannot leak, the whole protocol on a small shop, the history
table, the champion/challenger gate and the command line."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
from typer.testing import CliRunner

from core.dbt_manifest import interaction_weights
from core.errors import NotEnoughHistory
from evaluation import metrics
from evaluation.baselines import ease_weights, item_cosine
from evaluation.champion import Candidate, candidate_from_manifest, challenge, config_from_manifest
from evaluation.history import read_history, record, results_frame
from evaluation.protocol import SHIPPED, evaluate, prepare_stage
from evaluation.split import TimeSplit, Window, assert_no_leakage, default_cutoff
from recommendations.candidates import CandidateLimits
from recommendations.config import RecommendationConfig
from recommendations.ranker import RankerSettings
from recommendations.shop import ShopData
from shopguide.cli import app

# ---------------------------------------------------------------- metrics


def test_ranking_metrics_match_hand_computed_values():
    ranked = np.array([[0, 1, 2], [3, 4, 5]])
    truth = [np.array([1]), np.array([9, 3])]
    got = metrics.ranking_metrics(ranked, truth, k=3)
    # user 0: hit at rank 2; user 1: hit at rank 1, one of two relevant items.
    dcg0, idcg0 = 1 / math.log2(3), 1.0
    dcg1, idcg1 = 1.0, 1.0 + 1 / math.log2(3)
    assert got["precision"] == pytest.approx(1 / 3)
    assert got["recall"] == pytest.approx((1 + 0.5) / 2)
    assert got["hit_rate"] == pytest.approx(1.0)
    assert got["ndcg"] == pytest.approx((dcg0 / idcg0 + dcg1 / idcg1) / 2)
    assert got["map"] == pytest.approx((0.5 / 1 + 1.0 / 2) / 2)


def test_ranking_metrics_at_a_shorter_k_and_padding():
    ranked = np.array([[5, 1, -1], [-1, -1, -1]])
    truth = [np.array([1]), np.array([2])]
    at_1 = metrics.ranking_metrics(ranked, truth, k=1)
    assert at_1 == {"precision": 0.0, "recall": 0.0, "hit_rate": 0.0, "ndcg": 0.0, "map": 0.0}
    at_3 = metrics.ranking_metrics(ranked, truth, k=3)
    assert at_3["hit_rate"] == pytest.approx(0.5)  # padding (-1) never counts as a hit
    assert at_3["precision"] == pytest.approx((1 / 3 + 0) / 2)


def test_ranking_metrics_refuse_users_without_relevant_items():
    with pytest.raises(ValueError, match="at least one relevant"):
        metrics.ranking_metrics(np.array([[0]]), [np.array([], dtype=np.int64)], k=1)


def test_beyond_accuracy_metrics():
    ranked = np.array([[0, 1], [0, 2]])
    assert metrics.catalog_coverage(ranked, 2, catalog_size=6) == pytest.approx(3 / 6)
    share = np.array([0.5, 0.25, 0.125, 1, 1, 1])
    assert metrics.novelty(ranked, 2, share) == pytest.approx((1 + 2 + 1 + 3) / 4)
    percentile = np.array([0.9, 0.1, 0.5, 0, 0, 0])
    assert metrics.popularity_bias(ranked, 2, percentile) == pytest.approx((0.9 + 0.1 + 0.9 + 0.5) / 4)
    vectors = np.eye(3, dtype=np.float32)[[0, 0, 1, 2, 2, 2]]  # products 0 and 1 identical
    assert metrics.embedding_diversity(ranked, 2, vectors) == pytest.approx((0.0 + 1.0) / 2)
    categories = np.array(["a", "a", "b", None, None, None], dtype=object)
    assert metrics.category_diversity(ranked, 2, categories) == pytest.approx((0.0 + 1.0) / 2)
    assert math.isnan(metrics.category_diversity(ranked, 2, np.array([None] * 6, dtype=object)))


# ---------------------------------------------------------------- baselines


def test_ease_solves_the_constrained_ridge_regression_column_by_column():
    x = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 1, 1], [0, 0, 1, 1], [1, 0, 0, 1]], float))
    l2 = 0.7
    weights = ease_weights(x, l2)
    assert np.allclose(np.diag(weights), 0.0)
    dense = x.toarray()
    for j in range(dense.shape[1]):
        others = [i for i in range(dense.shape[1]) if i != j]
        # EASE's column j is the ridge regression of item j on all the other items.
        a, b = dense[:, others], dense[:, j]
        expected = np.linalg.solve(a.T @ a + l2 * np.eye(len(others)), a.T @ b)
        assert np.allclose(weights[others, j], expected, atol=1e-5)


def test_item_cosine_known_values_and_pruning():
    x = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 0], [0, 1, 1]], dtype=np.float32))
    full = item_cosine(x, neighbors=3).toarray()
    assert full[0, 1] == pytest.approx(2 / math.sqrt(2 * 3))
    assert full[1, 2] == pytest.approx(1 / math.sqrt(3 * 1))
    assert full[0, 2] == 0.0 and np.allclose(np.diag(full), 0.0)
    pruned = item_cosine(x, neighbors=1).toarray()
    assert (pruned > 0).sum(axis=1).tolist() == [1, 1, 1]
    assert pruned[1, 0] == pytest.approx(full[1, 0])  # item 1's nearest is item 0 (0.816 > 0.577)


# ---------------------------------------------------------------- a small shop

START = datetime(2024, 1, 1)
DAYS = 120


def small_shop(seed: int = 7) -> ShopData:
    """Regular customers re-order their own three favourites every ~10 days and browse a
    little; some shoppers and some products first appear in the last month."""
    rng = np.random.default_rng(seed)
    n_products, n_users = 40, 80
    product_ids = [f"p{i:02d}" for i in range(n_products)]
    late_products = set(product_ids[-4:])
    products = pl.DataFrame(
        {
            "product_id": product_ids,
            "title": [f"product {i}" for i in range(n_products)],
            "top_category": [f"c{i % 4}" for i in range(n_products)],
            "category_path": [f"c{i % 4}" for i in range(n_products)],
            "price": [1.0] * n_products,
            "is_recommendable": [True] * n_products,
            "first_listed_at": [
                START + timedelta(days=DAYS - 25) if p in late_products else START for p in product_ids
            ],
        }
    )
    vectors = rng.normal(size=(n_products, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    product_vectors = pl.DataFrame(
        {"product_id": product_ids, "vector": [v.tolist() for v in vectors]},
        schema={"product_id": pl.Utf8, "vector": pl.List(pl.Float32)},
    )
    rows = []
    for u in range(n_users):
        user = f"u{u:02d}"
        first_day = DAYS - 20 if u >= 70 else 0  # ten shoppers arrive late
        favourites = rng.choice(n_products - 4, size=3, replace=False)
        for day in range(first_day + int(rng.integers(0, 8)), DAYS, 10):
            at = START + timedelta(days=day, hours=int(rng.integers(8, 20)))
            basket = list(favourites) + list(rng.choice(n_products, size=1))
            for p in basket:
                rows.append((user, f"s{u}-{day}", product_ids[p], "purchase", at, "UK" if u % 2 else "FR"))
    events = pl.DataFrame(
        rows,
        schema={
            "user_id": pl.Utf8,
            "session_id": pl.Utf8,
            "product_id": pl.Utf8,
            "event_type": pl.Utf8,
            "occurred_at": pl.Datetime("us"),
            "country": pl.Utf8,
        },
        orient="row",
    ).filter(
        ~pl.col("product_id").is_in(list(late_products))
        | (pl.col("occurred_at") >= START + timedelta(days=DAYS - 25))
    )
    users = events.group_by("user_id").agg(pl.col("country").first()).sort("user_id")
    return ShopData(
        products=products,
        product_vectors=product_vectors,
        users=users,
        events=events,
        interaction_weights=interaction_weights(),
    )


def test_time_split_windows_and_default_cutoff():
    split = TimeSplit(date(2024, 3, 1), 14)
    assert split.test.start == datetime(2024, 3, 1) and split.test.end == datetime(2024, 3, 15)
    assert split.validation.end == split.test.start
    assert split.validation.start == datetime(2024, 2, 16)
    assert default_cutoff(datetime(2024, 3, 14, 18, 0), 14) == date(2024, 3, 1)
    with pytest.raises(ValueError, match="at least 1 day"):
        TimeSplit(date(2024, 3, 1), 0)


def test_split_has_no_leakage():
    data = small_shop()
    window = TimeSplit(date(2024, 4, 1), 14).test
    stage = prepare_stage(data, window, RecommendationConfig())
    train = window.train(data.events)
    assert train["occurred_at"].max() < window.start
    assert_no_leakage(train, window)
    # Training input, as the recommenders see it, ends before the window...
    assert stage.inputs.as_of == window.start
    assert stage.inputs.purchases["occurred_at"].max() < window.start
    assert stage.train_events == train.height
    # ...and shoppers whose first event is in the window have no history at all.
    late_rows = stage.inputs.users.filter(pl.col("user_id") >= "u70")["user_row"].to_numpy()
    assert stage.inputs.history[late_rows].nnz == 0 and not stage.inputs.has_vector[late_rows].any()
    leaky = data.events.filter(pl.col("occurred_at") < window.end)
    with pytest.raises(AssertionError, match="holds events at or after"):
        assert_no_leakage(leaky, window)


def test_truth_per_policy_and_new_products():
    data = small_shop()
    stage = prepare_stage(data, TimeSplit(date(2024, 4, 1), 14).test, RecommendationConfig())
    bought_before = stage.inputs.purchased
    for user_row, everything, fresh in zip(
        stage.rows, stage.truth["repurchase"], stage.truth["new_items"], strict=True
    ):
        before = set(bought_before[user_row].indices.tolist())
        assert set(fresh.tolist()) == set(everything.tolist()) - before
    late = stage.inputs.products.filter(pl.col("product_id") >= "p36")["row"].to_numpy()
    assert stage.new_products[late].all() and stage.new_products.sum() == len(late)


def test_protocol_on_a_small_shop():
    data = small_shop()
    result = evaluate(data, cutoff=date(2024, 4, 1), window_days=14)
    frame = results_frame(result)
    assert set(frame["method"]) == {
        "popularity",
        "popularity_recent",
        "item_knn",
        "ease",
        "als",
        "content",
        "repeat_purchase",
        "buy_again_count",
        "tifu_knn",
        SHIPPED,
    }
    assert set(frame["cohort"]) == {"all", "returning", "new_users", "new_products"}
    assert set(frame["policy"]) == {"repurchase", "new_items"}
    assert set(frame["k"].drop_nulls()) == {10, 50}
    assert result.split["cutoff"] == "2024-04-01" and result.split["test_new_users"] > 0
    # Every new shopper gets a full list from the cold-start fallback.
    empty = frame.filter((pl.col("method") == SHIPPED) & (pl.col("metric") == "empty_lists_new_users"))
    assert empty["value"].to_list() == [0.0, 0.0]
    # These shoppers re-order their favourites: buying again must beat the best-seller list.
    repeat = result.value("repeat_purchase", "ndcg", 10)
    assert repeat > result.value("popularity", "ndcg", 10)
    assert result.value(SHIPPED, "ndcg", 10) >= 0.9 * repeat
    # The model and its cold-start choice came from windows before the cut-off and are reported.
    assert set(result.tuned["repurchase"][SHIPPED]) >= {"model_id", "cold_start", "rounds"}
    assert all(0.0 <= v <= 1.0 for v in frame.filter(pl.col("metric") == "ndcg")["value"].drop_nulls())


def test_protocol_refuses_a_cutoff_without_history():
    with pytest.raises(ValueError, match="no training data"):
        evaluate(small_shop(), cutoff=date(2024, 1, 5), window_days=14)


# ---------------------------------------------------------------- history, champion, CLI


def test_history_record_is_idempotent_per_run(home):
    result = evaluate(small_shop(), cutoff=date(2024, 4, 1), window_days=14, tune=False)
    first = record(home.warehouse, result, "run-1")
    assert record(home.warehouse, result, "run-1") == first
    record(home.warehouse, result, "run-2")
    history = read_history(home.warehouse)
    assert history.group_by("run_id").len().sort("run_id")["len"].to_list() == [first, first]


GOOD = Candidate(RecommendationConfig(), RankerSettings())
# A ranker that may only propose the five best-sellers: it cannot bring back what these
# shoppers re-order.
NO_PERSONAL = CandidateLimits(
    history=0, cooccurrence=0, content=0, new_products=0, als=0, ease=0, country=0, popular=5
)
WORSE = Candidate(RecommendationConfig(), RankerSettings(limits=NO_PERSONAL))


def test_champion_challenger_blocks_a_worse_candidate():
    data = small_shop()
    last_day = date(2024, 4, 29)
    verdict = challenge(data, WORSE, GOOD, "snap-1", last_day, window_days=14, tolerance=0.05)
    assert not verdict.passed and not verdict.overridden
    assert verdict.candidate_ndcg < verdict.champion_ndcg * 0.95
    assert "BLOCKED" in verdict.message and "override_champion_gate" in verdict.message
    overridden = challenge(data, WORSE, GOOD, "snap-1", last_day, 14, 0.05, override=True)
    assert overridden.passed and overridden.overridden and "OVERRIDDEN" in overridden.message
    better = challenge(data, GOOD, WORSE, "snap-1", last_day, window_days=14)
    assert better.passed and better.candidate_ndcg > better.champion_ndcg
    assert challenge(data, GOOD, None, None, last_day).passed
    same = challenge(data, GOOD, GOOD, "snap-1", last_day)
    assert same.passed and same.candidate_ndcg is None  # nothing to score: identical settings


def test_champion_config_round_trips_through_a_manifest():
    manifest_config = GOOD.config.model_dump(mode="json")  # as published_recommendations records it
    manifest_config["a_field_from_a_newer_version"] = 1
    assert config_from_manifest(manifest_config) == GOOD.config
    ranker = json.loads(json.dumps(asdict(WORSE.ranker)))
    assert candidate_from_manifest(manifest_config, ranker) == WORSE
    # A snapshot from before the ranker compares as the default settings.
    assert candidate_from_manifest(manifest_config, None) == GOOD


def test_cli_evaluate_errors_are_one_line(home):
    runner = CliRunner()
    missing = runner.invoke(app, ["evaluate"])
    assert missing.exit_code == 2 and "No warehouse" in missing.output and "Traceback" not in missing.output
    bad_window = runner.invoke(app, ["evaluate", "--window", "0"])
    assert bad_window.exit_code == 2 and "--window" in bad_window.output
    no_users = runner.invoke(app, ["evaluate", "--max-users", "0"])
    assert no_users.exit_code == 2 and "--max-users" in no_users.output and "Traceback" not in no_users.output
    bad_day = runner.invoke(app, ["evaluate", "--cutoff", "yesterday"])
    assert bad_day.exit_code == 2 and "YYYY-MM-DD" in bad_day.output


def test_window_filters():
    events = pl.DataFrame(
        {"occurred_at": [datetime(2024, 1, d) for d in (1, 5, 10)]}, schema={"occurred_at": pl.Datetime("us")}
    )
    window = Window("test", datetime(2024, 1, 5), datetime(2024, 1, 10))
    assert window.train(events).height == 1 and window.future(events).height == 1


@pytest.mark.parametrize("expected", [True, False], ids=["NotEnoughHistory", "a-plain-ValueError"])
def test_the_evaluation_asset_skips_a_young_shop_and_fails_on_a_bug(home, monkeypatch, expected):
    # "Too little history" is an outcome the asset records; a ValueError from anywhere else
    # is a bug and fails the run, instead of being recorded as a skipped evaluation.
    from dagster import build_asset_context

    import assets.evaluation as asset_module
    from assets.resources import EmbeddingEncoder, RecommenderSettings, ShopguideHome

    error = NotEnoughHistory("No signed-in purchases in the test window") if expected else ValueError("a bug")

    def evaluate(*args, **kwargs):
        raise error

    monkeypatch.setattr(asset_module, "load_shop_data", lambda paths, before: None)
    monkeypatch.setattr(asset_module, "evaluate", evaluate)
    resources = {
        "shopguide": ShopguideHome(),
        "encoder": EmbeddingEncoder(),
        "recommender": RecommenderSettings(),
    }
    with build_asset_context(partition_key="2011-12-09") as context:
        if expected:
            result = asset_module.recommendation_evaluation(context, **resources)
            assert result.metadata == {"skipped": "No signed-in purchases in the test window"}
        else:
            with pytest.raises(ValueError, match="a bug"):
                asset_module.recommendation_evaluation(context, **resources)
