"""The published per-user table: every known shopper's top-K from the ranker, with a reason
on every row (see recommendations.reasons) and where it came from (`source`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import polars as pl

from core.frames import sorted_by
from core.memory import release_free_memory
from recommendations.anchors import reason_anchors
from recommendations.candidates import Generators, TitleNeighbours, torch_threads
from recommendations.compiled import for_scoring
from recommendations.config import RecommendationConfig
from recommendations.features import FEATURES, FeatureContext
from recommendations.inputs import RecInputs
from recommendations.parallel import iter_in_threads, workers
from recommendations.personal import rank_users
from recommendations.ranker import RankerModel, threads_for
from recommendations.reasons import driving_family, reason_texts


def cap_per_category(indices: np.ndarray, categories: np.ndarray, k: int, cap: int) -> np.ndarray:
    """Keep each row's order but at most `cap` items per category; positions into the candidates."""
    chosen = np.full((indices.shape[0], k), -1, dtype=np.int64)
    for row in range(indices.shape[0]):
        counts: dict = {}
        taken = 0
        for position, product in enumerate(indices[row]):
            if product < 0 or taken == k:
                break
            category = categories[product]
            if counts.get(category, 0) >= cap:
                continue
            counts[category] = counts.get(category, 0) + 1
            chosen[row, taken] = position
            taken += 1
    return chosen


# Shoppers whose lists are built at once: the picks' features (block × k × FEATURES floats,
# 20k × 200 × 32 × 4 bytes = 0.5 GB with a category cap) stay bounded whatever the shop's
# size; a million shoppers' at once would hold 6.4 GB at k = 50 (25.6 GB with the cap).
USER_BLOCK = 20_000


def ranked_user_table(
    model: RankerModel,
    inputs: RecInputs,
    config: RecommendationConfig,
    block: int = USER_BLOCK,
    user_ids: Sequence[str] | None = None,
    titles: TitleNeighbours | None = None,
) -> pl.DataFrame:
    """One row per (shopper, rank): product, score, reason, source, for every known shopper,
    or only for `user_ids` (the intraday refresh's active shoppers). The generators and
    features are fitted on the whole of `inputs` either way, so a shopper's list does not
    depend on which other shoppers are ranked with it. `titles`: the products' nearest
    recommendable (and new) titles when the caller computed them already
    (candidates.title_neighbours)."""
    frames = list(_ranked_blocks(model, inputs, config, block, user_ids, titles))
    # Blocks are in ascending user rows, and inputs.users is sorted by user_id: the concatenation
    # is in order already, and is then kept as it is (no copy of the whole table).
    return sorted_by(pl.concat(frames), USER_TABLE_ORDER)


USER_TABLE_ORDER = ["user_id", "rank"]


def write_ranked_user_table(
    model: RankerModel,
    inputs: RecInputs,
    config: RecommendationConfig,
    folder: Path,
    block: int = USER_BLOCK,
    titles: TitleNeighbours | None = None,
) -> None:
    """`ranked_user_table` for every known shopper, written block by block as Parquet files
    into `folder` instead of returned; `read_user_table(folder)` gives the same table.

    Why: a million shoppers' lists are 28M rows (3 GB); held whole while the inputs and the
    fitted generators were still held, they made the publish step's peak (8.5 GiB at 10M
    events). Written away as they come, only the blocks in flight are held."""
    folder.mkdir(parents=True, exist_ok=True)
    for number, frame in enumerate(_ranked_blocks(model, inputs, config, block, None, titles)):
        frame.write_parquet(folder / f"{number:06d}.parquet")


def read_user_table(folder: Path) -> pl.DataFrame:
    """The table `write_ranked_user_table` wrote into `folder`, its blocks in order."""
    files = sorted(folder.glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"no user-table blocks in {folder}")
    return sorted_by(pl.read_parquet(files), USER_TABLE_ORDER)


def _ranked_blocks(model, inputs, config, block, user_ids, titles) -> Iterator[pl.DataFrame]:
    """The per-user table's blocks in ascending user rows, each as soon as it (and every block
    before it) is ready."""
    rows = np.arange(inputs.users.height) if user_ids is None else user_rows(inputs, user_ids)
    policy = "repurchase" if config.allow_repurchase else "new_items"
    shared = _SharedColumns(inputs)
    shoppers = int((np.diff(inputs.history.indptr)[rows] > 0).sum())
    # Compiling the night's booster (a minute for a large shop's, inlined) is LLVM's native
    # code, which releases the GIL, and ALS fits on one core: side by side, they share the
    # cores instead of taking turns. The compiled code is the same either way.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="compile-booster") as compiling:
        scoring = compiling.submit(for_scoring, model, policy, shoppers)
        # Only the ranked shoppers' rows of content's neighbour index: the intraday refresh's
        # few active shoppers need not pay a large catalog's products × products pass.
        generators = Generators.fit(
            inputs,
            model.settings.limits,
            model.settings.threads,
            titles,
            shoppers=None if user_ids is None else rows,
        )
        context = FeatureContext.build(inputs)
        model = scoring.result()
    block = balanced_block(len(rows), block, workers())
    starts = range(0, max(len(rows), 1), block)  # one (empty) block for no shoppers

    def ranked(start: int) -> pl.DataFrame:
        frame = _user_block(
            model, inputs, config, policy, shared, generators, context, rows[start : start + block]
        )
        # The block's candidates and features are freed now; without this glibc kept their
        # pages (per worker thread), and they counted in the step's peak until it ended.
        release_free_memory()
        return frame

    # torch's thread count is process-wide: set once around the workers, so that one block's
    # torch_threads restoring it never hands another block a spinning thread pool.
    with torch_threads(generators.threads):
        yield from iter_in_threads(ranked, starts, memory_each=block_memory(model, block))


def balanced_block(shoppers: int, most: int, side_by_side: int) -> int:
    """Shoppers per block: at most `most`, and blocks of equal size in a multiple of
    `side_by_side`, so that every worker is busy until the end. Blocks are independent; with
    blocks of `most` (54k shoppers: 20k, 20k, 14k) the last one ran alone on two workers,
    while 4 blocks of 13.5k keep both busy."""
    rounds = max(1, -(-shoppers // (side_by_side * most)))
    return max(1, -(-shoppers // (side_by_side * rounds)))


def user_rows(inputs: RecInputs, user_ids: Sequence[str]) -> np.ndarray:
    """The sorted, distinct rows of `user_ids` in `inputs.users`; an unknown id is a bug of the
    caller (it must add new shoppers to the users it builds the inputs from)."""
    wanted = pl.DataFrame({"user_id": list(user_ids)}, schema={"user_id": pl.Utf8}).unique()
    found = wanted.join(inputs.users.select("user_id", "user_row"), on="user_id", how="left")
    missing = found.filter(pl.col("user_row").is_null())["user_id"].to_list()
    if missing:
        raise ValueError(f"{len(missing)} shoppers are not in the inputs (e.g. {missing[0]!r})")
    return np.sort(found["user_row"].to_numpy().astype(np.int64))


def block_memory(model: RankerModel, block: int) -> int:
    """A rough upper bound of one block's bytes: every generator's quota of candidates for
    each of its shoppers, with their float32 features, about twice over while scored."""
    return 2 * block * model.settings.limits.per_shopper * len(FEATURES) * 4


class _SharedColumns:
    """Per-product and per-shopper columns every block reads (built once)."""

    def __init__(self, inputs: RecInputs):
        self.titles = np.asarray(inputs.products["title"].fill_null("").to_list(), dtype=object)
        self.categories = np.asarray(inputs.products["top_category"].to_list(), dtype=object)
        self.cap_categories = np.asarray(
            inputs.products["top_category"].fill_null("").to_list(), dtype=object
        )
        self.countries = np.asarray(inputs.users["country"].to_list(), dtype=object)
        self.user_ids = np.asarray(inputs.users["user_id"].to_list(), dtype=object)
        self.product_ids = np.asarray(inputs.product_ids, dtype=object)


def _user_block(model, inputs, config, policy, shared, generators, context, rows) -> pl.DataFrame:
    wide = config.k if config.max_per_category is None else min(inputs.products.height, 4 * config.k)
    ranked = rank_users(
        model, inputs, rows, wide, policy, explain=True, generators=generators, context=context
    )
    products, scores, features, predicted = ranked.products, ranked.scores, ranked.features, ranked.predicted
    if config.max_per_category is not None:
        positions = cap_per_category(products, shared.cap_categories, config.k, config.max_per_category)
        valid = positions >= 0
        safe = np.maximum(positions, 0)
        products = np.where(valid, np.take_along_axis(products, safe, axis=1), -1)
        scores = np.where(valid, np.take_along_axis(scores, safe, axis=1), -np.inf)
        features = np.where(valid[:, :, None], np.take_along_axis(features, safe[:, :, None], axis=1), np.nan)
        predicted = np.where(valid, np.take_along_axis(predicted, safe, axis=1), np.nan)
    keep = products >= 0
    position_of = np.repeat(np.arange(len(rows)), products.shape[1]).reshape(products.shape)
    picked = features[keep]
    personal_pick = keep & ranked.personal[:, None] & np.isfinite(features[:, :, 0])
    families = np.full(products.shape, "popular", dtype=object)
    known = predicted[personal_pick]
    families[personal_pick] = driving_family(
        model.boosters.get(policy),
        features[personal_pick],
        threads_for(int(personal_pick.sum()), model.settings),
        predicted=known if np.isfinite(known).all() else None,
    )
    together, similar = reason_anchors(inputs, rows, np.where(personal_pick, products, -1))
    owner = position_of[keep]
    countries = shared.countries[rows][owner]
    reasons = reason_texts(
        families[keep],
        picked[:, FEATURES.index("baskets")].astype(np.float64),
        picked[:, FEATURES.index("cycle_days")].astype(np.float64),
        picked[:, FEATURES.index("trend")].astype(np.float64),
        _titles(shared.titles, together[keep]),
        _titles(shared.titles, similar[keep]),
        countries,
        shared.categories[products[keep]],
    )
    # Picks that are not personal (cold start, or topped up from it) say which list they came
    # from: the shopper's country's best-sellers or the shop's.
    fallback = ~personal_pick[keep]
    segment = fallback & (model.cold_start["list"] == "country_30d") & np.not_equal(countries, None)
    reasons[segment] = "popular in " + countries[segment] + " this month"
    reasons[fallback & ~segment] = "popular right now"
    sources = np.where(
        personal_pick[keep], "personal", np.where(segment, "fallback_segment", "fallback_global")
    )
    column = {name: picked[:, FEATURES.index(name)] for name in ("content", "cooccurrence", "sold_30d")}
    ranks = np.broadcast_to(np.arange(1, products.shape[1] + 1), products.shape)
    frame = pl.DataFrame(
        {
            "user_id": shared.user_ids[rows][owner],
            "rank": ranks[keep],
            "product_id": shared.product_ids[products[keep]],
            "score": scores[keep].astype(np.float64),
            "content_score": np.nan_to_num(column["content"]).astype(np.float64),
            "graph_score": np.nan_to_num(column["cooccurrence"]).astype(np.float64),
            "popularity_score": np.nan_to_num(column["sold_30d"]).astype(np.float64),
            "reason": reasons,
            "source": sources,
        },
        schema_overrides={
            "user_id": pl.Utf8,
            "product_id": pl.Utf8,
            "reason": pl.Utf8,
            "source": pl.Utf8,
            "rank": pl.Int64,
        },
    )
    # A cap can leave gaps in the ranks: number each list 1..n again.
    return frame.with_columns(rank=pl.int_range(1, pl.len() + 1).over("user_id").cast(pl.Int64))


def _titles(titles: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The product titles at `rows`, None where a row is -1 (no anchor)."""
    out = np.full(len(rows), None, dtype=object)
    out[rows >= 0] = titles[rows[rows >= 0]]
    return out
