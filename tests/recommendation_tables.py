"""Tiny but complete recommendation tables, shared by the serving and data-quality tests."""

import polars as pl

USERS = [f"u{i:02d}" for i in range(20)]


def make_tables(
    offset: int = 0, users=USERS, k: int = 10, source: str = "personal"
) -> dict[str, pl.DataFrame]:
    """Tiny but complete tables; `offset` shifts every user's list (another version)."""
    recs = [
        {
            "user_id": user,
            "rank": rank,
            "product_id": f"P{(u + rank + offset) % 40:02d}",
            "score": 1.0 / rank,
            "content_score": 0.5,
            "graph_score": 0.25,
            "popularity_score": None,
            "reason": f"v{offset}",
            "source": source,
        }
        for u, user in enumerate(users)
        for rank in range(1, k + 1)
    ]
    similar = [
        {
            "product_id": f"P{p:02d}",
            "rank": rank,
            "similar_product_id": f"P{(p + rank) % 40:02d}",
            "score": 1.0 / rank,
            "content_score": 0.9,
            "cooccurrence_score": 0.1,
            "reason": "bought together",
            "source": "content+cooccurrence",
        }
        for p in range(10)
        for rank in range(1, 6)
    ]
    popular = [
        {
            "list": lst,
            "segment_type": segment_type,
            "segment": segment,
            "window_days": window,
            "rank": rank,
            "product_id": f"P{(rank * 3 + window + offset) % 40:02d}",
            "score": 100.0 - rank,
            "reason": f"popular in {segment} over {window} days",
        }
        for lst, segment_type, segment, windows in [
            ("popular", "overall", "all", (7, 30)),
            ("popular", "category", "Home", (30,)),
            ("popular", "country", "France", (30,)),
            ("trending", "overall", "all", (7,)),
        ]
        for window in windows
        for rank in range(1, 11)
    ]
    products = pl.DataFrame(
        {
            "product_id": [f"P{p:02d}" for p in range(40)],
            "title": [f"Product {p}" for p in range(40)],
            "category_path": ["Home > Kitchen" if p % 2 else None for p in range(40)],
            "price": [float(p) + 0.5 for p in range(40)],
        }
    )
    return {
        "user_recommendations": pl.DataFrame(recs),
        "similar_products": pl.DataFrame(similar),
        "popular_products": pl.DataFrame(popular),
        "products": products,
    }
