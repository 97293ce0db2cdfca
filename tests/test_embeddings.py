"""Embeddings with the deterministic fake encoder and a tmp_path LanceDB."""

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from core.dbt_manifest import interaction_weights
from embeddings.device import cpu_has_bf16, plan_for
from embeddings.encoder import HashingEncoder
from embeddings.models import resolve_model_path
from embeddings.product_text import product_text, text_hash
from embeddings.products import encode_distinct, sync_product_embeddings
from embeddings.search import SearchFilters, search_products
from embeddings.store import PRODUCT_TABLE, USER_TABLE, connect, open_table, read_table
from embeddings.users import product_weights, sync_user_embeddings, user_vectors

NOW = datetime(2024, 2, 1)
WEIGHTS = {"view": 1.0, "add_to_cart": 3.0, "remove_from_cart": -1.0, "purchase": 5.0, "return": -5.0}


class CountingEncoder(HashingEncoder):
    def __init__(self, dimension=16):
        super().__init__(dimension=dimension)
        self.texts_seen: list[str] = []

    def encode(self, texts):
        self.texts_seen += texts
        return super().encode(texts)


def catalog(**changes) -> pl.DataFrame:
    rows = {
        "product_id": ["A", "B", "C"],
        "title": ["Red Ceramic Mug", "Green Tea Tin", "Garden Hose 20m"],
        "description": [None, "Loose leaf.", None],
        "category_path": ["Home > Kitchen > Mugs", "Food > Tea", "Garden > Watering"],
        "top_category": ["Home", "Food", "Garden"],
        "brand": ["Acme", None, "Hoser"],
        "price": [8.0, 4.5, 25.0],
        "is_listed": [True, True, True],
        "is_merchandise": [True, True, True],
    }
    rows.update(changes)
    return pl.DataFrame(rows)


def test_fake_encoder_is_deterministic_and_unit_length():
    encoder = HashingEncoder(dimension=16)
    first, again = encoder.encode(["mug", "tin"]), encoder.encode(["mug", "tin"])
    assert np.array_equal(first, again)
    assert not np.allclose(first[0], first[1])
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0)


def test_product_text_uses_what_the_catalog_has():
    assert (
        product_text("A", "Red  Mug ", "Home > Mugs", "Acme", "Stoneware.")
        == "Red Mug. category: Home > Mugs. brand: Acme. Stoneware."
    )
    assert (
        product_text("85123A", "WHITE HANGING HEART T-LIGHT HOLDER") == "WHITE HANGING HEART T-LIGHT HOLDER"
    )
    assert product_text("X9", None) == "product X9"
    assert text_hash("a") != text_hash("b") and len(text_hash("a")) == 16


def test_only_new_or_changed_products_are_encoded(tmp_path):
    db, encoder = connect(tmp_path), CountingEncoder()
    first = sync_product_embeddings(db, catalog(), encoder, NOW)
    assert (first.encoded, first.reused) == (3, 0)
    again = sync_product_embeddings(db, catalog(), encoder, NOW + timedelta(days=1))
    assert (again.encoded, again.reused, again.metadata_updated) == (0, 3, 0)
    assert again.version == first.version  # nothing changed: no new LanceDB version
    assert len(encoder.texts_seen) == 3

    renamed = catalog(title=["Red Ceramic Mug", "Green Tea Caddy", "Garden Hose 20m"], price=[9.0, 4.5, 25.0])
    third = sync_product_embeddings(db, renamed, encoder, NOW + timedelta(days=2))
    assert (third.encoded, third.metadata_updated) == (1, 1)  # B re-encoded; A's price rewritten
    assert encoder.texts_seen[-1].startswith("Green Tea Caddy")
    stored = read_table(db, PRODUCT_TABLE).sort("product_id")
    assert stored["price"].to_list() == [9.0, 4.5, 25.0]
    assert stored.filter(pl.col("product_id") == "A")["updated_at"][0] == NOW  # vector kept
    assert third.version > first.version
    assert len(open_table(db, PRODUCT_TABLE).list_versions()) >= 2  # history kept for snapshots


def test_delisted_products_are_marked_not_deleted(tmp_path):
    db = connect(tmp_path)
    sync_product_embeddings(db, catalog(), HashingEncoder(16), NOW)
    sync_product_embeddings(db, catalog(is_listed=[True, False, True]), HashingEncoder(16), NOW)
    stored = read_table(db, PRODUCT_TABLE).sort("product_id")
    assert stored["product_id"].to_list() == ["A", "B", "C"]
    assert stored["is_listed"].to_list() == [True, False, True]
    assert stored["in_stock"].to_list() == [True, False, True]


def test_a_new_model_replaces_every_vector(tmp_path):
    db = connect(tmp_path)
    sync_product_embeddings(db, catalog(), HashingEncoder(16), NOW)
    switched = sync_product_embeddings(db, catalog(), HashingEncoder(24), NOW)
    assert switched.encoded == 3
    stored = read_table(db, PRODUCT_TABLE)
    assert set(stored["model_fingerprint"]) == {"hashing-24"}
    assert len(stored["vector"][0]) == 24


def test_search_ranks_the_matching_text_first_and_applies_filters(tmp_path):
    db, encoder = connect(tmp_path), HashingEncoder(16)
    sync_product_embeddings(db, catalog(is_listed=[True, True, False]), encoder, NOW)
    query = product_text("B", "Green Tea Tin", "Food > Tea", None, "Loose leaf.")
    assert search_products(db, encoder, query, k=1)[0]["product_id"] == "B"
    assert search_products(db, encoder, query, k=1)[0]["score"] == pytest.approx(1.0, abs=1e-5)
    assert [
        r["product_id"] for r in search_products(db, encoder, query, 5, SearchFilters(category="Home"))
    ] == ["A"]
    assert [r["product_id"] for r in search_products(db, encoder, query, 5, SearchFilters(max_price=5))] == [
        "B"
    ]
    # The delisted hose shows only when asked for.
    assert "C" not in {r["product_id"] for r in search_products(db, encoder, "hose", 5)}
    assert "C" in {
        r["product_id"] for r in search_products(db, encoder, "hose", 5, SearchFilters(in_stock_only=False))
    }


def test_search_refuses_a_different_model_and_bad_requests(tmp_path):
    db = connect(tmp_path)
    with pytest.raises(ValueError, match="No product embeddings"):
        search_products(db, HashingEncoder(16), "mug")
    sync_product_embeddings(db, catalog(), HashingEncoder(16), NOW)
    with pytest.raises(ValueError, match="same model"):
        search_products(db, HashingEncoder(24), "mug")
    with pytest.raises(ValueError, match="empty"):
        search_products(db, HashingEncoder(16), "  ")


def events(rows):
    return pl.DataFrame(rows, schema=["user_id", "product_id", "event_type", "occurred_at"], orient="row")


def test_weights_follow_event_type_recency_and_clip_returns_at_zero():
    t = datetime(2024, 1, 31)
    weights = product_weights(
        events(
            [
                ("u1", "A", "view", t - timedelta(days=30)),  # 1 × 0.5
                ("u1", "A", "purchase", t),  # 5
                ("u1", "B", "purchase", t - timedelta(days=1)),
                ("u1", "B", "return", t),  # 5·0.5^(1/30) − 5 < 0 → 0
            ]
        ),
        half_life_days=30,
        weights=WEIGHTS,
    ).sort("product_id")
    assert weights["weight"].to_list() == pytest.approx([5.5, 0.0])


def test_type_weights_are_given_by_the_caller_and_the_pipeline_gives_dbts():
    # users.py reads no configuration: the weights it is given are the weights it uses, and
    # the ones the pipeline gives it are dbt's interaction_weights, the marts' own.
    assert interaction_weights() == WEIGHTS
    t = datetime(2024, 1, 31)
    history = events([("u1", "A", "view", t), ("u1", "B", "purchase", t)])
    views_only = product_weights(history, 30, {"view": 2.0}).sort("product_id")
    assert views_only["weight"].to_list() == [2.0, 0.0]  # a type it is not given weighs nothing


def test_user_vector_is_the_weighted_mean_of_its_products():
    ids = ["A", "B", "C"]
    matrix = np.eye(3, dtype=np.float32)
    t = datetime(2024, 1, 31)
    result = user_vectors(
        events(
            [
                ("u1", "A", "purchase", t),
                ("u1", "B", "view", t),
                ("u2", "C", "purchase", t),
                ("u2", "C", "return", t),  # everything returned: no vector
                ("u3", "Z", "purchase", t),  # product without a vector
            ]
        ),
        ids,
        matrix,
        30,
        WEIGHTS,
    )
    assert result.user_ids == ["u1"]
    expected = np.array([5, 1, 0]) / np.sqrt(26)
    assert np.allclose(result.vectors[0], expected, atol=1e-6)
    assert result.without_vector == ["u2", "u3"]


def test_a_vector_does_not_depend_on_when_it_is_computed():
    t = datetime(2024, 1, 31)
    ids, matrix = ["A", "B"], np.eye(2, dtype=np.float32)
    history = [("u1", "A", "purchase", t - timedelta(days=60)), ("u1", "B", "view", t)]
    shifted = [(u, p, e, ts + timedelta(days=400)) for u, p, e, ts in history]
    a = user_vectors(events(history), ids, matrix, 30, WEIGHTS).vectors
    b = user_vectors(events(shifted), ids, matrix, 30, WEIGHTS).vectors
    assert np.allclose(a, b)


def random_history(rng, users, products, n, start):
    return [
        (
            f"u{rng.integers(users)}",
            f"P{rng.integers(products)}",
            str(
                rng.choice(["view", "view", "view", "add_to_cart", "purchase", "return", "remove_from_cart"])
            ),
            start + timedelta(minutes=int(rng.integers(60 * 24 * 30))),
        )
        for _ in range(n)
    ]


def test_incremental_user_update_equals_a_full_recompute(tmp_path):
    rng = np.random.default_rng(7)
    products = pl.DataFrame(
        {
            "product_id": [f"P{i}" for i in range(40)],
            "title": [f"Product number {i}" for i in range(40)],
            "description": [None] * 40,
            "category_path": ["Home"] * 40,
            "top_category": ["Home"] * 40,
            "brand": [None] * 40,
            "price": [1.0] * 40,
            "is_listed": [True] * 40,
            "is_merchandise": [True] * 40,
        }
    )
    day_one = events(random_history(rng, 30, 40, 600, datetime(2024, 1, 1)))
    day_two = events(random_history(rng, 30, 40, 80, datetime(2024, 1, 31)))
    everything = pl.concat([day_one, day_two])

    def loader(frame):
        return lambda ids: frame if ids is None else frame.filter(pl.col("user_id").is_in(ids))

    incremental = connect(tmp_path / "incremental")
    sync_product_embeddings(incremental, products, HashingEncoder(16), NOW)
    first = sync_user_embeddings(incremental, loader(day_one), set(), NOW, 30, WEIGHTS, full=False)
    assert first.full  # nothing there yet
    # Day two: two products renamed (re-encoded) and new events for some users.
    renamed = products.with_columns(
        title=pl.when(pl.col("product_id").is_in(["P3", "P4"]))
        .then(pl.lit("Renamed"))
        .otherwise(pl.col("title"))
    )
    sync_product_embeddings(incremental, renamed, HashingEncoder(16), NOW + timedelta(days=1))
    second = sync_user_embeddings(
        incremental,
        loader(everything),
        set(day_two["user_id"].to_list()),
        NOW + timedelta(days=1),
        30,
        WEIGHTS,
    )
    assert not second.full and second.recomputed < 30

    full = connect(tmp_path / "full")
    sync_product_embeddings(full, renamed, HashingEncoder(16), NOW)
    sync_user_embeddings(full, loader(everything), set(), NOW, 30, WEIGHTS, full=True)

    a = read_table(incremental, USER_TABLE).sort("user_id")
    b = read_table(full, USER_TABLE).sort("user_id")
    assert a["user_id"].to_list() == b["user_id"].to_list()
    assert np.allclose(np.array(a["vector"].to_list()), np.array(b["vector"].to_list()), atol=1e-6)


def test_device_plan_and_precision_rules(tmp_path):
    assert plan_for("cuda").dtype == "float16" and plan_for("cuda").batch_size == 512
    assert plan_for("mps").dtype == "float32"
    assert plan_for("cpu", batch_size=8, precision="float32").batch_size == 8
    with pytest.raises(ValueError, match="precision"):
        plan_for("cpu", precision="int4")
    no_bf16 = tmp_path / "cpuinfo"
    no_bf16.write_text("flags\t: fpu avx2 avx512f\n")
    assert not cpu_has_bf16(no_bf16)
    no_bf16.write_text("flags\t: fpu avx512f avx512_bf16\n")
    assert cpu_has_bf16(no_bf16)


def test_hub_ids_are_refused_with_a_clear_message(tmp_path):
    with pytest.raises(ValueError, match="never downloaded"):
        resolve_model_path("sentence-transformers/all-MiniLM-L6-v2")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="not a sentence-transformers model"):
        resolve_model_path(str(tmp_path / "empty"))


def numbered_products(n: int) -> pl.DataFrame:
    """n listed products "Product 0".. "Product n-1" in one category."""
    return pl.DataFrame(
        {
            "product_id": [f"P{i:04d}" for i in range(n)],
            "title": [f"Product {i}" for i in range(n)],
            "description": [None] * n,
            "category_path": ["Home"] * n,
            "top_category": ["Home"] * n,
            "brand": [None] * n,
            "price": [1.0] * n,
            "is_listed": [True] * n,
            "is_merchandise": [True] * n,
        }
    )


def test_a_vector_index_is_built_once_the_search_table_is_large_enough(tmp_path):
    products = numbered_products(600)
    db, encoder = connect(tmp_path), HashingEncoder(16)
    small = sync_product_embeddings(
        db, products.head(100), encoder, NOW, index_min_rows=500, vector_index=True
    )
    assert not small.indexed
    large = sync_product_embeddings(db, products, encoder, NOW, index_min_rows=500, vector_index=True)
    assert large.indexed
    query = product_text("P0042", "Product 42", "Home")
    assert search_products(db, encoder, query, k=1)[0]["product_id"] == "P0042"


def test_the_recommenders_table_gets_no_vector_index_however_large(tmp_path):
    """Nothing queries the recommender's table by ANN (search reads its own table): at 100k
    products the index cost 31 s a build. Search's fallback to it scans exactly."""
    db, encoder = connect(tmp_path), HashingEncoder(16)
    synced = sync_product_embeddings(db, numbered_products(600), encoder, NOW, index_min_rows=500)
    assert not synced.indexed
    assert open_table(db, PRODUCT_TABLE).list_indices() == []
    query = product_text("P0042", "Product 42", "Home")
    assert search_products(db, encoder, query, k=1)[0]["product_id"] == "P0042"


def test_describing_the_encoder_before_any_text_loads_no_model(monkeypatch):
    """A run whose products are all unchanged encodes nothing: reporting the encoder in its
    metadata must not load the model (importing sentence-transformers alone costs seconds)."""
    import embeddings.encoder as encoder_module

    def refuse(*args):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(encoder_module, "_load", refuse)
    encoder = encoder_module.SentenceTransformerEncoder()
    described = encoder.describe()
    assert described["fingerprint"] == encoder.fingerprint
    assert described["dtype"].startswith("not loaded")
    assert encoder.encode([]).shape == (0, encoder.dimension)


def test_read_table_can_read_only_some_columns(tmp_path):
    db = connect(tmp_path)
    sync_product_embeddings(db, catalog(), HashingEncoder(dimension=16), NOW)
    whole = read_table(db, PRODUCT_TABLE)
    some = read_table(db, PRODUCT_TABLE, columns=["product_id", "model_fingerprint"])
    assert some.columns == ["product_id", "model_fingerprint"]
    assert some.sort("product_id").equals(whole.select(some.columns).sort("product_id"))
    assert read_table(db, "absent", columns=["product_id"]) is None


def test_a_text_shared_by_products_is_encoded_once(tmp_path):
    texts = ["mug", "tin", "mug", "hose", "tin"]
    encoder = CountingEncoder()
    vectors = encode_distinct(encoder, texts)
    assert encoder.texts_seen == ["mug", "tin", "hose"]
    np.testing.assert_array_equal(vectors, HashingEncoder(dimension=16).encode(texts))

    twins = catalog(
        title=["Red Ceramic Mug", "Red Ceramic Mug", "Garden Hose 20m"],
        description=[None] * 3,
        category_path=["Home > Mugs"] * 3,
        brand=["Acme", "Acme", "Hoser"],
    )
    encoder = CountingEncoder()
    sync = sync_product_embeddings(connect(tmp_path), twins, encoder, NOW)
    assert sync.encoded == 3 and len(encoder.texts_seen) == 2
    stored = read_table(connect(tmp_path), PRODUCT_TABLE).sort("product_id")
    assert stored["vector"][0].to_list() == stored["vector"][1].to_list() != stored["vector"][2].to_list()
