"""The `shopguide` command line. Each command only parses arguments and calls a function
that does the work; errors a user can fix are printed as one message, not a traceback."""

from __future__ import annotations

import errno
import functools
import json
import os
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer

from core.errors import BadInput, ShopguideError
from core.settings import Paths, can_write, check_home

app = typer.Typer(
    help="shopguide: an open data platform for e-commerce recommendations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
import_app = typer.Typer(help="Write landing files from a built-in producer.", no_args_is_help=True)
app.add_typer(import_app, name="import")
experiment_app = typer.Typer(
    help="The running canary as an A/B experiment: readout, promote, abort (docs/experiments.md).",
    no_args_is_help=True,
)
app.add_typer(experiment_app, name="experiment")


# -k of `recommend` and `search`: more rows than a storefront shows, and far below what
# overflows the reader or LanceDB (both die on integers beyond 64 bits).
MAX_K = 1_000
K_HELP = f"Number of rows, 1 to {MAX_K:,}."
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="NAME=VALUE",
        help="A recommender setting for this run, NAME=VALUE, repeatable: e.g. tables.k=20, "
        "gate.min_user_coverage=0.9, champion_window_days=7 (docs/operations.md).",
    ),
]
TargetOption = Annotated[
    str,
    typer.Option(
        "--target",
        help="Where the dbt models build: duckdb (the embedded file) or spark (Apache Spark, "
        "local; the event log and the models only, docs/architecture.md).",
    ),
]
# The file system, not a bug: a full disk, a read-only or forbidden folder met after the
# start-up check (which covers SHOPGUIDE_HOME itself). Each is one line, like a UserError.
ENVIRONMENT_ERRNOS = {errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.ENOTDIR}


class UserError(BadInput):
    """A command-line argument the user can fix; printed without a traceback."""


def friendly_errors(func):
    """Turn expected failures into a one-line message and exit code 2: the project's own
    `ShopguideError`s (raised where each condition is detected, see core/errors.py) and the
    file system refusing a write. Anything else is a bug and keeps its traceback; a blanket
    ValueError here would print a bug as if it were the user's mistake."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except ShopguideError as error:
            message = str(error)
        except OSError as error:
            if error.errno not in ENVIRONMENT_ERRNOS:
                raise
            message = f"{error.strerror}: {error.filename}"
        typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2)

    return wrapper


def parse_day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UserError(f"{option} {value!r} is not a date; use YYYY-MM-DD, e.g. 2011-03-14.") from None


def writable_home() -> Paths:
    """SHOPGUIDE_HOME for a command that writes: created, and checked to be writable."""
    return check_home(Paths.from_env(), writable=True)


def readable_home() -> Paths:
    """SHOPGUIDE_HOME for a command that only reads: checked, never created."""
    return check_home(Paths.from_env(), writable=False)


def check_k(k: int) -> int:
    if not 1 <= k <= MAX_K:
        raise UserError(f"-k {k} is out of range: use 1 to {MAX_K:,}.")
    return k


def echo_json(payload) -> None:
    typer.echo(json.dumps(payload, indent=2, sort_keys=False, default=str))


@app.command()
@friendly_errors
def setup() -> None:
    """Prepare the data directory and the dbt manifest (run once after install; idempotent)."""
    from core.dbt_manifest import ensure_manifest

    home = writable_home()
    home.export()
    manifest = ensure_manifest()
    typer.echo(f"data directory: {home.home}\ndbt manifest:   {manifest}")


@import_app.command("online-retail")
@friendly_errors
def import_online_retail(
    path: Annotated[
        Path | None, typer.Option(help="Online Retail Parquet file (default: the copy shipped in data/).")
    ] = None,
) -> None:
    """Turn the Online Retail invoice lines into daily landing files."""
    from shopguide.sources.online_retail import DEFAULT_PATH
    from shopguide.sources.online_retail import import_online_retail as run_import

    home = writable_home()
    summary = run_import(home.landing, path or DEFAULT_PATH)
    typer.echo(
        f"{summary.source_lines:,} source lines → {summary.line_events:,} line events + "
        f"{summary.catalog_events:,} catalog events in {summary.days} landing days "
        f"({home.landing})"
    )


@app.command()
@friendly_errors
def generate(
    events: Annotated[
        int | None,
        typer.Option(
            help="Events to generate (1,000 to 10,000,000; default 100,000). With --continue: over "
            "the new days (default: the shop's daily average per day)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed writes the same files.")] = 42,
    start_date: Annotated[str, typer.Option(help="First day events occur on (YYYY-MM-DD).")] = "2024-01-01",
    days: Annotated[
        int | None, typer.Option(help="Number of days (default 30; with --continue, 1).", show_default=False)
    ] = None,
    products: Annotated[
        int | None,
        typer.Option(help="Catalog size, 1 to 1,000,000 (default: events / 200, within 200 to 50,000)."),
    ] = None,
    shoppers: Annotated[
        int | None,
        typer.Option(
            help="Registered shoppers, 1 to 10,000,000 (default: events / 50, within 100 to 1,000,000)."
        ),
    ] = None,
    malformed_share: Annotated[float, typer.Option(help="Share of deliberately malformed lines.")] = 0.001,
    fmt: Annotated[str, typer.Option("--format", help="jsonl or parquet.")] = "jsonl",
    continue_: Annotated[
        bool,
        typer.Option(
            "--continue",
            help="Append days to the shop generated before under this home: same catalog, shoppers, "
            "seed and format; event ids after its last one; days after its last landing day.",
        ),
    ] = False,
    experiment_lift: Annotated[
        float | None,
        typer.Option(
            help="Also simulate an A/B experiment with this planted relative lift in click-through and "
            "conversion (0.1 = +10%), written as experiment.jsonl files (docs/experiments.md)."
        ),
    ] = None,
    experiment_share: Annotated[float, typer.Option(help="The experiment's canary share, 0.01-0.99.")] = 0.5,
    experiment_shoppers: Annotated[int, typer.Option(help="Shoppers in the experiment.")] = 4_000,
    experiment_snapshot: Annotated[
        str, typer.Option(help="The snapshot id the canary arm's exposures name.")
    ] = "canary",
) -> None:
    """Write synthetic landing files (views, carts, searches, late and duplicate events)."""
    home = writable_home()
    if days is not None and days < 1:
        raise UserError("--days must be at least 1.")
    if continue_:
        _continue_shop(home, events, days or 1)
        return
    from shopguide.sources.synthetic import SyntheticConfig
    from shopguide.sources.synthetic import generate as run_generate

    events = 100_000 if events is None else events
    if not 1_000 <= events <= 10_000_000:
        raise UserError(f"--events {events} is out of range: use 1,000 to 10,000,000.")
    if products is not None and not 1 <= products <= 1_000_000:
        raise UserError(f"--products {products} is out of range: use 1 to 1,000,000.")
    if shoppers is not None and not 1 <= shoppers <= 10_000_000:
        raise UserError(f"--shoppers {shoppers} is out of range: use 1 to 10,000,000.")
    if fmt not in ("jsonl", "parquet"):
        raise UserError(f"--format {fmt!r}: use jsonl or parquet.")
    config = SyntheticConfig(
        events=events,
        seed=seed,
        start_date=parse_day(start_date, "--start-date"),
        days=days or 30,
        products=products,
        users=shoppers,
        malformed_share=malformed_share,
    )
    if experiment_lift is not None:
        _check_experiment_options(experiment_lift, experiment_share, experiment_shoppers)
    _report_generated(run_generate(home.landing, config, fmt=fmt), home)
    if experiment_lift is not None:
        _generate_experiment(
            home, config, experiment_lift, experiment_share, experiment_shoppers, experiment_snapshot
        )


def _continue_shop(home: Paths, events: int | None, days: int) -> None:
    """`generate --continue`: the shop's own options apply; only --events and --days count."""
    from shopguide.sources.synthetic import NoShopToContinue, continue_shop

    if events is not None and not 1 <= events <= 10_000_000:
        raise UserError(f"--events {events} is out of range: use 1 to 10,000,000.")
    try:
        summary = continue_shop(home.landing, days=days, events=events)
    except NoShopToContinue as error:
        raise UserError(f"{error}: run `shopguide generate` first.") from None
    _report_generated(summary, home)


def _report_generated(summary, home: Paths) -> None:
    days = sorted({p.parent.name for p in summary.files})
    span = f" for landing days {days[0]}..{days[-1]}" if days else ""
    typer.echo(
        f"{summary.lines_written():,} lines ({summary.events:,} events, {summary.duplicates:,} "
        f"duplicates, {summary.malformed:,} malformed, {summary.late:,} late) in "
        f"{len(summary.files)} files under {home.landing}{span}"
    )


def _check_experiment_options(lift: float, share: float, shoppers: int) -> None:
    if not -0.9 <= lift <= 10:
        raise UserError(f"--experiment-lift {lift}: use a relative lift from -0.9 to 10.")
    if not 0.01 <= share <= 0.99:
        raise UserError(f"--experiment-share {share}: use 0.01 to 0.99.")
    if not 10 <= shoppers <= 10_000_000:
        raise UserError(f"--experiment-shoppers {shoppers}: use 10 to 10,000,000.")


def _generate_experiment(home, config, lift: float, share: float, shoppers: int, snapshot: str) -> None:
    from shopguide.sources.experiment import ExperimentSimulation, write_experiment_landing

    # The synthetic catalog's first products, upserted on its first day (SKU-000001, ...).
    catalog = config.products or 200
    if catalog < 10:
        raise UserError("--experiment-lift needs a catalog of at least 10 products (--products).")
    sim = ExperimentSimulation(
        shoppers=shoppers,
        canary_share=share,
        ctr_lift=lift,
        conversion_lift=lift,
        days=config.days,
        seed=config.seed,
        novelty=0.3,
    )
    product_ids = [f"SKU-{i + 1:06d}" for i in range(min(catalog, 200))]
    written = write_experiment_landing(
        home.landing, sim, config.start_date, product_ids, canary_snapshot=snapshot
    )
    typer.echo(
        f"experiment: {sum(written.values()):,} lines in {len(written)} files, canary {snapshot} at "
        f"{share:.0%}, planted lift {lift:+.1%} (novelty +30% fading)"
    )


def _report_run(outcome) -> None:
    span = (
        f"{outcome.first_day}"
        if outcome.first_day == outcome.last_day
        else f"{outcome.first_day}..{outcome.last_day}"
    )
    if outcome.success:
        typer.echo(f"run {outcome.run_id} succeeded for {span}")
    else:
        typer.secho(
            f"run {outcome.run_id} FAILED for {span}; see `shopguide ui` → Runs.",
            fg=typer.colors.RED,
            err=True,
        )
    for check in outcome.failed_checks:
        typer.secho(f"  check failed (blocking): {check}", fg=typer.colors.RED, err=True)
    for check in outcome.warnings:
        typer.secho(f"  check warning: {check}", fg=typer.colors.YELLOW, err=True)
    if not outcome.success:
        raise typer.Exit(code=1)


@app.command()
@friendly_errors
def run(
    date_: Annotated[str, typer.Option("--date", help="Landing day to process (YYYY-MM-DD).")],
    set_: SetOption = None,
    target: TargetOption = "duckdb",
) -> None:
    """Run the nightly job for one landing day, through Dagster."""
    from shopguide.runner import run_range

    overrides = recommender_overrides(set_ or [])
    home = writable_home()
    day = parse_day(date_, "--date")
    require_landing_files(home, day, day)
    _report_run(run_range(home, day, day, recommender=overrides, target=target))


@app.command()
@friendly_errors
def backfill(
    start: Annotated[str, typer.Option(help="First landing day (YYYY-MM-DD).")],
    end: Annotated[str, typer.Option(help="Last landing day, inclusive (YYYY-MM-DD).")],
    set_: SetOption = None,
    target: TargetOption = "duckdb",
) -> None:
    """Re-run the nightly job over a range of landing days in one Dagster run (idempotent)."""
    from shopguide.runner import run_range

    overrides = recommender_overrides(set_ or [])
    home = writable_home()
    first, last = parse_day(start, "--start"), parse_day(end, "--end")
    require_landing_files(home, first, last)
    _report_run(run_range(home, first, last, recommender=overrides, target=target))


def recommender_overrides(pairs: list[str]) -> dict:
    """`--set tables.k=20 --set gate.min_user_coverage=0.9` as the recommender resource's run
    config (what the launchpad takes), checked here so that a wrong value is one line before
    any run starts. A value is read as JSON (numbers, true/false, null), else as text."""
    overrides: dict = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name.strip():
            raise UserError(f"--set {pair!r}: write NAME=VALUE, e.g. --set tables.k=20.")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        *parents, leaf = name.strip().split(".")
        node = overrides
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UserError(f"--set {pair!r}: {part} is a setting, not a group of settings.")
        node[leaf] = value
    if overrides:
        from assets.resources import SettingsError, recommender_settings

        try:
            recommender_settings(overrides)
        except SettingsError as error:
            raise UserError(str(error)) from None
    return overrides


def require_landing_files(home: Paths, first: date, last: date) -> None:
    """Refuse a run with nothing to ingest (exit 2): a wrong date or files not landed yet are
    the usual causes, and the run would only rebuild unchanged tables. The range is checked
    first, so a date outside the partitions keeps its own message."""
    from shopguide.runner import validate_range
    from warehouse.landing import landing_days_between

    validate_range(first, last)
    if not landing_days_between(home.landing, first, last):
        span = f"{first}" if first == last else f"{first}..{last}"
        raise UserError(
            f"no landing files for {span} under {home.landing}: nothing to run "
            "(land, import or generate files first, or check the date)."
        )


@app.command()
@friendly_errors
def status(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Every warehouse table: rows, an order-independent checksum, latest partition."""
    from shopguide.inventory import inventory

    home = readable_home()
    # Dagster's records live in SQLite files that cannot even be opened for reading in a
    # folder that cannot be written: on a read-only home the tables' own figures suffice.
    with_dagster = home.dagster_home.is_dir() and can_write(home.dagster_home)
    if not with_dagster and home.warehouse.exists():
        typer.secho(
            f"note: {home.dagster_home} is read-only or absent: Dagster's records are not read, "
            "so views show no latest partition.",
            err=True,
        )
    report = inventory(home, with_dagster=with_dagster)
    if report["source"] == "snapshot":
        typer.secho(
            f"note: {report['running']} is writing the warehouse; these figures are as of {report['as_of']}.",
            err=True,
        )
    if as_json:
        echo_json(report)
        return
    typer.echo(f"warehouse: {report['warehouse']} (as of {report['as_of']})")
    for table in report["tables"]:
        typer.echo(
            f"  {table['table']:<32} {table['kind']:<5} {table['rows']:>12,}  "
            f"{table['checksum']}{' (definition)' if table.get('checksum_of') == 'definition' else ''}"
            f"  latest {table['latest_partition'] or '-'}"
        )
    serving = report["serving"]
    canary = serving["canary"]
    typer.echo(
        f"serving: snapshot {serving['current'] or '(none published)'}"
        + (f", canary {canary['snapshot']} for {canary['percent']}%" if canary else "")
    )
    overlay = serving["overlay"]
    if overlay:
        typer.echo(
            f"  intraday overlay {overlay['id']}: {overlay['shoppers']:,} shoppers refreshed "
            f"(last refresh {overlay['refreshed_last']:,}), events to {overlay['as_of']}, "
            f"made {overlay['created_at']}"
        )
    else:
        typer.echo("  intraday overlay: none (`shopguide refresh` makes one from today's landing files)")


@app.command()
@friendly_errors
def search(
    query: Annotated[str, typer.Argument(help="What the shopper typed, e.g. 'christmas decoration'.")],
    k: Annotated[int, typer.Option("-k", help=K_HELP)] = 10,
    category: Annotated[str | None, typer.Option(help="Category path prefix, e.g. 'Home > Kitchen'.")] = None,
    min_price: Annotated[float | None, typer.Option(help="Lowest price.")] = None,
    max_price: Annotated[float | None, typer.Option(help="Highest price.")] = None,
    include_out_of_stock: Annotated[
        bool, typer.Option(help="Also show delisted / out-of-stock products.")
    ] = False,
    mode: Annotated[
        str,
        typer.Option(help="vector (by meaning, any language), text (BM25 words) or hybrid (both, fused)."),
    ] = "vector",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Product search by meaning, in any language (multilingual e5); or by words, or both."""
    from assets.resources import SearchEncoder
    from embeddings.search import SearchFilters, SearchSettings, search_products
    from embeddings.store import connect as connect_lancedb
    from embeddings.store import database_exists

    check_k(k)
    settings = SearchSettings(mode=mode)
    home = readable_home()
    if not database_exists(home.lancedb_uri):  # connecting would create it
        raise UserError("No product embeddings yet: run `shopguide demo` or the nightly job first.")
    filters = SearchFilters(
        category=category, min_price=min_price, max_price=max_price, in_stock_only=not include_out_of_stock
    )
    db = connect_lancedb(home.lancedb_uri)
    rows = search_products(db, SearchEncoder().encoder(), query, k, filters, settings)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        typer.echo("no products match")
    for row in rows:
        price = "-" if row["price"] is None else f"{row['price']:.2f}"
        typer.echo(f"{row['score']:.3f}  {row['product_id']:<10} {price:>8}  {row['title']}")


def _serving_root(writable: bool = False):
    from serving import serving_root

    return serving_root(writable_home() if writable else readable_home())


@app.command()
@friendly_errors
def publish(
    snapshot: Annotated[
        str | None, typer.Option(help="Publish this snapshot id (default: the newest).")
    ] = None,
    canary: Annotated[int | None, typer.Option(help="Show it to this percent (1-99) of users only.")] = None,
    promote_canary: Annotated[
        bool, typer.Option("--promote-canary", help="Make the running canary current.")
    ] = False,
    abort_canary: Annotated[
        bool, typer.Option("--abort-canary", help="Stop the canary; everyone sees current.")
    ] = False,
    force: Annotated[
        bool, typer.Option(help="Publish even though its quality gate failed (recorded).")
    ] = False,
) -> None:
    """Publish a recommendation snapshot (all users, or a canary), or promote/abort a canary."""
    from serving import publish as publishing
    from serving.snapshots import list_snapshots

    root = _serving_root(writable=True)
    if promote_canary or abort_canary:
        if promote_canary and abort_canary:
            raise UserError("--promote-canary and --abort-canary exclude each other.")
        pointer = publishing.promote_canary(root) if promote_canary else publishing.abort_canary(root)
        typer.echo(f"current: {pointer['current']}; canary: {pointer['canary']}")
        return
    if snapshot is None:
        snapshots = list_snapshots(root)
        if not snapshots:
            raise UserError("No snapshot yet: run the nightly job (`shopguide run --date D`) first.")
        snapshot = snapshots[-1]
    if canary is not None:
        if not 1 <= canary <= 99:
            raise UserError(f"--canary {canary}: use a percent from 1 to 99.")
        pointer = publishing.start_canary(root, snapshot, canary, None, force=force)
        typer.echo(f"canary: {snapshot} for {canary}% of users; current stays {pointer['current']}")
    else:
        publishing.publish(root, snapshot, None, force=force)
        typer.echo(f"published: {snapshot}")


def _experiment(snapshot: str | None, percent: int | None):
    from experiments.warehouse import Experiment, NoExperiment, running_experiment

    if (snapshot is None) != (percent is None):
        raise UserError("--snapshot and --percent go together (the canary's snapshot id and its share).")
    if snapshot is not None:
        if not 1 <= percent <= 99:
            raise UserError(f"--percent {percent}: use a percent from 1 to 99.")
        return Experiment(snapshot, percent)
    running = running_experiment(_serving_root())
    if running is None:
        raise NoExperiment(
            "no canary is running: start one with `shopguide publish --canary P`, or name a past one "
            "with --snapshot ID --percent P."
        )
    return running


def _readout_lines(experiment, readout, in_both: int) -> list[str]:
    def pct(value, sign="+"):
        return "n/a" if value is None else f"{value:{sign}.2%}"

    srm = readout.srm
    lines = [
        f"experiment: canary {experiment.snapshot_id} at {experiment.canary_percent}%, "
        f"{readout.days_running} day(s) of exposures",
        f"shoppers:   control {readout.shoppers['control']:,}, canary {readout.shoppers['canary']:,}"
        + (f" ({in_both:,} seen in both arms left out)" if in_both else ""),
        f"exposures:  control {readout.exposures['control']:,}, canary {readout.exposures['canary']:,}",
        "SRM:        "
        + ("n/a" if srm.p_value is None else f"chi-square {srm.chi_square:.2f}, p = {srm.p_value:.3g}")
        + (" MISMATCH" if srm.mismatch else ""),
        f"{'metric':<22}{'control':>12}{'canary':>12}{'lift':>10}  {'95% CI':<20}{'MDE':>8}",
    ]
    for m in readout.metrics.values():
        star = "*" if m.metric == readout.rule.primary else " "
        interval = "n/a" if m.lift.low is None else f"{pct(m.lift.low)} .. {pct(m.lift.high)}"
        lines.append(
            f"{star}{m.metric:<21}{m.control if m.control is not None else float('nan'):>12.4f}"
            f"{m.canary if m.canary is not None else float('nan'):>12.4f}{pct(m.lift.estimate):>10}  "
            f"{interval:<20}{pct(m.mde, ''):>8}"
        )
    lines.append(f"decision:   {readout.decision} ({readout.reason})")
    return lines


SnapshotOption = Annotated[
    str | None, typer.Option("--snapshot", help="A canary snapshot id other than the running one.")
]
PercentOption = Annotated[
    int | None, typer.Option("--percent", help="Its canary share, 1-99 (with --snapshot).")
]


@experiment_app.command("status")
@friendly_errors
def experiment_status(
    snapshot: SnapshotOption = None,
    percent: PercentOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """The running canary's readout over everything logged so far, and the rule's decision."""
    from experiments.warehouse import current_readout

    experiment = _experiment(snapshot, percent)
    readout, in_both = current_readout(readable_home().warehouse, experiment)
    if as_json:
        echo_json(
            {**readout.as_dict(), "snapshot_id": experiment.snapshot_id, "shoppers_in_both_arms": in_both}
        )
        return
    typer.echo("\n".join(_readout_lines(experiment, readout, in_both)))


def _act_on_canary(action: str, force: bool) -> None:
    from experiments.automation import readout_details
    from experiments.readout import ABORT, PROMOTE
    from experiments.warehouse import NoExperiment, current_readout
    from serving import publish as publishing

    experiment = _experiment(None, None)
    try:
        readout, _ = current_readout(readable_home().warehouse, experiment)
        decision, reason = readout.decision, readout.reason
        # as_of None: the figures are over everything logged when the command ran.
        details = readout_details(readout, "operator", None)
    except NoExperiment as missing:
        decision, reason, details = None, str(missing), {"by": "operator"}
    wanted = PROMOTE if action == "promote" else ABORT
    # Aborting is always safe (everyone goes back to the current version); promoting against
    # the readout needs --force, and the history says so.
    if action == "promote" and decision != wanted and not force:
        raise UserError(
            f"the readout does not say promote ({decision or 'no readout'}: {reason}); "
            "use --force to promote anyway."
        )
    why = f"readout: {decision}: {reason}" if decision else reason
    if action == "promote" and decision != wanted:
        why = f"forced against the {why}"
    act = publishing.promote_canary if action == "promote" else publishing.abort_canary
    pointer = act(_serving_root(writable=True), reason=why, expected=experiment.snapshot_id, details=details)
    done = "promoted" if action == "promote" else "aborted"
    typer.echo(f"{done} canary {experiment.snapshot_id}; current: {pointer['current']} ({why})")


@experiment_app.command("promote")
@friendly_errors
def experiment_promote(
    force: Annotated[
        bool, typer.Option(help="Promote even though the readout does not say so (recorded).")
    ] = False,
) -> None:
    """Make the canary current for everyone when the readout's decision is promote."""
    _act_on_canary("promote", force)


@experiment_app.command("abort")
@friendly_errors
def experiment_abort() -> None:
    """Stop the canary (always allowed); the readout's figures go into the serving history."""
    _act_on_canary("abort", force=True)


@app.command()
@friendly_errors
def rollback(
    to: Annotated[
        str | None, typer.Option(help="Snapshot id to return to (default: the previous one).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Allow a version whose quality gate failed.")] = False,
) -> None:
    """Point the storefront back at an earlier snapshot, at once."""
    from serving.publish import rollback as roll_back

    pointer = roll_back(_serving_root(writable=True), to=to, force=force)
    typer.echo(f"current: {pointer['current']}")


@app.command()
@friendly_errors
def refresh(
    drop: Annotated[
        bool, typer.Option("--drop", help="Stop serving the intraday overlay (the snapshot's lists again).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Intraday refresh: append new landing files after the current snapshot's day to the event
    log and recompute only their shoppers' lists, served as an overlay of the snapshot."""
    if drop:
        from serving.publish import drop_overlay

        pointer = drop_overlay(_serving_root(writable=True), reason="shopguide refresh --drop")
        typer.echo(f"overlay dropped; serving {pointer['current']} as published")
        return
    from assets.intraday import refresh_active_shoppers
    from shopguide.runlock import RunInfo, exclusive_run, this_command

    home = writable_home()
    info = RunInfo(
        run_id=f"refresh-{os.getpid()}",
        job="intraday_refresh",
        first_day="today",
        last_day="today",
        started_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        pid=os.getpid(),
        command=this_command(),
    )
    with exclusive_run(home, info):  # it appends to the event log: not beside a nightly run
        result = refresh_active_shoppers(home)
    if as_json:
        echo_json(
            {
                "status": result.status,
                "snapshot_id": result.snapshot_id,
                "overlay_id": result.overlay_id,
                "new_files": result.new_files,
                "new_events": result.new_events,
                "refreshed": result.refreshed,
                "overlaid": result.overlaid,
                "gate": result.gate.to_dict() if result.gate else None,
                "seconds": result.seconds,
            }
        )
    else:
        typer.echo(result.summary())
    if result.status == "blocked":
        raise typer.Exit(code=1)


@app.command()
@friendly_errors
def versions(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Recommendation snapshots with their gate results; which is current or in canary."""
    from serving.publish import versions as list_versions

    rows = list_versions(_serving_root())
    if as_json:
        echo_json(rows)
        return
    if not rows:
        typer.echo("no snapshots yet")
    for row in rows:
        marks = ("current " if row["is_current"] else "") + (
            f"canary {row['canary_percent']}% " if row["is_canary"] else ""
        )
        gate = {True: "gate passed", False: "gate FAILED", None: "not gated"}[row["gate_passed"]]
        typer.echo(f"{row['id']}  {row['partition_date']}  {gate:<11}  {marks}")


@app.command()
@friendly_errors
def evaluate(
    cutoff: Annotated[
        str | None, typer.Option(help="First day of the test window (YYYY-MM-DD; default: the latest).")
    ] = None,
    window: Annotated[int, typer.Option(help="Test (and validation) window in days.")] = 30,
    tune: Annotated[bool, typer.Option(help="Choose parameters on the validation window.")] = True,
    max_users: Annotated[
        int, typer.Option(help="Shoppers evaluated per window at most (a reproducible sample beyond it).")
    ] = 10_000,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Offline evaluation of shopguide's ranker against strong baselines on a time split."""
    from evaluation.data import load_shop_data
    from evaluation.history import markdown, read_history, write_reports
    from evaluation.protocol import evaluate as run_evaluation
    from shopguide.runlock import outside_runs

    if window < 1:
        raise UserError(f"--window must be at least 1 day, got {window}.")
    if max_users < 1:
        raise UserError(f"--max-users must be at least 1, got {max_users}.")
    day = parse_day(cutoff, "--cutoff") if cutoff else None
    home = writable_home()
    log = (lambda message: None) if as_json else (lambda message: typer.echo(f"tuned {message}", err=True))
    with outside_runs(home, "evaluate"):
        data, history = load_shop_data(home), read_history(home.warehouse)
    result = run_evaluation(data, day, window, tune=tune, max_users=max_users, log=log)
    written = write_reports(home.reports / "evaluation", result, history)
    if as_json:
        echo_json(result.to_dict())
        return
    typer.echo(markdown(result))
    typer.echo(f"written: {written['markdown']}  ({result.seconds} s)")


@app.command()
@friendly_errors
def recommend(
    user: Annotated[str | None, typer.Option("--user", help="A shopper's recommendations.")] = None,
    similar: Annotated[
        str | None, typer.Option("--similar", help="Products similar to this product id.")
    ] = None,
    popular: Annotated[bool, typer.Option("--popular", help="Popular products.")] = False,
    category: Annotated[str | None, typer.Option(help="With --popular: a category.")] = None,
    k: Annotated[int, typer.Option("-k", help=K_HELP)] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """What the storefront would show, read from the published snapshot."""
    from serving.reader import Reader

    if sum(x is not None and x is not False for x in (user, similar, popular or None)) != 1:
        raise UserError("Give exactly one of --user ID, --similar PRODUCT_ID or --popular.")
    check_k(k)
    root = _serving_root()
    reader = Reader(root)
    if user is not None:
        rows = reader.get_recommendations(user, k)
    elif similar is not None:
        rows = reader.get_similar(similar, k)
        if not rows:
            _require_known_product(root, reader, similar)
    else:
        rows = reader.get_popular(category=category, k=k)
    if as_json:
        echo_json(rows)
        return
    if not rows:  # a user always gets a list (the popular fallback); the others may have none
        in_category = f" in category {category!r}" if category else ""
        typer.echo(
            f"no similar products for {similar} in the published snapshot"
            if similar is not None
            else f"no popular products{in_category} in the published snapshot"
        )
    for row in rows:
        product = row.get("product_id") or row.get("similar_product_id")
        typer.echo(
            f"{row.get('rank', ''):>3} {row['score']:.3f}  {product:<10} {row.get('title') or '':<40} "
            f"{row.get('source', '')}: {row.get('reason', '')}"
        )


def _require_known_product(root, reader, product_id: str) -> None:
    """An id the published catalog does not hold is a mistake worth saying (exit 2); a known
    product may just have no similar list."""
    from serving.snapshots import read_table

    snapshot_id = reader.version_for(None)
    products = read_table(root, snapshot_id, "products")
    if not (products["product_id"] == product_id).any():
        raise UserError(f"unknown product {product_id!r}: it is not in the published snapshot {snapshot_id}.")


@app.command()
@friendly_errors
def report(
    open_: Annotated[bool, typer.Option("--open", help="Open the report in the web browser.")] = False,
) -> None:
    """Build the monitoring report (HTML, Prometheus .prom, alerts table); prints its path."""
    import webbrowser

    from dagster import DagsterInstance

    from reports.build import build_report
    from shopguide.runlock import outside_runs

    home = writable_home()
    home.export()
    now = datetime.now(UTC)
    with outside_runs(home, "report"), DagsterInstance.get() as instance:
        outcome = build_report(home, now, f"report-{now:%Y%m%dT%H%M%SZ}", instance=instance)
    for alert in outcome.alerts:
        color = typer.colors.RED if alert.severity == "critical" else typer.colors.YELLOW
        typer.secho(f"{alert.severity}: [{alert.source}] {alert.message}", fg=color, err=True)
    typer.echo(str(outcome.html_path))
    if open_:
        webbrowser.open(outcome.html_path.as_uri())


@app.command()
@friendly_errors
def demo() -> None:
    """The main job: import the shipped Online Retail data and run the pipeline over all its days."""
    from core.dbt_manifest import ensure_manifest
    from shopguide.demo import run_demo
    from shopguide.runlock import refuse_if_running

    home = writable_home()
    refuse_if_running(home)  # before the import rewrites the landing files that run reads
    ensure_manifest()  # now, not after the import: a dbt problem shows before minutes of work
    started = time.perf_counter()
    summary = run_demo(home)
    typer.echo(summary.render(time.perf_counter() - started))
    if not summary.success:
        raise typer.Exit(code=1)


@app.command()
@friendly_errors
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1, max=64)] = 1,
) -> None:
    """Serve the storefront HTTP API (recommendations, similar, popular, search) from the
    published snapshot; OpenAPI schema at /openapi.json. Stop it with Ctrl-C."""
    from serving.publish import current_snapshot
    from shopguide.server import serve as run_server

    if current_snapshot(_serving_root()) is None:
        raise UserError(
            f"Nothing is published under {_serving_root()} yet: "
            "run `shopguide demo` (or the nightly job) first."
        )
    typer.echo(
        f"shopguide API on http://{host}:{port} ({workers} worker(s)); "
        "schema at /openapi.json; Ctrl-C stops it."
    )
    run_server(host, port, workers)


def _run_dagster(args: list[str], what: str, banner: str) -> None:
    """Run a Dagster process (`dagster dev`, the webserver, the daemon, a code server) against
    the instance under SHOPGUIDE_HOME until Ctrl-C or SIGTERM, then stop its whole process
    group: SIGTERM first (Dagster shuts down cleanly on it), SIGKILL after 15 s."""
    import os
    import signal
    import subprocess

    from core.dbt_manifest import DBT_EXECUTABLE, ensure_manifest
    from core.settings import REPO_ROOT

    home = writable_home()  # also writes dagster.yaml for the selected storage (core/instance.py)
    home.export()
    ensure_manifest()
    _fail_orphaned_runs()  # the UI would show them as running forever
    typer.echo(banner)  # after the checks: a bad home or setting is the only line printed
    # Its own process group, so that stopping reaches the children too (dagster dev's webserver
    # and daemon, the code servers that the webserver and the daemon start).
    # dagster-dbt's prepare_if_dev looks for `dbt` on PATH: make it the venv's own.
    env = {**os.environ, "PATH": f"{DBT_EXECUTABLE.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    process = subprocess.Popen([sys.executable, "-m", *args], cwd=REPO_ROOT, start_new_session=True, env=env)

    def stop(signum, frame):
        raise KeyboardInterrupt

    # Installed explicitly: a shell that starts us in the background sets SIGINT to
    # "ignore", and Ctrl-C or `kill -INT` must still stop it; a container stops with SIGTERM.
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        code = process.wait()
    except KeyboardInterrupt:
        typer.echo(f"stopping the {what} ...")
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        return
    if code != 0:  # it stopped on its own: its reason is already on stderr
        raise typer.Exit(code=1)


def _workspace(path: Path | None) -> str:
    from core.settings import REPO_ROOT

    workspace = path or REPO_ROOT / "workspace.yaml"
    if not workspace.is_file():
        raise UserError(f"--workspace {workspace}: no such file.")
    return str(workspace.resolve())


WorkspaceOption = Annotated[
    Path | None,
    typer.Option(
        help="Dagster workspace file (default: the repository's workspace.yaml, which loads the "
        "code in a subprocess; deploy/workspace.yaml points at a code server instead)."
    ),
]


@app.command()
@friendly_errors
def ui(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 3000,
) -> None:
    """Start the Dagster UI on 127.0.0.1 (`dagster dev`). Stop it with Ctrl-C."""
    _run_dagster(
        ["dagster", "dev", "-w", _workspace(None), "--host", "127.0.0.1", "--port", str(port)],
        "Dagster UI",
        f"Dagster UI on http://127.0.0.1:{port} (data in {Paths.from_env().home}); Ctrl-C stops it.",
    )


@app.command()
@friendly_errors
def webserver(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 3000,
    workspace: WorkspaceOption = None,
) -> None:
    """The Dagster webserver alone (service form: the daemon runs beside it, `shopguide daemon`).
    Stop it with Ctrl-C or SIGTERM."""
    _run_dagster(
        ["dagster_webserver", "-w", _workspace(workspace), "-h", host, "-p", str(port)],
        "Dagster webserver",
        f"Dagster webserver on http://{host}:{port}; Ctrl-C stops it.",
    )


@app.command()
@friendly_errors
def daemon(workspace: WorkspaceOption = None) -> None:
    """The Dagster daemon: runs the schedules, the landing sensor and the run queue against the
    instance (SQLite, or PostgreSQL with SHOPGUIDE_DAGSTER_STORAGE=postgres). Stop it with
    Ctrl-C or SIGTERM."""
    _run_dagster(
        ["dagster._daemon", "run", "-w", _workspace(workspace)],
        "Dagster daemon",
        "Dagster daemon (schedules, sensors, run queue); Ctrl-C stops it.",
    )


@app.command("code-server")
@friendly_errors
def code_server(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 4000,
) -> None:
    """Serve the code location (orchestration.definitions) over gRPC for a webserver and a
    daemon in other processes or containers. Stop it with Ctrl-C or SIGTERM."""
    location = ["-m", "orchestration.definitions", "-a", "defs"]  # as workspace.yaml names it
    _run_dagster(
        ["dagster", "api", "grpc", *location, "-h", host, "-p", str(port)],
        "code location server",
        f"code location server on {host}:{port}; Ctrl-C stops it.",
    )


def _fail_orphaned_runs() -> None:
    from dagster import DagsterInstance

    from shopguide.run_records import fail_orphaned_runs

    with DagsterInstance.get() as instance:
        for line in fail_orphaned_runs(instance):
            typer.secho(line, fg=typer.colors.YELLOW, err=True)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
