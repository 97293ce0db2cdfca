"""A simulated online experiment: two arms of shoppers with a planted true lift.

Used two ways: `simulate_shoppers` gives one row per exposed shopper straight away (the
statistical tests and bench/bench_experiment.py run hundreds of experiments in seconds), and
`write_experiment_landing` writes the same draws as landing events (`recommendation_shown`,
`recommendation_clicked`, `add_to_cart`, `purchase`) that the warehouse and the dbt models
read, for `shopguide generate --experiment-lift`.

The model (docs/experiments.md, "Simulating an experiment"):
- each shopper is assigned to the canary with probability `assigned_share` (the configured
  `canary_share` unless a broken split is simulated);
- exposures per shopper: 1 + Poisson(λ), λ varying between shoppers (Gamma), spread
  uniformly over the days;
- each exposure is clicked with the shopper's own probability p (Beta around `base_ctr`),
  times (1 + ctr_lift) in the canary, times a novelty factor 1 + novelty · 0.5^(day / half-life)
  that fades (canary only: the new lists are new);
- each shopper converts with their own probability c (Beta around `base_conversion`) times
  (1 + conversion_lift) in the canary, and spends a log-normal order value.
With `novelty = 0` the planted lifts are exact: E[canary rate] / E[control rate] = 1 + lift
for click-through, conversion and revenue per shopper, which is what the coverage tests check.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from experiments.readout import SHOPPER_SCHEMA
from warehouse.landing import write_jsonl

FILE_NAME = "experiment.jsonl"
SHOWN = 10  # products per exposure
SURFACES = ("home", "product_page", "search", "email")


@dataclass(frozen=True)
class ExperimentSimulation:
    shoppers: int = 4_000
    canary_share: float = 0.5  # what the canary is configured to
    assigned_share: float | None = None  # what routing really does (None: as configured)
    ctr_lift: float = 0.0
    conversion_lift: float = 0.0
    base_ctr: float = 0.05
    base_conversion: float = 0.04
    mean_exposures: float = 4.0
    days: int = 14
    novelty: float = 0.0  # extra canary click-through on day 0, fading
    novelty_half_life_days: float = 2.0
    seed: int = 0


@dataclass(frozen=True)
class _Draws:
    canary: np.ndarray  # per shopper, bool
    exposure_shopper: np.ndarray  # per exposure: shopper index
    exposure_day: np.ndarray  # per exposure: day offset (float, days)
    clicked: np.ndarray  # per exposure, bool
    carted: np.ndarray  # per shopper, bool
    converted: np.ndarray  # per shopper, bool
    order_value: np.ndarray  # per shopper


def _beta_around(rng: np.random.Generator, mean: float, n: int, concentration: float = 20.0) -> np.ndarray:
    return rng.beta(mean * concentration, (1 - mean) * concentration, n)


def _draw(sim: ExperimentSimulation) -> _Draws:
    if not 0 < sim.canary_share < 1:
        raise ValueError("canary_share must lie between 0 and 1")
    rng = np.random.default_rng(sim.seed)
    n = sim.shoppers
    share = sim.canary_share if sim.assigned_share is None else sim.assigned_share
    canary = rng.random(n) < share
    rate = np.maximum(sim.mean_exposures - 1, 0) * rng.gamma(2.0, 0.5, n)
    counts = 1 + rng.poisson(rate)
    shopper = np.repeat(np.arange(n), counts)
    day = rng.random(shopper.size) * sim.days
    p = _beta_around(rng, sim.base_ctr, n)[shopper]
    in_canary = canary[shopper]
    novelty = 1 + sim.novelty * 0.5 ** (day / sim.novelty_half_life_days)
    p = np.where(in_canary, p * (1 + sim.ctr_lift) * novelty, p)
    clicked = rng.random(shopper.size) < np.minimum(p, 1.0)
    c = _beta_around(rng, sim.base_conversion, n)
    c = np.minimum(np.where(canary, c * (1 + sim.conversion_lift), c), 1.0)
    converted = rng.random(n) < c
    # Some shoppers put a recommended product in the cart without buying it.
    carted = converted | (rng.random(n) < c)
    order_value = np.round(rng.lognormal(np.log(30.0), 0.7, n), 2)
    return _Draws(canary, shopper, day, clicked, carted, converted, order_value)


def simulate_shoppers(sim: ExperimentSimulation) -> pl.DataFrame:
    """One row per exposed shopper (experiments.readout.SHOPPER_SCHEMA)."""
    d = _draw(sim)
    n = sim.shoppers
    return pl.DataFrame(
        {
            "user_id": [f"U-{i + 1:07d}" for i in range(n)],
            "arm": np.where(d.canary, "canary", "control"),
            "exposures": np.bincount(d.exposure_shopper, minlength=n),
            "clicks": np.bincount(d.exposure_shopper, weights=d.clicked, minlength=n).astype(np.int64),
            "carted": d.carted.astype(np.int64),
            "converted": d.converted.astype(np.int64),
            "revenue": np.where(d.converted, d.order_value, 0.0),
        },
        schema=SHOPPER_SCHEMA,
    )


def simulate_daily_shoppers(sim: ExperimentSimulation) -> list[pl.DataFrame]:
    """The experiment as the daily readout sees it: for each day d = 1 .. sim.days, one row per
    shopper exposed before the end of day d, counting the exposures and clicks until then and
    the responses (which follow a shopper's last exposure by minutes, as in experiment_events)
    once that last exposure has happened. The last frame equals simulate_shoppers(sim)."""
    d = _draw(sim)
    n = sim.shoppers
    last_seen = np.full(n, -1.0)
    np.maximum.at(last_seen, d.exposure_shopper, d.exposure_day)
    user_ids = np.array([f"U-{i + 1:07d}" for i in range(n)])
    arms = np.where(d.canary, "canary", "control")
    frames = []
    for day in range(1, sim.days + 1):
        shown = d.exposure_day < day
        exposures = np.bincount(d.exposure_shopper[shown], minlength=n)
        clicks = np.bincount(d.exposure_shopper[shown], weights=d.clicked[shown], minlength=n)
        responded = last_seen < day
        present = exposures > 0
        frames.append(
            pl.DataFrame(
                {
                    "user_id": user_ids[present],
                    "arm": arms[present],
                    "exposures": exposures[present],
                    "clicks": clicks[present].astype(np.int64),
                    "carted": (d.carted & responded)[present].astype(np.int64),
                    "converted": (d.converted & responded)[present].astype(np.int64),
                    "revenue": np.where(d.converted & responded, d.order_value, 0.0)[present],
                },
                schema=SHOPPER_SCHEMA,
            )
        )
    return frames


def experiment_events(
    sim: ExperimentSimulation,
    start_date: date,
    product_ids: list[str],
    canary_snapshot: str,
    control_snapshot: str,
) -> list[dict]:
    """The simulated experiment as envelope events, in time order."""
    if len(product_ids) < SHOWN:
        raise ValueError(f"need at least {SHOWN} product ids to show")
    d = _draw(sim)
    rng = np.random.default_rng([sim.seed, 1])
    start = datetime.combine(start_date, time())
    events: list[dict] = []
    last_exposure: dict[int, tuple[datetime, list[str], str]] = {}

    def stamp(moment: datetime) -> str:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    order = np.argsort(d.exposure_day, kind="stable")
    catalog = np.asarray(product_ids)
    for number, j in enumerate(order):
        i = int(d.exposure_shopper[j])
        arm = "canary" if d.canary[i] else "control"
        moment = start + timedelta(days=float(d.exposure_day[j]))
        moment = moment.replace(microsecond=0)
        shown = catalog[rng.choice(catalog.size, SHOWN, replace=False)].tolist()
        common = {
            "occurred_at": stamp(moment),
            "user_id": f"U-{i + 1:07d}",
            "session_id": f"XS-{i + 1:07d}-{int(d.exposure_day[j]):03d}",
        }
        surface = SURFACES[int(rng.integers(len(SURFACES)))]
        properties = {
            "snapshot_id": canary_snapshot if arm == "canary" else control_snapshot,
            "arm": arm,
            "surface": surface,
        }
        events.append(
            {
                "event_id": f"X{number:010d}S",
                "event_type": "recommendation_shown",
                **common,
                "properties": {**properties, "products": shown},
            }
        )
        if d.clicked[j]:
            rank = int(rng.integers(SHOWN)) + 1
            events.append(
                {
                    "event_id": f"X{number:010d}C",
                    "event_type": "recommendation_clicked",
                    **common,
                    "occurred_at": stamp(moment + timedelta(seconds=int(rng.integers(2, 120)))),
                    "product_id": shown[rank - 1],
                    "properties": {**properties, "rank": rank},
                }
            )
        last_exposure[i] = (moment, shown, common["session_id"])
    # Responses follow the shopper's last exposure by minutes, so last-touch attribution
    # credits the arm the shopper is in, whatever the attribution window.
    for i in np.flatnonzero(d.carted):
        moment, shown, session = last_exposure[int(i)]
        product = shown[int(rng.integers(SHOWN))]
        base = {"user_id": f"U-{i + 1:07d}", "session_id": session, "product_id": product, "quantity": 1}
        cart_at = moment + timedelta(minutes=int(rng.integers(3, 30)))
        events.append(
            {"event_id": f"X{i:08d}A", "event_type": "add_to_cart", "occurred_at": stamp(cart_at), **base}
        )
        if d.converted[i]:
            events.append(
                {
                    "event_id": f"X{i:08d}P",
                    "event_type": "purchase",
                    "occurred_at": stamp(cart_at + timedelta(minutes=5)),
                    **base,
                    "price": float(d.order_value[i]),
                    "currency": "EUR",
                }
            )
    events.sort(key=lambda e: (e["occurred_at"], e["event_id"]))
    return events


def write_experiment_landing(
    landing_root: Path,
    sim: ExperimentSimulation,
    start_date: date,
    product_ids: list[str],
    canary_snapshot: str = "canary",
    control_snapshot: str = "control",
) -> dict[date, int]:
    """Write the experiment's events as landing/DAY/experiment.jsonl, one file per day they
    occurred on (they land on time); returns lines per landing day."""
    by_day: dict[date, list[dict]] = {}
    for event in experiment_events(sim, start_date, product_ids, canary_snapshot, control_snapshot):
        by_day.setdefault(date.fromisoformat(event["occurred_at"][:10]), []).append(event)
    return {
        day: write_jsonl(Path(landing_root) / day.isoformat() / FILE_NAME, rows)
        for day, rows in by_day.items()
    }
