"""Reading a shop's event log and catalog for the evaluation, from the warehouse and LanceDB."""

from __future__ import annotations

from embeddings.store import PRODUCT_TABLE, read_table
from embeddings.store import connect as connect_lancedb
from evaluation.protocol import ShopData
from shopguide.settings import Paths
from warehouse.store import connect

EVENTS_SQL = """
    select user_id, session_id, product_id, event_type, occurred_at, country
    from fct_events where product_id is not null
"""


def load_shop_data(paths: Paths) -> ShopData:
    with connect(paths.warehouse, read_only=True) as con:
        products = con.sql("select * from dim_products").pl()
        users = con.sql("select user_id, country from dim_users").pl()
        events = con.sql(EVENTS_SQL).pl()
    vectors = read_table(connect_lancedb(paths.lancedb), PRODUCT_TABLE)
    if vectors is None:
        raise ValueError(
            "No product embeddings yet: run the pipeline first (`shopguide demo` or `shopguide run`)."
        )
    return ShopData(
        products=products, product_vectors=vectors.select("product_id", "vector"), users=users, events=events
    )
