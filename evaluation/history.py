"""Each evaluation run kept: a history table in the warehouse, and in the reports folder the
latest comparison (Markdown + JSON) and a plot of NDCG@10 per method over runs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from evaluation.protocol import SHIPPED, EvaluationResult
from warehouse.store import connect, replace_rows

HISTORY_DDL = """
create table if not exists recommendation_evaluation_history (
    evaluated_at  timestamp not null,  -- UTC
    run_id        varchar   not null,
    cutoff        date      not null,
    window_days   integer   not null,
    method        varchar   not null,
    metric        varchar   not null,
    k             integer,             -- null for list-level counts
    cohort        varchar   not null,
    policy        varchar   not null,
    value         double,              -- null where undefined (e.g. category diversity without categories)
    users         integer   not null
)
"""

HEADLINE = ("ndcg", "recall", "map", "hit_rate", "precision")


def results_frame(result: EvaluationResult) -> pl.DataFrame:
    return pl.DataFrame(
        result.results,
        schema={
            "method": pl.Utf8,
            "metric": pl.Utf8,
            "k": pl.Int64,
            "cohort": pl.Utf8,
            "policy": pl.Utf8,
            "value": pl.Float64,
            "users": pl.Int64,
        },
    )


def record(
    warehouse: Path, result: EvaluationResult, run_id: str, evaluated_at: datetime | None = None
) -> int:
    """Append one run's rows; re-recording the same run_id replaces them (no duplicates)."""
    frame = results_frame(result).with_columns(
        evaluated_at=pl.lit(evaluated_at or datetime.now(UTC).replace(tzinfo=None)),
        run_id=pl.lit(run_id),
        cutoff=pl.lit(result.split["cutoff"]).str.to_date(),
        window_days=pl.lit(result.split["window_days"], dtype=pl.Int32),
    )
    with connect(warehouse) as con:
        con.execute(HISTORY_DDL)
        return replace_rows(
            con, "recommendation_evaluation_history", "run_id = ?", [run_id], frame.to_arrow()
        )


def read_history(warehouse: Path) -> pl.DataFrame:
    with connect(warehouse, read_only=True) as con:
        exists = con.sql(
            "select count(*) from information_schema.tables "
            "where table_name = 'recommendation_evaluation_history'"
        ).fetchall()[0][0]
        if not exists:
            return pl.DataFrame()
        return con.sql("select * from recommendation_evaluation_history order by evaluated_at").pl()


def comparison_table(result: EvaluationResult, policy: str, cohort: str = "all", k: int = 10) -> pl.DataFrame:
    """Methods × metrics at k for one policy and cohort, with coverage, best NDCG first."""
    frame = results_frame(result).filter(
        (pl.col("policy") == policy)
        & (pl.col("k") == k)
        & (
            ((pl.col("cohort") == cohort) & pl.col("metric").is_in(HEADLINE))
            | (pl.col("metric") == "coverage")
        )
    )
    if frame.is_empty():
        return pl.DataFrame()
    wide = frame.pivot(on="metric", index="method", values="value")
    columns = [c for c in (*HEADLINE, "coverage") if c in wide.columns]
    return wide.select("method", *columns).sort("ndcg", descending=True, nulls_last=True)


def best_baseline_ratio(result: EvaluationResult, policy: str) -> tuple[str, float | None]:
    """(best baseline, shipped ranker NDCG@10 / its NDCG@10) on the test window, cohort all."""
    table = comparison_table(result, policy)
    baselines = table.filter(pl.col("method") != SHIPPED).drop_nulls("ndcg")
    shipped = table.filter(pl.col("method") == SHIPPED)["ndcg"]
    if baselines.is_empty() or shipped.is_empty() or not baselines["ndcg"][0]:
        return ("", None)
    return baselines["method"][0], float(shipped[0]) / float(baselines["ndcg"][0])


def markdown(result: EvaluationResult) -> str:
    split = result.split
    lines = [
        f"# Offline evaluation: cut-off {split['cutoff']}, {split['window_days']}-day test window",
        "",
        f"{split['test_users']} shoppers bought in the test window ({split['test_new_users']} new); "
        f"{split['train_events']} training events; {split['recommendable_products']} "
        f"recommendable products. Hyper-parameters chosen on: {split['tuned_on']}.",
    ]
    for policy in ("repurchase", "new_items"):
        table = comparison_table(result, policy)
        if table.is_empty():
            continue
        best, ratio = best_baseline_ratio(result, policy)
        lines += ["", f"## Policy `{policy}` (cohort all, k = 10)", ""]
        lines.append("| method | " + " | ".join(table.columns[1:]) + " |")
        lines.append("|---" * len(table.columns) + "|")
        for row in table.iter_rows():
            cells = ["–" if v is None else f"{v:.4f}" for v in row[1:]]
            lines.append(f"| {row[0]} | " + " | ".join(cells) + " |")
        if ratio is not None:
            lines += ["", f"Hybrid NDCG@10 / best baseline ({best}): **{ratio:.2f}×**"]
    lines += ["", "Chosen parameters: `" + json.dumps(result.tuned) + "`"]
    return "\n".join(lines) + "\n"


def plot_history(history: pl.DataFrame, target: Path, policy: str = "repurchase") -> Path | None:
    """NDCG@10 per method over evaluation runs (PNG), or None without history."""
    if history.is_empty():
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = history.filter(
        (pl.col("metric") == "ndcg")
        & (pl.col("k") == 10)
        & (pl.col("cohort") == "all")
        & (pl.col("policy") == policy)
    ).sort("evaluated_at")
    figure, axis = plt.subplots(figsize=(8, 4), dpi=100)
    for method, rows in points.group_by("method", maintain_order=True):
        style = {"linewidth": 3} if method[0] == SHIPPED else {"linewidth": 1.2, "alpha": 0.8}
        axis.plot(
            rows["evaluated_at"].to_list(), rows["value"].to_list(), marker="o", label=method[0], **style
        )
    axis.set_title(f"NDCG@10 on the test window (policy {policy}, all shoppers)")
    axis.set_ylabel("NDCG@10")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="best")
    figure.autofmt_xdate()
    figure.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target)
    plt.close(figure)
    return target


def write_reports(folder: Path, result: EvaluationResult, history: pl.DataFrame) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = {"markdown": folder / "latest.md", "json": folder / "latest.json"}
    written["markdown"].write_text(markdown(result))
    written["json"].write_text(json.dumps(result.to_dict(), indent=2, default=str))
    plot = plot_history(history, folder / "ndcg_history.png")
    if plot is not None:
        written["plot"] = plot
    return written
