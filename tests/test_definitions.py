"""The definitions load, every job resolves, and the asset keys are the ones documented."""

EXPECTED_ASSETS = {
    "raw_events",
    "stg_shop__events",
    "int_events_sessionized",
    "int_products_versioned",
    "fct_events",
    "fct_sessions",
    "dim_products",
    "dim_users",
    "fct_user_product_interactions",
    "fct_daily_product_metrics",
    "int_recommendation_items_shown",
    "fct_recommendation_exposures",
    "fct_recommendation_clicks",
    "fct_recommendation_attributions",
    "fct_recommendation_daily_arms",
    "experiment_readout",
    "product_embeddings",
    "product_search",
    "user_embeddings",
    "published_recommendations",
    "recommendation_evaluation",
    "recommendation_ranker",
    "monitoring_report",
    "intraday_overlay",
}


def test_definitions_load_and_the_asset_graph_is_as_documented(dbt_manifest):
    from dagster import AssetKey

    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys == EXPECTED_ASSETS
    assert defs.resolve_job_def("nightly_job") is not None
    assert defs.resolve_schedule_def("nightly_schedule").cron_schedule == "0 2 * * *"
    assert defs.resolve_sensor_def("landing_sensor") is not None
    assert defs.resolve_sensor_def("intraday_sensor") is not None
    assert defs.resolve_job_def("intraday_job").asset_layer.executable_asset_keys == {
        AssetKey("intraday_overlay")
    }
    # dbt tests are Dagster asset checks, and raw_events has its reconciliation check.
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert ("raw_events", "lines_reconcile") in checks
    assert ("fct_events", "unique_fct_events_event_id") in checks
    assert ("published_recommendations", "champion_challenger") in checks
    # raw_events feeds the dbt staging model.
    assert AssetKey("raw_events") in graph.get(AssetKey("stg_shop__events")).parent_keys


def test_the_evaluation_runs_weekly_outside_the_nightly_job(dbt_manifest):
    from datetime import datetime

    from dagster import AssetKey, build_schedule_context

    from orchestration.definitions import defs

    nightly = defs.resolve_job_def("nightly_job").asset_layer.executable_asset_keys
    weekly = defs.resolve_job_def("evaluation_job").asset_layer.executable_asset_keys
    assert AssetKey("recommendation_evaluation") not in nightly
    assert weekly == {AssetKey("recommendation_evaluation")}
    schedule = defs.resolve_schedule_def("evaluation_schedule")
    assert schedule.cron_schedule == "0 4 * * 1"
    context = build_schedule_context(
        scheduled_execution_time=datetime(2011, 12, 12, 4), repository_def=defs.get_repository_def()
    )
    requests = schedule.evaluate_tick(context).run_requests
    assert [r.partition_key for r in requests] == ["2011-12-11"]


def test_groups_are_set_for_the_ui(dbt_manifest):
    from dagster import AssetKey

    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    groups = {
        name: graph.get(AssetKey(name)).group_name
        for name in ("raw_events", "stg_shop__events", "fct_events")
    }
    assert groups == {"raw_events": "event_log", "stg_shop__events": "staging", "fct_events": "marts"}


def test_the_ranker_trains_weekly_outside_the_nightly_job(dbt_manifest):
    from datetime import datetime

    from dagster import AssetKey, build_schedule_context

    from orchestration.definitions import defs

    nightly = defs.resolve_job_def("nightly_job").asset_layer.executable_asset_keys
    weekly = defs.resolve_job_def("ranker_training_job").asset_layer.executable_asset_keys
    assert AssetKey("recommendation_ranker") not in nightly
    assert AssetKey("published_recommendations") in nightly
    assert weekly == {AssetKey("recommendation_ranker")}
    schedule = defs.resolve_schedule_def("ranker_training_schedule")
    assert schedule.cron_schedule == "0 3 * * 0"
    context = build_schedule_context(
        scheduled_execution_time=datetime(2011, 12, 11, 3), repository_def=defs.get_repository_def()
    )
    requests = schedule.evaluate_tick(context).run_requests
    assert [r.partition_key for r in requests] == ["2011-12-10"]
