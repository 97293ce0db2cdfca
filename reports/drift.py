"""Drift and anomaly figures: plain functions on arrays and frames, no I/O.

Each one has a known answer on crafted data (tests/test_monitoring_drift.py):
a stable series is never flagged and a spike is; identical distributions have a PSI of 0;
a uniform spread of recommendations has a Gini of 0; identical lists have no churn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

# 1.4826 × MAD estimates the standard deviation of normal data (Iglewicz and Hoaglin);
# |robust z| > 3.5 is their usual outlier rule.
MAD_TO_SIGMA = 1.4826
Z_THRESHOLD = 3.5
PSI_EPSILON = 1e-4  # share given to a category absent on one side, so the log stays finite


@dataclass(frozen=True)
class Baseline:
    """Per point: the trailing median, the robust scale and the robust z-score.

    `median`, `scale` and `z` are NaN where the trailing window holds fewer than
    `min_history` points; such points are never flagged.
    """

    median: np.ndarray
    scale: np.ndarray
    z: np.ndarray
    flagged: np.ndarray


def trailing_robust_z(
    values: Sequence[float],
    window: int = 28,
    min_history: int = 7,
    threshold: float = Z_THRESHOLD,
    min_scale: float = 1.0,
    min_relative_scale: float = 0.05,
) -> Baseline:
    """Flag points far from the median of the `window` points before them.

    z = (x − median) / scale, scale = max(1.4826·MAD, min_scale, min_relative_scale·|median|).
    The floors keep a perfectly flat series (MAD = 0) from flagging a one-unit wobble:
    on a constant series a point must move more than threshold × 5% of its level.
    """
    x = np.asarray(values, dtype=float)
    n = len(x)
    median = np.full(n, np.nan)
    scale = np.full(n, np.nan)
    for i in range(n):
        history = x[max(0, i - window) : i]
        if len(history) < min_history:
            continue
        m = float(np.median(history))
        mad = float(np.median(np.abs(history - m)))
        median[i] = m
        scale[i] = max(MAD_TO_SIGMA * mad, min_scale, min_relative_scale * abs(m))
    with np.errstate(invalid="ignore"):
        z = (x - median) / scale
        flagged = np.abs(z) > threshold
    return Baseline(median=median, scale=scale, z=z, flagged=np.nan_to_num(flagged, nan=False).astype(bool))


def psi(expected: Mapping[str, float], actual: Mapping[str, float], epsilon: float = PSI_EPSILON) -> float:
    """Population stability index of `actual` against `expected` (counts or shares per category).

    PSI = Σ (a − e) · ln(a / e) over the union of categories, shares floored at `epsilon`.
    Rule of thumb: < 0.1 stable, 0.1–0.25 moderate shift, > 0.25 a real change.
    """
    categories = sorted(set(expected) | set(actual))
    if not categories:
        return 0.0
    e = np.array([float(expected.get(c, 0.0)) for c in categories])
    a = np.array([float(actual.get(c, 0.0)) for c in categories])
    if e.sum() <= 0 or a.sum() <= 0:
        return float("nan")
    e = np.clip(e / e.sum(), epsilon, None)
    a = np.clip(a / a.sum(), epsilon, None)
    return float(np.sum((a - e) * np.log(a / e)))


def daily_psi(counts: pl.DataFrame, window: int = 28, min_history: int = 7) -> pl.DataFrame:
    """PSI of each day's category mix against the sum of the `window` days before it.

    `counts`: columns day, category, count (one row per day and category; days in order).
    Returns day, psi (null until `min_history` earlier days exist).
    """
    if counts.is_empty():
        return pl.DataFrame(schema={"day": counts.schema.get("day", pl.Date), "psi": pl.Float64})
    wide = counts.pivot(on="category", index="day", values="count", aggregate_function="sum").sort("day")
    wide = wide.fill_null(0)
    categories = [c for c in wide.columns if c != "day"]
    matrix = wide.select(categories).to_numpy().astype(float)
    out = []
    for i in range(len(matrix)):
        history = matrix[max(0, i - window) : i]
        if len(history) < min_history:
            out.append(None)
            continue
        expected = dict(zip(categories, history.sum(axis=0), strict=True))
        actual = dict(zip(categories, matrix[i], strict=True))
        value = psi(expected, actual)
        out.append(None if np.isnan(value) else value)
    return pl.DataFrame({"day": wide["day"], "psi": pl.Series(out, dtype=pl.Float64)})


def _unit(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1.0, norms)


def embedding_drift(
    old_ids: Sequence[str],
    old_vectors: np.ndarray,
    new_ids: Sequence[str],
    new_vectors: np.ndarray,
    changed_below: float = 0.9999,
) -> dict:
    """How far product vectors moved between two versions.

    centroid_shift: 1 − cosine between the two versions' mean unit vectors (0 = same direction).
    mean_cosine: mean cosine between a product's old and new vector, over products in both.
    changed_share: share of those products whose cosine is below `changed_below`.
    """
    old = _unit(np.asarray(old_vectors, dtype=np.float64).reshape(len(old_ids), -1))
    new = _unit(np.asarray(new_vectors, dtype=np.float64).reshape(len(new_ids), -1))
    old_index = {pid: i for i, pid in enumerate(old_ids)}
    pairs = [(old_index[pid], j) for j, pid in enumerate(new_ids) if pid in old_index]
    result = {
        "products_old": len(old_ids),
        "products_new": len(new_ids),
        "products_common": len(pairs),
        "products_added": len(set(new_ids) - set(old_ids)),
        "products_removed": len(set(old_ids) - set(new_ids)),
        "centroid_shift": None,
        "mean_cosine": None,
        "changed_share": None,
    }
    if len(old_ids) and len(new_ids) and old.shape[1] == new.shape[1]:
        a, b = old.mean(axis=0), new.mean(axis=0)
        denominator = np.linalg.norm(a) * np.linalg.norm(b)
        result["centroid_shift"] = float(1.0 - a @ b / denominator) if denominator else None
    if pairs and old.shape[1] == new.shape[1]:
        i, j = (np.array(p) for p in zip(*pairs, strict=True))
        cosines = np.einsum("ij,ij->i", old[i], new[j])
        result["mean_cosine"] = float(cosines.mean())
        result["changed_share"] = float((cosines < changed_below).mean())
    return result


def gini(counts: Sequence[float]) -> float:
    """Gini coefficient of non-negative counts: 0 when all equal, (n−1)/n when one has all."""
    x = np.sort(np.asarray(counts, dtype=float))
    n = len(x)
    if n == 0 or x.sum() <= 0:
        return 0.0
    ranks = np.arange(1, n + 1)
    return float(2.0 * np.sum(ranks * x) / (n * x.sum()) - (n + 1.0) / n)


def top_k(recommendations: pl.DataFrame, k: int) -> pl.DataFrame:
    """user_id, product_id for each user's first k rows by rank."""
    return recommendations.filter(pl.col("rank") <= k).select("user_id", "product_id")


def churn(old: pl.DataFrame, new: pl.DataFrame, k: int = 10) -> tuple[float | None, int]:
    """Mean (1 − Jaccard) of each user's top-k sets between two versions, over users in both.

    Returns (churn, users compared); churn is None when no user is in both.
    """
    a, b = top_k(old, k).unique(), top_k(new, k).unique()
    sizes = (
        a.group_by("user_id")
        .agg(n_old=pl.len())
        .join(b.group_by("user_id").agg(n_new=pl.len()), on="user_id", how="inner")
    )
    if sizes.is_empty():
        return None, 0
    inter = a.join(b, on=["user_id", "product_id"], how="inner").group_by("user_id").agg(i=pl.len())
    scored = sizes.join(inter, on="user_id", how="left").with_columns(pl.col("i").fill_null(0))
    jaccard = scored["i"] / (scored["n_old"] + scored["n_new"] - scored["i"])
    return float(1.0 - jaccard.mean()), scored.height


def user_coverage(recommended_users: Sequence[str], active_users: Sequence[str]) -> float | None:
    """Share of active users who have a list (None when there are no active users)."""
    active = set(active_users)
    return len(active & set(recommended_users)) / len(active) if active else None


def catalog_coverage(recommended_products: Sequence[str], catalog: Sequence[str]) -> float | None:
    """Share of the catalog that appears in at least one list."""
    products = set(catalog)
    return len(products & set(recommended_products)) / len(products) if products else None


def fallback_share(recommendations: pl.DataFrame) -> float | None:
    """Share of users whose list has no personal item (the same definition as the gate)."""
    if recommendations.is_empty():
        return None
    per_user = recommendations.group_by("user_id").agg(personal=(pl.col("source") == "personal").any())
    return float(1.0 - per_user["personal"].mean())


# Lists whose picks' vector sums are made at once (384 float64: 3 MB a 1,000 lists).
DIVERSITY_LISTS = 20_000


def intra_list_diversity(
    recommendations: pl.DataFrame, product_ids: Sequence[str], vectors: np.ndarray, k: int = 10
) -> float | None:
    """Mean over lists of (1 − mean pairwise cosine) of the top-k items' vectors.

    Uses ‖Σv‖² = n + Σ_{i≠j} vᵢ·vⱼ for unit vectors, so a list costs O(k·d), not O(k²·d).
    Items without a vector are left out; lists with fewer than two vectors are skipped.
    """
    if recommendations.is_empty() or len(product_ids) == 0:
        return None
    index = pl.DataFrame({"product_id": list(product_ids), "row": np.arange(len(product_ids))})
    picks = (
        top_k(recommendations, k)
        .join(index, on="product_id", how="inner")
        .sort("user_id")
        .select("user_id", "row")
    )
    if picks.is_empty():
        return None
    import torch

    unit = torch.from_numpy(_unit(np.asarray(vectors, dtype=np.float64)))
    product_rows = torch.from_numpy(picks["row"].to_numpy().astype(np.int64))
    boundaries = np.flatnonzero(picks["user_id"].ne(picks["user_id"].shift(1)).fill_null(True).to_numpy())
    sizes = np.diff(np.append(boundaries, len(picks)))
    # Each list's sum of its picks' vectors, straight from the product rows (embedding_bag):
    # gathering the picks' vectors first cost a copy of them all (a million shoppers' top 10
    # at 384 dimensions are 31 GB of float64: the 10M-event run was OOM-killed there; then,
    # gathered by blocks, 42 s of its report against ~5 s). Blocks of lists bound the sums.
    squared = np.empty(len(boundaries), dtype=np.float64)
    for first in range(0, len(boundaries), DIVERSITY_LISTS):
        starts = boundaries[first : first + DIVERSITY_LISTS]
        stop = starts[-1] + sizes[first + len(starts) - 1]
        sums = torch.nn.functional.embedding_bag(
            product_rows[starts[0] : stop], unit, torch.from_numpy(starts - starts[0]), mode="sum"
        )
        squared[first : first + len(starts)] = (sums * sums).sum(dim=1).numpy()
    keep = sizes >= 2
    if not keep.any():
        return None
    n = sizes[keep].astype(float)
    mean_pairwise = (squared[keep] - n) / (n * (n - 1))
    return float(np.mean(1.0 - mean_pairwise))
