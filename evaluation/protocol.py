"""The offline evaluation: one time split, every method, full-catalog ranking, per cohort.

For each stage (validation, then test) the training input is the event log before the
window, the catalog is what was listed before the window ends (new products can be
recommended from their titles), user vectors are recomputed from the training events
alone, and the truth is each signed-in shopper's purchases inside the window. Rankings
are over the whole recommendable catalog: no sampled negatives.

Two repurchase policies, because Online Retail's wholesale customers re-order:
- repurchase: truth is every product bought in the window, lists may hold past purchases;
- new_items: truth drops what the shopper bought before, lists exclude it too.

Cohorts: all; returning (some training history); new_users (none); new_products (truth
restricted to products nobody touched before the window).
"""

from __future__ import annotations

import time as clock
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import polars as pl

from core.errors import NotEnoughHistory
from evaluation import metrics
from evaluation.baselines import (
    ALS,
    EASE,
    BuyAgainByCount,
    ContentOnly,
    ItemKNN,
    Popularity,
    RepeatPurchase,
    purchase_counts,
)
from evaluation.next_basket import TIFUKNN
from evaluation.split import TimeSplit, Window, default_cutoff
from recommendations.candidates import Generators
from recommendations.config import RecommendationConfig
from recommendations.features import FeatureContext
from recommendations.inputs import RecInputs
from recommendations.personal import rank_users
from recommendations.ranker import RankerModel, RankerSettings, fit_ranker
from recommendations.shop import ShopData, inputs_as_of
from recommendations.topk import top_k_in_blocks

POLICIES = ("repurchase", "new_items")
COHORTS = ("all", "returning", "new_users", "new_products")
KS = (10, 50)
# What the nightly tables publish: the learned ranker over the candidate generators.
SHIPPED = "shopguide_ranker"
# Shoppers evaluated per window at most (a reproducible sample beyond it), so a large shop's
# evaluation scores a bounded number of lists.
DEFAULT_MAX_USERS = 10_000


@dataclass
class Stage:
    window: Window
    inputs: RecInputs
    train_events: int
    rows: np.ndarray  # user rows with a purchase in the window
    truth: dict[str, list[np.ndarray]]  # policy → product positions per evaluated user
    returning: np.ndarray  # per evaluated user: any training history
    new_products: np.ndarray  # per product position: nobody touched it before the window
    tiebreak: np.ndarray  # all-time popularity, scaled far below any real score


@dataclass
class EvaluationResult:
    split: dict
    results: list[dict]
    tuned: dict[str, dict[str, dict]]  # policy → method → chosen parameters
    validation: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"split": self.split, "tuned": self.tuned, "results": self.results, "seconds": self.seconds}

    def value(self, method: str, metric: str, k: int | None, cohort: str = "all", policy: str = "repurchase"):
        for row in self.results:
            if (row["method"], row["metric"], row["k"], row["cohort"], row["policy"]) == (
                method,
                metric,
                k,
                cohort,
                policy,
            ):
                return row["value"]
        raise KeyError((method, metric, k, cohort, policy))


def prepare_stage(
    data: ShopData, window: Window, config: RecommendationConfig, max_users: int | None = None
) -> Stage:
    """The stage's inputs and truth. With `max_users`, a reproducible random sample of the
    shoppers who bought in the window is evaluated (metrics are means over shoppers, so a
    sample of ten thousand estimates them to about ±0.005 NDCG)."""
    # Training input ends where the window starts (inputs_as_of asserts it); products listed
    # before the window ends can be recommended from their titles.
    inputs = inputs_as_of(data, window.start, config, listed_before=window.end)
    bought_later = (
        window.future(data.events)
        .filter((pl.col("event_type") == "purchase") & pl.col("user_id").is_not_null())
        .select("user_id", "product_id")
        .unique()
        .join(inputs.users.select("user_id", "user_row"), on="user_id")
        .join(inputs.products.select("product_id", "row"), on="product_id")
        .group_by("user_row")
        .agg("row")
        .sort("user_row")
    )
    if max_users is not None and bought_later.height > max_users:
        rng = np.random.default_rng(0)
        keep = np.sort(rng.choice(bought_later.height, max_users, replace=False))
        bought_later = bought_later[keep]
    rows = bought_later["user_row"].to_numpy().astype(np.int64)
    repurchase = [np.asarray(r, dtype=np.int64) for r in bought_later["row"].to_list()]
    purchased = inputs.purchased
    new_items = [
        np.setdiff1d(items, purchased.indices[purchased.indptr[u] : purchased.indptr[u + 1]])
        for u, items in zip(rows, repurchase, strict=True)
    ]
    touched = np.zeros(inputs.products.height, dtype=bool)
    touched[inputs.history.indices] = True
    counts = purchase_counts(inputs)
    return Stage(
        window=window,
        inputs=inputs,
        train_events=int((data.events["occurred_at"] < window.start).sum()),
        rows=rows,
        truth={"repurchase": repurchase, "new_items": new_items},
        returning=np.diff(inputs.history.indptr)[rows] > 0,
        new_products=~touched,
        tiebreak=(1e-6 * counts / max(float(counts.max(initial=0.0)), 1.0)).astype(np.float32),
    )


def rank_by_scores(method, stage: Stage, k: int, exclude_bought: bool) -> np.ndarray:
    """Full-catalog top-k of a fitted baseline for the stage's evaluated users."""
    import torch

    inputs = stage.inputs
    blocked = torch.from_numpy(~inputs.recommendable)
    tiebreak = torch.from_numpy(stage.tiebreak)
    bought = inputs.purchased[stage.rows]

    def block(start: int, stop: int):
        scores = torch.from_numpy(np.ascontiguousarray(method.scores(stage.rows[start:stop]), np.float32))
        scores = (scores + tiebreak).masked_fill(blocked, float("-inf"))
        if exclude_bought:
            coo = bought[start:stop].tocoo()
            scores[torch.from_numpy(coo.row.astype(np.int64)), torch.from_numpy(coo.col.astype(np.int64))] = (
                float("-inf")
            )
        return scores, lambda top: {}

    indices, _, _ = top_k_in_blocks(block, len(stage.rows), inputs.products.height, k, 1024)
    return indices


def rank_ranker(
    model: RankerModel, stage: Stage, k: int, policy: str, fitted: tuple | None = None
) -> np.ndarray:
    """shopguide's own lists, exactly as the nightly run builds them: the ranker for shoppers
    with history, its cold-start list for the rest. `fitted` = (generators, feature context)
    on the stage's inputs, shared by the policies."""
    generators, context = fitted or (None, None)
    return rank_users(
        model, stage.inputs, stage.rows, k, policy, generators=generators, context=context
    ).products


def score_rankings(method: str, policy: str, ranked: np.ndarray, stage: Stage) -> list[dict]:
    """Every metric row for one method's lists under one policy."""
    rows: list[dict] = []
    truth = stage.truth[policy]
    has_truth = np.array([len(t) > 0 for t in truth], dtype=bool)
    cohorts = {
        "all": has_truth,
        "returning": has_truth & stage.returning,
        "new_users": has_truth & ~stage.returning,
    }
    restricted = [t[stage.new_products[t]] for t in truth]
    selections = {name: (mask, truth) for name, mask in cohorts.items()}
    selections["new_products"] = (np.array([len(t) > 0 for t in restricted], dtype=bool), restricted)

    def row(metric: str, k: int | None, cohort: str, value: float, users: int) -> dict:
        return {
            "method": method,
            "metric": metric,
            "k": k,
            "cohort": cohort,
            "policy": policy,
            "value": None if np.isnan(value) else round(float(value), 6),
            "users": users,
        }

    for cohort, (mask, cohort_truth) in selections.items():
        chosen = [cohort_truth[i] for i in np.flatnonzero(mask)]
        for k in KS:
            for name, value in metrics.ranking_metrics(ranked[mask], chosen, k).items():
                rows.append(row(name, k, cohort, value, int(mask.sum())))
    inputs = stage.inputs
    shown = ranked[has_truth]
    users_per_product = np.asarray((inputs.history > 0).sum(axis=0)).ravel()
    share = (users_per_product + 1.0) / (inputs.history.shape[0] + 1.0)
    percentile = (np.argsort(np.argsort(users_per_product, kind="stable"), kind="stable") + 0.5) / len(
        users_per_product
    )
    categories = np.asarray(inputs.products["top_category"].to_list(), dtype=object)
    catalog_size = int(inputs.recommendable.sum())
    users = int(has_truth.sum())
    for k in KS:
        beyond = {
            "coverage": metrics.catalog_coverage(shown, k, catalog_size),
            "novelty": metrics.novelty(shown, k, share),
            "popularity_bias": metrics.popularity_bias(shown, k, percentile),
            "diversity_embedding": metrics.embedding_diversity(shown, k, inputs.product_matrix),
            "diversity_category": metrics.category_diversity(shown, k, categories),
        }
        rows.extend(row(name, k, "all", value, users) for name, value in beyond.items())
    new_users = has_truth & ~stage.returning
    empty = int((ranked[new_users][:, 0] < 0).sum())
    rows.append(row("empty_lists_new_users", None, "new_users", float(empty), int(new_users.sum())))
    return rows


def ndcg_at_10(ranked: np.ndarray, stage: Stage, policy: str) -> float:
    truth = stage.truth[policy]
    mask = np.array([len(t) > 0 for t in truth], dtype=bool)
    return metrics.ranking_metrics(ranked[mask], [truth[i] for i in np.flatnonzero(mask)], 10)["ndcg"]


# Each baseline's candidate settings; the validation window picks one per policy.
BASELINES: dict[str, list[Callable[[], object]]] = {
    "popularity": [lambda: Popularity()],
    "popularity_recent": [lambda d=d: Popularity(days=d) for d in (7, 14, 30)],
    "item_knn": [lambda n=n: ItemKNN(neighbors=n) for n in (20, 100, 500)],
    "ease": [lambda l2=l2: EASE(l2=l2) for l2 in (50.0, 200.0, 500.0, 1000.0, 3000.0)],
    "als": [lambda f=f, a=a: ALS(factors=f, alpha=a) for f in (32, 64, 128) for a in (5.0, 20.0)],
    "content": [lambda: ContentOnly()],
    "repeat_purchase": [lambda: RepeatPurchase()],
    "buy_again_count": [lambda d=d: BuyAgainByCount(days=d) for d in (7, 30)],
    "tifu_knn": [lambda k=k, a=a: TIFUKNN(neighbors=k, alpha=a) for k in (100, 300) for a in (0.7, 0.9)],
}
# Buying again is what the new_items policy forbids: those baselines would be empty there.
BASELINE_POLICIES = {"repeat_purchase": ("repurchase",), "buy_again_count": ("repurchase",)}


def tune_baselines(validation: Stage | None, k: int) -> tuple[dict[str, dict[str, int]], list[dict]]:
    """Each baseline's best candidate per policy on the validation window (the first when
    there is nothing to tune on), and every candidate's validation NDCG@10. Each candidate is
    fitted once and ranked under both policies (a fit is the expensive part)."""
    chosen: dict[str, dict[str, int]] = {}
    validation_rows: list[dict] = []
    for name, candidates in BASELINES.items():
        policies = BASELINE_POLICIES.get(name, POLICIES)
        best = dict.fromkeys(policies, (0, -1.0))  # policy → (candidate, validation NDCG@10)
        if validation is not None and len(candidates) > 1:
            for index, make in enumerate(candidates):
                method = make().fit(validation.inputs)
                for policy in policies:
                    ranked = rank_by_scores(method, validation, k, policy == "new_items")
                    score = ndcg_at_10(ranked, validation, policy)
                    validation_rows.append(
                        {"policy": policy, "method": name, **method.params, "ndcg@10": score}
                    )
                    if score > best[policy][1]:
                        best[policy] = (index, score)
        chosen[name] = {policy: best[policy][0] for policy in policies}
    return chosen, validation_rows


def score_baselines(
    test: Stage, chosen: dict[str, dict[str, int]], k: int, log: Callable[[str], None]
) -> tuple[list[dict], dict[str, dict[str, dict]]]:
    """Every baseline's chosen candidate, fitted on the test stage's input and scored on its
    window; each distinct candidate is fitted once for both policies."""
    results: list[dict] = []
    tuned: dict[str, dict[str, dict]] = {policy: {} for policy in POLICIES}
    for name, per_policy in chosen.items():
        fitted: dict[int, object] = {}
        for policy, index in per_policy.items():
            if index not in fitted:
                fitted[index] = BASELINES[name][index]().fit(test.inputs)
            method = fitted[index]
            tuned[policy][name] = method.params
            ranked = rank_by_scores(method, test, k, policy == "new_items")
            results.extend(score_rankings(name, policy, ranked, test))
            log(f"{policy:>10} {name:<18} {method.params}")
    return results, tuned


def _signed_in_purchases(data: ShopData, window: Window) -> int:
    future = window.future(data.events)
    return future.filter((pl.col("event_type") == "purchase") & pl.col("user_id").is_not_null()).height


def evaluate(
    data: ShopData,
    cutoff: date | None = None,
    window_days: int = 30,
    base_config: RecommendationConfig | None = None,
    ranker_settings: RankerSettings | None = None,
    tune: bool = True,
    max_users: int | None = DEFAULT_MAX_USERS,
    log: Callable[[str], None] = lambda message: None,
) -> EvaluationResult:
    """Tune every method on the validation window, then score each once on the test window.
    The ranker tunes itself on its newest label window before the cut-off (the validation
    window), the same way the nightly training does."""
    started = clock.perf_counter()
    base = base_config or RecommendationConfig()
    if data.events.is_empty():
        raise NotEnoughHistory("The event log is empty: ingest some landing days before evaluating.")
    last = data.events["occurred_at"].max()
    split = TimeSplit(cutoff or default_cutoff(last, window_days), window_days)
    first = data.events["occurred_at"].min()
    if split.validation.start <= first:
        raise NotEnoughHistory(
            f"Cut-off {split.cutoff} leaves no training data before its {window_days}-day validation "
            f"window (the log starts {first:%Y-%m-%d}): choose a later --cutoff or a shorter --window."
        )
    if not _signed_in_purchases(data, split.test):
        raise NotEnoughHistory(
            f"No signed-in purchases between {split.test.start:%Y-%m-%d} and {split.test.end:%Y-%m-%d}: "
            "choose a --cutoff inside the log."
        )
    k = max(KS)
    # One shop state in memory at a time: the ranker trains (on its own cut-offs' inputs)
    # before either stage is built, and the validation stage's inputs (a vector per shopper,
    # the interaction matrices) are freed before the test stage's are built.
    model = fit_ranker(data, split.test.start, base, ranker_settings or RankerSettings())
    log(f"ranker {model.model_id} trained")
    validation = prepare_stage(data, split.validation, base, max_users) if tune else None
    chosen, validation_rows = tune_baselines(validation, k)
    del validation
    test = prepare_stage(data, split.test, base, max_users)
    if len(test.rows) == 0:
        raise NotEnoughHistory(
            f"No purchase between {split.test.start:%Y-%m-%d} and {split.test.end:%Y-%m-%d} is by a known "
            "shopper of a listed product: choose another --cutoff."
        )
    results, tuned = score_baselines(test, chosen, k, log)
    # Fitted for the sampled test shoppers: content's neighbour index then holds only their
    # products' rows (a 100k-product catalog's full pass is ~7.7 TFLOP).
    fitted = (
        Generators.fit(test.inputs, model.settings.limits, shoppers=test.rows),
        FeatureContext.build(test.inputs),
    )
    for policy in POLICIES:
        tuned[policy][SHIPPED] = {
            "model_id": model.model_id,
            "cold_start": model.cold_start["list"],
            **model.info[policy],
        }
        ranked = rank_ranker(model, test, k, policy, fitted)
        results.extend(score_rankings(SHIPPED, policy, ranked, test))
        log(f"{policy:>10} {SHIPPED:<18} {tuned[policy][SHIPPED]}")
    split_info = {
        "cutoff": split.cutoff.isoformat(),
        "window_days": window_days,
        "validation_start": split.validation.start.date().isoformat(),
        "test_end": split.test.end.date().isoformat(),
        "train_events": test.train_events,
        "test_users": int(len(test.rows)),
        "max_users": max_users,
        "test_new_users": int((~test.returning).sum()),
        "catalog_products": int(test.inputs.products.height),
        "recommendable_products": int(test.inputs.recommendable.sum()),
        "tuned_on": "validation" if tune else "defaults (no tuning)",
    }
    return EvaluationResult(
        split=split_info,
        results=results,
        tuned=tuned,
        validation=validation_rows,
        seconds=round(clock.perf_counter() - started, 1),
    )
