"""recommendations.compiled: the compiled booster predicts exactly what LightGBM does."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

import recommendations.compiled as compiled
from recommendations.compiled import CompiledBooster, for_scoring
from recommendations.user_lists import ranked_user_table


@pytest.fixture(scope="module")
def booster():
    # A LambdaRank booster on features with missing values (NaN goes down each split's
    # learned default side), as the ranker's features have them.
    rng = np.random.default_rng(7)
    x = rng.normal(size=(3_000, 6)).astype(np.float32)
    x[rng.random(x.shape) < 0.2] = np.nan
    y = (np.nan_to_num(x[:, 0]) + rng.normal(scale=0.5, size=len(x)) > 0.8).astype(int)
    params = {"objective": "lambdarank", "num_leaves": 15, "min_data_in_leaf": 5, "verbose": -1, "seed": 0}
    return lgb.train(params, lgb.Dataset(x, y, group=[30] * 100), num_boost_round=40), x


@pytest.mark.parametrize("inline", [False, True])
def test_compiled_predictions_are_lightgbms_bit_for_bit(booster, inline, monkeypatch):
    model, x = booster
    monkeypatch.setattr(compiled, "CHUNK_ROWS", 700)  # several chunks, the last one short
    fast = CompiledBooster(model, inline=inline)
    assert fast.num_trees == model.num_trees() == 40
    assert np.array_equal(fast.predict(x), model.predict(x))
    assert np.array_equal(fast.predict(x[:0]), model.predict(x[:0]))


def test_only_a_night_with_enough_shoppers_pays_for_compiling(capped_shop):
    model, _, _ = capped_shop
    assert for_scoring(model, "repurchase", compiled.COMPILE_FROM_SHOPPERS - 1) is model
    faster = for_scoring(model, "repurchase", compiled.COMPILE_FROM_SHOPPERS)
    assert isinstance(faster.boosters["repurchase"], CompiledBooster)
    assert faster.boosters["new_items"] is model.boosters["new_items"]  # only the night's policy
    assert model.boosters["repurchase"] is not faster.boosters["repurchase"]  # the model is not changed


def test_the_user_table_scored_by_the_compiled_booster_is_the_same_table(capped_shop, monkeypatch):
    # Scores, ranks and the reasons (the occlusion's argmax over predictions) all come out the
    # same: the tiny shop is compiled here by lowering the threshold.
    model, inputs, config = capped_shop
    plain = ranked_user_table(model, inputs, config, block=3)
    monkeypatch.setattr(compiled, "COMPILE_FROM_SHOPPERS", 1)
    calls = []
    real = compiled.CompiledBooster.predict

    def counted(self, *args, **kwargs):
        calls.append(len(args[0]))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(compiled.CompiledBooster, "predict", counted)
    assert ranked_user_table(model, inputs, config, block=3).equals(plain)
    assert calls  # the compiled booster did the scoring
