"""The monitoring report in a real browser: Debian's headless Chromium, driven by Playwright.

Opened from the file (file://, no server, no network): every section's plot is drawn with a
real size, the console has no error, no request leaves the file, and a full-page screenshot
is kept as a test artifact (tests/artifacts/monitoring_report.png) to look at.
"""

from pathlib import Path

import pytest
from test_monitoring_home import craft_home, materialize_report

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PLOTTED_SECTIONS = (
    "freshness",
    "volume",
    "event-mix",
    "embeddings",
    "recommendations",
    "quality",
    "pipeline",
)


def test_report_renders_in_headless_chromium_with_every_plot_and_no_error(home):
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: this test needs Debian's chromium. Install it with "
            "`./scripts/install-browser.sh` (apt-get install chromium); `./scripts/test.sh` does it for you."
        )
    from playwright.sync_api import sync_playwright

    craft_home(home)
    materialize_report(home)
    assert materialize_report(home).success  # the second report shows the first run's step timings
    report = home.reports / "monitoring" / "report.html"

    console_errors, page_errors, failed, outside = [], [], [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: page_errors.append(str(e)))
            page.on("requestfailed", lambda r: failed.append(f"{r.url}: {r.failure}"))
            page.on(
                "request", lambda r: None if r.url.startswith(("file:", "data:")) else outside.append(r.url)
            )
            page.goto(report.as_uri(), wait_until="load")
            sizes = {}
            for section in PLOTTED_SECTIONS:
                plots = page.locator(f"section#{section} svg.plot")
                assert plots.count() >= 1, f"no plot in section {section}"
                box = plots.first.bounding_box()
                sizes[section] = (box["width"], box["height"]) if box else (0, 0)
            headline = page.locator("#summary .card").count()
            alerts = page.locator("#alerts tbody tr").count()
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "monitoring_report.png"), full_page=True)
        finally:
            browser.close()

    assert all(w > 400 and h > 100 for w, h in sizes.values()), sizes
    assert headline >= 8 and alerts >= 3
    assert console_errors == [] and page_errors == []
    assert failed == [] and outside == []
    assert (ARTIFACTS / "monitoring_report.png").stat().st_size > 50_000
