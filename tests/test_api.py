"""The storefront HTTP API: contracts against the reader library, bad requests answered 4xx
with a one-line error (hand-picked and fuzzed from the OpenAPI schema), hot swap, a serving
folder gone bad, metrics; and as a real server process: publishes under load, canary
stickiness across two workers, a clean stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from recommendation_tables import USERS, make_tables

from serving.api import SNAPSHOT_HEADER, create_app
from serving.publish import POINTER, publish, rollback, start_canary
from serving.reader import Reader, canary_bucket
from serving.snapshots import write_snapshot

REPO = Path(__file__).resolve().parent.parent


def snapshot(root: Path, offset: int) -> str:
    return write_snapshot(root, make_tables(offset), {"partition_date": "2011-12-08"}).snapshot_id


def fake_search(query, k, category, min_price, max_price):
    return [{"product_id": "P01", "title": f"match for {query}", "price": 1.0, "score": 0.9}][:k]


@pytest.fixture
def served(tmp_path):
    """A serving root with two snapshots, the first published."""
    root = tmp_path / "serving"
    first, second = snapshot(root, 0), snapshot(root, 1)
    publish(root, first, force=True)
    return root, first, second


@pytest.fixture
def client(served):
    root, _, _ = served
    app = create_app(root, search=fake_search, poll_s=0.05)
    with TestClient(app) as test_client:
        yield test_client


def without_snapshot(rows):
    return [{key: value for key, value in row.items() if key != "snapshot_id"} for row in rows]


def test_answers_are_the_reader_librarys(served, client):
    root, first, _ = served
    reader = Reader(root)
    for user in [*USERS[:5], "stranger", "BANK CHARGES", "Müller-Lüdenscheidt 北京"]:
        response = client.get(f"/v1/users/{user}/recommendations", params={"k": 5})
        body = response.json()
        assert response.status_code == 200
        assert response.headers[SNAPSHOT_HEADER] == body["snapshot_id"] == first
        assert body["items"] == without_snapshot(reader.get_recommendations(user, 5))
        assert body["personalized"] is (user in USERS)
    stranger = client.get("/v1/users/stranger/recommendations").json()["items"]
    assert stranger and {row["source"] for row in stranger} == {"fallback_global"}
    similar = client.get("/v1/products/P03/similar", params={"k": 3}).json()
    assert similar["items"] == without_snapshot(reader.get_similar("P03", 3))
    for params, call in [
        ({}, {}),
        ({"segment_type": "category", "segment": "Home"}, {"category": "Home"}),
        ({"segment_type": "country", "segment": "France", "k": 4}, {"country": "France", "k": 4}),
        ({"list": "trending"}, {"list": "trending"}),
        ({"window_days": 7}, {"window_days": 7}),
    ]:
        body = client.get("/v1/popular", params=params).json()
        assert body["items"] == without_snapshot(reader.get_popular(**call)) and body["items"]
    found = client.get("/v1/search", params={"q": "tea pot", "k": 1}).json()
    assert found["items"][0]["title"] == "match for tea pot"


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/v1/users/u01/recommendations?k=0", 422),
        ("/v1/users/u01/recommendations?k=101", 422),
        ("/v1/users/u01/recommendations?k=ten", 422),
        ("/v1/users/%00bad/recommendations", 422),
        ("/v1/users/..%2F..%2Fetc%2Fpasswd/recommendations", 404),
        ("/v1/users/" + "x" * 129 + "/recommendations", 422),
        ("/v1/users/%20padded/recommendations", 422),
        ("/v1/products/NOPE/similar", 404),
        ("/v1/products/P01/similar?k=-1", 422),
        ("/v1/popular?list=bestsellers", 422),
        ("/v1/popular?segment_type=country", 422),
        ("/v1/popular?segment=France", 422),
        ("/v1/popular?window_days=0", 422),
        ("/v1/search", 422),
        ("/v1/search?q=%20%20", 422),
        ("/v1/search?q=mug&min_price=5&max_price=1", 422),
        ("/v1/search?q=" + "a" * 201, 422),
        ("/v1/search?q=mug&k=51", 422),
        ("/v1/users/u01/recommendations?category=" + "c" * 5000, 414),
        ("/v2/anything", 404),
    ],
)
def test_bad_requests_get_a_4xx_and_a_one_line_error(client, url, status):
    response = client.get(url)
    assert response.status_code == status
    message = response.json()["error"]
    assert message and "\n" not in message


def test_a_publish_rollback_and_canary_are_served_without_a_restart(served, client):
    root, first, second = served
    reader = client.app.state.reader
    publish(root, second, force=True)
    assert reader.wait_for(second)
    body = client.get("/v1/users/u01/recommendations").json()
    assert body["snapshot_id"] == second and body["items"][0]["reason"] == "v1"
    rollback(root, to=first, force=True)
    assert reader.wait_for(first)
    start_canary(root, second, 50, force=True)
    deadline = time.monotonic() + 5
    while reader.state.pointer.get("canary") is None and time.monotonic() < deadline:
        time.sleep(0.02)
    salt = reader.state.pointer["canary"]["salt"]
    for user in USERS:
        expected = second if canary_bucket(user, salt) < 50 else first
        response = client.get(f"/v1/users/{user}/recommendations")
        assert response.headers[SNAPSHOT_HEADER] == response.json()["snapshot_id"] == expected


def test_a_broken_pointer_keeps_the_last_good_snapshot_and_readyz_says_so(served, client):
    root, first, _ = served
    reader = client.app.state.reader
    good = (root / POINTER).read_text()
    (root / POINTER).write_text("{not json")
    reader.refresh()
    ready = client.get("/readyz").json()
    assert ready["ready"] and ready["snapshot_id"] == first and "serving the last good" in ready["problem"]
    assert client.get("/v1/users/u01/recommendations").json()["snapshot_id"] == first
    (root / POINTER).write_text(good)
    reader.refresh()
    assert client.get("/readyz").json()["problem"] is None


def test_nothing_published_is_not_ready_and_says_what_to_do(tmp_path):
    with TestClient(create_app(tmp_path / "serving", poll_s=0.05)) as fresh:
        ready = fresh.get("/readyz")
        assert ready.status_code == 503 and "publish" in ready.json()["problem"]
        assert fresh.get("/healthz").status_code == 200
        assert "publish" in fresh.get("/v1/users/u01/recommendations").json()["error"]


def test_not_ready_until_the_search_model_is_loaded_and_a_failed_load_is_reported(served):
    root, first, _ = served
    release = threading.Event()
    with TestClient(create_app(root, search=fake_search, warm_up=release.wait)) as warming:
        waiting = warming.get("/readyz")
        assert waiting.status_code == 503 and waiting.json()["problem"] == "loading the search model"
        release.set()
        deadline = time.monotonic() + 5
        while warming.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert warming.get("/readyz").json()["problem"] is None

    def broken():
        raise ValueError("No product vectors from the query encoder")

    with TestClient(create_app(root, search=fake_search, warm_up=broken)) as failed:
        deadline = time.monotonic() + 5
        while failed.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        ready = failed.get("/readyz").json()
        assert ready["snapshot_id"] == first and "search is unavailable" in ready["problem"]


def test_metrics_count_requests_per_endpoint_and_show_the_snapshot(served, client):
    _, first, _ = served
    for _ in range(3):
        client.get("/v1/users/u01/recommendations")
    client.get("/v1/products/NOPE/similar")
    text = client.get("/metrics").text
    assert (
        'shopguide_api_requests_total{endpoint="/v1/users/{user_id}/recommendations",status="200"} 3.0'
        in text
    )
    assert (
        'shopguide_api_requests_total{endpoint="/v1/products/{product_id}/similar",status="404"} 1.0' in text
    )
    assert f'shopguide_api_snapshot_info{{role="current",snapshot_id="{first}"}} 1.0' in text
    assert (
        "shopguide_api_request_duration_seconds_bucket" in text and "shopguide_api_canary_percent 0.0" in text
    )


# ---------------------------------------------------------------- fuzzing from the schema


def _fuzz_schema():
    root = Path(tempfile.mkdtemp(prefix="shopguide-fuzz-")) / "serving"
    publish(root, snapshot(root, 0), force=True)
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(root, search=fake_search, poll_s=60))


FUZZED = _fuzz_schema()


@FUZZED.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_fuzzed_requests_never_get_a_server_error(case):
    response = case.call()
    assert response.status_code < 500, (case.path, case.query, response.text)
    if response.status_code >= 400:
        assert "\n" not in response.json()["error"]


# ---------------------------------------------------------------- a real server process


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """`shopguide serve` as a child process on a free port; stopped with Ctrl-C's signal."""

    def __init__(self, home: Path, workers: int = 1):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "SHOPGUIDE_HOME": str(home)}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        command = [
            sys.executable,
            "-m",
            "shopguide.cli",
            "serve",
            "--port",
            str(self.port),
            "--workers",
            str(workers),
        ]
        self.process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert self.process.poll() is None, self.process.stdout.read().decode()
            time.sleep(0.2)
        raise AssertionError("the server did not become ready in 60 s")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=30)


@pytest.mark.integration
def test_readers_hammering_the_server_never_see_a_mix_while_publishes_alternate(tmp_path):
    root = tmp_path / "serving"
    first, second = snapshot(root, 0), snapshot(root, 1)
    publish(root, first, force=True)
    expected = {first: [row["product_id"] for row in Reader(root).get_recommendations("u03", 10)]}
    server = Server(tmp_path)
    seen: list[tuple[str, str, list[str]]] = []
    stop = threading.Event()

    def hammer():
        with httpx.Client(base_url=server.url, timeout=5) as http:
            while not stop.is_set():
                response = http.get("/v1/users/u03/recommendations")
                body = response.json()
                seen.append(
                    (
                        response.headers[SNAPSHOT_HEADER],
                        body["snapshot_id"],
                        [r["product_id"] for r in body["items"]],
                    )
                )

    try:
        threads = [threading.Thread(target=hammer) for _ in range(3)]
        for thread in threads:
            thread.start()
        publish(root, second, force=True)
        expected[second] = [row["product_id"] for row in Reader(root).get_recommendations("u03", 10)]
        for target in (second, first, second, first):
            rollback(root, to=target, force=True) if target == first else publish(root, target, force=True)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not (seen and seen[-1][1] == target):
                time.sleep(0.05)
            assert seen[-1][1] == target  # the new version is served without a restart
        stop.set()
        for thread in threads:
            thread.join()
    finally:
        stop.set()
        code = server.stop()
    assert code == 0
    assert len(seen) > 50 and {s[1] for s in seen} == {first, second}
    for header, body_id, products in seen:
        assert header == body_id and products == expected[body_id]  # never a mix of two versions


@pytest.mark.integration
def test_a_canary_user_lands_on_the_same_arm_in_every_worker(tmp_path):
    root = tmp_path / "serving"
    first, second = snapshot(root, 0), snapshot(root, 1)
    publish(root, first, force=True)
    pointer = start_canary(root, second, 50, force=True)
    salt = pointer["canary"]["salt"]
    server = Server(tmp_path, workers=2)
    try:
        fresh = httpx.Limits(max_keepalive_connections=0)  # a new connection, maybe another worker, each call
        with httpx.Client(base_url=server.url, timeout=5, limits=fresh) as http:
            pids = {http.get("/healthz").json()["pid"] for _ in range(40)}
            for user in USERS:
                arms = {http.get(f"/v1/users/{user}/recommendations").json()["snapshot_id"] for _ in range(4)}
                assert arms == {second if canary_bucket(user, salt) < 50 else first}
            metrics = http.get("/metrics").text
    finally:
        code = server.stop()
    assert len(pids) == 2  # both workers answered
    assert "shopguide_api_canary_percent 50.0" in metrics
    assert code == 0
