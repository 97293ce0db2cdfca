"""Day by day: the shoppers' sessions as funnels, returns, and the catalog's operations.

- registered shoppers (`shoppers.py`) pick a session's categories by their tastes;
  guests (no user_id) by overall category popularity;
- sessions as funnels: optional searches (query text from the category vocabulary,
  product_id null), views (Zipf popularity within the focus leaf/top category), some
  add_to_cart, fewer remove_from_cart, purchases of the carted items at the day's
  price if the session converts; returns by the same user 2-14 days later.

A day comes out as parallel arrays (`DayColumns`) with event numbers assigned; turning
them into envelopes is `events.py`'s job, routing them to landing days `writer.py`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np

from shopguide.sources.synthetic.catalog import Catalog
from shopguide.sources.synthetic.config import (
    ADD,
    DAY,
    HOUR,
    PURCHASE,
    REMOVE,
    RETURN,
    SEARCH,
    UPSERT,
    VIEW,
    SyntheticConfig,
)
from shopguide.sources.synthetic.queries import Queries
from shopguide.sources.synthetic.sampling import (
    categorical,
    cumulative_sampler,
    draw,
    pick_rows,
    within_offsets,
)
from shopguide.sources.synthetic.shoppers import Shoppers
from shopguide.sources.synthetic.vocabulary import COUNTRY_WEIGHTS, DEVICE_WEIGHTS, LEAVES, TOP_WEIGHTS, TOPS

# Sessions never start before SESSION_OPEN (the catalog's operations come first) and
# always end before midnight (see _session_times).
SESSION_OPEN = 5 * HOUR
RETURN_SLOT = (8 * HOUR, 22 * HOUR)

# Behaviour knobs: a session averages ~5.6 events; ~13% of views are carted, ~5.5% bought.
MAX_VIEWS = 30
VIEW_STOP_P = 0.24  # geometric stop probability for views per session
SEARCHES_P = (0.55, 0.33, 0.12)  # P(0, 1, 2 searches in a session)
CART_P = 0.13
REMOVE_P = 0.22
CONVERT_P = 0.55
RETURN_P = 0.07
QUANTITY_P = (0.76, 0.17, 0.07)  # P(1, 2, 3 units)
FOCUS_LEAF_P = 0.60  # a view is in the session's focus leaf category ...
FOCUS_TOP_P = 0.85  # ... else (up to this) its focus top category, else anything the user likes
MAX_GAP_S = 300
# Sessions start by this hourly profile between 06:00 and 21:00 (evening peak).
SESSION_HOURS = np.arange(6, 21)
SESSION_HOUR_WEIGHTS = np.array([1, 2, 3, 4, 4, 5, 5, 4, 4, 5, 6, 7, 8, 8, 7], dtype=float)


@dataclass
class DayColumns:
    """One day's distinct events as parallel arrays, sorted by time, ids assigned."""

    first_id: int
    time: np.ndarray  # seconds after midnight
    etype: np.ndarray
    user: np.ndarray  # -1: guest / none
    session: np.ndarray  # -1: none
    product: np.ndarray  # -1: none
    quantity: np.ndarray  # 0: none
    price: np.ndarray  # nan: none
    query: np.ndarray  # index into the query list, -1: none
    country: np.ndarray  # -1: none
    device: np.ndarray  # -1: none
    aux: np.ndarray  # catalog: op row; return: purchase event number; else -1

    def __len__(self) -> int:
        return len(self.time)


COLUMN_NAMES = (
    "time",
    "etype",
    "user",
    "session",
    "product",
    "quantity",
    "price",
    "query",
    "country",
    "device",
    "aux",
)


class Simulation:
    """Day-by-day state: current prices, what is on sale, pending returns, id counters."""

    def __init__(
        self,
        config: SyntheticConfig,
        catalog: Catalog,
        users: Shoppers,
        queries: Queries,
        *,
        end_day: int | None = None,
        next_event: int = 1,
        next_session: int = 1,
    ):
        """`end_day` (exclusive, default config.days) bounds returns; a continued shop
        passes its own end and the id counters where the shop left off."""
        self.config = config
        self.catalog = catalog
        self.users = users
        self.end_day = config.days if end_day is None else end_day
        self.price = catalog.base_price.copy()
        self.tone = catalog.tone.copy()  # the title tone of each product's latest upsert
        self.next_event = next_event
        self.next_session = next_session
        self.pending_returns: dict[int, list[dict[str, np.ndarray]]] = {}
        self.query_offset = queries.offset
        self.query_count = queries.count
        self._init_groups()

    def catch_up(self, day: int) -> None:
        """Apply the catalog operations before `day` without emitting them: a continued
        shop starts from the prices and titles its earlier days left."""
        catalog = self.catalog
        rows = np.arange(int(np.searchsorted(catalog.op_day, day)))
        upserts = rows[catalog.op_kind[rows] == UPSERT]
        self.price[catalog.op_product[upserts]] = catalog.op_price[upserts]
        self.tone[catalog.op_product[upserts]] = catalog.op_tone[upserts]

    def change_prices(self, rng: np.random.Generator, day: int, share: float) -> int:
        """Schedule new prices for a `share` of the products on sale on `day` (a continued
        shop's catalog still moves); returns how many catalog events that adds."""
        before = self.catalog.event_count
        self.catalog.append_price_changes(rng, day, share, self.price, self.tone)
        return self.catalog.event_count - before

    # ---- structure shared by all days

    def _init_groups(self) -> None:
        """Products laid out by leaf (leaves by top) so every category is a contiguous range."""
        top_of_leaf = np.array([TOPS.index(leaf.top) for leaf in LEAVES], dtype=np.int64)
        leaf_rank = np.argsort(np.argsort(top_of_leaf, kind="stable"), kind="stable")
        self.by_position = np.lexsort((np.arange(self.catalog.size), leaf_rank[self.catalog.leaf]))
        position_leaf = self.catalog.leaf[self.by_position]
        ranked = leaf_rank[position_leaf]
        n_leaves, n_tops = len(LEAVES), len(TOPS)
        self.group_start = np.zeros(n_leaves + n_tops + 1, dtype=np.int64)
        self.group_end = np.zeros_like(self.group_start)
        for lf in range(n_leaves):
            self.group_start[lf] = np.searchsorted(ranked, leaf_rank[lf], side="left")
            self.group_end[lf] = np.searchsorted(ranked, leaf_rank[lf], side="right")
        tops_of_position = top_of_leaf[position_leaf]
        for top in range(n_tops):
            self.group_start[n_leaves + top] = np.searchsorted(tops_of_position, top, side="left")
            self.group_end[n_leaves + top] = np.searchsorted(tops_of_position, top, side="right")
        self.group_start[-1], self.group_end[-1] = 0, self.catalog.size
        self.group_parent = np.concatenate(
            [n_leaves + top_of_leaf, np.full(n_tops, n_leaves + n_tops), [n_leaves + n_tops]]
        )
        # A session's focus leaf within its top category, by the leaf's total popularity.
        self.leaf_by_top = np.argsort(top_of_leaf, kind="stable")
        leaf_weight = np.bincount(self.catalog.leaf, weights=self.catalog.popularity, minlength=n_leaves)
        self.leaf_cum = cumulative_sampler(leaf_weight[self.leaf_by_top].astype(np.int64) + 1)
        sorted_tops = top_of_leaf[self.leaf_by_top]
        starts = np.searchsorted(sorted_tops, np.arange(n_tops), side="left")
        ends = np.searchsorted(sorted_tops, np.arange(n_tops), side="right")
        padded = np.concatenate([[0], self.leaf_cum])
        self.top_leaf_base = padded[starts]
        self.top_leaf_mass = padded[ends] - padded[starts]
        self.global_top_cum = np.cumsum(TOP_WEIGHTS / TOP_WEIGHTS.sum()).astype(np.float32)

    # ---- one day

    def run_day(self, rng: np.random.Generator, day: int, budget: int) -> DayColumns:
        """Catalog ops, due returns and sessions of `day`; exactly `budget` behavioural events."""
        parts = [self._catalog_ops(day)]
        returns = self._due_returns(day, budget)
        parts.append(returns)
        self._set_alive(day)
        need = budget - len(returns["time"])
        while need > 0:
            batch = self._sessions(rng, day, need)
            need -= len(batch["time"])
            parts.append(batch)
        merged = {name: np.concatenate([part[name] for part in parts]) for name in COLUMN_NAMES}
        order = np.argsort(merged["time"], kind="stable")
        columns = DayColumns(self.next_event, **{name: merged[name][order] for name in COLUMN_NAMES})
        self.next_event += len(columns)
        self._schedule_returns(rng, day, columns)
        return columns

    def _catalog_ops(self, day: int) -> dict[str, np.ndarray]:
        """Apply the day's upserts to current prices and emit them (ops run before sessions)."""
        catalog = self.catalog
        lo, hi = np.searchsorted(catalog.op_day, [day, day + 1])
        rows = np.arange(lo, hi)
        upserts = rows[catalog.op_kind[rows] == UPSERT]
        self.price[catalog.op_product[upserts]] = catalog.op_price[upserts]  # ops are in time order
        self.tone[catalog.op_product[upserts]] = catalog.op_tone[upserts]
        return block(
            len(rows),
            time=catalog.op_time[rows],
            etype=catalog.op_kind[rows],
            product=catalog.op_product[rows],
            price=catalog.op_price[rows],
            aux=rows,
        )

    def _set_alive(self, day: int) -> None:
        """Per-day cumulative popularity of products a session may touch, with fallbacks."""
        catalog = self.catalog
        alive = (catalog.upsert_day <= day) & (day < catalog.delist_day)
        weights = np.where(alive, catalog.popularity, 0)[self.by_position]
        self.cum = cumulative_sampler(weights)
        padded = np.concatenate([[0], self.cum])
        base = padded[self.group_start]
        mass = padded[self.group_end] - base
        # An empty leaf borrows its top, an empty top the whole shop (processed child → parent).
        for group in range(len(mass)):
            parent = group
            while mass[parent] == 0 and self.group_parent[parent] != parent:
                parent = self.group_parent[parent]
            base[group], mass[group] = base[parent], mass[parent]
        if mass[-1] == 0:
            raise ValueError(f"no product is on sale on day {day}")
        self.group_base, self.group_mass = base, mass

    def _sample_products(self, rng: np.random.Generator, groups: np.ndarray) -> np.ndarray:
        position = draw(rng, self.cum, self.group_base[groups], self.group_mass[groups])
        return self.by_position[position]

    def _sessions(self, rng: np.random.Generator, day: int, need: int) -> dict[str, np.ndarray]:
        """A batch of funnel sessions trimmed to at most `need` events (last one cut short)."""
        n = max(8, int(need / 4.2) + 8)
        users, n_leaves = self.users, len(LEAVES)
        guest = rng.random(n) < self.config.guest_share
        user = np.minimum(
            np.searchsorted(users.activity_cum, rng.random(n) * users.activity_cum[-1], side="right"),
            users.size - 1,
        )
        user = np.where(guest, -1, user)
        taste = np.where(
            guest[:, None], self.global_top_cum[None, :], users.affinity_cum[np.maximum(user, 0)]
        )
        focus_top = pick_rows(rng, taste)
        focus_leaf = self.leaf_by_top[
            draw(rng, self.leaf_cum, self.top_leaf_base[focus_top], self.top_leaf_mass[focus_top])
        ]
        country = np.where(guest, categorical(rng, COUNTRY_WEIGHTS, n), users.country[np.maximum(user, 0)])
        device = categorical(rng, DEVICE_WEIGHTS, n)
        views = np.minimum(rng.geometric(VIEW_STOP_P, n), MAX_VIEWS)
        searches = categorical(rng, SEARCHES_P, n)
        converts = rng.random(n) < CONVERT_P

        # Views: focus leaf, focus top, or another category the shopper likes.
        v_session = np.repeat(np.arange(n), views)
        v_index = within_offsets(views)
        mode = rng.random(len(v_session))
        other_top = pick_rows(rng, taste[v_session])
        group = np.where(
            mode < FOCUS_LEAF_P,
            focus_leaf[v_session],
            n_leaves + np.where(mode < FOCUS_TOP_P, focus_top[v_session], other_top),
        )
        v_product = self._sample_products(rng, group)
        carted = rng.random(len(v_session)) < CART_P
        quantity = (categorical(rng, QUANTITY_P, len(v_session)) + 1) * carted
        removed = carted & (rng.random(len(v_session)) < REMOVE_P)
        bought = carted & ~removed & converts[v_session]

        # Searches: the first opens the session, a second one comes after the middle view.
        s1 = np.flatnonzero(searches >= 1)
        s2 = np.flatnonzero(searches >= 2)
        s_session = np.concatenate([s1, s2])
        s_key = np.concatenate([np.zeros(len(s1), np.int64), 4 * ((views[s2] - 1) // 2) + 3])
        leaf_of = focus_leaf[s_session]
        s_query = self.query_offset[leaf_of] + np.minimum(
            (self.query_count[leaf_of] * rng.random(len(s_session)) ** 2.2).astype(np.int64),
            self.query_count[leaf_of] - 1,
        )

        # Funnel order within a session: view j (key 4j+1), its cart (4j+2), removals, checkout.
        pieces = [
            (s_session, s_key, SEARCH, -1, 0, s_query),
            (v_session, 4 * v_index + 1, VIEW, v_product, 0, -1),
            (
                v_session[carted],
                4 * v_index[carted] + 2,
                ADD,
                v_product[carted],
                quantity[carted],
                -1,
            ),
            (
                v_session[removed],
                1000 + v_index[removed],
                REMOVE,
                v_product[removed],
                quantity[removed],
                -1,
            ),
            (
                v_session[bought],
                2000 + v_index[bought],
                PURCHASE,
                v_product[bought],
                quantity[bought],
                -1,
            ),
        ]
        session = np.concatenate([p[0] for p in pieces])
        key = np.concatenate([p[1] for p in pieces])
        order = np.lexsort((key, session))
        session = session[order]
        etype = np.concatenate([np.full(len(p[0]), p[2]) for p in pieces])[order]
        product = np.concatenate([np.broadcast_to(p[3], len(p[0])) for p in pieces])[order]
        qty = np.concatenate([np.broadcast_to(p[4], len(p[0])) for p in pieces])[order]
        query = np.concatenate([np.broadcast_to(p[5], len(p[0])) for p in pieces])[order]

        lengths = np.bincount(session, minlength=n)
        position = within_offsets(lengths)
        time = _session_times(rng, session, position, lengths)
        keep = _trim_to(lengths, session, position, need)
        used = int(session[keep].max()) + 1 if keep.any() else 0
        session_ids = self.next_session + session
        self.next_session += used
        session, etype, product, qty, query, time = (
            a[keep] for a in (session, etype, product, qty, query, time)
        )
        return block(
            len(session),
            time=time,
            etype=etype,
            user=user[session],
            session=session_ids[keep],
            product=product,
            quantity=qty,
            price=np.where(product >= 0, self.price[np.maximum(product, 0)], np.nan),
            query=query,
            country=country[session],
            device=device[session],
        )

    def _schedule_returns(self, rng: np.random.Generator, day: int, columns: DayColumns) -> None:
        """Some registered buyers send an item back 2-14 days later, while it is still listed."""
        purchase = np.flatnonzero((columns.etype == PURCHASE) & (columns.user >= 0))
        purchase = purchase[rng.random(len(purchase)) < RETURN_P]
        back_on = day + rng.integers(2, 15, len(purchase))
        ok = (back_on < self.end_day) & (back_on < self.catalog.delist_day[columns.product[purchase]])
        purchase, back_on = purchase[ok], back_on[ok]
        if not len(purchase):
            return
        quantity = rng.integers(1, columns.quantity[purchase].astype(np.int64) + 1)
        time = rng.integers(*RETURN_SLOT, len(purchase))
        for target in np.unique(back_on).tolist():
            rows = purchase[back_on == target]
            pick = back_on == target
            self.pending_returns.setdefault(target, []).append(
                block(
                    len(rows),
                    time=time[pick],
                    etype=np.full(len(rows), RETURN),
                    user=columns.user[rows],
                    product=columns.product[rows],
                    quantity=quantity[pick],
                    price=columns.price[rows],
                    country=columns.country[rows],
                    aux=columns.first_id + rows,
                )
            )

    def _due_returns(self, day: int, budget: int) -> dict[str, np.ndarray]:
        """Returns due today, at most `budget` of them (the day's event total is exact)."""
        chunks = self.pending_returns.pop(day, [])
        if not chunks:
            return block(0)
        return {name: np.concatenate([c[name] for c in chunks])[:budget] for name in COLUMN_NAMES}


def block(n: int, **columns) -> dict[str, np.ndarray]:
    """A column dict with defaults for the columns a part of the day does not have."""
    defaults = {
        "time": 0,
        "etype": 0,
        "user": -1,
        "session": -1,
        "product": -1,
        "quantity": 0,
        "price": np.nan,
        "query": -1,
        "country": -1,
        "device": -1,
        "aux": -1,
    }
    dtypes = {"price": np.float64}
    out = {}
    for name in COLUMN_NAMES:
        value = columns.get(name, defaults[name])
        out[name] = np.broadcast_to(np.asarray(value, dtype=dtypes.get(name, np.int64)), (n,)).copy()
    return out


def _session_times(rng, session, position, lengths) -> np.ndarray:
    """Seconds after midnight: a start by the hourly profile, then 1-300 s between events.

    The start is pulled earlier when needed so the session ends before midnight; the
    longest possible session (~92 events x 300 s) still starts after SESSION_OPEN.
    """
    n = len(lengths)
    hour = SESSION_HOURS[categorical(rng, SESSION_HOUR_WEIGHTS, n)]
    start = hour * HOUR + rng.integers(0, HOUR, n)
    gaps = np.clip(np.rint(rng.lognormal(np.log(25.0), 0.9, len(session))), 1, MAX_GAP_S).astype(np.int64)
    gaps[position == 0] = 0
    running = np.cumsum(gaps)
    offset = running - np.repeat(running[np.cumsum(lengths) - lengths], lengths)
    duration = offset[np.cumsum(lengths) - 1]  # every session has at least one view
    start = np.maximum(np.minimum(start, DAY - 1 - duration), SESSION_OPEN)
    return start[session] + offset


def _trim_to(lengths: np.ndarray, session: np.ndarray, position: np.ndarray, need: int) -> np.ndarray:
    """Keep whole sessions in order until `need` events, cutting the last one short."""
    ends = np.cumsum(lengths)
    last = int(np.searchsorted(ends, need, side="left"))
    if last >= len(lengths):
        return np.ones(len(session), dtype=bool)
    allowed = need - (ends[last - 1] if last else 0)
    return (session < last) | ((session == last) & (position < allowed))


def day_budgets(rng: np.random.Generator, config: SyntheticConfig, budget: int) -> np.ndarray:
    """Behavioural events per day: weekends busier, mild growth, exact total."""
    weekday = np.array([(config.start_date + timedelta(days=d)).weekday() for d in range(config.days)])
    weights = np.where(weekday >= 5, 1.25, 1.0) * (1.0 + 0.25 * np.arange(config.days) / config.days)
    return rng.multinomial(budget, weights / weights.sum())
