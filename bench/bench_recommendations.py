"""Block top-K scoring at scale: users × products never materialised whole.

Scores `--users` × `--products` (384-dim unit vectors, a sparse history of ~20 products
per user, ~50 co-occurring products per product) with the real hybrid scorer
(recommendations.hybrid.score_users), in blocks of `--block-size` users, keeping a
running top-K. Prints the time, the peak memory, and the achieved GFLOP/s of the dense
part (2·users·products·dim FLOPs over the whole scoring time, so every other cost counts
against it) next to this machine's own float32 matmul ceiling, measured in the same run.
Goal: ≥ 50% of the ceiling.

    python bench/bench_recommendations.py [--users 100000] [--products 50000] [--block-size 1024]
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp
import torch

from recommendations.config import RecommendationConfig
from recommendations.hybrid import score_users
from recommendations.inputs import RecInputs


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    matrix = rng.standard_normal((n, dim), dtype=np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def random_sparse(rng: np.random.Generator, rows: int, cols: int, per_row: int) -> sp.csr_matrix:
    indices = rng.integers(0, cols, size=rows * per_row)
    owners = np.repeat(np.arange(rows), per_row)
    values = rng.random(rows * per_row).astype(np.float32)
    matrix = sp.csr_matrix((values, (owners, indices)), shape=(rows, cols))
    matrix.sum_duplicates()
    return matrix


def synthetic_inputs(users: int, products: int, dim: int, seed: int = 0) -> RecInputs:
    rng = np.random.default_rng(seed)
    return RecInputs(
        as_of=datetime(2024, 1, 31),
        products=pl.DataFrame({"product_id": [f"P{i}" for i in range(products)]}),
        product_matrix=unit_rows(rng, products, dim),
        recommendable=rng.random(products) > 0.05,
        users=pl.DataFrame({"user_id": [f"U{i}" for i in range(users)]}),
        user_matrix=unit_rows(rng, users, dim),
        has_vector=np.ones(users, dtype=bool),
        history=random_sparse(rng, users, products, 20),
        purchased=random_sparse(rng, users, products, 5),
        cooccurrence=random_sparse(rng, products, products, 50),
        popularity=rng.random(products).astype(np.float32),
        purchases=pl.DataFrame(),
    )


def matmul_ceiling(dim: int, products: int, block: int, repeats: int = 3) -> float:
    """Best float32 GFLOP/s of one block-sized matmul, the kernel the scorer is built on."""
    a = torch.randn(block, dim)
    b = torch.randn(products, dim)
    torch.mm(a, b.T)  # warm
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        torch.mm(a, b.T)
        best = min(best, time.perf_counter() - started)
    return 2 * block * dim * products / best / 1e9


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--products", type=int, default=50_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--block-size", type=int, default=1024)
    parser.add_argument("--output", type=Path, default=Path("bench/out/recommendations.json"))
    args = parser.parse_args()

    print(
        f"shopguide block top-K benchmark: {args.users:,} users × {args.products:,} products, "
        f"dim {args.dim}, "
        f"k {args.k}, block {args.block_size}, torch threads {torch.get_num_threads()}"
    )
    inputs = synthetic_inputs(args.users, args.products, args.dim)
    rss_inputs = peak_rss_mb()
    ceiling = matmul_ceiling(args.dim, args.products, args.block_size)
    flops = 2 * args.users * args.products * args.dim
    results = {}
    for name, config in (
        (
            "content only",
            RecommendationConfig(k=args.k, block_size=args.block_size, graph_weight=0, popularity_weight=0),
        ),
        (
            "hybrid (content+graph+popularity, repurchase off)",
            RecommendationConfig(k=args.k, block_size=args.block_size, allow_repurchase=False),
        ),
    ):
        rows = np.arange(args.users)
        started = time.perf_counter()
        indices, scores, _ = score_users(inputs, config, rows, args.k)
        seconds = time.perf_counter() - started
        achieved = flops / seconds / 1e9
        assert (indices >= 0).all()
        results[name] = {"seconds": seconds, "gflops": achieved, "share_of_ceiling": achieved / ceiling}
        print(
            f"{name:<52} {seconds:7.1f} s  {achieved:7.1f} GFLOP/s  "
            f"{100 * achieved / ceiling:5.1f}% of ceiling"
        )
    full_matrix_gb = args.users * args.products * 4 / 1e9
    peak = peak_rss_mb()
    print(
        f"matmul ceiling (torch.mm {args.block_size}×{args.dim} @ {args.dim}×{args.products}, best of 3): "
        f"{ceiling:.1f} GFLOP/s"
    )
    print(
        f"peak RSS {peak:,.0f} MB (inputs alone {rss_inputs:,.0f} MB); the full score matrix would be "
        f"{full_matrix_gb:.1f} GB"
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "args": vars(args) | {"output": str(args.output)},
                "ceiling_gflops": ceiling,
                "peak_rss_mb": peak,
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
