"""Reading a shop's event log and catalog from the warehouse and LanceDB: what the nightly
recommendation tables, the offline evaluation and champion/challenger all start from."""

from __future__ import annotations

from datetime import datetime

from core.dbt_manifest import interaction_weights
from core.errors import NotReady
from core.settings import Paths
from embeddings.store import PRODUCT_TABLE, read_table
from embeddings.store import connect as connect_lancedb
from recommendations.shop import ShopData
from warehouse.store import connect

EVENTS_SQL = """
    select user_id, session_id, product_id, event_type, occurred_at, country
    from fct_events where product_id is not null and occurred_at < ?
"""


def load_shop_data(paths: Paths, before: datetime = datetime.max) -> ShopData:
    """The catalog, the shoppers, the product vectors (with their model fingerprint) and the
    product events that happened before `before` (default: all of them)."""
    with connect(paths.warehouse, read_only=True) as con:
        products = con.sql("select * from dim_products").pl()
        users = con.sql("select user_id, country from dim_users").pl()
        events = con.sql(EVENTS_SQL, params=[before]).pl()
    vectors = read_table(connect_lancedb(paths.lancedb_uri), PRODUCT_TABLE)
    if vectors is None:
        raise NotReady(
            "No product embeddings yet: materialise product_embeddings first "
            "(`shopguide demo`, `shopguide run --date D`, or the nightly job)."
        )
    return ShopData(
        products=products,
        product_vectors=vectors,
        users=users,
        events=events,
        interaction_weights=interaction_weights(),
    )
