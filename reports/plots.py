"""The report's figures, drawn with matplotlib and returned as inline SVG text.

No pyplot (no global state, no GUI backend): each function builds a `Figure` and turns it
into an `<svg>` element whose ids are prefixed with the figure's name, so several figures
can live in one HTML page without their clip paths and markers colliding. Text stays text
(`svg.fonttype: none`): small, sharp and searchable in the page.
"""

from __future__ import annotations

import functools
import io
import re
from datetime import timedelta
from html import escape

import matplotlib
import numpy as np
import polars as pl
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

from reports.alerts import Thresholds
from reports.drift import Z_THRESHOLD

OK, WARN, BAD, INK, MUTED, BAND = "#3b8d5a", "#d9952b", "#c0392b", "#1f4e79", "#8a8f98", "#d6e4f0"
STYLE = {
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e6e6e6",
    "grid.linewidth": 0.6,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "legend.frameon": False,
    "axes.axisbelow": True,
    "svg.fonttype": "none",
}
AGE_TICKS = [
    (60, "1 min"),
    (3600, "1 h"),
    (86400, "1 day"),
    (7 * 86400, "1 week"),
    (30 * 86400, "1 month"),
    (365 * 86400, "1 year"),
    (3650 * 86400, "10 years"),
]


def styled(draw):
    """Run a plotting function inside the report's matplotlib style (no global rcParams change)."""

    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(STYLE):
            return draw(*args, **kwargs)

    return wrapper


def figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def to_svg(fig: Figure, name: str, label: str) -> str:
    """The figure as an `<svg>` element that scales to its container; ids prefixed by `name`."""
    buffer = io.StringIO()
    with matplotlib.rc_context({**STYLE, "svg.hashsalt": name}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)
    text = re.sub(r'\bid="([^"]+)"', rf'id="{name}-\1"', text)
    text = re.sub(r"url\(#([^)]+)\)", rf"url(#{name}-\1)", text)
    text = re.sub(r'xlink:href="#([^"]+)"', rf'xlink:href="#{name}-\1"', text)
    text = re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r"<svg\1", text, count=1)
    # The page inserts this SVG as markup (reports/html.py): the one attribute added here is escaped too.
    label = escape(label, quote=True)
    return text.replace("<svg", f'<svg class="plot" role="img" aria-label="{label}" data-plot="{name}"', 1)


def _thousands(axis) -> None:
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))


def _dates(ax) -> None:
    locator = AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def _empty(ax, message: str) -> None:
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", color=MUTED, transform=ax.transAxes)


def _age_label(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:,.0f} days"


@styled
def freshness(frame: pl.DataFrame, t: Thresholds) -> str:
    rows = frame.sort(["kind", "name"], descending=[True, False]).to_dicts()
    fig = figure(10, 0.6 + 0.26 * max(len(rows), 1))
    ax = fig.add_subplot()
    ages = [max(r["age_seconds"], 1.0) if r["age_seconds"] is not None else None for r in rows]
    known = [a for a in ages if a is not None] or [3600.0]
    low, high = min(known + [t.asset_stale_hours * 3600]) / 3, max(known) * 3
    colors = []
    for r, age in zip(rows, ages, strict=True):
        limit = (t.event_log_stale_hours if r["kind"] == "event_log" else t.asset_stale_hours) * 3600
        colors.append(MUTED if age is None else OK if age <= limit else BAD if age > 2 * limit else WARN)
    y = np.arange(len(rows))
    ax.barh(y, [a or 0 for a in ages], color=colors, height=0.65, left=0)
    ax.set_xscale("log")
    ax.set_xlim(low, high)
    ax.set_yticks(y, [r["name"] for r in rows])
    ax.invert_yaxis()
    ticks = [(s, label) for s, label in AGE_TICKS if low <= s <= high]
    ax.set_xticks([s for s, _ in ticks], [label for _, label in ticks])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.axvline(t.asset_stale_hours * 3600, color=WARN, linestyle="--", linewidth=1)
    for i, age in enumerate(ages):
        text = "never materialised" if age is None else _age_label(age)
        ax.text((age or low) * 1.08, i, text, va="center", fontsize=8, color="#333")
    ax.set_title(f"Age at report time (dashed: {t.asset_stale_hours:.0f} h, the assets' limit)")
    ax.grid(axis="y", visible=False)
    return to_svg(fig, "freshness", "Age of every asset and of the newest event")


def _clip_outliers(ax, days, values, upper) -> None:
    """Cap the y axis so one huge day (a first catalog load) does not flatten the rest; the
    capped points get their value written at the top."""
    values = values.astype(float)
    typical = np.nanpercentile(values, 98) if len(values) else 0.0
    top = max(typical, np.nanmax(np.nan_to_num(upper, nan=0.0)) if len(upper) else 0.0, 1.0) * 1.15
    ax.set_ylim(0, top)
    for day, value in zip(days, values, strict=True):
        if value > top:
            ax.annotate(
                f"▲ {value:,.0f}",
                (day, top),
                xytext=(3, -10),
                textcoords="offset points",
                fontsize=7,
                color=BAD,
            )


@styled
def volume(frame: pl.DataFrame) -> str:
    types = sorted(frame["event_type"].unique().to_list())
    columns = 1 if len(types) <= 3 else 2  # many types: two columns of small multiples
    rows = -(-len(types) // columns)
    fig = figure(10, (1.7 if columns == 1 else 1.5) * rows + 0.4)
    axes = fig.subplots(rows, columns, sharex=True, squeeze=False).ravel()
    for ax in axes[len(types) :]:
        ax.set_axis_off()
    for ax, event_type in zip(axes, types, strict=False):
        series = frame.filter(pl.col("event_type") == event_type).sort("day")
        days = series["day"].to_numpy()
        median, scale = series["median"].to_numpy(), series["scale"].to_numpy()
        lower = np.clip(median - Z_THRESHOLD * scale, 0, None)
        ax.fill_between(days, lower, median + Z_THRESHOLD * scale, color=BAND, linewidth=0, label="expected")
        ax.plot(days, series["events"].to_numpy(), color=INK, linewidth=1, label="events")
        flagged = series.filter(pl.col("anomalous"))
        ax.scatter(flagged["day"].to_numpy(), flagged["events"].to_numpy(), color=BAD, s=18, zorder=3)
        ax.set_title(f"{event_type}: {flagged.height} anomalous day{'s' if flagged.height != 1 else ''}")
        ax.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
        _thousands(ax.yaxis)
        _dates(ax)
        _clip_outliers(ax, days, series["events"].to_numpy(), median + Z_THRESHOLD * scale)
    key = [
        Patch(color=BAND, label=f"expected (median ± {Z_THRESHOLD} robust sd, trailing 28 days)"),
        Line2D([], [], color=INK, linewidth=1, label="events"),
        Line2D([], [], color=BAD, marker="o", linestyle="none", markersize=4, label="anomaly"),
    ]
    fig.legend(handles=key, loc="outside upper right", ncols=3)
    return to_svg(fig, "volume", "Daily event volume by type with anomalies")


@styled
def event_mix(mix: pl.DataFrame, unknown: pl.DataFrame, t: Thresholds) -> str:
    fig = figure(10, 3.8)
    top, bottom = fig.subplots(2, 1, sharex=True)
    series = mix.drop_nulls("psi") if not mix.is_empty() else mix
    if series.is_empty():
        _empty(top, "not enough history for a PSI yet (7 days)")
    else:
        top.plot(series["day"].to_numpy(), series["psi"].to_numpy(), color=INK, linewidth=1)
        top.axhline(0.1, color=MUTED, linestyle=":", linewidth=1)
        top.axhline(t.psi_warning, color=WARN, linestyle="--", linewidth=1)
        top.set_title(
            f"Event-type mix vs the trailing 28 days: PSI (dotted 0.1 moderate, dashed {t.psi_warning})"
        )
    if unknown.is_empty():
        _empty(bottom, "no product events yet")
    else:
        bottom.plot(unknown["day"].to_numpy(), unknown["share"].to_numpy(), color=INK, linewidth=1)
        bottom.axhline(t.unknown_product_share, color=WARN, linestyle="--", linewidth=1)
        bottom.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
        bottom.set_ylim(bottom=0)
        bottom.set_title("Share of product events naming a product the catalog does not know")
        _dates(bottom)
    return to_svg(fig, "event_mix", "Event-mix drift and unknown-product share")


@styled
def embeddings(versions: pl.DataFrame, drift_frame: pl.DataFrame) -> str:
    fig = figure(10, 2.8)
    left, right = fig.subplots(1, 2)
    labels = [f"v{v}" for v in versions["version"].to_list()]
    left.bar(labels, versions["products"].to_numpy(), color=INK, width=0.5)
    left.set_xlim(-0.75, max(len(labels), 3) - 0.25)
    _thousands(left.yaxis)
    left.set_title("Products with a vector, per LanceDB version")
    if drift_frame.is_empty():
        _empty(right, "one version so far: drift needs two")
    else:
        x = [f"v{a}→v{b}" for a, b in drift_frame.select("from_version", "to_version").iter_rows()]
        cosine = drift_frame["mean_cosine"].cast(pl.Float64).to_numpy()
        shift = drift_frame["centroid_shift"].cast(pl.Float64).to_numpy()
        right.plot(x, cosine, marker="o", color=INK, label="mean cosine, same product")
        right.plot(x, shift, marker="s", color=WARN, label="centroid shift (1 − cos)")
        right.set_ylim(-0.02, 1.05)
        right.legend(loc="center right")
        right.set_title("Drift between consecutive versions")
        right.tick_params(axis="x", labelrotation=30)
    return to_svg(fig, "embeddings", "Embedding drift between versions")


RECOMMENDATION_PANELS = (
    ("user_coverage", "User coverage", True),
    ("catalog_coverage", "Catalog coverage", True),
    ("fallback_share", "Fallback share", True),
    ("gini", "Popularity concentration (Gini)", False),
    ("diversity", "Intra-list diversity (top 10)", False),
    ("churn", "Churn vs previous version (top 10)", True),
)


@styled
def recommendations(frame: pl.DataFrame) -> str:
    fig = figure(10, 4.6)
    axes = fig.subplots(2, 3, sharex=True).ravel()
    x = np.arange(frame.height)
    labels = [f"{d:%m-%d %H:%M}" for d in frame["created_at"].to_list()]
    failed = np.array([g is False for g in frame["gate_passed"].to_list()])
    current = np.array(frame["is_current"].to_list(), dtype=bool)
    for ax, (column, title, percent) in zip(axes, RECOMMENDATION_PANELS, strict=True):
        values = frame[column].cast(pl.Float64).to_numpy()
        if np.isnan(values).all():
            ax.text(
                0.5,
                0.5,
                "needs two snapshots" if column == "churn" else "n/a",
                ha="center",
                va="center",
                color=MUTED,
                transform=ax.transAxes,
            )
        ax.plot(x, values, color=INK, marker="o", markersize=4, linewidth=1)
        if failed.any():
            ax.scatter(x[failed], values[failed], color=BAD, marker="x", s=40, zorder=3)
        if current.any():
            ax.scatter(x[current], values[current], facecolor="none", edgecolor=OK, s=110, linewidth=1.5)
        ax.set_title(title)
        if percent:
            ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_ylim(0, max(1.05, np.nanmax(np.append(values, 0.0)) * 1.08))  # diversity may exceed 1
        ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=7)
        ax.set_xlim(-0.5, max(frame.height - 0.5, 0.5))
    return to_svg(fig, "recommendations", "Recommendation health per snapshot")


@styled
def experiment(frame: pl.DataFrame) -> str:
    """The primary metric's lift and its interval per day of the experiment (`frame`: the
    readout rows of that metric, one per as_of)."""
    fig = figure(10, 2.8)
    ax = fig.subplots()
    days = frame["as_of"].to_list()
    lift = frame["lift"].cast(pl.Float64).to_numpy()
    low, high = frame["lift_low"].cast(pl.Float64).to_numpy(), frame["lift_high"].cast(pl.Float64).to_numpy()
    ax.fill_between(days, low, high, color=BAND, label="95% interval")
    ax.plot(days, lift, color=INK, marker="o", markersize=4, linewidth=1, label="lift")
    ax.axhline(0, color=MUTED, linewidth=0.8)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_title(f"{frame['metric'][0]}: canary vs control, relative lift")
    ax.legend(loc="upper right")
    _dates(ax)
    return to_svg(fig, "experiment", "Experiment lift and its interval per day")


@styled
def quality(frame: pl.DataFrame) -> str:
    fig = figure(10, 2.8)
    ax = fig.add_subplot()
    markers = "osD^vP*X"  # suites at the same rate (often 100%) stay distinguishable
    for i, suite in enumerate(sorted(frame["suite"].unique().to_list())):
        series = frame.filter(pl.col("suite") == suite).sort("checked_at")
        ax.plot(
            series["checked_at"].to_numpy(),
            series["pass_rate"].to_numpy(),
            marker=markers[i % len(markers)],
            markersize=5,
            markerfacecolor="none",
            label=suite,
        )
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_ylim(-0.02, 1.08)
    runs = frame["checked_at"].unique()
    if len(runs) == 1:  # one run: a day either side, not a scale of seconds
        only = runs[0]
        ax.set_xlim(only - timedelta(days=1), only + timedelta(days=1))
    fig.legend(loc="outside right upper")
    ax.set_title("Share of expectations passed, per suite and data-quality run")
    _dates(ax)
    return to_svg(fig, "quality", "Data-quality pass rates over time")


@styled
def pipeline(frame: pl.DataFrame) -> str:
    runs = frame.select("run_id", "started_at").unique("run_id", maintain_order=True)
    steps = frame.group_by("step").agg(pl.col("duration_s").sum()).sort("duration_s", descending=True)["step"]
    fig = figure(10, 1.4 + 0.3 * runs.height + 0.2 * (len(steps) // 4))
    ax = fig.add_subplot()
    y = np.arange(runs.height)
    left = np.zeros(runs.height)
    palette = matplotlib.colormaps["tab10"]
    for i, step in enumerate(steps.to_list()):
        durations = (
            runs.join(frame.filter(pl.col("step") == step), on="run_id", how="left")["duration_s"]
            .fill_null(0)
            .to_numpy()
        )
        ax.barh(y, durations, left=left, color=palette(i % 10), height=0.7, label=step)
        left += durations
    labels = [f"{(s.strftime('%m-%d %H:%M') if s else '?')} · {r[:8]}" for r, s in runs.iter_rows()]
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("seconds")
    fig.legend(loc="outside lower center", ncols=min(len(steps), 4), fontsize=8)
    ax.set_title("Step durations per run (stacked; newest at the bottom)")
    ax.grid(axis="y", visible=False)
    return to_svg(fig, "pipeline", "Pipeline step durations per run")
