"""Generate a shop, or continue one: wires catalog, shoppers, simulation and writer together
and keeps the shop's state beside its landing files so more days can follow later."""

from __future__ import annotations

import os
from dataclasses import asdict
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import orjson

from core.errors import BadInput
from shopguide.sources.synthetic.catalog import build_catalog
from shopguide.sources.synthetic.config import FORMATS, SyntheticConfig, SyntheticSummary
from shopguide.sources.synthetic.events import EventEncoder
from shopguide.sources.synthetic.queries import build_queries
from shopguide.sources.synthetic.shoppers import build_shoppers
from shopguide.sources.synthetic.simulation import Simulation, day_budgets
from shopguide.sources.synthetic.writer import LandingWriter

# Hidden (dot) name at the landing root: not a day folder, so ingestion never reads it.
STATE_FILE = ".synthetic-shop.json"
# On a continued day this share of the products on sale gets a new price (a 5,000-product
# shop: ~10 a day), so the nightly still sees catalog changes on the new days.
CONTINUED_PRICE_CHANGE_SHARE = 0.002


class NoShopToContinue(BadInput):
    pass


def generate(landing_root: Path, config: SyntheticConfig, fmt: str = "jsonl") -> SyntheticSummary:
    """Write `landing_root/<day>/synthetic.<fmt>` for every landing day, and the shop's state
    (`STATE_FILE`) for `continue_shop`.

    Files are replaced atomically; files an earlier run wrote for other days are left alone,
    so use a fresh landing root when changing `days` or `start_date`.
    """
    if fmt not in FORMATS:
        raise BadInput(f"fmt must be one of {FORMATS}, got {fmt!r}")
    seeds = np.random.SeedSequence(config.seed).spawn(4)
    catalog = build_catalog(np.random.default_rng(seeds[0]), config)
    budget = config.events - catalog.event_count
    if budget < 0:
        raise BadInput(
            f"{config.events} events cannot hold the catalog's {catalog.event_count} "
            "product events; raise events or lower products"
        )
    users = build_shoppers(np.random.default_rng(seeds[1]), config.user_count)
    budgets = day_budgets(np.random.default_rng(seeds[2]), config, budget)
    writer = LandingWriter(landing_root, config, fmt, np.random.default_rng(seeds[3]))
    queries = build_queries()
    simulation = Simulation(config, catalog, users, queries)
    encoder = EventEncoder(catalog, queries, config.start_date)
    for day in range(config.days):
        rng = np.random.default_rng(_day_seed(config.seed, day))
        columns = simulation.run_day(rng, day, int(budgets[day]))
        writer.add_day(rng, day, columns, encoder.payloads(day, columns, fmt))
    summary = writer.finish()
    state = {
        "config": _config_record(config),
        "format": fmt,
        "continued_days": [],
    }
    _save_state(landing_root, state, config, summary, simulation, writer)
    return summary


def continue_shop(landing_root: Path, days: int = 1, events: int | None = None) -> SyntheticSummary:
    """Append `days` days to the shop generated under `landing_root`: the same catalog and
    shoppers, event, session and malformed-line ids after the last ones written, days after
    the last landing day (so no earlier file is touched). `events` (valid, distinct, over
    all the new days) defaults to the shop's daily average.

    Randomness for a new day comes from the shop's seed and the day's index, as it would for
    a longer first run; the same sequence of continuations writes the same files.
    """
    if days < 1:
        raise BadInput("days must be >= 1")
    state = load_state(landing_root)
    config = SyntheticConfig(
        **{**state["config"], "start_date": date.fromisoformat(state["config"]["start_date"])}
    )
    fmt = state["format"]
    first = state["next_day"]
    if events is None:
        events = max(1, round(config.events / config.days)) * days
    if events < 1:
        raise BadInput("events must be >= 1")

    seeds = np.random.SeedSequence(config.seed).spawn(4)
    catalog = build_catalog(np.random.default_rng(seeds[0]), config)
    users = build_shoppers(np.random.default_rng(seeds[1]), config.user_count)
    queries = build_queries()
    end = first + days
    simulation = Simulation(
        config,
        catalog,
        users,
        queries,
        end_day=end,
        next_event=state["next_event"],
        next_session=state["next_session"],
    )
    # Earlier continuations changed prices; their draws come first in their day's stream,
    # so drawing them again gives the same changes without simulating those days.
    for day in state["continued_days"]:
        simulation.catch_up(day)
        simulation.change_prices(
            np.random.default_rng(_day_seed(config.seed, day)), day, CONTINUED_PRICE_CHANGE_SHARE
        )
    simulation.catch_up(first)

    segment = SyntheticConfig(
        **{
            **asdict(config),
            "events": events,
            "days": days,
            "start_date": config.start_date + timedelta(days=first),
        }
    )
    budgets = day_budgets(
        np.random.default_rng(np.random.SeedSequence([config.seed, 3], spawn_key=(first,))), segment, events
    )
    flush_rng = np.random.default_rng(np.random.SeedSequence([config.seed, 4], spawn_key=(first,)))
    writer = LandingWriter(landing_root, config, fmt, flush_rng, next_malformed=state["next_malformed"])
    encoder = EventEncoder(catalog, queries, config.start_date)
    for day in range(first, end):
        rng = np.random.default_rng(_day_seed(config.seed, day))
        added = simulation.change_prices(rng, day, CONTINUED_PRICE_CHANGE_SHARE)
        # The day's total is exact: its catalog events come out of its budget.
        columns = simulation.run_day(rng, day, max(0, int(budgets[day - first]) - added))
        writer.add_day(rng, day, columns, encoder.payloads(day, columns, fmt))
    summary = writer.finish()
    state["continued_days"] = [*state["continued_days"], *range(first, end)]
    _save_state(landing_root, state, config, summary, simulation, writer)
    return summary


def load_state(landing_root: Path) -> dict:
    path = landing_root / STATE_FILE
    if not path.is_file():
        raise NoShopToContinue(f"no synthetic shop to continue under {landing_root} (no {STATE_FILE})")
    return orjson.loads(path.read_bytes())


def _day_seed(seed: int, day: int) -> np.random.SeedSequence:
    """Day `day`'s stream: the same as SeedSequence([seed, 1]).spawn(n)[day] for any n > day,
    so a day's draws never depend on how many days one run covers."""
    return np.random.SeedSequence([seed, 1], spawn_key=(day,))


def _config_record(config: SyntheticConfig) -> dict:
    """The config that rebuilds the catalog and shoppers; counts resolved so a continuation
    never re-derives them from a different `events`."""
    record = asdict(config)
    record["start_date"] = config.start_date.isoformat()
    record["products"] = config.product_count
    record["users"] = config.user_count
    return record


def _save_state(landing_root, state, config, summary, simulation, writer) -> None:
    """Where the shop left off. Written after its files, so a failed run leaves the old
    state (a continuation then rewrites the same days)."""
    last = max((date.fromisoformat(p.parent.name) for p in summary.files), default=None)
    next_day = (last - config.start_date).days + 1 if last else state.get("next_day", 0)
    state = {
        **state,
        "next_day": max(next_day, state.get("next_day", 0)),
        "next_event": simulation.next_event,
        "next_session": simulation.next_session,
        "next_malformed": writer.next_malformed,
    }
    landing_root.mkdir(parents=True, exist_ok=True)
    path = landing_root / STATE_FILE
    tmp = path.with_name(f"{path.name}.tmp")
    tmp.write_bytes(orjson.dumps(state, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    os.replace(tmp, path)
