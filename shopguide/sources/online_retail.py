"""Producer: the Online Retail invoice lines → daily landing files in the event envelope.

The mapping (documented in docs/events.md, "Online Retail mapping"):
- every source line becomes exactly one event, `event_id = online-retail:line:<n>`
  (n = 1-based row in the source file), so a re-import writes identical files;
- invoices starting with "C" are cancellations → `return` with a positive quantity;
  other lines → `purchase` with the quantity as given. Stock adjustments (non-"C" lines
  with quantity <= 0) and bad-debt adjustments (negative price) are *not* fixed here:
  they are invalid purchases and the ingester quarantines them with a reason, so the
  set-aside lines sit in one place, `quarantined_events`;
- no CustomerID → a guest event (`user_id` null); the invoice number is the session
  (one basket per invoice);
- InvoiceDate is Europe/London wall time → converted to UTC; the landing day is the
  UTC date it occurred (historical data arrives on time);
- the catalog is event-sourced: a `product_upserted` for a stock code the first time it
  is seen, and again whenever its title changes; non-product codes (postage, fees,
  manual adjustments, vouchers) carry `properties.merchandise = false`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from core.errors import BadInput, MissingFile
from core.settings import REPO_ROOT
from warehouse.landing import write_jsonl

DEFAULT_PATH = REPO_ROOT / "data" / "online_retail" / "online_retail.parquet"
LANDING_FILE = "online_retail.jsonl.gz"
SOURCE_TZ = "Europe/London"
# Codes that are charges, fees or manual entries, not things a shopper can be recommended.
NON_MERCHANDISE_CODES = frozenset(
    {"POST", "DOT", "C2", "M", "D", "S", "B", "CRUK", "PADS", "AMAZONFEE", "BANK CHARGES"}
)
NON_MERCHANDISE_PREFIXES = ("GIFT_",)  # gift vouchers
EXPECTED_COLUMNS = (
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
)


@dataclass
class ImportSummary:
    source_lines: int
    line_events: int
    catalog_events: int
    days: int
    files: list[Path] = field(default_factory=list)
    by_type: dict[str, int] = field(default_factory=dict)

    @property
    def reconciles(self) -> bool:
        return self.source_lines == self.line_events


def is_merchandise(code: pl.Expr) -> pl.Expr:
    upper = code.str.strip_chars().str.to_uppercase()
    prefixed = pl.lit(False)
    for prefix in NON_MERCHANDISE_PREFIXES:
        prefixed = prefixed | upper.str.starts_with(prefix)
    return ~(upper.is_in(list(NON_MERCHANDISE_CODES)) | prefixed)


def read_source(path: Path) -> pl.DataFrame:
    if not path.exists():
        raise MissingFile(f"{path} does not exist. Pass --path to the Online Retail Parquet file.")
    frame = pl.read_parquet(path)
    missing = [c for c in EXPECTED_COLUMNS if c not in frame.columns]
    if missing:
        raise BadInput(f"{path} is not the Online Retail export: missing columns {missing}")
    return frame.with_row_index("source_line", offset=1)


def _prepared(frame: pl.DataFrame) -> pl.DataFrame:
    occurred = (
        pl.col("InvoiceDate")
        .dt.replace_time_zone(SOURCE_TZ, ambiguous="earliest", non_existent="null")
        .dt.convert_time_zone("UTC")
    )
    invoice = pl.col("InvoiceNo").cast(pl.Utf8).str.strip_chars()
    title = pl.col("Description").cast(pl.Utf8).str.strip_chars()
    return frame.with_columns(
        occurred_utc=occurred,
        invoice=invoice,
        code=pl.col("StockCode").cast(pl.Utf8).str.strip_chars(),
        title=pl.when(title.is_null() | (title == "") | (title.str.to_lowercase() == "nan"))
        .then(None)
        .otherwise(title),
        user=pl.col("CustomerID").cast(pl.Int64).cast(pl.Utf8),
    ).with_columns(
        day=pl.col("occurred_utc").dt.date(),
        occurred_at=pl.col("occurred_utc").dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
        merchandise=is_merchandise(pl.col("code")),
        product_key=pl.col("code").str.to_uppercase(),
    )


def line_events(prepared: pl.DataFrame) -> pl.DataFrame:
    """One event per source line."""
    is_return = pl.col("invoice").str.starts_with("C")
    return prepared.select(
        "day",
        "source_line",
        json=pl.struct(
            event_id=pl.format("online-retail:line:{}", pl.col("source_line")),
            event_type=pl.when(is_return).then(pl.lit("return")).otherwise(pl.lit("purchase")),
            occurred_at=pl.col("occurred_at"),
            user_id=pl.col("user"),
            session_id=pl.col("invoice"),
            product_id=pl.col("code"),
            quantity=pl.when(is_return).then(-pl.col("Quantity")).otherwise(pl.col("Quantity")),
            price=pl.col("UnitPrice"),
            currency=pl.lit("GBP"),
            properties=pl.struct(
                invoice_no=pl.col("invoice"),
                country=pl.col("Country"),
                merchandise=pl.col("merchandise"),
                source_line=pl.col("source_line"),
            ),
        ).struct.json_encode(),
    )


def catalog_events(prepared: pl.DataFrame) -> pl.DataFrame:
    """A product_upserted the first time a code is seen with a title, and on every title change."""
    titled = (
        # Titles on zero-price lines are warehouse notes ("damaged", "check"), not product names.
        prepared.filter(pl.col("title").is_not_null() & (pl.col("UnitPrice") > 0))
        .sort("product_key", "occurred_utc", "source_line")
        .with_columns(previous=pl.col("title").shift(1).over("product_key"))
        .filter(pl.col("previous").is_null() | (pl.col("previous") != pl.col("title")))
        .with_columns(version=pl.int_range(1, pl.len() + 1).over("product_key"))
    )
    return titled.select(
        "day",
        "source_line",
        json=pl.struct(
            event_id=pl.format("online-retail:product:{}:{}", pl.col("product_key"), pl.col("version")),
            event_type=pl.lit("product_upserted"),
            occurred_at=pl.col("occurred_at"),
            product_id=pl.col("code"),
            price=pl.col("UnitPrice"),
            currency=pl.lit("GBP"),
            properties=pl.struct(
                title=pl.col("title"),
                merchandise=pl.col("merchandise"),
                source_line=pl.col("source_line"),
            ),
        ).struct.json_encode(),
    )


def import_online_retail(landing_root: Path, path: Path = DEFAULT_PATH) -> ImportSummary:
    """Write one landing file per UTC day; re-running rewrites identical files."""
    prepared = _prepared(read_source(path))
    unconvertible = prepared.filter(pl.col("occurred_utc").is_null())
    if unconvertible.height:
        raise BadInput(f"{unconvertible.height} lines have a local time that does not exist in {SOURCE_TZ}")
    lines = line_events(prepared)
    catalog = catalog_events(prepared)
    # Catalog events first within a day, so a reader of the file meets a product before its sales.
    everything = pl.concat([catalog.with_columns(kind=pl.lit(0)), lines.with_columns(kind=pl.lit(1))])
    everything = everything.sort("day", "kind", "source_line")
    summary = ImportSummary(
        source_lines=prepared.height,
        line_events=lines.height,
        catalog_events=catalog.height,
        days=everything["day"].n_unique(),
    )
    for (day,), part in everything.group_by("day", maintain_order=True):
        target = landing_root / day.isoformat() / LANDING_FILE
        write_jsonl(target, (s.encode() for s in part["json"]))
        summary.files.append(target)
    summary.by_type = {
        "purchase": prepared.filter(~pl.col("invoice").str.starts_with("C")).height,
        "return": prepared.filter(pl.col("invoice").str.starts_with("C")).height,
        "product_upserted": catalog.height,
    }
    return summary
