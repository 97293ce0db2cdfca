"""The list order's diversity rule: the model's first places are kept, the exposure penalty
reorders only what follows, and training picks the cheapest rule that reaches the catalog
coverage target (or none, when the goal costs too much accuracy)."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

import recommendations.ranker as ranker_module
from recommendations.features import FEATURES
from recommendations.ranker import (
    COVERAGE_TARGET,
    MIN_COVERAGE,
    RankerModel,
    RankerSettings,
    TrainingSet,
    choose_diversity,
    list_order,
)
from recommendations.topk import PAD_CELLS, ranks_in_groups

SCORE = FEATURES.index("cooccurrence")  # where the fake booster reads its score
SOLD = FEATURES.index("sold_30d")


class ScoreColumn:
    """A booster stand-in: its prediction is one feature column."""

    def predict(self, x: np.ndarray, num_threads: int = 1) -> np.ndarray:
        return x[:, SCORE].astype(np.float64)


def popular_and_tail_shop(positive_ranks: list[int], shoppers: int = 4) -> TrainingSet:
    """Every shopper's candidates: the same ten best-sellers (model scores 10, 9, ..., 1; 1,000
    sales each) and five products of their own that never sold (score 0.5). The catalog holds
    40 products, so the plain top 10s cover 10/40 = 25%. A shopper bought the best-sellers at
    `positive_ranks` (1 = the model's favourite)."""
    rows = []
    for user in range(shoppers):
        for j in range(10):
            rows.append((user, j, 10.0 - j, 1000.0, float(j + 1 in positive_ranks)))
        for t in range(5):
            rows.append((user, 10 + 5 * user + t, 0.5, 0.0, 0.0))
    table = np.array(rows)
    features = np.zeros((len(table), len(FEATURES)), dtype=np.float32)
    features[:, SCORE], features[:, SOLD] = table[:, 2], table[:, 3]
    return TrainingSet(
        features=features,
        labels=table[:, 4].astype(np.float32),
        groups=np.full(shoppers, 15),
        bought_before=np.zeros(len(table), dtype=bool),
        cutoff_index=np.zeros(shoppers, dtype=np.int64),
        users=table[:, 0].astype(np.int64),
        products=table[:, 1].astype(np.int64),
        holdout_catalog=40,
        holdout_product_ids=[f"P{row}" for row in range(40)],
    )


def best_sellers_shown(data: TrainingSet) -> np.ndarray:
    """Per pair: its product's exposure in the plain lists (every shopper sees the ten)."""
    return (data.products < 10).astype(np.float64)


def top10(key: np.ndarray, users: np.ndarray, products: np.ndarray, user: int) -> list[int]:
    mine = np.flatnonzero(users == user)
    return products[mine[np.argsort(-key[mine], kind="stable")][:10]].tolist()


def test_protected_places_keep_the_models_order_and_the_penalty_reorders_the_rest():
    data = popular_and_tail_shop([1])
    scores = ScoreColumn().predict(data.features)
    exposure = best_sellers_shown(data)
    plain = list_order(scores, exposure, data.users, penalty=0.0, protected=0)
    assert top10(plain, data.users, data.products, 0) == list(range(10))
    # A heavy penalty alone puts the never-sold products above every best-seller ...
    penalised = list_order(scores, exposure, data.users, penalty=2.0, protected=0)
    assert top10(penalised, data.users, data.products, 0)[:5] == [10, 11, 12, 13, 14]
    # ... protecting three places keeps the model's first three on top, in its order.
    protected = list_order(scores, exposure, data.users, penalty=2.0, protected=3)
    assert top10(protected, data.users, data.products, 0) == [0, 1, 2, 10, 11, 12, 13, 14, 3, 4]


def test_training_picks_the_cheapest_rule_that_reaches_the_coverage_target():
    # Bought at the model's first two places: a penalty costs nothing while those stay on top.
    data = popular_and_tail_shop([1, 2])
    info: dict = {}
    penalty, protected, exposure = choose_diversity(
        ScoreColumn(), data, np.ones(len(data.labels), dtype=bool), info, RankerSettings()
    )
    tried = info["holdout_diversity"]
    # Everyone's plain top 10 is the ten best-sellers: exposure 1, penalty · log(1001) = 6.9 ·
    # penalty. 0.1 lets one never-sold product per shopper in: 9 + 4 = 13 of 40, 32.5%, which
    # reaches the goal but not the target; 0.3 lets two in (8 + 8 = 16, 40%) at no NDCG cost.
    assert tried["0.1/0"]["coverage@10"] == 0.325 and MIN_COVERAGE < 0.325 < COVERAGE_TARGET
    assert penalty == 0.3
    assert tried[f"{penalty}/{protected}"] == {"ndcg@10": 1.0, "coverage@10": 0.4}
    assert tried["0.0/0"]["coverage@10"] == 0.25
    # The exposure goes with the model by product id: the ten best-sellers, shown to all.
    assert exposure == {f"P{row}": 1.0 for row in range(10)}


def test_a_rule_short_of_the_target_is_taken_when_the_budget_allows_no_more():
    # Bought at the model's 9th place: pushing out the 9th best-seller (penalty 0.3) costs more
    # than the budget, so the best affordable coverage (32.5%) is taken.
    data = popular_and_tail_shop([9])
    info: dict = {}
    penalty, protected, _ = choose_diversity(
        ScoreColumn(), data, np.ones(len(data.labels), dtype=bool), info, RankerSettings()
    )
    assert info["holdout_diversity"][f"{penalty}/{protected}"]["coverage@10"] == 0.325
    assert info["holdout_diversity"]["0.3/0"]["ndcg@10"] < 0.9 * info["holdout_diversity"]["0.0/0"]["ndcg@10"]


def test_exposure_follows_product_ids_through_save_and_load(tmp_path):
    model = RankerModel(
        RankerSettings(),
        datetime(2024, 1, 1),
        {"repurchase": None, "new_items": None},
        {"list": "popular_30d", "scores": {}},
        {},
        exposure={"new_items": {"B": 0.5, "C": 0.25}},
    )
    loaded = RankerModel.load(model.save(tmp_path))
    # Another day's catalog: rows differ, a new product ("D") was never shown.
    assert loaded.exposure_by_row("new_items", ["C", "D", "B"]).tolist() == [0.25, 0.0, 0.5]
    assert loaded.exposure_by_row("repurchase", ["C"]).tolist() == [0.0]


def test_no_rule_is_applied_when_the_coverage_goal_costs_too_much_accuracy():
    # Bought only at the model's 10th place: every rule that reaches 30% pushes it out.
    data = popular_and_tail_shop([10])
    info: dict = {}
    chosen = choose_diversity(
        ScoreColumn(), data, np.ones(len(data.labels), dtype=bool), info, RankerSettings()
    )
    assert chosen == (0.0, 0, {})
    reaching = [v for v in info["holdout_diversity"].values() if v["coverage@10"] >= MIN_COVERAGE]
    assert reaching and all(
        v["ndcg@10"] < info["holdout_diversity"]["0.0/0"]["ndcg@10"] * 0.9 for v in reaching
    )


def lexsorted_top10(scores: np.ndarray, groups: np.ndarray):
    """The reference: one lexsort of every pair by group, then score, then position."""
    owner = np.repeat(np.arange(len(groups)), groups)
    order = np.lexsort((-scores, owner))
    rank = np.arange(len(order)) - np.repeat(np.r_[0, np.cumsum(groups)[:-1]], groups)
    return order[rank < 10], rank[rank < 10]


@pytest.mark.parametrize("pad_cells", [PAD_CELLS, 50])  # one chunk, and a few rows a chunk
def test_each_groups_top_10_is_the_lexsorts_ties_to_the_earlier_pair(monkeypatch, pad_cells):
    monkeypatch.setattr(ranker_module, "PAD_CELLS", pad_cells)
    rng = np.random.default_rng(9)
    groups = rng.integers(0, 40, 200)
    groups[:3] = [0, 3, 37]  # an empty group, one shorter than 10, one far longer
    scores = rng.integers(0, 4, groups.sum()).astype(np.float64)  # many ties
    owner, top, place = ranker_module._top10(scores, groups)
    expected_top, expected_place = lexsorted_top10(scores, groups)
    assert np.array_equal(top, expected_top) and np.array_equal(place, expected_place)
    assert np.array_equal(owner, np.repeat(np.arange(200), groups))
    assert ranker_module._top10(scores[:0], np.zeros(0, dtype=np.int64))[1].shape == (0,)


def test_a_rank_given_to_the_list_order_is_the_one_it_would_compute():
    rng = np.random.default_rng(10)
    users = np.repeat(np.arange(30), 12)
    scores = rng.integers(0, 5, len(users)).astype(np.float64)
    exposure = rng.random(len(users))
    rank = ranks_in_groups(users, scores)
    for protected in (0, 1, 3):
        expected = list_order(scores, exposure, users, 0.3, protected)
        assert np.array_equal(list_order(scores, exposure, users, 0.3, protected, rank), expected)
