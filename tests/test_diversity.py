"""The list order's diversity rule: the model's first places are kept, the popularity penalty
reorders only what follows, and training picks the cheapest rule that reaches the catalog
coverage goal (or none, when the goal costs too much accuracy)."""

from __future__ import annotations

import numpy as np

from recommendations.features import FEATURES
from recommendations.ranker import (
    MIN_COVERAGE,
    RankerSettings,
    TrainingSet,
    choose_diversity,
    list_order,
)

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
    )


def top10(key: np.ndarray, users: np.ndarray, products: np.ndarray, user: int) -> list[int]:
    mine = np.flatnonzero(users == user)
    return products[mine[np.argsort(-key[mine], kind="stable")][:10]].tolist()


def test_protected_places_keep_the_models_order_and_the_penalty_reorders_the_rest():
    data = popular_and_tail_shop([1])
    scores = ScoreColumn().predict(data.features)
    plain = list_order(scores, data.features, data.users, penalty=0.0, protected=0)
    assert top10(plain, data.users, data.products, 0) == list(range(10))
    # A heavy penalty alone puts the never-sold products above every best-seller ...
    penalised = list_order(scores, data.features, data.users, penalty=2.0, protected=0)
    assert top10(penalised, data.users, data.products, 0)[:5] == [10, 11, 12, 13, 14]
    # ... protecting three places keeps the model's first three on top, in its order.
    protected = list_order(scores, data.features, data.users, penalty=2.0, protected=3)
    assert top10(protected, data.users, data.products, 0) == [0, 1, 2, 10, 11, 12, 13, 14, 3, 4]


def test_training_picks_the_cheapest_rule_that_reaches_the_coverage_goal():
    # Bought at the model's first two places: a penalty costs nothing while those stay on top.
    data = popular_and_tail_shop([1, 2])
    info: dict = {}
    penalty, protected = choose_diversity(
        ScoreColumn(), data, np.ones(len(data.labels), dtype=bool), info, RankerSettings()
    )
    # 0.05·log(1001) = 0.35 keeps the 10th best-seller (1 − 0.35) above the tail (0.5); 0.1
    # lets one never-sold product per shopper in: 9 + 4 = 13 of 40 products, 32.5%.
    assert penalty == 0.1
    chosen = info["holdout_diversity"][f"{penalty}/{protected}"]
    assert chosen == {"ndcg@10": 1.0, "coverage@10": 0.325} and chosen["coverage@10"] >= MIN_COVERAGE
    assert info["holdout_diversity"]["0.0/0"]["coverage@10"] == 0.25


def test_no_rule_is_applied_when_the_coverage_goal_costs_too_much_accuracy():
    # Bought only at the model's 10th place: every rule that reaches 30% pushes it out.
    data = popular_and_tail_shop([10])
    info: dict = {}
    chosen = choose_diversity(
        ScoreColumn(), data, np.ones(len(data.labels), dtype=bool), info, RankerSettings()
    )
    assert chosen == (0.0, 0)
    reaching = [v for v in info["holdout_diversity"].values() if v["coverage@10"] >= MIN_COVERAGE]
    assert reaching and all(
        v["ndcg@10"] < info["holdout_diversity"]["0.0/0"]["ndcg@10"] * 0.9 for v in reaching
    )
