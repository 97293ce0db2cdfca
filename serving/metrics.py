"""Prometheus metrics of the HTTP API: requests, latency per endpoint, errors, the snapshot
served and its age, the canary's share.

Each app gets its own registry (several apps in one test process must not collide on the
default one). With several worker processes (`shopguide serve --workers N`), prometheus_client's
multiprocess mode is used: `PROMETHEUS_MULTIPROC_DIR` is set by the CLI before the workers
start, every worker writes its samples there, and `/metrics` on any worker reports them all.
"""

from __future__ import annotations

import os
import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Loopback answers take well under a millisecond: the buckets resolve p99 around 10 ms.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class ApiMetrics:
    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get(MULTIPROCESS_ENV))
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "shopguide_api_requests_total",
            "HTTP requests answered, by endpoint (route template) and status code.",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.errors = Counter(
            "shopguide_api_server_errors_total",
            "Requests answered with a 5xx status, by endpoint.",
            ["endpoint"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "shopguide_api_request_duration_seconds",
            "Time from the request reaching the app to the response's first byte, by endpoint.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.snapshot_age = Gauge(
            "shopguide_api_snapshot_age_seconds",
            "Age of the current published snapshot (from its manifest's created_at).",
            registry=self.registry,
            multiprocess_mode="max",
        )
        self.snapshot_info = Gauge(
            "shopguide_api_snapshot_info",
            "1 for the snapshot each role (current, canary) is answered from.",
            ["role", "snapshot_id"],
            registry=self.registry,
            multiprocess_mode="max",
        )
        self.canary_percent = Gauge(
            "shopguide_api_canary_percent",
            "Share of users (0-100) routed to the canary snapshot; 0 without a canary.",
            registry=self.registry,
            multiprocess_mode="max",
        )

    def observe(self, endpoint: str, status: int, started: float) -> None:
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint).observe(time.perf_counter() - started)
        if status >= 500:
            self.errors.labels(endpoint).inc()

    def set_serving(self, current: str | None, age_s: float | None, canary: dict | None) -> None:
        self.snapshot_info.clear()
        if current is not None:
            self.snapshot_info.labels("current", current).set(1)
        if canary:
            self.snapshot_info.labels("canary", canary["snapshot"]).set(1)
        self.canary_percent.set(canary["percent"] if canary else 0)
        if age_s is not None:
            self.snapshot_age.set(age_s)

    def exposition(self) -> bytes:
        if self.multiprocess:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
