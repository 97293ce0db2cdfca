"""LanceDB and the serving snapshots on object storage: with SHOPGUIDE_LANCEDB_URI and
SHOPGUIDE_SERVING_URI set to s3://..., the nightly job writes the vectors and publishes the
recommendations to the bucket, and the readers (search, the monitoring figures, the reader
library, the HTTP API, the CLI) read them back; rollback, the pointer's conditional write and
a candidate never published are shown over the same HTTP path.

The store is moto's S3-compatible server, started by the test on
127.0.0.1 and stopped after; LanceDB and serving/store.py reach it through the standard AWS
variables, as they would a real bucket.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import date

import pytest
from fastapi.testclient import TestClient
from postgres_server import free_port
from recommendation_tables import USERS, make_tables
from typer.testing import CliRunner

from embeddings.store import PRODUCT_TABLE, SEARCH_TABLE, USER_TABLE, connect, read_table
from serving import serving_root
from serving.api import SNAPSHOT_HEADER, create_app
from serving.gate import GateContext
from serving.publish import _locked, _write_pointer, history, publish_tables, read_pointer
from serving.reader import Reader
from serving.snapshots import list_snapshots, write_snapshot
from serving.snapshots import read_table as read_snapshot_table
from serving.store import PointerConflict
from shopguide.cli import app
from shopguide.runner import run_range
from shopguide.sources.synthetic import SyntheticConfig, generate
from warehouse.store import connect as connect_warehouse

pytestmark = pytest.mark.integration

BUCKET = "shopguide-test"
DAY = date(2024, 1, 1)


@pytest.fixture
def s3(monkeypatch):
    """moto in server mode: a real HTTP endpoint, not an in-process patch, because LanceDB's
    object-store client is Rust and never passes through Python's HTTP libraries. Yields a
    boto3 client; the bucket BUCKET exists."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the S3-compatible test server (moto) did not start on {endpoint}")
                time.sleep(0.3)
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT": endpoint,  # LanceDB (Rust object_store) and serving/store.py
            "AWS_ENDPOINT_URL": endpoint,  # boto3 made without serving/store.py (the test's own client)
            "AWS_ALLOW_HTTP": "true",
        }.items():
            monkeypatch.setenv(name, value)
        import boto3

        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        yield client
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)


def keys(s3, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def test_vectors_and_snapshots_live_in_the_bucket_and_every_reader_finds_them(
    home, dbt_manifest, s3, monkeypatch
):
    uri = f"s3://{BUCKET}/lancedb"
    serving_uri = f"s3://{BUCKET}/serving"
    monkeypatch.setenv("SHOPGUIDE_LANCEDB_URI", uri)
    monkeypatch.setenv("SHOPGUIDE_SERVING_URI", serving_uri)
    assert home.lancedb_uri == uri and serving_root(home) == serving_uri
    home.lancedb.rmdir()  # made empty by the `home` fixture before the URI was set
    # The whole nightly job: the writers (product and search vectors, user vectors) and the
    # readers inside it (the publish step, the data-quality checks, the monitoring report).
    generate(home.landing, SyntheticConfig(events=3000, days=1, start_date=DAY, late_share=0.0))
    outcome = run_range(home, DAY, DAY)
    assert outcome.success and not outcome.failed_checks, outcome

    vector_keys = keys(s3, "lancedb/")
    assert any(k.startswith(f"lancedb/{PRODUCT_TABLE}.lance/") for k in vector_keys)
    assert any(k.startswith(f"lancedb/{SEARCH_TABLE}.lance/") for k in vector_keys)
    assert any(k.startswith(f"lancedb/{USER_TABLE}.lance/") for k in vector_keys)
    assert not home.lancedb.exists()  # nothing went to the local folder

    # The nightly publish went to the bucket: snapshot, gate record, pointer, history.
    current = read_pointer(serving_uri)["current"]
    assert current is not None and list_snapshots(serving_uri) == [current]
    serving_keys = keys(s3, "serving/")
    for name in ("manifest.json", "gate.json", "user_recommendations.parquet", "products.parquet"):
        assert f"serving/snapshots/{current}/{name}" in serving_keys
    assert "serving/CURRENT.json" in serving_keys
    assert [e["action"] for e in history(serving_uri)] == ["publish"]
    assert not home.serving.exists()  # nothing went to the local serving folder
    published = read_snapshot_table(serving_uri, current, "user_recommendations")
    user = published["user_id"][0]
    expected = published.filter(user_id=user).sort("rank")["product_id"].head(5).to_list()

    # The storefront's readers: the reader library, the HTTP API and `shopguide recommend`.
    rows = Reader(serving_uri).get_recommendations(user, 5)
    assert [r["product_id"] for r in rows] == expected and {r["snapshot_id"] for r in rows} == {current}
    with TestClient(create_app(serving_uri, poll_s=0.1)) as client:
        answer = client.get(f"/v1/users/{user}/recommendations", params={"k": 5})
        assert answer.status_code == 200, answer.text
        assert answer.headers[SNAPSHOT_HEADER] == current
        assert [item["product_id"] for item in answer.json()["items"]] == expected
        assert client.get("/readyz").json()["snapshot_id"] == current
    result = CliRunner().invoke(app, ["recommend", "--user", user, "-k", "5", "--json"])
    assert result.exit_code == 0, result.output
    assert [r["product_id"] for r in json.loads(result.output)] == expected

    with connect_warehouse(home.warehouse, read_only=True) as con:
        products = con.execute("select count(*) from dim_products").fetchone()[0]
    vectors = read_table(connect(uri), PRODUCT_TABLE)
    assert vectors.height == products > 0

    # Readers: the monitoring figures and the search command go through the same URI.
    from reports.collect import collect_embeddings

    _, versions = collect_embeddings(uri)
    assert versions["products"].to_list()[-1] == products
    result = CliRunner().invoke(app, ["search", "gift", "-k", "3", "--json"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)) == 3


def test_publish_rollback_and_the_pointer_race_over_http(home, s3, monkeypatch):
    """The commit protocol against an S3 endpoint: the API follows a publish and a rollback,
    a stale pointer write is refused, a candidate never pointed at is not served."""
    root = f"s3://{BUCKET}/shop-a/serving"
    monkeypatch.setenv("SHOPGUIDE_SERVING_URI", root)
    context = GateContext(active_user_ids=USERS)
    first = publish_tables(root, make_tables(0), {"partition_date": "2011-12-08"}, context).snapshot_id
    with TestClient(create_app(root, poll_s=0.05)) as client:

        def served(user="u01"):
            answer = client.get(f"/v1/users/{user}/recommendations", params={"k": 1})
            assert answer.status_code == 200, answer.text
            return answer.headers[SNAPSHOT_HEADER], answer.json()["items"][0]["product_id"]

        assert served() == (first, "P02")
        second = publish_tables(root, make_tables(7), {"partition_date": "2011-12-09"}, context).snapshot_id
        assert client.app.state.reader.wait_for(second) and served() == (second, "P09")

        # A slow writer read the pointer before a rollback swapped it: its write is refused.
        with _locked(root) as slow:
            result = CliRunner().invoke(app, ["rollback"])
            assert result.exit_code == 0, result.output
            slow.pointer["current"] = second
            with pytest.raises(PointerConflict):
                _write_pointer(slow, {"action": "publish", "snapshot": second})
        assert read_pointer(root)["current"] == first
        assert client.app.state.reader.wait_for(first) and served() == (first, "P02")

        # Written, never pointed at (a publish killed before the swap): listed, not served.
        candidate = write_snapshot(root, make_tables(3), {"partition_date": "2011-12-10"}).snapshot_id
        assert candidate in list_snapshots(root)
        assert read_pointer(root)["current"] == first and served() == (first, "P02")
    assert [e["action"] for e in history(root)] == ["publish", "publish", "rollback"]
    assert not home.serving.exists()
    assert all(k.startswith("shop-a/serving/") for k in keys(s3, "shop-a/"))
