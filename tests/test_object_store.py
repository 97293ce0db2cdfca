"""LanceDB on object storage: with SHOPGUIDE_LANCEDB_URI=s3://..., the embedding assets write
their tables to the bucket, and the readers (search, the monitoring figures) read them back.

The store is moto's S3-compatible server, started by the test on 127.0.0.1 and stopped after;
LanceDB reaches it through the standard AWS variables, as it would a real bucket.
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
from postgres_server import free_port

from embeddings.store import PRODUCT_TABLE, SEARCH_TABLE, USER_TABLE, connect, read_table
from shopguide.runner import run_range
from shopguide.sources.synthetic import SyntheticConfig, generate
from warehouse.store import connect as connect_warehouse

pytestmark = pytest.mark.integration

BUCKET = "shopguide-test"
DAY = date(2024, 1, 1)


@pytest.fixture
def s3(monkeypatch):
    """moto in server mode: a real HTTP endpoint, not an in-process patch, because LanceDB's
    object-store client is Rust and never passes through Python's HTTP libraries."""
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
            "AWS_ENDPOINT": endpoint,  # LanceDB (Rust object_store)
            "AWS_ENDPOINT_URL": endpoint,  # boto3
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


def test_vectors_live_in_the_bucket_and_every_reader_finds_them(home, dbt_manifest, s3, monkeypatch):
    uri = f"s3://{BUCKET}/lancedb"
    monkeypatch.setenv("SHOPGUIDE_LANCEDB_URI", uri)
    assert home.lancedb_uri == uri
    home.lancedb.rmdir()  # made empty by the `home` fixture before the URI was set
    # The whole nightly job: the writers (product and search vectors, user vectors) and the
    # readers inside it (the publish step, the data-quality checks, the monitoring report).
    generate(home.landing, SyntheticConfig(events=3000, days=1, start_date=DAY, late_share=0.0))
    outcome = run_range(home, DAY, DAY)
    assert outcome.success and not outcome.failed_checks, outcome

    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert any(k.startswith(f"lancedb/{PRODUCT_TABLE}.lance/") for k in keys)
    assert any(k.startswith(f"lancedb/{SEARCH_TABLE}.lance/") for k in keys)
    assert any(k.startswith(f"lancedb/{USER_TABLE}.lance/") for k in keys)
    assert not home.lancedb.exists()  # nothing went to the local folder

    with connect_warehouse(home.warehouse, read_only=True) as con:
        products = con.execute("select count(*) from dim_products").fetchone()[0]
    vectors = read_table(connect(uri), PRODUCT_TABLE)
    assert vectors.height == products > 0

    # Readers: the monitoring figures and the search command go through the same URI.
    from reports.collect import collect_embeddings

    _, versions = collect_embeddings(uri)
    assert versions["products"].to_list()[-1] == products
    from typer.testing import CliRunner

    from shopguide.cli import app

    result = CliRunner().invoke(app, ["search", "gift", "-k", "3", "--json"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)) == 3
