"""The storefront HTTP API under load: latency at fixed arrival rates, the highest sustainable
rate, search latency, and the memory of a worker.

    python bench/bench_api.py                        # SHOPGUIDE_HOME's published snapshot
    python bench/bench_api.py --rates 500,1000,1500 --seconds 10 --workers 1
    python bench/bench_api.py --million              # also: RSS with a 1M-shopper snapshot

It starts `shopguide serve` as a child process on a free loopback port and drives it from
this process with an open-loop load generator: requests are *scheduled* at a fixed rate
(uvloop and a lean HTTP/1.1 client over a pool of keep-alive connections; httpx's async
client could not generate the load, see `Connection`) and each latency is
measured from its scheduled time, so a slow server cannot slow the generator down and hide
its own queueing (no coordinated omission). The mix: 70% recommendations for shoppers of
the snapshot (5% unknown ids, which get the cold-start list), 30% similar products.

A rate is *sustained* when at least 99% of the scheduled requests were answered within the
run, none failed, and p99 ≤ 10 ms. Both processes share this machine's cores, so the
generator's own CPU is part of what limits the figures. Prints a table and writes JSON to
bench/out/api.json; nothing is asserted about timing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import numpy as np
import polars as pl
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from serving.publish import current_snapshot, publish  # noqa: E402
from serving.snapshots import read_manifest, read_table, snapshot_dir, write_snapshot  # noqa: E402
from shopguide.server import APP_FACTORY  # noqa: E402

P99_GOAL_MS = 10.0
# The 65 labelled search queries (English, misspelt, other languages): real variety, so no
# cache of repeated query vectors could flatter the figure.
SEARCH_QUERIES = [
    q["query"] for q in json.loads((REPO / "tests/data/search_queries.json").read_text())["queries"]
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """`shopguide serve` (uvicorn), or the same app factory on granian for comparison."""

    def __init__(self, home: Path, workers: int, kind: str = "uvicorn"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "SHOPGUIDE_HOME": str(home)}
        if kind == "granian":
            granian = Path(sys.executable).with_name("granian")
            command = [
                str(granian),
                "--interface",
                "asgi",
                "--factory",
                "--loop",
                "uvloop",
                "--port",
                str(self.port),
            ]
            command += ["--workers", str(workers), "--log-level", "warning", APP_FACTORY]
        else:
            command = [sys.executable, "-m", "shopguide.cli", "serve", "--port", str(self.port)]
            command += ["--workers", str(workers)]
        self.process = subprocess.Popen(command, cwd=REPO, env=env)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        raise SystemExit("the server did not become ready in 120 s")

    def rss_bytes(self) -> int:
        """Resident memory of the server's process tree (the CLI, uvicorn, its workers)."""
        root = psutil.Process(self.process.pid)
        return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=30)


def request_paths(serving_root: Path, n: int, seed: int = 0) -> list[str]:
    folder = snapshot_dir(serving_root, current_snapshot(serving_root))
    users = pl.read_parquet(folder / "user_recommendations.parquet", columns=["user_id"])["user_id"].unique()
    products = pl.read_parquet(folder / "similar_products.parquet", columns=["product_id"])[
        "product_id"
    ].unique()
    rng = random.Random(seed)
    users, products = users.sort().to_list(), products.sort().to_list()
    paths = []
    for _ in range(n):
        draw = rng.random()
        if draw < 0.05:
            paths.append(f"/v1/users/unknown{rng.randrange(10**6)}/recommendations?k=10")
        elif draw < 0.70:
            paths.append(f"/v1/users/{quote(rng.choice(users))}/recommendations?k=10")
        else:
            paths.append(f"/v1/products/{quote(rng.choice(products))}/similar?k=10")
    return paths


class Connection:
    """One keep-alive HTTP/1.1 connection over asyncio streams. httpx's async client was the
    bottleneck here (it answered 250 requests/s with p50 ~0.9 s while the server answered
    ~1,150/s to a plain sequential client), so the load comes from this lean client: a
    request line out, the status line, headers and Content-Length bytes in."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str):
        self.reader, self.writer, self.host = reader, writer, host

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, host)

    async def get(self, path: str) -> int:
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


async def open_loop(url: str, paths: list[str], rate: float, connections: int) -> dict:
    """Send paths[i] at start + i/rate; latency from the scheduled time to the full answer.
    A request due while every connection is busy waits in the queue, and that wait counts."""
    host, port = url.removeprefix("http://").split(":")
    pool = [await Connection.open(host, int(port)) for _ in range(connections)]
    for connection in pool:
        await connection.get("/healthz")  # warm: connection set-up is not what is measured
    latencies = np.full(len(paths), np.nan)
    errors = 0
    due: asyncio.Queue[int | None] = asyncio.Queue()
    start = time.perf_counter() + 0.05

    async def dispatch() -> None:
        for i in range(len(paths)):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            due.put_nowait(i)
        for _ in pool:
            due.put_nowait(None)

    async def work(connection: Connection) -> None:
        nonlocal errors
        while (i := await due.get()) is not None:
            try:
                status = await connection.get(paths[i])
            except (OSError, asyncio.IncompleteReadError, ValueError):
                errors += 1
                connection.close()
                connection = await Connection.open(host, int(port))
                continue
            if status >= 500:
                errors += 1
            else:
                latencies[i] = time.perf_counter() - (start + i / rate)

    await asyncio.gather(dispatch(), *(work(c) for c in pool))
    elapsed = time.perf_counter() - start
    for connection in pool:
        connection.close()
    done = latencies[~np.isnan(latencies)] * 1000
    percentiles = np.percentile(done, [50, 99, 99.9]) if len(done) else [float("nan")] * 3
    return {
        "rate": rate,
        "scheduled": len(paths),
        "answered": int(len(done)),
        "errors": errors,
        "achieved_rps": round(len(done) / elapsed, 1),
        "p50_ms": round(float(percentiles[0]), 2),
        "p99_ms": round(float(percentiles[1]), 2),
        "p99_9_ms": round(float(percentiles[2]), 2),
    }


def run_open_loop(url: str, paths: list[str], rate: float, connections: int) -> dict:
    import uvloop

    return uvloop.run(open_loop(url, paths, rate, connections))


def sustained(step: dict) -> bool:
    return (
        step["errors"] == 0 and step["answered"] >= 0.99 * step["scheduled"] and step["p99_ms"] <= P99_GOAL_MS
    )


def million_user_snapshot(folder: Path, users: int = 1_000_000, k: int = 10) -> Path:
    """A serving root whose snapshot has `users` shoppers × k rows (built in memory)."""
    root = folder / "serving"
    ids = pl.Series("user_id", [f"u{i:07d}" for i in range(users)]).repeat_by(k).explode()
    ranks = pl.Series("rank", np.tile(np.arange(1, k + 1), users))
    products = pl.Series(
        "product_id", [f"P{i:05d}" for i in np.random.default_rng(0).integers(0, 100_000, users * k)]
    )
    recs = pl.DataFrame([ids, ranks, products]).with_columns(
        score=pl.lit(0.5),
        content_score=pl.lit(0.1),
        graph_score=pl.lit(0.1),
        popularity_score=pl.lit(1.0),
        reason=pl.lit("bought with something you bought"),
        source=pl.lit("personal"),
    )
    catalog = pl.DataFrame({"product_id": [f"P{i:05d}" for i in range(100_000)]}).with_columns(
        title=pl.lit("A PRODUCT TITLE OF TYPICAL LENGTH"),
        category_path=pl.lit(None, pl.String),
        price=pl.lit(1.0),
    )
    similar = (
        catalog.head(1000)
        .select("product_id")
        .with_columns(
            rank=pl.lit(1, pl.Int64),
            similar_product_id=pl.lit("P00001"),
            score=pl.lit(0.5),
            content_score=pl.lit(0.5),
            cooccurrence_score=pl.lit(0.0),
            reason=pl.lit("similar"),
            source=pl.lit("content"),
        )
    )
    popular = (
        catalog.head(10)
        .select("product_id")
        .with_columns(
            list=pl.lit("popular"),
            segment_type=pl.lit("overall"),
            segment=pl.lit("all"),
            window_days=pl.lit(30, pl.Int64),
            rank=pl.int_range(1, 11, dtype=pl.Int64),
            score=pl.lit(1.0),
            reason=pl.lit("popular"),
        )
    )
    tables = {
        "user_recommendations": recs,
        "similar_products": similar,
        "popular_products": popular,
        "products": catalog,
    }
    snapshot_id = write_snapshot(root, tables, {"partition_date": "2024-01-01"}).snapshot_id
    publish(root, snapshot_id, force=True)
    return folder


def swap_seconds(home: Path, rounds: int = 6) -> list[float]:
    """Seconds from a publish (or rollback) to the server answering from the new snapshot, on
    a copy of the serving folder: a second snapshot is written from the current one's tables."""
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder)
        shutil.copytree(home / "serving", copy / "serving")
        root = copy / "serving"
        first = current_snapshot(root)
        tables = {name: read_table(root, first, name) for name in read_manifest(root, first).row_counts}
        second = write_snapshot(root, tables, {"partition_date": "bench"}).snapshot_id
        server = Server(copy, 1)
        seconds = []
        try:
            with httpx.Client(base_url=server.url, timeout=5) as client:
                for target in [second, first] * (rounds // 2):
                    started = time.perf_counter()
                    publish(root, target, force=True)
                    while client.get("/readyz").json().get("snapshot_id") != target:
                        time.sleep(0.005)
                    seconds.append(round(time.perf_counter() - started, 3))
        finally:
            server.stop()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", type=Path, default=None, help="default: SHOPGUIDE_HOME")
    parser.add_argument("--rates", default="250,500,1000,1500,2000")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--server", choices=("uvicorn", "granian"), default="uvicorn")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--search-rate", type=float, default=50.0)
    parser.add_argument("--million", action="store_true", help="also measure a 1M-shopper snapshot's RSS")
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "out" / "api.json")
    args = parser.parse_args()

    from core.settings import Paths

    home = args.home or Paths.from_env().home
    serving_root = home / "serving"
    if current_snapshot(serving_root) is None:
        raise SystemExit(f"nothing is published under {serving_root}: run `shopguide demo` first")
    result: dict = {"home": str(home), "server": args.server, "workers": args.workers, "steps": []}
    result["connections"] = args.connections
    server = Server(home, args.workers, args.server)
    try:
        result["rss_ready_bytes"] = server.rss_bytes()
        header = ("rate", "answered", "errors", "rps", "p50 ms", "p99 ms", "p99.9 ms")
        print(" ".join(f"{name:>9}" for name in header))
        for rate in [float(r) for r in args.rates.split(",")]:
            paths = request_paths(serving_root, int(rate * args.seconds), seed=int(rate))
            step = run_open_loop(server.url, paths, rate, args.connections)
            step["sustained"] = sustained(step)
            result["steps"].append(step)
            cells = [
                rate,
                *(
                    step[key]
                    for key in ("answered", "errors", "achieved_rps", "p50_ms", "p99_ms", "p99_9_ms")
                ),
            ]
            print(" ".join(f"{cell:>9}" for cell in cells), "sustained" if step["sustained"] else "")
        ok = [s["rate"] for s in result["steps"] if s["sustained"]]
        result["max_sustained_rps"] = max(ok) if ok else None
        rng = random.Random(1)
        queries = [
            f"/v1/search?q={quote(rng.choice(SEARCH_QUERIES))}&k=10"
            for _ in range(int(args.search_rate * args.seconds))
        ]
        run_open_loop(server.url, queries[:5], 5, 2)  # loads the encoder once
        result["search"] = run_open_loop(server.url, queries, args.search_rate, 8)
        print(f"search at {args.search_rate:.0f}/s: {result['search']}")
        result["rss_after_load_bytes"] = server.rss_bytes()
    finally:
        server.stop()
    print(f"max sustained (p99 <= {P99_GOAL_MS} ms, 0 errors): {result['max_sustained_rps']} req/s")
    ready, loaded = result["rss_ready_bytes"] / 1e6, result["rss_after_load_bytes"] / 1e6
    print(f"server RSS: ready {ready:.0f} MB, after load (search model loaded) {loaded:.0f} MB")
    result["swap_seconds"] = swap_seconds(home)
    print(f"publish → served (s): {result['swap_seconds']}")
    if args.million:
        with tempfile.TemporaryDirectory() as folder:
            big = million_user_snapshot(Path(folder))
            server = Server(big, 1)
            try:
                result["rss_1m_users_bytes"] = server.rss_bytes()
                step = run_open_loop(server.url, request_paths(big / "serving", 2000), 200, 8)
                result["million_users_step"] = step
            finally:
                server.stop()
        big_rss = result["rss_1m_users_bytes"] / 1e6
        print(f"server RSS with a 1M-shopper snapshot (10M rows): {big_rss:.0f} MB; {step}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
