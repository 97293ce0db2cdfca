"""GX Data Docs: the suites and their validation results as a static HTML site.

Built by great-expectations' own site builder under `SHOPGUIDE_HOME/reports/data_docs/`
(`index.html` lists the newest `INDEX_VALIDATIONS` validations; a page per suite and per
validation). The validations and suites it renders are kept as GX JSON under `reports/gx/`
(GX's filesystem stores), so the site grows run after run; the newest `KEEP_PER_SUITE`
validations of each suite are kept. Validating stays in memory (quality/validate.py); this
module only stores finished results and re-renders the pages that changed plus the index.

Offline: the pages are built without a network, but GX's templates load their CSS and the
index table's JavaScript (jQuery, bootstrap-table) from public CDNs. Without internet a
browser shows each validation page's content unstyled, and GX's index shows no table of
validations (checked with headless Chromium). So `list.html`, beside GX's index, lists the
same pages as plain links, newest first, with no script; `data_quality_results`
(quality/history.py) holds the same verdicts.
"""

from __future__ import annotations

import copy
import html
import json
import re
import shutil
from datetime import UTC
from pathlib import Path

from quality.validate import SuiteRun

SITE = "local_site"
KEEP_PER_SUITE = 100
# GX's index page lists only the newest this many validations (list.html lists every stored
# one). GX loads each validation it lists on every rebuild, and the index is rebuilt by each
# check step: with a hundred nights stored (800 validations) a rebuild took 2.6-3.0 s
# instead of 0.4 s, five times a night; listing the newest 40 (five nights), 1.2 s.
INDEX_VALIDATIONS = 40


def site_dir(reports: Path) -> Path:
    return Path(reports) / "data_docs"


def stores_dir(reports: Path) -> Path:
    return Path(reports) / "gx"


def run_name(partition_key: str, run_id: str) -> str:
    """GX's run name (a folder name in the stores and the site): partition and run id."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", f"{partition_key}_{run_id}")


def docs_context(reports: Path):
    """An ephemeral GX context whose suite and validation stores, and docs site, are folders."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    def folder(path: Path) -> dict:
        return {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(path)}

    stores = stores_dir(reports)
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        progress_bars=ProgressBarsConfig(globally=False),
        analytics_enabled=False,
    )
    config.stores["expectations_store"] = {
        "class_name": "ExpectationsStore",
        "store_backend": folder(stores / "expectations"),
    }
    config.stores["validation_results_store"] = {
        "class_name": "ValidationResultsStore",
        "store_backend": folder(stores / "validations"),
    }
    config.data_docs_sites = {
        SITE: {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": folder(site_dir(reports)),
            "site_index_builder": {
                "class_name": "DefaultSiteIndexBuilder",
                "validation_results_limit": INDEX_VALIDATIONS,
            },
        }
    }
    return gx.get_context(project_config=config, mode="ephemeral")


def build_data_docs(reports: Path, runs: list[SuiteRun], run_id: str, partition_key: str) -> Path:
    """Store `runs` (replacing an earlier copy of the same run and partition), prune old
    validations, re-render the changed pages and the index; returns index.html."""
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    reports = Path(reports)
    context = docs_context(reports)
    name = run_name(partition_key, run_id)
    changed = []
    for run in runs:
        if run.result is None:
            continue
        for root in (stores_dir(reports) / "validations", site_dir(reports) / "validations"):
            shutil.rmtree(root / run.suite / name, ignore_errors=True)
        expectations = [copy.copy(r.expectation_config.to_domain_obj()) for r in run.result.results]
        context.suites.add_or_update(gx.ExpectationSuite(name=run.suite, expectations=expectations))
        suite_id = ExpectationSuiteIdentifier(name=run.suite)
        run_identifier = RunIdentifier(run_name=name, run_time=run.checked_at.replace(tzinfo=UTC))
        key = ValidationResultIdentifier(
            expectation_suite_identifier=suite_id, run_id=run_identifier, batch_identifier=run.suite
        )
        result = copy.copy(run.result)
        result.meta = {**result.meta, "run_id": run_identifier, "partition_key": partition_key}
        context.validation_results_store.store_validation_results(result, key, suite_id)
        changed += [suite_id, key]
    prune(reports)
    context.build_data_docs(site_names=[SITE], resource_identifiers=changed or None)
    write_plain_list(reports)
    return site_dir(reports) / "index.html"


def write_plain_list(reports: Path) -> Path:
    """`data_docs/list.html`: every stored validation as a plain link, newest first."""
    validations = stores_dir(reports) / "validations"
    rows = []
    for stored in validations.rglob("*.json") if validations.exists() else []:
        relative = stored.relative_to(validations)  # suite/run name/run time/batch.json
        suite, name, run_time = relative.parts[0], relative.parts[1], relative.parts[2]
        success = json.loads(stored.read_text()).get("success")
        page = Path("validations") / relative.with_suffix(".html")
        rows.append((run_time, suite, name, success, page.as_posix()))
    rows.sort(reverse=True)
    items = "\n".join(
        f'<tr><td>{html.escape(t)}</td><td><a href="expectations/{html.escape(suite)}.html">'
        f"{html.escape(suite)}</a></td><td>{html.escape(name)}</td>"
        f'<td>{"passed" if ok else "FAILED"}</td><td><a href="{html.escape(page)}">result</a></td></tr>'
        for t, suite, name, ok, page in rows
    )
    path = site_dir(reports) / "list.html"
    path.write_text(
        "<!doctype html><meta charset=utf-8><title>Data Docs: validations</title>"
        "<h1>Validations</h1><p>GX's <a href=index.html>index</a> needs the internet for its table; "
        "this list does not.</p><table border=1 cellpadding=4><tr><th>run time (UTC)</th>"
        f"<th>suite</th><th>partition and run</th><th>status</th><th></th></tr>\n{items}\n</table>\n"
    )
    return path


def prune(reports: Path, keep: int = KEEP_PER_SUITE) -> int:
    """Delete all but the newest `keep` validations of each suite (JSON and page)."""
    validations = stores_dir(reports) / "validations"
    removed = 0
    if not validations.exists():
        return 0
    for suite in (p for p in validations.iterdir() if p.is_dir()):
        # <suite>/<run name>/<run time>/<batch>.json; run times sort as text (%Y%m%dT%H%M%S.%fZ).
        found = sorted(
            ((t.name, t) for r in suite.iterdir() if r.is_dir() for t in r.iterdir() if t.is_dir()),
            reverse=True,
        )
        for _, folder in found[keep:]:
            relative = folder.relative_to(validations)
            shutil.rmtree(folder, ignore_errors=True)
            shutil.rmtree(site_dir(reports) / "validations" / relative, ignore_errors=True)
            for parent in (folder.parent, site_dir(reports) / "validations" / relative.parent):
                if parent.exists() and not any(parent.iterdir()):
                    parent.rmdir()
            removed += 1
    return removed
