"""The quality gate: checks a candidate must pass before shoppers see it.

Why a gate: a bad night (a join that drops most users, a filter that stops working, a
model that collapses to popularity) must not reach the storefront. Each check is named and
carries its observed value, its threshold and a sentence, so a blocked publish says exactly
what was wrong. The thresholds are deliberately loose defaults; tune them per shop with
`GateThresholds`.

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

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from serving._fs import iso_utc, utc_now

USER_SOURCES = ("personal", "fallback_segment", "fallback_global")
SIMILAR_SOURCES = ("content+cooccurrence", "content")
POPULAR_LISTS = ("popular", "trending")
SEGMENT_TYPES = ("overall", "category", "country")
GATED_TABLES = ("user_recommendations", "similar_products", "popular_products")


class GateThresholds(BaseModel):
    """The gate's figures. Plain pydantic (the `recommender` resource nests it as its `gate`
    part, orchestration/resources.py): a share outside [0, 1], a length below 1 or an unknown
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


def evaluate_gate(
    candidate: dict[str, pl.DataFrame],
    context: GateContext,
    thresholds: GateThresholds | None = None,
) -> GateResult:
    """Run every check on the candidate tables; never raises for bad data, only reports it."""
    t = thresholds or GateThresholds()
    checks: list[GateCheck] = []
    add = checks.append

    missing = [name for name in GATED_TABLES if name not in candidate or candidate[name].height == 0]
    add(
        GateCheck(
            "tables_present",
            not missing,
            len(missing),
            0,
            "==",
            f"missing or empty: {missing}" if missing else "all recommendation tables have rows",
        )
    )
    empty = pl.DataFrame()
    ur = candidate.get("user_recommendations", empty)
    sim = candidate.get("similar_products", empty)
    pop = candidate.get("popular_products", empty)
    ur_ok = {"user_id", "rank", "product_id", "source"} <= set(ur.columns)
    sim_ok = {"product_id", "rank", "similar_product_id", "source"} <= set(sim.columns)
    pop_ok = {"list", "segment_type", "segment", "window_days", "rank", "product_id"} <= set(pop.columns)
    if not ur_ok:
        ur = pl.DataFrame(
            schema={"user_id": pl.String, "rank": pl.Int64, "product_id": pl.String, "source": pl.String}
        )
    if not sim_ok:
        sim = pl.DataFrame(
            schema={
                "product_id": pl.String,
                "rank": pl.Int64,
                "similar_product_id": pl.String,
                "source": pl.String,
            }
        )
    if not pop_ok:
        pop = pl.DataFrame(
            schema={
                "list": pl.String,
                "segment_type": pl.String,
                "segment": pl.String,
                "window_days": pl.Int64,
                "rank": pl.Int64,
                "product_id": pl.String,
            }
        )

    # Lists: one per user, items are the rows with a product.
    lengths = ur.group_by("user_id").agg(n=pl.col("product_id").is_not_null().sum())
    users_with_list = lengths.filter(pl.col("n") > 0)
    n_lists = users_with_list.height

    active = _ids(context.active_user_ids)
    if active.len() == 0:
        add(
            GateCheck(
                "user_coverage", True, None, t.min_user_coverage, ">=", "no active users given; skipped"
            )
        )
    else:
        covered = int(active.is_in(users_with_list["user_id"].implode()).sum())
        coverage = covered / active.len()
        add(
            GateCheck(
                "user_coverage",
                coverage >= t.min_user_coverage,
                coverage,
                t.min_user_coverage,
                ">=",
                f"{covered:,} of {active.len():,} active users have a list",
            )
        )

    short = int((users_with_list["n"] < t.min_list_length).sum())
    short_share = _share(short, n_lists)
    add(
        GateCheck(
            "short_lists",
            short_share <= t.max_short_list_share,
            short_share,
            t.max_short_list_share,
            "<=",
            f"{short:,} of {n_lists:,} user lists have fewer than {t.min_list_length} items",
        )
    )

    empty_users = lengths.filter(pl.col("n") == 0).height
    empty_similar = (
        sim.group_by("product_id")
        .agg(n=pl.col("similar_product_id").is_not_null().sum())
        .filter(pl.col("n") == 0)
    ).height
    pop_keys = ["list", "segment_type", "segment", "window_days"]
    empty_popular = (
        pop.group_by(pop_keys).agg(n=pl.col("product_id").is_not_null().sum()).filter(pl.col("n") == 0)
    ).height
    n_empty = empty_users + empty_similar + empty_popular
    add(
        GateCheck(
            "no_empty_lists",
            n_empty == 0,
            n_empty,
            0,
            "==",
            f"empty lists: {empty_users} user, {empty_similar} similar-product, {empty_popular} popular",
        )
    )

    add(_duplicates("no_duplicate_user_recommendations", ur, ["user_id"], "product_id"))
    add(_duplicates("no_duplicate_similar_products", sim, ["product_id"], "similar_product_id"))
    add(_duplicates("no_duplicate_popular_products", pop, pop_keys, "product_id"))

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
    add(
        GateCheck(
            "valid_values",
            invalid == 0,
            invalid,
            0,
            "==",
            "rows with a null key, rank < 1, or an unknown source/list/segment_type/window",
        )
    )

    excluded = _ids(context.excluded_product_ids).implode()
    leaks = {
        "user_recommendations": ur.filter(pl.col("product_id").is_in(excluded))["product_id"],
        "similar_products": sim.filter(pl.col("similar_product_id").is_in(excluded))["similar_product_id"],
        "popular_products": pop.filter(pl.col("product_id").is_in(excluded))["product_id"],
    }
    n_leaks = sum(series.len() for series in leaks.values())
    examples = ", ".join(f"{series[0]} in {name}" for name, series in leaks.items() if series.len())
    add(
        GateCheck(
            "no_excluded_products",
            n_leaks == 0,
            n_leaks,
            0,
            "==",
            f"rows recommend excluded products (e.g. {examples})"
            if n_leaks
            else "no excluded product listed",
        )
    )

    pairs = context.excluded_pairs
    if pairs is None or pairs.height == 0:
        n_pairs, pair_message = 0, "no excluded pairs given" if pairs is None else "no excluded pair listed"
    else:
        pairs = pairs.select(pl.col("user_id").cast(pl.String), pl.col("product_id").cast(pl.String)).unique()
        leaked = ur.join(pairs, on=["user_id", "product_id"], how="semi")
        n_pairs = leaked.height
        pair_message = "no excluded pair listed"
        if n_pairs:
            example = f"user {leaked['user_id'][0]} / {leaked['product_id'][0]}"
            pair_message = f"user lists contain excluded pairs (e.g. {example})"
    add(GateCheck("no_excluded_pairs", n_pairs == 0, n_pairs, 0, "==", pair_message))

    personal = (
        ur.filter(pl.col("product_id").is_not_null())
        .group_by("user_id")
        .agg(personal=(pl.col("source") == "personal").any())
    )
    n_fallback = personal.filter(~pl.col("personal")).height
    fallback_share = _share(n_fallback, personal.height)
    add(
        GateCheck(
            "fallback_share",
            fallback_share <= t.max_fallback_share,
            fallback_share,
            t.max_fallback_share,
            "<=",
            f"{n_fallback:,} of {personal.height:,} users get no personal item (fallback lists only)",
        )
    )

    add(_overlap(ur, context, t))

    n_self = sim.filter(pl.col("product_id") == pl.col("similar_product_id")).height
    add(
        GateCheck(
            "no_self_similar",
            n_self == 0,
            n_self,
            0,
            "==",
            f"{n_self} products are listed as similar to themselves"
            if n_self
            else "no product similar to itself",
        )
    )

    suite_runs = []
    if t.expectations:
        expectations_check, suite_runs = _expectations(candidate)
        add(expectations_check)

    row_counts = {name: df.height for name, df in candidate.items()}
    return GateResult(checks=checks, row_counts=row_counts, expectations=suite_runs)


def _expectations(candidate: dict[str, pl.DataFrame]) -> tuple[GateCheck, list]:
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
    """Within one list: an item twice, or a rank twice."""
    items = df.filter(pl.col(item).is_not_null())
    dup_items = items.height - items.select([*list_keys, item]).unique().height
    dup_ranks = df.height - df.select([*list_keys, "rank"]).unique().height
    total = dup_items + dup_ranks
    message = f"{dup_items} repeated {item} within a list, {dup_ranks} repeated ranks within a list"
    if dup_items:
        example = items.filter(pl.struct([*list_keys, item]).is_duplicated()).row(0, named=True)
        message += f" (e.g. {example[list_keys[0]]} / {example[item]})"
    return GateCheck(name, total == 0, total, 0, "==", message)


def _overlap(ur: pl.DataFrame, context: GateContext, t: GateThresholds) -> GateCheck:
    """Mean Jaccard of each user's top-k set, candidate vs published, over users in both.

    Low overlap means tonight's lists are unrelated to yesterday's: usually a broken join or
    a reshuffled id space, rarely a real change in taste."""
    name, threshold = "overlap_with_current", t.min_overlap_with_current
    current = context.current_recommendations
    if current is None:
        return GateCheck(name, True, None, threshold, ">=", "no published version yet; skipped")

    def top(df: pl.DataFrame) -> pl.DataFrame:
        return (
            df.filter(pl.col("product_id").is_not_null() & (pl.col("rank") <= t.overlap_top_k))
            .select(pl.col("user_id").cast(pl.String), pl.col("product_id").cast(pl.String))
            .unique()
        )

    new, old = top(ur), top(current)
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
