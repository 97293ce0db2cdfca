"""A day's event columns as envelopes: JSON Lines bytes or Parquet row dicts.

Ids: `event_id` E0000000001 (the simulation's event number), `user_id` U-0000001,
`session_id` S-000000001, `product_id` SKU-000001; prices in EUR.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import numpy as np
import orjson

from shopguide.sources.synthetic.catalog import Catalog
from shopguide.sources.synthetic.config import DELIST, RETURN, UPSERT
from shopguide.sources.synthetic.queries import Queries
from shopguide.sources.synthetic.simulation import DayColumns
from shopguide.sources.synthetic.vocabulary import COUNTRIES, DELIST_REASONS, DEVICES, LEAVES, RETURN_REASONS
from warehouse.envelope import EVENT_TYPES

CURRENCY = "EUR"


class EventEncoder:
    """Turns `DayColumns` into envelopes; holds the lookups every day shares."""

    def __init__(self, catalog: Catalog, queries: Queries, start_date: date):
        self.catalog = catalog
        self.queries = queries.texts
        self.start_date = start_date
        self.product_ids = [f"SKU-{i + 1:06d}" for i in range(catalog.size)]

    def payloads(self, day: int, columns: DayColumns, fmt: str) -> list:
        """The day's events as JSON bytes (jsonl) or row dicts (parquet), in column order.

        JSON Lines keeps only the bytes (one dict alive at a time); Parquet needs the dicts.
        """
        stamps = _stamps(self.start_date + timedelta(days=day), columns.time)
        rows = self._rows(columns, stamps)
        if fmt == "jsonl":
            return _compact_lines(rows)
        return list(rows)

    def _rows(self, columns: DayColumns, stamps: list[str]) -> Iterator[dict]:
        """One envelope dict per event; the column lists make this a plain Python loop."""
        product_ids, queries = self.product_ids, self.queries
        session_props = [[{"country": c, "device": d} for d in DEVICES] for c in COUNTRIES]
        fields = (
            columns.etype.tolist(),
            stamps,
            columns.user.tolist(),
            columns.session.tolist(),
            columns.product.tolist(),
            columns.quantity.tolist(),
            columns.price.tolist(),
            columns.query.tolist(),
            columns.country.tolist(),
            columns.device.tolist(),
            columns.aux.tolist(),
        )
        number = columns.first_id
        for etype, stamp, user, session, product, qty, price, query, country, device, aux in zip(
            *fields, strict=True
        ):
            if etype == UPSERT:
                properties = self._upsert_properties(aux)
            elif etype == DELIST:
                properties = {"reason": DELIST_REASONS[aux % len(DELIST_REASONS)]}
            elif etype == RETURN:
                properties = {
                    "country": COUNTRIES[country],
                    "reason": RETURN_REASONS[aux % len(RETURN_REASONS)],
                    "purchase_event_id": f"E{aux:010d}",
                }
            else:
                properties = session_props[country][device]
            priced = price == price  # nan marks "no price"
            yield {
                "event_id": f"E{number:010d}",
                "event_type": EVENT_TYPES[etype],
                "occurred_at": stamp,
                "user_id": f"U-{user + 1:07d}" if user >= 0 else None,
                "session_id": f"S-{session:09d}" if session >= 0 else None,
                "product_id": product_ids[product] if product >= 0 else None,
                "quantity": qty or None,
                "price": price if priced else None,
                "currency": CURRENCY if priced else None,
                "query": queries[query] if query >= 0 else None,
                "properties": properties,
            }
            number += 1

    def _upsert_properties(self, op_row: int) -> dict:
        catalog = self.catalog
        product, tone = int(catalog.op_product[op_row]), int(catalog.op_tone[op_row])
        return {
            "title": catalog.title(product, tone),
            "description": catalog.description(product, tone),
            "category": LEAVES[catalog.leaf[product]].path,
            "brand": catalog.brand[product],
        }


def _compact_lines(rows: Iterator[dict]) -> list[bytes]:
    """JSON lines as tightly sized bytes objects.

    orjson returns each result in a ~4 KiB allocation; holding a day of them (up to ~400k
    lines at 1e7 events) would cost gigabytes. Streaming them through one buffer and
    splitting it gives exact-size objects. orjson escapes newlines inside strings, so
    b"\\n" only ever separates lines.
    """
    buffer = bytearray()
    for row in rows:
        buffer += orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE)
    return bytes(buffer).split(b"\n")[:-1]


def _stamps(day: date, seconds: np.ndarray) -> list[str]:
    """RFC 3339 UTC strings ("2024-01-01T10:00:00Z") for seconds after midnight of `day`."""
    midnight = np.datetime64(day.isoformat(), "s")
    text = np.datetime_as_string(midnight + seconds.astype("timedelta64[s]"), unit="s")
    return [f"{t}Z" for t in text.tolist()]
