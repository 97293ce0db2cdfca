"""The data-quality suites, declared as data: great-expectations expectations with a severity.

Each suite is a list of GX expectation objects; `meta["severity"]` says what a failure does:

- ``error``: blocks. The Dagster check on the asset is blocking, so nothing downstream runs
  (and nothing is published); on the recommendation tables the publish gate refuses.
- ``warn``: shown (Dagster UI, the history table, Data Docs) and blocks nothing.

Where a little of something is normal (a retried event), the strict rule warns and a
tolerant version (`mostly`) blocks: a landing day that is mostly copies of itself is a
producer replaying its stream and must not reach the storefront.

Suites are built by functions, not module constants: some rules depend on the run (the
clock for "not in the future") and GX binds an expectation object to one suite, so every
validation gets fresh objects. great_expectations is imported inside the builders: it costs
seconds, and the Dagster definitions import this package's callers at load time.

Which frame each suite validates (`quality/frames.py`; the two event suites are judged from
DuckDB aggregates over it, quality/aggregate.py, the others on the frame in pandas):

| suite | frame |
|---|---|
| raw_events | raw_events of the checked landing days (one batch per run), with `repeated_event_id` |
| raw_events_volume | one row per checked landing day, from ingestion_log |
| events | fct_events rows landed in the checked days, with `unknown_product_id` |
| products | dim_products (current state, whole table) |
| embeddings | product_embeddings in LanceDB: id, vector norm, model fingerprint |
| user_recommendations, similar_products, popular_products | a candidate snapshot's tables |
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from warehouse.envelope import (
    CATALOG_EVENT_TYPES,
    EARLIEST_OCCURRED_AT,
    EVENT_TYPES,
    PRODUCT_EVENT_TYPES,
    QUANTITY_EVENT_TYPES,
)

ERROR = "error"
WARN = "warn"
SEVERITIES = (ERROR, WARN)

SHOPPER_EVENT_TYPES = tuple(t for t in EVENT_TYPES if t not in CATALOG_EVENT_TYPES)


@dataclass(frozen=True)
class Thresholds:
    """The numbers behind the rules; tune per shop.

    The envelope (warehouse/envelope.py) already refuses what can never be right (a negative
    price, a price over 1e6, a timestamp outside its landing window); these bounds are about
    what is plausible for *this* shop. Online Retail's largest unit price is 38,970 (a manual
    adjustment) and its largest line 80,995 units, both inside the defaults.
    """

    max_price: float = 100_000.0
    max_quantity: int = 100_000
    # Rows whose event_id repeats within their landing day: a retry now and then is normal
    # (dbt keeps the first copy) and only warns; above this share the producer replayed its
    # stream. Generous, because a retry on a ten-line day is already a fifth of the day.
    max_duplicate_share: float = 0.5
    volume_low: float = 0.2  # accepted events vs the trailing median of landing days with files
    volume_high: float = 5.0
    volume_trailing_days: int = 28
    volume_min_history: int = 5  # fewer landing days with files before it: not judged
    max_quarantine_share_warn: float = 0.05
    max_quarantine_share_error: float = 0.5
    norm_tolerance: float = 0.01  # vectors are unit length within ±0.01


@dataclass
class Suite:
    """A named list of GX expectations; `index_column` names rows in failure examples."""

    name: str
    expectations: list = field(default_factory=list)
    index_column: str | None = None


def _rule(severity: str):
    def make(expectation_class, **kwargs):
        meta = {"severity": severity, **kwargs.pop("meta", {})}
        return expectation_class(**kwargs, meta=meta)

    return make


error = _rule(ERROR)
warn = _rule(WARN)


def naive_utc(moment: datetime | None) -> datetime:
    """The warehouse stores naive UTC timestamps; compare like with like."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _only(event_types) -> dict:
    """A pandas row condition: the rule applies to these event types only."""
    return {"row_condition": f"event_type in {list(event_types)!r}", "condition_parser": "pandas"}


def _time_range(column: str, earliest: datetime, now: datetime) -> list:
    """Not before `earliest` and not in the future relative to the run: the envelope allows a
    day of clock skew past the landing day, so a producer whose clock runs ahead gets in.

    Per row: on the event tables quality/aggregate.py counts the rows outside the range in
    DuckDB (GX on a pandas frame compares datetimes in Python, ~4 s per million). Column
    min/max would fail on a landing day without events (NaT), which is not a data error."""
    import great_expectations.expectations as gxe

    return [error(gxe.ExpectColumnValuesToBeBetween, column=column, min_value=earliest, max_value=now)]


def _event_values(now: datetime, t: Thresholds) -> list:
    """The rules every event table shares: when it happened, what it cost, how many."""
    import great_expectations.expectations as gxe

    return [
        error(gxe.ExpectColumnValuesToBeInTypeList, column="occurred_at", type_list=_DATETIME_TYPES),
        *_time_range("occurred_at", naive_utc(EARLIEST_OCCURRED_AT), now),
        error(gxe.ExpectColumnValuesToBeBetween, column="price", min_value=0, max_value=t.max_price),
        error(
            gxe.ExpectColumnValuesToBeBetween,
            column="quantity",
            min_value=1,
            max_value=t.max_quantity,
            **_only(QUANTITY_EVENT_TYPES),
        ),
    ]


def raw_events_suite(now: datetime | None = None, t: Thresholds | None = None) -> Suite:
    """The event log as ingested: one batch per checked landing day (or range)."""
    import great_expectations.expectations as gxe

    t = t or Thresholds()
    now = naive_utc(now)
    return Suite(
        "raw_events",
        [
            *(
                error(gxe.ExpectColumnValuesToNotBeNull, column=c)
                for c in ("event_id", "event_type", "occurred_at")
            ),
            error(gxe.ExpectColumnValuesToBeInSet, column="event_type", value_set=list(EVENT_TYPES)),
            *_event_values(now, t),
            error(
                gxe.ExpectColumnValuesToNotBeNull,
                column="product_id",
                # recommendation_shown names its products in properties, not product_id.
                **_only(PRODUCT_EVENT_TYPES),
            ),
            # event_id unique within its landing day: `repeated_event_id` is the id when another
            # row of the same landing day has it, else null (a ranged run checks many days at
            # once, and a replay on a later day is dbt's to drop, not an error of either day).
            error(
                gxe.ExpectColumnValuesToBeNull, column="repeated_event_id", mostly=1 - t.max_duplicate_share
            ),
            warn(gxe.ExpectColumnValuesToBeNull, column="repeated_event_id"),
        ],
    )


def raw_events_volume_suite(t: Thresholds | None = None) -> Suite:
    """Per landing day: accepted events against the trailing median, and the quarantine share."""
    import great_expectations.expectations as gxe

    t = t or Thresholds()
    return Suite(
        "raw_events_volume",
        [
            error(gxe.ExpectColumnValuesToNotBeNull, column="landing_day"),
            error(
                gxe.ExpectColumnValuesToBeBetween,
                column="quarantine_share",
                min_value=0,
                max_value=t.max_quarantine_share_error,
            ),
            warn(
                gxe.ExpectColumnValuesToBeBetween,
                column="quarantine_share",
                min_value=0,
                max_value=t.max_quarantine_share_warn,
            ),
            # Null (not judged) for days without files or without enough history.
            warn(
                gxe.ExpectColumnValuesToBeBetween,
                column="volume_ratio",
                min_value=t.volume_low,
                max_value=t.volume_high,
            ),
        ],
        index_column="landing_day",
    )


def events_suite(now: datetime | None = None, t: Thresholds | None = None) -> Suite:
    """fct_events, the rows landed in the checked days: keys, types, ranges, events → products."""
    import great_expectations.expectations as gxe

    t = t or Thresholds()
    now = naive_utc(now)
    return Suite(
        "events",
        [
            *(
                error(gxe.ExpectColumnValuesToNotBeNull, column=c)
                for c in ("event_id", "event_type", "occurred_at", "event_date", "landed_on")
            ),
            error(gxe.ExpectColumnValuesToBeUnique, column="event_id"),
            error(gxe.ExpectColumnValuesToBeInSet, column="event_type", value_set=list(SHOPPER_EVENT_TYPES)),
            error(gxe.ExpectColumnValuesToBeInTypeList, column="price", type_list=_FLOAT_TYPES),
            # No type rule on quantity: DuckDB hands a nullable INTEGER to pandas as Int32, and
            # GX 1.24's type-list check fails every pandas extension dtype, whatever the list.
            *_event_values(now, t),
            error(
                gxe.ExpectColumnValuesToNotBeNull,
                column="product_id",
                **_only(("view", *QUANTITY_EVENT_TYPES)),
            ),
            # Referential integrity, events → dim_products: `unknown_product_id` is the event's
            # product id when dim_products has no such product, else null. A warning, as dbt's
            # relationships test: the real shop sold a few codes it never catalogued (17 of
            # 540,571 events), and days run out of order (a newest-first backfill, a fresh
            # install started at yesterday) meet events before their catalog events; the
            # tables converge once the catalog day has run, so blocking would stop a correct run.
            warn(gxe.ExpectColumnValuesToBeNull, column="unknown_product_id"),
        ],
    )


def products_suite(t: Thresholds | None = None) -> Suite:
    """dim_products: the current catalog."""
    import great_expectations.expectations as gxe

    t = t or Thresholds()
    return Suite(
        "products",
        [
            error(gxe.ExpectColumnValuesToNotBeNull, column="product_id"),
            error(gxe.ExpectColumnValuesToBeUnique, column="product_id"),
            *(
                error(gxe.ExpectColumnValuesToNotBeNull, column=c)
                for c in ("is_listed", "is_merchandise", "is_recommendable")
            ),
            error(gxe.ExpectColumnValuesToBeBetween, column="price", min_value=0, max_value=t.max_price),
            warn(gxe.ExpectColumnValuesToNotBeNull, column="price"),
            warn(gxe.ExpectColumnValuesToNotBeNull, column="title"),
            warn(gxe.ExpectTableRowCountToBeBetween, min_value=1),
        ],
    )


def embeddings_suite(t: Thresholds | None = None) -> Suite:
    """product_embeddings: one unit vector per product, all from one model."""
    import great_expectations.expectations as gxe

    t = t or Thresholds()
    return Suite(
        "embeddings",
        [
            error(gxe.ExpectColumnValuesToNotBeNull, column="product_id"),
            error(gxe.ExpectColumnValuesToBeUnique, column="product_id"),
            error(gxe.ExpectColumnValuesToNotBeNull, column="norm"),  # a NaN anywhere makes the norm NaN
            error(
                gxe.ExpectColumnValuesToBeBetween,
                column="norm",
                min_value=1 - t.norm_tolerance,
                max_value=1 + t.norm_tolerance,
            ),
            error(
                gxe.ExpectColumnUniqueValueCountToBeBetween,
                column="model_fingerprint",
                min_value=0,
                max_value=1,
            ),
        ],
    )


def recommendation_suites() -> list[Suite]:
    """The candidate's three tables. The publish gate (serving/gate.py) runs the error rules.

    Deliberately not repeated here: what the gate already checks natively (duplicates within
    a list, sources, excluded products): one failure, one message."""
    import great_expectations.expectations as gxe

    def common(keys: list[str]) -> list:
        return [
            *(error(gxe.ExpectColumnValuesToNotBeNull, column=c) for c in keys),
            error(gxe.ExpectColumnValuesToNotBeNull, column="rank"),
            error(gxe.ExpectColumnValuesToBeBetween, column="rank", min_value=1),
            # Finite: NaN counts as null in pandas; infinities are named.
            error(gxe.ExpectColumnValuesToNotBeNull, column="score"),
            error(
                gxe.ExpectColumnValuesToNotBeInSet, column="score", value_set=[float("inf"), float("-inf")]
            ),
            error(gxe.ExpectColumnValuesToNotBeNull, column="reason"),
        ]

    return [
        Suite(
            "user_recommendations",
            [
                *common(["user_id"]),
                error(gxe.ExpectCompoundColumnsToBeUnique, column_list=["user_id", "rank"]),
            ],
        ),
        Suite("similar_products", common(["product_id"])),
        Suite("popular_products", common(["list", "segment_type", "segment", "window_days"])),
    ]


# pandas dtype names as GX reports them (DuckDB → pandas, polars → pandas).
_DATETIME_TYPES = ["datetime64", "datetime64[us]", "datetime64[ns]", "datetime64[ms]", "datetime64[s]"]
_FLOAT_TYPES = ["float64", "Float64", "float32", "Float32"]
