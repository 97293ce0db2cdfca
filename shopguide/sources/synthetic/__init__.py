"""Producer: a deterministic synthetic shop event stream, written as landing files.

Why it exists: the real data (Online Retail) has purchases and returns only, one
country mostly, and a fixed size. Scale tests need 1e3..1e7 events on demand, and the
recommenders and text embeddings need the event types the real data lacks (views,
carts, searches, an evolving catalog) with enough structure to learn from.

One job per module:
- `config`: what to generate (`SyntheticConfig`), what was written (`SyntheticSummary`);
- `vocabulary`: the words (categories, titles, brands, countries);
- `catalog`: products and the schedule of upserts, updates and delists;
- `shoppers`: registered shoppers' countries, tastes and activity;
- `queries`: search phrases per category;
- `simulation`: day by day, sessions as funnels and returns, as event columns;
- `events`: event columns as envelopes (JSON Lines bytes or Parquet rows);
- `writer`: late, duplicate and malformed lines routed to landing days, files written;
- `shop`: `generate` a shop, or `continue_shop` one with more days.

Determinism: every random draw comes from `numpy.random.default_rng` streams derived
from the seed, in a fixed order; nothing depends on the wall clock, set order or
`hash()`. Same config → byte-identical files. Memory is bounded by one day of events
plus the few late/duplicate lines waiting for a later landing day.
"""

from shopguide.sources.synthetic.config import FORMATS, SyntheticConfig, SyntheticSummary
from shopguide.sources.synthetic.shop import STATE_FILE, NoShopToContinue, continue_shop, generate, load_state

__all__ = [
    "FORMATS",
    "STATE_FILE",
    "NoShopToContinue",
    "SyntheticConfig",
    "SyntheticSummary",
    "continue_shop",
    "generate",
    "load_state",
]
