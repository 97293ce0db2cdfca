"""Similar products on a large catalog: the dense products × products pass against scoring
only each product's nearest titles and co-occurring products (recommendations.similar_neighbours).

    python bench/bench_similar.py --products 20000,50000

Random unit title vectors (384 dimensions, as e5-small's), 5% of the products not
recommendable, and a random co-occurrence matrix (a fifth of the products with none, the rest
with about `--partners` each, capped as recommendations.signals caps it). For each size it
times, with the CPU seconds (user + sys) of this process and the load average:
- `titles`: the nearest recommendable titles (max(content_neighbors, k + 1) a product), the
  pass a publish makes anyway past CONTENT_SCAN for the content generator;
- `dense`: similar_products without them (what a publish did on top of `titles`);
- `shared`: similar_products from them (what it does now).
Then it compares the two tables: products whose lists are identical, and the largest score
difference. `--no-dense` skips the dense pass (at 100k products, minutes) and the comparison.
Prints one JSON line per size; nothing is asserted about timing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from datetime import datetime
from functools import partial
from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recommendations.candidates import CandidateLimits  # noqa: E402
from recommendations.config import RecommendationConfig  # noqa: E402
from recommendations.inputs import RecInputs  # noqa: E402
from recommendations.neighbours import nearest_neighbours  # noqa: E402
from recommendations.signals import cooccurrence_neighbors  # noqa: E402
from recommendations.similar import similar_products  # noqa: E402


def catalog(n: int, dim: int, partners: int, seed: int = 0) -> RecInputs:
    """RecInputs with what similar_products reads; the shopper parts are empty."""
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    counts = np.minimum(rng.poisson(partners, n), cooccurrence_neighbors(n)) * (rng.random(n) >= 0.2)
    rows = np.repeat(np.arange(n), counts)
    cols = (rows + rng.integers(1, n, len(rows))) % n  # never the product itself
    together = sp.csr_matrix((rng.random(len(rows)).astype(np.float32), (rows, cols)), shape=(n, n))
    ids = [f"p{i:07d}" for i in range(n)]
    empty = sp.csr_matrix((0, n), dtype=np.float32)
    return RecInputs(
        as_of=datetime(2024, 1, 1),
        products=pl.DataFrame(
            {"product_id": ids, "title": [f"product {i}" for i in range(n)], "row": range(n)}
        ),
        product_matrix=vectors,
        recommendable=rng.random(n) > 0.05,
        users=pl.DataFrame({"user_id": [], "country": [], "user_row": []}),
        user_matrix=np.zeros((0, dim), dtype=np.float32),
        has_vector=np.zeros(0, dtype=bool),
        history=empty,
        purchased=empty,
        cooccurrence=together.astype(np.float32),
        popularity=np.zeros(n, dtype=np.float32),
        purchases=pl.DataFrame(),
        orders=pl.DataFrame(),
    )


def timed(work):
    """(result, wall seconds, CPU seconds of this process)."""
    before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    result = work()
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return result, round(time.perf_counter() - started, 2), round(cpu, 2)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--products", default="20000,50000", help="comma list of catalog sizes")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--partners", type=int, default=100, help="mean co-occurring products a product")
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--no-dense", action="store_true", help="skip the dense pass (products² × dim)")
    args = parser.parse_args()
    config = RecommendationConfig(k=args.k)
    m = max(CandidateLimits().content_neighbors, args.k + 1)
    for n in (int(float(size)) for size in args.products.split(",")):
        inputs = catalog(n, args.dim, args.partners)
        vectors, recommendable = inputs.product_matrix, inputs.recommendable
        titles, titles_s, titles_cpu = timed(partial(nearest_neighbours, vectors, recommendable, m))
        load = os.getloadavg()[0]
        shared, shared_s, shared_cpu = timed(partial(similar_products, inputs, config, titles))
        figures = {
            "products": n,
            "dim": args.dim,
            "torch_threads": torch.get_num_threads(),
            "cooccurrence_pairs": inputs.cooccurrence.nnz,
            "load_1min": round(load, 2),
            "titles_s": titles_s,
            "titles_cpu_s": titles_cpu,
            "shared_s": shared_s,
            "shared_cpu_s": shared_cpu,
            "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 2),
        }
        if not args.no_dense:
            dense, dense_s, dense_cpu = timed(partial(similar_products, inputs, config))
            same = (
                dense.with_columns(same=pl.col("similar_product_id") == shared["similar_product_id"])
                .group_by("product_id")
                .agg(pl.col("same").all())["same"]
            )
            figures.update(
                dense_s=dense_s,
                dense_cpu_s=dense_cpu,
                publish_before_s=round(titles_s + dense_s, 2),
                publish_after_s=round(titles_s + shared_s, 2),
                identical_lists=round(float(same.mean()), 6),
                max_score_difference=float((dense["score"] - shared["score"]).abs().max()),
            )
        print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
