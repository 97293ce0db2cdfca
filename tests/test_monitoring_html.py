"""The monitoring report's HTML comes from Jinja2 templates with autoescaping: a hostile value
from the data (a product title or a country seen by a data-quality check, an event type, a
run id, a job name) shows as text, never as markup; every section and plot still renders;
the templates ship with the package."""

import dataclasses
import re
import shutil
import subprocess
import sys
import zipfile
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from test_monitoring_home import LAST_DAY, NOW, craft_home

from reports.alerts import derive_alerts
from reports.build import build_report
from reports.collect import collect
from reports.html import SECTIONS, render
from reports.instance import PIPELINE_SCHEMA
from warehouse.store import connect

HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def hostile_home(home):
    """The crafted home, plus hostile text where the data reaches the page."""
    craft_home(home)
    with connect(home.warehouse) as con:
        # A data-quality failure whose observed value samples a product title and a country.
        con.execute(
            "insert into data_quality_results "
            "values (?, 'dq-3', 'events', ?, 'country', ?, false, 'warning', ?)",
            [
                (NOW - timedelta(minutes=5)).replace(tzinfo=None),
                f"expect_{HOSTILE}",
                str(LAST_DAY),
                f"1 of 9 rows unexpected, e.g. {HOSTILE} ×1 (title {HOSTILE})",
            ],
        )
        # An event type nobody expected: it becomes a volume panel title (matplotlib's SVG).
        con.execute(
            "insert into raw_events select * replace ('h-' || event_id as event_id, ? as event_type) "
            "from raw_events where _partition_date = ? limit 5",
            [HOSTILE, LAST_DAY],
        )
    return home


def _sections(page: str) -> list[str]:
    return re.findall(r'<section id="([a-z-]+)"', page)


def test_hostile_values_are_escaped_and_every_section_renders(hostile_home):
    page = build_report(hostile_home, NOW, f"run-{HOSTILE}").html_path.read_text()
    assert "<script" not in page.lower()
    assert f"run-{ESCAPED}" in page  # the header
    assert f"e.g. {ESCAPED} ×1 (title {ESCAPED})" in page  # the failures table
    assert f"expect_{ESCAPED}" in page
    assert f">{ESCAPED}: 1 anomalous day<" in page  # a volume panel title, in the SVG
    assert _sections(page) == ["summary", "alerts", *(anchor for anchor, _ in SECTIONS)]
    plots = re.findall(r'data-plot="([a-z_]+)"', page)
    assert plots == ["freshness", "volume", "event_mix", "embeddings", "recommendations", "quality"]
    assert "<h3>Failed in the latest run</h3>" in page


def test_headline_cards_escape_what_the_dagster_instance_says(hostile_home):
    """The cards used to be inserted raw: a job name or run status now shows as text."""
    data = collect(hostile_home, NOW)
    pipeline = pl.DataFrame(
        {
            "run_id": ["r1"],
            "job": [HOSTILE],
            "status": ["SUCCESS<b>"],
            "started_at": [NOW - timedelta(minutes=3)],
            "run_seconds": [42.0],
            "step": ["raw_events"],
            "step_status": ["SUCCESS"],
            "duration_s": [40.0],
        },
        schema=PIPELINE_SCHEMA,
    )
    data = dataclasses.replace(data, pipeline=pipeline, notes={})
    page = render(data, derive_alerts(data), "run-1")
    assert "<script" not in page.lower() and "<b>" not in page
    assert f'<div class="sub">{ESCAPED} · success&lt;b&gt;</div>' in page
    assert 'data-plot="pipeline"' in page  # with a pipeline, the seventh plot is there too


def test_snapshots_that_were_never_gated_render_as_not_gated(hostile_home):
    """gate_passed all null (snapshots published before the gate existed, or by hand) is a
    column of no type: the report used to crash on it."""
    data = collect(hostile_home, NOW)
    assert data.recommendations.height > 0
    never_gated = data.recommendations.with_columns(gate_passed=pl.lit(None))
    assert never_gated.schema["gate_passed"] == pl.Null
    page = render(dataclasses.replace(data, recommendations=never_gated), [], "run-1")
    assert "gate FAILED" not in page and "not gated" in page


def test_a_wheel_carries_the_templates(tmp_path):
    """Built from a copy of the sources (pip builds in place), as a fresh install would get it."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "reports", source / "reports", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(source)],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    [wheel] = tmp_path.glob("shopguide-*.whl")
    shipped = {n for n in zipfile.ZipFile(wheel).namelist() if n.startswith("reports/templates/")}
    on_disk = {f"reports/templates/{p.name}" for p in (ROOT / "reports" / "templates").iterdir()}
    assert shipped == on_disk and "reports/templates/report.html" in shipped
