"""run_range's asset selection: a part of the nightly job, run as an ordinary Dagster run."""

from datetime import date

import pytest
from dagster import AssetKey, AssetSelection, DagsterEventType, DagsterInstance

from shopguide.runner import job_asset_keys, run_range
from shopguide.sources.synthetic import SyntheticConfig, generate


def test_a_selection_resolves_to_the_jobs_assets_only(dbt_manifest):
    from orchestration.definitions import defs

    job = defs.resolve_job_def("nightly_job")
    keys = job_asset_keys(job, AssetSelection.assets("product_embeddings").upstream())
    assert {key.to_user_string() for key in keys} == {
        "raw_events",
        "stg_shop__events",
        "int_products_versioned",
        "dim_products",
        "product_embeddings",
    }
    with pytest.raises(ValueError, match="nightly_job cannot run that selection"):
        job_asset_keys(job, AssetSelection.assets("recommendation_evaluation"))


@pytest.mark.integration
def test_run_range_materialises_only_the_selection(home, dbt_manifest):
    day = date(2024, 1, 1)
    generate(home.landing, SyntheticConfig(events=1000, days=1, start_date=day, late_share=0.0))
    outcome = run_range(home, day, day, selection=AssetSelection.assets("raw_events"))
    assert outcome.success and not outcome.failed_checks
    with DagsterInstance.get() as instance:
        events = instance.all_logs(outcome.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
        materialised = {event.dagster_event.asset_key for event in events}
    assert materialised == {AssetKey("raw_events")}


@pytest.mark.integration
def test_part_of_the_dbt_graph_builds_on_a_fresh_home(home, dbt_manifest):
    # dim_products and its upstream, before any full run: the relationship tests of the marts
    # that point at dim_products (fct_events...) are not run, their tables not existing yet.
    day = date(2024, 1, 1)
    generate(home.landing, SyntheticConfig(events=1000, days=1, start_date=day, late_share=0.0))
    outcome = run_range(home, day, day, selection=AssetSelection.assets("dim_products").upstream())
    assert outcome.success and not outcome.failed_checks
    with DagsterInstance.get() as instance:
        events = instance.all_logs(outcome.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
        materialised = {event.dagster_event.asset_key.to_user_string() for event in events}
    assert materialised == {"raw_events", "stg_shop__events", "int_products_versioned", "dim_products"}


def test_the_dbt_manifest_is_prepared_before_the_definitions_load(home, monkeypatch):
    # Right after `pip install -e .`, before `shopguide setup`: run_range prepares the
    # manifest itself instead of dying in @dbt_assets with DagsterDbtManifestNotFoundError.
    import sys
    import types

    from core import dbt_manifest

    order = []

    class Definitions(types.ModuleType):
        def __getattr__(self, name):
            order.append("definitions")
            raise RuntimeError("the definitions were loaded")

    monkeypatch.setitem(sys.modules, "orchestration.definitions", Definitions("orchestration.definitions"))
    monkeypatch.setattr(dbt_manifest, "ensure_manifest", lambda: order.append("manifest"))
    with pytest.raises(RuntimeError, match="the definitions were loaded"):
        run_range(home, date(2011, 3, 14), date(2011, 3, 14))
    assert order == ["manifest", "definitions"]
