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


def test_a_compiled_booster_is_kept_and_loaded_instead_of_compiled_again(booster, tmp_path, monkeypatch):
    model, x = booster
    cache = tmp_path / "compiled"
    first = CompiledBooster(model, cache_dir=cache)
    (kept,) = cache.iterdir()  # one file, no temporary one left beside it
    assert not first.from_cache and kept.name.startswith("booster-") and kept.suffix == ".o"
    import lleaves.compiler

    def no_compiling(*args, **kwargs):
        raise AssertionError("compiled again instead of loaded")

    monkeypatch.setattr(lleaves.compiler, "compile_to_module", no_compiling)
    again = CompiledBooster(model, cache_dir=cache)
    assert again.from_cache
    assert np.array_equal(again.predict(x), model.predict(x))


def test_the_cache_tells_inlined_code_from_plain(booster, tmp_path):
    model, x = booster
    CompiledBooster(model, inline=False, cache_dir=tmp_path)
    inlined = CompiledBooster(model, inline=True, cache_dir=tmp_path)
    assert not inlined.from_cache and len(list(tmp_path.iterdir())) == 2
    assert np.array_equal(inlined.predict(x), model.predict(x))


def test_a_cache_folder_that_cannot_be_written_costs_only_a_warning(booster, tmp_path, caplog):
    model, x = booster
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    fast = CompiledBooster(model, cache_dir=blocked / "compiled")
    assert not fast.from_cache and "compiled booster not kept" in caplog.text
    assert np.array_equal(fast.predict(x), model.predict(x))


def test_a_saved_models_compiled_booster_is_kept_in_its_folder(capped_shop, tmp_path):
    import dataclasses

    from recommendations.ranker import RankerModel

    # A copy: saving sets the model's folder, which the shared fixture's model must not get.
    model = dataclasses.replace(capped_shop[0], folder=None)
    loaded = RankerModel.load(model.save(tmp_path))
    assert model.folder == loaded.folder
    assert loaded.folder == tmp_path / model.model_id
    first = for_scoring(loaded, "repurchase", compiled.COMPILE_FROM_SHOPPERS).boosters["repurchase"]
    second = for_scoring(loaded, "repurchase", compiled.COMPILE_FROM_SHOPPERS).boosters["repurchase"]
    assert not first.from_cache and second.from_cache
    assert len(list((loaded.folder / "compiled").iterdir())) == 1
