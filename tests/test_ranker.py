"""The learned ranker: candidate generators and features on toy logs with known answers,
labels that never see their own future, the ranker against buy-again where a planted signal
makes beating it possible, crafted shops that must still publish, and saved models."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

import recommendations.candidates as candidates_module
import recommendations.ranker as ranker_module
from evaluation.protocol import SHIPPED, evaluate
from recommendations.candidates import CandidateLimits, Generators
from recommendations.config import RecommendationConfig
from recommendations.features import FEATURES, FeatureContext
from recommendations.model_store import latest_model, model_for_run
from recommendations.ranker import RankerModel, RankerSettings, cutoff_dates, fit_ranker, training_set
from recommendations.reasons import reason_text
from recommendations.shop import LeakageError, assert_before, inputs_as_of
from recommendations.tables import recommendation_tables
from recommendations.user_lists import (
    balanced_block,
    ranked_user_table,
    read_user_table,
    write_ranked_user_table,
)
from tests.shops import FAST_RANKER, START, catalog, cycling_shop, one_day_shop, one_off_shop, shop

CONFIG = RecommendationConfig()
FAST = FAST_RANKER


# ---------------------------------------------------------------- generators and features


@pytest.fixture
def toy():
    """u1 bought p0000 in two baskets (20 and 10 days ago) and viewed p0001; guests buy p0000
    with p0002; p0003 is new (listed 3 days ago, never sold); p0004 is not recommendable; guests bought
    p0005 four times in the last two days."""
    as_of = START + timedelta(days=60)
    products, vectors = catalog(8, seed=5, listed={"p0003": as_of - timedelta(days=3)})
    products = products.with_columns(is_recommendable=pl.col("product_id") != "p0004")
    # u1's vector is p0003's, so content similarity points at the new product.
    v3 = vectors.filter(pl.col("product_id") == "p0003")["vector"][0].to_list()
    vectors = vectors.with_columns(
        vector=pl.when(pl.col("product_id") == "p0004").then(pl.lit(v3)).otherwise(pl.col("vector"))
    )
    day = lambda d: as_of - timedelta(days=d)  # noqa: E731
    rows = [
        ("u1", "b1", "p0000", "purchase", day(20), "UK"),
        ("u1", "b2", "p0000", "purchase", day(10), "UK"),
        ("u1", "b3", "p0001", "view", day(5), "UK"),
        (None, "g1", "p0000", "purchase", day(30), "UK"),
        (None, "g1", "p0002", "purchase", day(30), "UK"),
        (None, "g2", "p0005", "purchase", day(2), "UK"),
        (None, "g3", "p0005", "purchase", day(2), "UK"),
        (None, "g4", "p0005", "purchase", day(1), "UK"),
        (None, "g5", "p0005", "purchase", day(1), "UK"),
        ("u2", "b4", "p0006", "purchase", day(40), "FR"),
    ]
    data = shop(rows, products, vectors)
    inputs = inputs_as_of(data, as_of, CONFIG)
    # Give u1 the new product's direction exactly (its own vector is the mean of its history).
    u1 = inputs.users.filter(pl.col("user_id") == "u1")["user_row"][0]
    inputs.user_matrix[u1] = np.asarray(v3, dtype=np.float32)
    return inputs, u1


def proposed(inputs, row, limits, exclude_bought=False) -> set[str]:
    generators = Generators.fit(inputs, limits)
    proposed = generators.propose(np.array([row]), exclude_bought)
    assert (proposed.users == row).all()
    return set(np.asarray(inputs.product_ids)[proposed.products].tolist())


def test_each_generator_proposes_what_it_should(toy):
    inputs, u1 = toy
    none = CandidateLimits(
        history=0, cooccurrence=0, content=0, new_products=0, als=0, ease=0, popular=0, country=0
    )
    assert proposed(inputs, u1, replace(none, history=10)) == {"p0000", "p0001"}
    assert proposed(inputs, u1, replace(none, cooccurrence=10)) == {"p0002"}
    assert proposed(inputs, u1, replace(none, new_products=1)) == {"p0003"}  # p0004 is excluded
    assert proposed(inputs, u1, replace(none, popular=1)) == {"p0005"}  # the month's best-seller
    # Buying again forbidden: what u1 bought is never a candidate, whoever proposes it.
    assert "p0000" not in proposed(inputs, u1, CandidateLimits(), exclude_bought=True)
    assert "p0004" not in proposed(inputs, u1, CandidateLimits())


def test_repeat_features_follow_the_shoppers_own_cycle(toy):
    inputs, u1 = toy
    context = FeatureContext.build(inputs)
    p0, p1 = (inputs.product_ids.index(p) for p in ("p0000", "p0001"))
    features = context.pair_features(np.array([u1, u1]), np.array([p0, p1]))
    assert features["baskets"].tolist() == [2.0, 0.0]
    assert features["days_since_last"][0] == pytest.approx(10.0)
    assert features["days_since_first"][0] == pytest.approx(20.0)
    assert features["cycle_days"][0] == pytest.approx(10.0)  # (20 − 10) / (2 − 1)
    assert features["overdue"][0] == pytest.approx(1.0)  # due today
    assert np.isnan(features["days_since_last"][1]) and np.isnan(features["cycle_days"][1])
    assert features["user_baskets"][0] == 2.0 and features["sold_all"][0] == 3.0


# ---------------------------------------------------------------- labels


def test_cutoffs_roll_back_from_as_of_and_shrink_for_a_short_log():
    settings = RankerSettings(cutoffs=3, label_window_days=30)
    as_of = datetime(2024, 6, 1)
    assert cutoff_dates(datetime(2024, 1, 1), as_of, settings) == [
        as_of - timedelta(days=30 * i) for i in (1, 2, 3)
    ]
    assert cutoff_dates(datetime(2024, 4, 5), as_of, settings) == [as_of - timedelta(days=30)]
    # Less than a window of history: one cut-off halfway; under two days: none.
    assert cutoff_dates(datetime(2024, 5, 21), as_of, settings) == [datetime(2024, 5, 26, 12)]
    assert cutoff_dates(datetime(2024, 5, 31), as_of, settings) == []


def test_training_labels_never_use_an_event_at_or_after_their_cutoff(monkeypatch):
    data = cycling_shop(n_users=40)
    seen = []
    real = ranker_module.inputs_as_of

    def spy(data, as_of, config, listed_before=None):
        inputs = real(data, as_of, config, listed_before)
        seen.append((as_of, inputs.orders["occurred_at"].max(), inputs.purchases["occurred_at"].max()))
        return inputs

    monkeypatch.setattr(ranker_module, "inputs_as_of", spy)
    as_of = START + timedelta(days=120)
    training, _ = training_set(data, as_of, CONFIG, FAST)
    seen.sort(reverse=True)  # the cut-offs are built side by side: in any order
    assert [cutoff for cutoff, _, _ in seen] == [as_of - timedelta(days=14), as_of - timedelta(days=28)]
    for cutoff, last_order, last_purchase in seen:
        assert last_order < cutoff and last_purchase < cutoff
    # Every positive label is a purchase inside its window, by that shopper.
    newest = seen[0][0]
    window = data.events.filter(
        (pl.col("occurred_at") >= newest)
        & (pl.col("occurred_at") < as_of)
        & (pl.col("event_type") == "purchase")
    )
    bought = set(zip(window["user_id"], window["product_id"], strict=True))
    inputs = real(data, newest, CONFIG, as_of)
    users, ids = inputs.users["user_id"].to_list(), inputs.product_ids
    group_cut = np.repeat(training.cutoff_index, training.groups)
    positives = np.flatnonzero((training.labels == 1) & (group_cut == 0))
    assert len(positives) > 0
    for i in positives:
        assert (users[training.users[i]], ids[training.products[i]]) in bought
    with pytest.raises(LeakageError):
        assert_before(data.events, newest, "training input")


# ---------------------------------------------------------------- quality


def test_the_ranker_beats_buy_again_where_the_cycle_matters():
    # Labels over the 14 days the test window spans. With the default 30-day windows the
    # oldest cut-offs predate the shop's current cycle and training is a lottery on this
    # 120-shopper shop: over LightGBM seeds 0-9 the ranker scored NDCG@10 0.04-0.60 (mean
    # 0.26, under buy-again's 0.43; only seed 0 cleared 1.2x), and changing only how ties
    # between equal best-sellers are broken moved seed 0 from 0.60 to 0.47 or 0.68. With
    # 14-day labels it scores 0.74-0.75 whatever the seed.
    result = evaluate(
        cycling_shop(),
        cutoff=(START + timedelta(days=120)).date(),
        window_days=14,
        ranker_settings=RankerSettings(label_window_days=14),
    )
    ranker = result.value(SHIPPED, "ndcg", 10)
    buy_again = result.value("buy_again_count", "ndcg", 10)
    assert ranker > 1.2 * buy_again, (ranker, buy_again)
    assert result.value(SHIPPED, "empty_lists_new_users", None, "new_users") == 0.0


@pytest.mark.parametrize("make", [one_off_shop, cycling_shop], ids=["no_repeat_buying", "no_views"])
def test_crafted_shops_evaluate_and_publish(make):
    data = make()
    last = data.events["occurred_at"].max()
    result = evaluate(data, window_days=14)
    assert result.value(SHIPPED, "ndcg", 10, policy="new_items") is not None
    model = fit_ranker(data, last + timedelta(seconds=1), CONFIG, FAST)
    assert model.boosters["repurchase"] is not None
    inputs = inputs_as_of(data, last + timedelta(seconds=1), CONFIG)
    recs = recommendation_tables(inputs, RecommendationConfig(k=10), model)["user_recommendations"]
    assert recs["user_id"].n_unique() == inputs.users.height
    assert (recs.group_by("user_id").len()["len"] == 10).all()
    assert recs["reason"].null_count() == 0


def test_the_user_table_built_in_blocks_of_shoppers_equals_the_table_built_at_once(capped_shop):
    # Blocks bound the picks' features in memory at a million shoppers; they must not change
    # a single row (reasons, sources, ranks after the category cap, the order).
    model, inputs, config = capped_shop
    whole = ranked_user_table(model, inputs, config, block=inputs.users.height)
    assert inputs.users.height > 7 and whole.height > 0
    assert set(whole["source"]) >= {"personal"}
    assert whole.equals(ranked_user_table(model, inputs, config, block=3))


def test_the_user_table_written_block_by_block_reads_back_as_the_table_built_in_memory(capped_shop, tmp_path):
    # The nightly run writes the blocks to disk and reads them back once the inputs are freed:
    # the same rows, values (NaN, nulls), types and order as the table held whole.
    model, inputs, config = capped_shop
    whole = ranked_user_table(model, inputs, config)
    write_ranked_user_table(model, inputs, config, tmp_path / "blocks", block=3)
    assert len(list((tmp_path / "blocks").glob("*.parquet"))) > 1
    back = read_user_table(tmp_path / "blocks")
    assert back.schema == whole.schema
    assert back.equals(whole)
    with pytest.raises(FileNotFoundError, match="no user-table blocks"):
        read_user_table(tmp_path / "nothing")


def test_blocks_of_shoppers_are_balanced_across_the_workers():
    # 54k shoppers, blocks of at most 20k, two workers: four blocks of 13.5k, not 20k+20k+14k
    # (whose last block ran alone).
    assert balanced_block(54_000, 20_000, 2) == 13_500
    for shoppers, most, side in [(1, 20_000, 2), (7, 3, 2), (40_001, 20_000, 2), (10, 20_000, 4), (0, 5, 2)]:
        block = balanced_block(shoppers, most, side)
        blocks = -(-shoppers // block)
        assert 1 <= block <= max(most, 1)
        if shoppers:
            assert blocks % side == 0 or blocks < side  # whole rounds of workers
            assert blocks * block - shoppers < blocks  # the last block is at most `blocks` short


@pytest.mark.parametrize("content_scan", [5_000, 0], ids=["scan", "neighbour_rows"])
def test_ranking_a_subset_of_shoppers_gives_their_rows_of_the_whole_table(
    capped_shop, content_scan, monkeypatch
):
    # The intraday refresh ranks only the shoppers with new events: each must get exactly the
    # list the whole table gives them, whoever else is (not) ranked beside them. On a large
    # catalog (CONTENT_SCAN 0 here) the subset's generators compute only its shoppers'
    # products' neighbour rows.
    monkeypatch.setattr(candidates_module, "CONTENT_SCAN", content_scan)
    fitted_for = []
    fit = Generators.fit.__func__

    def recorded_fit(cls, *args, shoppers=None, **kwargs):
        fitted_for.append(shoppers)
        return fit(cls, *args, shoppers=shoppers, **kwargs)

    monkeypatch.setattr(Generators, "fit", classmethod(recorded_fit))
    model, inputs, config = capped_shop
    whole = ranked_user_table(model, inputs, config)
    ids = inputs.users["user_id"].to_list()
    some = [ids[-1], ids[3], ids[0], ids[3]]  # unsorted, repeated: rows are sorted and distinct
    part = ranked_user_table(model, inputs, config, block=2, user_ids=some)
    assert fitted_for[0] is None and fitted_for[1].tolist() == [0, 3, len(ids) - 1]
    if content_scan == 0:  # fewer neighbour rows computed for the subset
        limits = model.settings.limits
        assert Generators.fit(inputs, limits, shoppers=fitted_for[1]).similar.nnz < (
            Generators.fit(inputs, limits).similar.nnz
        )
    assert set(part["user_id"]) == set(some)
    assert part.equals(whole.filter(pl.col("user_id").is_in(some)))
    assert ranked_user_table(model, inputs, config, user_ids=[]).is_empty()
    with pytest.raises(ValueError, match="not in the inputs"):
        ranked_user_table(model, inputs, config, user_ids=["nobody"])


def test_a_one_day_shop_publishes_and_explains_why_it_cannot_be_evaluated():
    data = one_day_shop()
    as_of = START + timedelta(days=1)
    model = fit_ranker(data, as_of, CONFIG, FAST)
    assert model.boosters == {"repurchase": None, "new_items": None}  # nothing to label yet
    recs = recommendation_tables(inputs_as_of(data, as_of, CONFIG), RecommendationConfig(k=5), model)[
        "user_recommendations"
    ]
    assert (recs.group_by("user_id").len()["len"] == 5).all() and recs["reason"].null_count() == 0
    with pytest.raises(ValueError, match="no training data"):
        evaluate(data, cutoff=date(2024, 1, 1), window_days=1)


def test_reasons_say_what_drove_the_pick():
    row = dict.fromkeys(FEATURES, np.nan)
    assert reason_text("repeat", {**row, "baskets": 4, "cycle_days": 21.0}, None, None, None, None) == (
        "you buy this about every 3 weeks"
    )
    assert reason_text("repeat", {**row, "baskets": 9, "cycle_days": 1.2}, None, None, None, None) == (
        "you buy this almost every day"
    )
    assert reason_text("repeat", {**row, "baskets": 1}, None, None, None, None) == "you bought this before"
    assert (
        reason_text("together", {**row, "baskets": 0}, "Red Mug", None, None, None) == "bought with Red Mug"
    )
    assert (
        reason_text("new", {**row, "baskets": 0}, None, "Blue Mug", None, None) == "new, similar to Blue Mug"
    )
    assert reason_text("country", {**row, "baskets": 0}, None, None, "France", None) == (
        "popular in France this month"
    )
    assert reason_text("popular", {**row, "baskets": 0, "trend": 2.0}, None, None, None, "Home") == (
        "trending this week"
    )


# ---------------------------------------------------------------- saved models


def test_a_saved_model_loads_to_the_same_predictions_and_is_reused_while_fresh(tmp_path):
    data = cycling_shop(n_users=40)
    as_of = START + timedelta(days=120)
    model, trained = model_for_run(data, as_of, CONFIG, FAST, tmp_path, max_age_days=7)
    assert trained and (tmp_path / model.model_id / "meta.json").exists()
    loaded = RankerModel.load(tmp_path / model.model_id)
    assert loaded.model_id == model.model_id and loaded.settings == FAST
    features = np.random.default_rng(0).random((50, len(FEATURES))).astype(np.float32)
    assert np.allclose(
        loaded.boosters["repurchase"].predict(features), model.boosters["repurchase"].predict(features)
    )
    again, trained = model_for_run(data, as_of + timedelta(days=3), CONFIG, FAST, tmp_path, max_age_days=7)
    assert not trained and again.model_id == model.model_id
    # Other settings, or a model older than allowed, are never used.
    assert latest_model(tmp_path, replace(FAST, cutoffs=1), as_of, 7) is None
    assert latest_model(tmp_path, FAST, as_of + timedelta(days=8), 7) is None
    # Training is deterministic: the same log and settings give the same model id.
    assert fit_ranker(data, as_of, CONFIG, FAST).model_id == model.model_id


def test_a_cutoff_before_any_product_was_listed_trains_nothing_and_fails_nothing():
    """Days run newest-first: the catalog arrives after the purchases' cut-offs."""
    data = cycling_shop(n_users=20)
    late = data.products.with_columns(first_listed_at=pl.lit(START + timedelta(days=200)))
    data = replace(data, products=late)
    inputs = inputs_as_of(data, START + timedelta(days=100), CONFIG)
    assert inputs.products.height == 0 and inputs.product_matrix.shape[0] == 0
    model = fit_ranker(data, START + timedelta(days=150), CONFIG, FAST)
    assert model.boosters == {"repurchase": None, "new_items": None}


def test_shoppers_with_nothing_recommendable_get_empty_lists_not_an_error():
    data = cycling_shop(n_users=20)
    data = replace(data, products=data.products.with_columns(is_recommendable=pl.lit(False)))
    as_of = START + timedelta(days=150)
    model = fit_ranker(data, as_of, CONFIG, FAST)
    recs = recommendation_tables(inputs_as_of(data, as_of, CONFIG), CONFIG, model)["user_recommendations"]
    assert recs.is_empty()


EVALUATE_50K = """
import json, pathlib, sys
pathlib.Path("/proc/self/clear_refs").write_text("5")  # peak RSS counts from here
from evaluation.protocol import SHIPPED, evaluate
from tests.shops import large_catalog_shop
result = evaluate(large_catalog_shop(), window_days=14)
status = pathlib.Path("/proc/self/status").read_text().splitlines()
peak_kb = int(next(line for line in status if line.startswith("VmHWM")).split()[1])
print(json.dumps({"peak_gb": peak_kb / 1024**2, "ndcg": result.value(SHIPPED, "ndcg", 10)}))
"""


@pytest.mark.integration
def test_evaluate_on_a_50k_product_shop_stays_under_a_memory_ceiling():
    """Every method, tuning included, on 50,000 products: no products × products matrix
    (10 GB in float32) and no users × products one. Measured 1.2 GB on the project's machine;
    the ceiling leaves room for allocator and library differences, far below either."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", EVALUATE_50K], cwd=root, capture_output=True, text=True, timeout=1200
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["peak_gb"] < 2.5, figures
    assert figures["ndcg"] > 0.1, figures


def test_new_shoppers_get_the_list_that_served_the_newest_window_best():
    """New French shoppers buy what France buys, not what sells across the shop: the country
    list wins on the held-out window, and is what the ranker keeps."""
    products, vectors = catalog(12, seed=6)
    ids = products["product_id"].to_list()
    rows = []
    for day in range(40):
        at = START + timedelta(days=day, hours=9)
        for i in range(3):  # the UK, a bigger market, buys p0000..p0002
            rows.append((f"uk{day}-{i}", f"s-uk{day}-{i}", ids[i], "purchase", at, "UK"))
        rows.append((f"fr{day}", f"s-fr{day}", ids[5 + day % 2], "purchase", at, "FR"))
    data = shop(rows, products, vectors)
    as_of = START + timedelta(days=40)
    model = fit_ranker(data, as_of, CONFIG, RankerSettings(cutoffs=1, label_window_days=10))
    assert model.cold_start["list"] == "country_30d", model.cold_start
    assert model.cold_start["scores"]["country_30d"] > model.cold_start["scores"]["popular_30d"]


def test_the_nightly_defaults_are_the_settings_evaluate_measures():
    """`shopguide evaluate` scores RecommendationConfig() and RankerSettings(); the nightly
    tables are built from the recommender resource: by default they must be the same."""
    from assets.resources import EmbeddingEncoder, RecommenderSettings

    resource = RecommenderSettings()
    assert resource.ranker_settings() == RankerSettings()
    assert resource.config(set(), EmbeddingEncoder().half_life_days) == RecommendationConfig()


def test_negative_sampling_keeps_every_positive_and_at_most_the_limit():
    from recommendations.ranker import negatives_kept

    owner = np.array([3, 3, 3, 3, 7, 7, 7])
    labels = np.array([0, 1, 0, 0, 0, 0, 0], dtype=np.float32)
    keep = negatives_kept(owner, labels, limit=1)
    assert keep[1] and keep[:4].sum() == 2 and keep[4:].sum() == 1
    assert (negatives_kept(owner, labels, limit=1) == keep).all()  # reproducible


def test_a_damaged_saved_model_is_passed_over_and_retrained(tmp_path):
    data = cycling_shop(n_users=30)
    as_of = START + timedelta(days=120)
    model, _ = model_for_run(data, as_of, CONFIG, FAST, tmp_path, max_age_days=7)
    (tmp_path / model.model_id / "repurchase.txt").write_text("not a LightGBM model")
    assert latest_model(tmp_path, FAST, as_of, 7) is None
    again, trained = model_for_run(data, as_of, CONFIG, FAST, tmp_path, max_age_days=7)
    assert trained and again.boosters["repurchase"] is not None
    # The same model id: the damaged folder was replaced whole, so the next night reuses it.
    assert again.model_id == model.model_id
    assert latest_model(tmp_path, FAST, as_of, 7).model_id == model.model_id


def test_a_cutoffs_memory_bound_counts_a_dense_cooccurrence_only_where_one_is_held(monkeypatch):
    products, vectors = catalog(50)
    data = shop([("u1", "s1", "p0001", "purchase", START, "UK")], products, vectors)
    held = ranker_module.cutoff_memory(data, RankerSettings())
    monkeypatch.setattr(ranker_module, "DENSE_COOCCURRENCE_CELLS", 50**2 - 1)  # too big to hold dense
    assert held - ranker_module.cutoff_memory(data, RankerSettings()) == 4 * 50**2
