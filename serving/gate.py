"""The quality gate: checks a candidate must pass before shoppers see it.

Why a gate: a bad night (a join that drops most users, a filter that stops working, a
model that collapses to popularity) must not reach the storefront. Each check is named and
carries its observed value, its threshold and a sentence, so a blocked publish says exactly
what was wrong. The thresholds are deliberately loose defaults; tune them per shop with
`GateThresholds`. Each check is a small function of a `GateInput` (the candidate's tables,
the context and the thresholds) returning its `GateCheck`; `evaluate_gate` runs `CHECKS` in
order, so a new rule is one function added to that tuple.

The gate only reads DataFrames: it knows nothing about files, so it runs on the candidate
before or after it is written as a snapshot. One check, `great_expectations`, runs the
error-level rules of the recommendation suites (quality/suites.py: non-null keys, rank >= 1,
one row per user and rank, finite scores, a reason on every row) on the tables present; the
GX results are kept on `GateResult.expectations` so that the caller can record them in the
`data_quality_results` history and Data Docs (`quality.checks.record`): the gate writes
nothing. `GateResult.row_counts` lets `publish` check that a gate result belongs to the
snapshot it is asked to publish.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from functools import cached_property

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from core.clock import iso_utc, utc_now
from serving.snapshots import SCHEMAS

USER_SOURCES = ("personal", "fallback_segment", "fallback_global")
SIMILAR_SOURCES = ("content+cooccurrence", "content")
POPULAR_LISTS = ("popular", "trending")
SEGMENT_TYPES = ("overall", "category", "country")
GATED_TABLES = ("user_recommendations", "similar_products", "popular_products")


class GateThresholds(BaseModel):
    """The gate's figures. Plain pydantic (the `recommender` resource nests it as its `gate`
    part, assets/resources.py): a share outside [0, 1], a length below 1 or an unknown
    name is refused with the field's name."""

    # Frozen and strict about names for the same reason as RecommendationConfig: a typo must
    # not silently leave the default in force.
    model_config = ConfigDict(frozen=True, extra="forbid")

    min_user_coverage: float = Field(0.95, ge=0, le=1, description="share of active users with a list")
    min_list_length: int = Field(10, ge=1, description='a list shorter than this is "short"')
    max_short_list_share: float = Field(0.05, ge=0, le=1, description="share of user lists that are short")
    max_fallback_share: float = Field(0.5, ge=0, le=1, description="share of users with no personal item")
    min_overlap_with_current: float = Field(
        0.05, ge=0, le=1, description="mean Jaccard of top-k sets vs the published version"
    )
    overlap_top_k: int = Field(10, ge=1, description="the k of the overlap's top-k sets")
    expectations: bool = Field(True, description="run the great-expectations recommendation suites")


@dataclass
class GateContext:
    """What the gate compares the candidate with.

    active_user_ids: users who should get a list (e.g. active in the last 90 days).
    excluded_product_ids: products that must never be recommended (delisted, postage, ...).
    excluded_pairs: user_id/product_id pairs that must not be recommended (e.g. purchases when
    repurchase is off). current_recommendations: the published user_recommendations (None when
    nothing is published yet): `serving.snapshots.read_table(root, current_id, ...)`.
    """

    active_user_ids: Iterable[str] = ()
    excluded_product_ids: Iterable[str] = ()
    excluded_pairs: pl.DataFrame | None = None
    current_recommendations: pl.DataFrame | None = None
    current_snapshot_id: str | None = None


@dataclass(frozen=True)
class GateCheck:
    name: str
    passed: bool
    observed: float | int | None
    threshold: float | int | None
    op: str  # how observed is compared with threshold: ">=", "<=", "=="
    message: str

    def line(self) -> str:
        status = "ok  " if self.passed else "FAIL"
        observed = _fmt(self.observed)
        rule = f" (required {self.op} {_fmt(self.threshold)})" if self.threshold is not None else ""
        return f"{status} {self.name}: observed {observed}{rule}: {self.message}"


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


@dataclass
class GateResult:
    checks: list[GateCheck]
    row_counts: dict[str, int] = field(default_factory=dict)
    evaluated_at: str = field(default_factory=lambda: iso_utc(utc_now()))
    # quality.validate.SuiteRun per recommendation table validated; not serialised (gate.json
    # keeps the `great_expectations` check's summary): record them with quality.checks.record.
    expectations: list = field(default_factory=list, repr=False, compare=False)

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def failed(self) -> list[GateCheck]:
        return [check for check in self.checks if not check.passed]

    def check(self, name: str) -> GateCheck:
        return next(check for check in self.checks if check.name == name)

    def summary(self) -> str:
        failed = self.failed
        if not failed:
            head = f"gate passed: all {len(self.checks)} checks"
        else:
            head = f"gate FAILED: {len(failed)} of {len(self.checks)} checks"
        lines = [head, *(f"  {check.line()}" for check in failed)]
        passed = [check.name for check in self.checks if check.passed]
        if passed:
            lines.append("  passed: " + ", ".join(passed))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "evaluated_at": self.evaluated_at,
            "row_counts": self.row_counts,
            "checks": [asdict(check) for check in self.checks],
        }

    @classmethod
    def from_dict(cls, data: dict) -> GateResult:
        return cls(
            checks=[GateCheck(**check) for check in data.get("checks", [])],
            row_counts=dict(data.get("row_counts", {})),
            evaluated_at=data.get("evaluated_at", ""),
        )


def _ids(values) -> pl.Series:
    if isinstance(values, pl.Series):
        return values.cast(pl.String).drop_nulls().unique()
    return pl.Series("id", list(values), dtype=pl.String).drop_nulls().unique()


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


# The columns the checks read. A table that lacks one (or is absent) is checked as an empty
# frame of its published schema: `tables_present` reports it once, instead of every other
# check failing on a missing column.
READ_COLUMNS = {
    "user_recommendations": {"user_id", "rank", "product_id", "source"},
    "similar_products": {"product_id", "rank", "similar_product_id", "source"},
    "popular_products": {"list", "segment_type", "segment", "window_days", "rank", "product_id"},
}
POPULAR_LIST_KEYS = ["list", "segment_type", "segment", "window_days"]


@dataclass
class GateInput:
    """What every check reads: the candidate's tables, the context and the thresholds."""

    tables: dict[str, pl.DataFrame]
    context: GateContext
    thresholds: GateThresholds
    scope: tuple[str, ...] = GATED_TABLES  # the tables this candidate replaces

    def _table(self, name: str) -> pl.DataFrame:
        df = self.tables.get(name)
        if df is None or not READ_COLUMNS[name] <= set(df.columns):
            return pl.DataFrame(schema=SCHEMAS[name])
        return df

    @cached_property
    def user_recommendations(self) -> pl.DataFrame:
        return self._table("user_recommendations")

    @cached_property
    def similar_products(self) -> pl.DataFrame:
        return self._table("similar_products")

    @cached_property
    def popular_products(self) -> pl.DataFrame:
        return self._table("popular_products")

    @cached_property
    def list_lengths(self) -> pl.DataFrame:
        """Items per user list (`user_id`, `n`): the rows with a product; 0 for an empty list."""
        # Lazy, so that only the two columns are read: eager, the grouping of a million
        # shoppers' 28M rows held 2.8 GB more at the gate's peak.
        return (
            self.user_recommendations.lazy()
            .group_by("user_id")
            .agg(n=pl.col("product_id").is_not_null().sum())
            .collect()
        )

    @cached_property
    def users_with_list(self) -> pl.DataFrame:
        return self.list_lengths.filter(pl.col("n") > 0)


# Each check: one rule, read from a GateInput, reported as a GateCheck under its own name.
# evaluate_gate runs them in this order (the order of gate.json and of the summary).


def tables_present(g: GateInput) -> GateCheck:
    """Each recommendation table of the candidate's scope is there and has rows."""
    missing = [name for name in g.scope if name not in g.tables or g.tables[name].height == 0]
    message = f"missing or empty: {missing}" if missing else "all recommendation tables have rows"
    return GateCheck("tables_present", not missing, len(missing), 0, "==", message)


def user_coverage(g: GateInput) -> GateCheck:
    """The share of active users (GateContext.active_user_ids) with a list is high enough."""
    threshold = g.thresholds.min_user_coverage
    active = _ids(g.context.active_user_ids)
    if active.len() == 0:
        return GateCheck("user_coverage", True, None, threshold, ">=", "no active users given; skipped")
    covered = int(active.is_in(g.users_with_list["user_id"].implode()).sum())
    coverage = covered / active.len()
    return GateCheck(
        "user_coverage",
        coverage >= threshold,
        coverage,
        threshold,
        ">=",
        f"{covered:,} of {active.len():,} active users have a list",
    )


def short_lists(g: GateInput) -> GateCheck:
    """Few user lists hold fewer than `min_list_length` items."""
    t = g.thresholds
    lists = g.users_with_list
    short = int((lists["n"] < t.min_list_length).sum())
    short_share = _share(short, lists.height)
    return GateCheck(
        "short_lists",
        short_share <= t.max_short_list_share,
        short_share,
        t.max_short_list_share,
        "<=",
        f"{short:,} of {lists.height:,} user lists have fewer than {t.min_list_length} items",
    )


def no_empty_lists(g: GateInput) -> GateCheck:
    """No user, similar-product or popular list is there without a single product."""
    empty_users = g.list_lengths.filter(pl.col("n") == 0).height
    empty_similar = (
        g.similar_products.group_by("product_id")
        .agg(n=pl.col("similar_product_id").is_not_null().sum())
        .filter(pl.col("n") == 0)
    ).height
    empty_popular = (
        g.popular_products.group_by(POPULAR_LIST_KEYS)
        .agg(n=pl.col("product_id").is_not_null().sum())
        .filter(pl.col("n") == 0)
    ).height
    n_empty = empty_users + empty_similar + empty_popular
    return GateCheck(
        "no_empty_lists",
        n_empty == 0,
        n_empty,
        0,
        "==",
        f"empty lists: {empty_users} user, {empty_similar} similar-product, {empty_popular} popular",
    )


def no_duplicate_user_recommendations(g: GateInput) -> GateCheck:
    """No user list holds a product twice or a rank twice."""
    return _duplicates("no_duplicate_user_recommendations", g.user_recommendations, ["user_id"], "product_id")


def no_duplicate_similar_products(g: GateInput) -> GateCheck:
    """No similar-product list holds a product twice or a rank twice."""
    return _duplicates(
        "no_duplicate_similar_products", g.similar_products, ["product_id"], "similar_product_id"
    )


def no_duplicate_popular_products(g: GateInput) -> GateCheck:
    """No popular list (list, segment, window) holds a product twice or a rank twice."""
    return _duplicates("no_duplicate_popular_products", g.popular_products, POPULAR_LIST_KEYS, "product_id")


def valid_values(g: GateInput) -> GateCheck:
    """Keys are set, ranks start at 1, and sources, lists, segment types and windows are known."""
    ur, sim, pop = g.user_recommendations, g.similar_products, g.popular_products
    invalid = (
        ur.filter(
            pl.col("user_id").is_null()
            | pl.col("rank").is_null()
            | (pl.col("rank") < 1)
            | ~pl.col("source").is_in(USER_SOURCES).fill_null(False)
        ).height
        + sim.filter(
            pl.col("product_id").is_null()
            | pl.col("rank").is_null()
            | (pl.col("rank") < 1)
            | ~pl.col("source").is_in(SIMILAR_SOURCES).fill_null(False)
        ).height
        + pop.filter(
            pl.col("rank").is_null()
            | (pl.col("rank") < 1)
            | ~pl.col("list").is_in(POPULAR_LISTS).fill_null(False)
            | ~pl.col("segment_type").is_in(SEGMENT_TYPES).fill_null(False)
            | pl.col("segment").is_null()
            | pl.col("window_days").is_null()
            | (pl.col("window_days") < 1)
        ).height
    )
    return GateCheck(
        "valid_values",
        invalid == 0,
        invalid,
        0,
        "==",
        "rows with a null key, rank < 1, or an unknown source/list/segment_type/window",
    )


def no_excluded_products(g: GateInput) -> GateCheck:
    """No table recommends a product of GateContext.excluded_product_ids."""
    excluded = _ids(g.context.excluded_product_ids).implode()
    ur, sim, pop = g.user_recommendations, g.similar_products, g.popular_products
    leaks = {
        "user_recommendations": ur.filter(pl.col("product_id").is_in(excluded))["product_id"],
        "similar_products": sim.filter(pl.col("similar_product_id").is_in(excluded))["similar_product_id"],
        "popular_products": pop.filter(pl.col("product_id").is_in(excluded))["product_id"],
    }
    n_leaks = sum(series.len() for series in leaks.values())
    examples = ", ".join(f"{series[0]} in {name}" for name, series in leaks.items() if series.len())
    return GateCheck(
        "no_excluded_products",
        n_leaks == 0,
        n_leaks,
        0,
        "==",
        f"rows recommend excluded products (e.g. {examples})" if n_leaks else "no excluded product listed",
    )


def no_excluded_pairs(g: GateInput) -> GateCheck:
    """No user list holds a user/product pair of GateContext.excluded_pairs."""
    pairs = g.context.excluded_pairs
    if pairs is None or pairs.height == 0:
        message = "no excluded pairs given" if pairs is None else "no excluded pair listed"
        return GateCheck("no_excluded_pairs", True, 0, 0, "==", message)
    pairs = pairs.select(pl.col("user_id").cast(pl.String), pl.col("product_id").cast(pl.String)).unique()
    leaked = g.user_recommendations.join(pairs, on=["user_id", "product_id"], how="semi")
    message = "no excluded pair listed"
    if leaked.height:
        example = f"user {leaked['user_id'][0]} / {leaked['product_id'][0]}"
        message = f"user lists contain excluded pairs (e.g. {example})"
    return GateCheck("no_excluded_pairs", leaked.height == 0, leaked.height, 0, "==", message)


def fallback_share(g: GateInput) -> GateCheck:
    """Few users get fallback lists only (no item with source `personal`)."""
    threshold = g.thresholds.max_fallback_share
    personal = (
        g.user_recommendations.lazy()  # the three columns only, not a filtered copy of the table
        .filter(pl.col("product_id").is_not_null())
        .group_by("user_id")
        .agg(personal=(pl.col("source") == "personal").any())
        .collect()
    )
    n_fallback = personal.filter(~pl.col("personal")).height
    share = _share(n_fallback, personal.height)
    return GateCheck(
        "fallback_share",
        share <= threshold,
        share,
        threshold,
        "<=",
        f"{n_fallback:,} of {personal.height:,} users get no personal item (fallback lists only)",
    )


def overlap_with_current(g: GateInput) -> GateCheck:
    """Mean Jaccard of each user's top-k set, candidate vs published, over users in both.

    Low overlap means tonight's lists are unrelated to yesterday's: usually a broken join or
    a reshuffled id space, rarely a real change in taste."""
    t, context = g.thresholds, g.context
    name, threshold = "overlap_with_current", t.min_overlap_with_current
    current = context.current_recommendations
    if current is None:
        return GateCheck(name, True, None, threshold, ">=", "no published version yet; skipped")

    def top(df: pl.DataFrame) -> pl.DataFrame:
        return (
            df.lazy()  # the three columns only, not a filtered copy of the table
            .filter(pl.col("product_id").is_not_null() & (pl.col("rank") <= t.overlap_top_k))
            .select(pl.col("user_id").cast(pl.String), pl.col("product_id").cast(pl.String))
            .unique()
            .collect()
        )

    new, old = top(g.user_recommendations), top(current)
    sizes_new = new.group_by("user_id").agg(a=pl.len())
    sizes_old = old.group_by("user_id").agg(b=pl.len())
    common = sizes_new.join(sizes_old, on="user_id", how="inner")
    if common.height == 0:
        return GateCheck(name, True, None, threshold, ">=", "no user in both versions; skipped")
    inter = new.join(old, on=["user_id", "product_id"], how="inner").group_by("user_id").agg(i=pl.len())
    jaccard = (
        common.join(inter, on="user_id", how="left")
        .with_columns(pl.col("i").fill_null(0))
        .select((pl.col("i") / (pl.col("a") + pl.col("b") - pl.col("i"))).mean())
        .item()
    )
    against = f" {context.current_snapshot_id}" if context.current_snapshot_id else ""
    return GateCheck(
        name,
        jaccard >= threshold,
        float(jaccard),
        threshold,
        ">=",
        f"mean Jaccard of top-{t.overlap_top_k} sets vs published{against} over {common.height:,} users",
    )


def no_self_similar(g: GateInput) -> GateCheck:
    """No product is listed as similar to itself."""
    sim = g.similar_products
    n_self = sim.filter(pl.col("product_id") == pl.col("similar_product_id")).height
    message = (
        f"{n_self} products are listed as similar to themselves" if n_self else "no product similar to itself"
    )
    return GateCheck("no_self_similar", n_self == 0, n_self, 0, "==", message)


CHECKS: tuple[Callable[[GateInput], GateCheck], ...] = (
    tables_present,
    user_coverage,
    short_lists,
    no_empty_lists,
    no_duplicate_user_recommendations,
    no_duplicate_similar_products,
    no_duplicate_popular_products,
    valid_values,
    no_excluded_products,
    no_excluded_pairs,
    fallback_share,
    overlap_with_current,
    no_self_similar,
)


def evaluate_gate(
    candidate: dict[str, pl.DataFrame],
    context: GateContext,
    thresholds: GateThresholds | None = None,
    scope: tuple[str, ...] = GATED_TABLES,
) -> GateResult:
    """Run every check on the candidate tables; never raises for bad data, only reports it.

    `scope`: the tables the candidate replaces. An intraday overlay replaces only some
    shoppers' rows of user_recommendations: it is gated by the same checks on those rows
    alone (scope ("user_recommendations",), the context restricted to those shoppers), and
    the tables it does not hold are not required."""
    unknown = set(scope) - set(GATED_TABLES)
    if unknown:
        raise ValueError(f"unknown gate scope {sorted(unknown)}; the gated tables are {GATED_TABLES}")
    t = thresholds or GateThresholds()
    g = GateInput(candidate, context, t, tuple(scope))
    checks = [check(g) for check in CHECKS]
    suite_runs = []
    if t.expectations:
        # Not in CHECKS: besides its check it hands back the suite runs, which the caller
        # records (the gate writes nothing); it runs last, as it always has.
        expectations_check, suite_runs = great_expectations(candidate)
        checks.append(expectations_check)
    row_counts = {name: df.height for name, df in candidate.items()}
    return GateResult(checks=checks, row_counts=row_counts, expectations=suite_runs)


def great_expectations(candidate: dict[str, pl.DataFrame]) -> tuple[GateCheck, list]:
    """The error-level rules of the great-expectations recommendation suites, as one check.

    Missing or empty tables are left to `tables_present`. Imported here: great_expectations
    takes seconds to import, and readers of this module (the CLI) rarely need it."""
    from quality.checks import check_recommendations
    from quality.suites import ERROR

    present = {name: candidate[name] for name in GATED_TABLES if name in candidate and candidate[name].height}
    runs = check_recommendations(present)
    judged = [o for run in runs for o in run.outcomes if o.severity == ERROR]
    failed = [o for o in judged if not o.success]
    if failed:
        shown = "; ".join(f"{o.suite}: {o.expectation}: {o.observed_value}" for o in failed[:5])
        more = f" (and {len(failed) - 5} more)" if len(failed) > 5 else ""
        message = f"failed: {shown}{more}"
    else:
        message = f"{len(judged)} error-level expectations hold on {', '.join(present) or 'no table'}"
    return GateCheck("great_expectations", not failed, len(failed), 0, "==", message), runs


def _duplicates(name: str, df: pl.DataFrame, list_keys: list[str], item: str) -> GateCheck:
    """Within one list: an item twice, or a rank twice (the rows less the distinct rows)."""
    items = df.lazy().filter(pl.col(item).is_not_null())
    n_items = items.select(pl.len()).collect().item()
    dup_items = n_items - _distinct_rows(items, [*list_keys, item])
    dup_ranks = df.height - _distinct_rows(df.lazy(), [*list_keys, "rank"])
    total = dup_items + dup_ranks
    message = f"{dup_items} repeated {item} within a list, {dup_ranks} repeated ranks within a list"
    if dup_items:
        items = df.filter(pl.col(item).is_not_null())
        example = items.filter(pl.struct([*list_keys, item]).is_duplicated()).row(0, named=True)
        message += f" (e.g. {example[list_keys[0]]} / {example[item]})"
    return GateCheck(name, total == 0, total, 0, "==", message)


def _distinct_rows(frame: pl.LazyFrame, columns: list[str]) -> int:
    """How many distinct rows `columns` hold (nulls equal to nulls), exactly.

    First from one 64-bit hash a row: when the hashes are all distinct, so are the rows, and
    that is every clean night. Only when two rows hash alike (a real repeat, or a collision:
    about 1 in 50,000 nights at 28M rows) are the rows counted list by list, exactly. A
    million shoppers' lists are 28M rows: unique() over their keys held 5 GB at the gate's
    peak, the per-list count 2 GB, the hashes 0.5 GB."""
    rows, hashes = frame.select(pl.len(), pl.struct(columns).hash().n_unique()).collect().row(0)
    if hashes == rows:
        return rows
    keys, rest = columns[:-1], columns[-1]  # the list's keys, then its item or rank
    per_list = frame.group_by(keys).agg(pl.col(rest).n_unique()).select(pl.col(rest).sum())
    return per_list.collect().item() or 0
