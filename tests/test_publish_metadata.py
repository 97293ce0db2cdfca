"""What the published_recommendations asset reports to the UI about a night's tables."""

import polars as pl

from assets.recommendations import _result
from evaluation.champion import Verdict
from serving.gate import GateResult


def test_shoppers_are_counted_once_per_source_they_got_rows_from():
    # u1: personal picks topped up from the cold-start list; u2 personal only; u3 cold start.
    recs = pl.DataFrame(
        {
            "user_id": ["u1", "u1", "u1", "u2", "u2", "u3", "u3"],
            "rank": [1, 2, 3, 1, 2, 1, 2],
            "source": ["personal", "personal", "popular", "personal", "personal", "popular", "popular"],
        }
    )
    tables = {
        "user_recommendations": recs,
        "similar_products": pl.DataFrame({"product_id": ["p1"]}),
        "popular_products": pl.DataFrame({"product_id": ["p1", "p2"]}),
    }
    result = _result("snap-1", GateResult(checks=[]), True, Verdict(True, "ok"), tables, 0, 0, "ranker-x")
    metadata = result.metadata
    assert metadata["users_by_source"].data == {"personal": 2, "popular": 2}
    assert metadata["dagster/row_count"] == 7
    assert metadata["popular_products_rows"] == 2
