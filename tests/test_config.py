"""Typed configuration: RecommendationConfig and the gate thresholds as pydantic models, nested
in the `recommender` resource; a wrong value is one line naming the setting, from the
command line (`--set`), from `run_range` and from a Dagster run (the launchpad)."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assets.resources import (
    EmbeddingEncoder,
    GateSettings,
    RecommenderSettings,
    SettingsError,
    TableSettings,
    recommender_settings,
)
from recommendations.config import RecommendationConfig, RecommendationKnobs
from serving.gate import GateThresholds
from shopguide.cli import app, recommender_overrides

# The values the hand-written dataclasses had before the typed models: the defaults (and so
# every shop that never set them) must not move.
DEFAULT_RECOMMENDATION_CONFIG = {
    "k": 50,
    "similar_content_weight": 0.6,
    "allow_repurchase": True,
    "max_per_category": None,
    "popularity_half_life_days": 14.0,
    "history_half_life_days": 30.0,
    "windows_days": (7, 30),
    "trending_min_count": 3,
    "block_size": 1024,
    "excluded_product_ids": (),
}
DEFAULT_GATE_THRESHOLDS = {
    "min_user_coverage": 0.95,
    "min_list_length": 10,
    "max_short_list_share": 0.05,
    "max_fallback_share": 0.5,
    "min_overlap_with_current": 0.05,
    "overlap_top_k": 10,
    "expectations": True,
}


def test_the_defaults_are_the_values_they_always_were():
    assert RecommendationConfig().model_dump() == DEFAULT_RECOMMENDATION_CONFIG
    assert GateThresholds().model_dump() == DEFAULT_GATE_THRESHOLDS
    resource = RecommenderSettings()
    assert resource.config(set(), EmbeddingEncoder().half_life_days) == RecommendationConfig()
    assert resource.gate_thresholds() == GateThresholds()
    assert type(resource.gate_thresholds()) is GateThresholds  # the plain model, no Dagster in it


def test_the_resource_nests_the_plain_models_without_copying_a_field():
    assert TableSettings.model_fields.keys() == RecommendationKnobs.model_fields.keys()
    assert GateSettings.model_fields.keys() == GateThresholds.model_fields.keys()
    for nested, plain in ((TableSettings, RecommendationKnobs), (GateSettings, GateThresholds)):
        for name, field in plain.model_fields.items():
            assert nested.model_fields[name].default == field.default, name
            assert nested.model_fields[name].metadata == field.metadata, name  # the bounds


def test_the_run_supplies_exclusions_and_the_history_half_life():
    resource = RecommenderSettings(tables={"k": 7, "max_per_category": 2})
    config = resource.config({"B", "A"}, 12.0)
    assert (config.k, config.max_per_category) == (7, 2)
    assert config.excluded_product_ids == ("A", "B") and config.history_half_life_days == 12.0


def test_the_plain_models_import_no_dagster():
    """The recommender library and the gate stay usable without the orchestrator."""
    code = "import sys, recommendations.config, serving.gate; print('dagster' in sys.modules)"
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.strip() == "False"


WRONG = [
    ({"tables": {"k": -1}}, "recommender.tables.k: input should be greater than or equal to 1 (got -1)"),
    ({"tables": {"k": 0}}, "recommender.tables.k: input should be greater than or equal to 1 (got 0)"),
    (
        {"tables": {"similar_content_weight": 1.5}},
        "recommender.tables.similar_content_weight: input should be less than or equal to 1 (got 1.5)",
    ),
    (
        {"tables": {"max_per_category": 0}},
        "recommender.tables.max_per_category: input should be greater than or equal to 1 (got 0)",
    ),
    (
        {"gate": {"min_user_coverage": 1.5}},
        "recommender.gate.min_user_coverage: input should be less than or equal to 1 (got 1.5)",
    ),
    (
        {"gate": {"max_fallback_share": -0.1}},
        "recommender.gate.max_fallback_share: input should be greater than or equal to 0 (got -0.1)",
    ),
    ({"gate": {"min_coverage": 0.9}}, "recommender.gate.min_coverage: unknown setting"),
    ({"tables": {"kk": 3}}, "recommender.tables.kk: unknown setting"),
    ({"colour": "red"}, "recommender.colour: unknown setting"),
    # The names the flat resource had: refused, with where they went.
    ({"k": 20}, "recommender.k: unknown setting (it is tables.k now)"),
    (
        {"gate_min_list_length": 5},
        "recommender.gate_min_list_length: unknown setting (it is gate.min_list_length now)",
    ),
]


@pytest.mark.parametrize("overrides,message", WRONG)
def test_a_wrong_value_is_one_line_naming_the_setting(overrides, message):
    with pytest.raises(SettingsError) as raised:
        recommender_settings(overrides)
    assert str(raised.value) == message


def test_every_wrong_value_is_named_on_the_same_line():
    with pytest.raises(SettingsError) as raised:
        recommender_settings({"tables": {"k": 0}, "gate": {"min_list_length": 0}})
    assert "\n" not in str(raised.value)
    assert "recommender.tables.k:" in str(raised.value) and "recommender.gate.min_list_length:" in str(
        raised.value
    )


def test_the_plain_models_refuse_wrong_values_naming_the_field():
    with pytest.raises(ValueError, match="similar_content_weight"):
        RecommendationConfig(similar_content_weight=-0.1)
    with pytest.raises(ValueError, match="excluded_ids"):
        RecommendationConfig(excluded_ids=("P1",))
    with pytest.raises(ValueError, match="max_short_list_share"):
        GateThresholds(max_short_list_share=2)


def test_set_options_become_the_resource_run_config():
    overrides = recommender_overrides(
        [
            "tables.k=20",
            "tables.max_per_category=null",
            "gate.min_user_coverage=0.9",
            "gate.expectations=false",
            "override_champion_gate=true",
        ]
    )
    assert overrides == {
        "tables": {"k": 20, "max_per_category": None},
        "gate": {"min_user_coverage": 0.9, "expectations": False},
        "override_champion_gate": True,
    }
    assert recommender_settings(overrides).gate_thresholds().min_user_coverage == 0.9
    assert recommender_overrides([]) == {}


@pytest.mark.parametrize(
    "args,message",
    [
        (["--set", "tables.k=-3"], "recommender.tables.k: input should be greater than or equal to 1"),
        (["--set", "gate.min_user_coverage=1.5"], "recommender.gate.min_user_coverage: input should be less"),
        (["--set", "gate.bogus=1"], "recommender.gate.bogus: unknown setting"),
        (["--set", "k=20"], "it is tables.k now"),
        (["--set", "tables.k"], "write NAME=VALUE"),
    ],
)
@pytest.mark.parametrize(
    "command", [["run", "--date", "2024-01-01"], ["backfill", "--start", "2024-01-01", "--end", "2024-01-02"]]
)
def test_a_wrong_set_is_one_line_on_stderr_and_exit_2(home, command, args, message):
    result = CliRunner().invoke(app, [*command, *args])
    assert result.exit_code == 2, (result.output, result.exception)
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert message in result.stderr and "Traceback" not in result.output


def test_run_range_refuses_wrong_settings_before_any_run(home):
    from shopguide.runner import run_range

    with pytest.raises(SettingsError, match=r"^recommender\.gate\.min_list_length: "):
        run_range(home, date(2024, 1, 1), date(2024, 1, 1), recommender={"gate": {"min_list_length": -1}})
    assert not (home.dagster_home / "history").exists()  # no run was recorded


def test_a_wrong_launchpad_value_fails_the_run_with_one_line(home):
    """What the launchpad does: run config for the resource, validated when the run starts
    (Dagster's schema has no bounds, so the model's bounds apply at resource start)."""
    from dagster import DagsterInvalidConfigError, asset, materialize

    @asset
    def knobs(recommender: RecommenderSettings) -> int:
        return recommender.config(set(), 30.0).k

    def launch(config: dict):
        return materialize(
            [knobs],
            resources={"recommender": RecommenderSettings()},
            run_config={"resources": {"recommender": {"config": config}}},
            raise_on_error=False,
        )

    assert launch({"tables": {"k": 3}}).output_for_node("knobs") == 3
    failed = launch({"gate": {"min_user_coverage": 1.5}})
    assert not failed.success
    # The run's failure (what the UI shows first) is caused by the one-line SettingsError.
    (failure,) = [event for event in failed.all_events if event.event_type_value == "PIPELINE_FAILURE"]
    cause = failure.event_specific_data.error.cause
    assert cause.cls_name == "SettingsError"
    assert cause.message.strip() == (
        "assets.resources.SettingsError: "
        "recommender.gate.min_user_coverage: input should be less than or equal to 1 (got 1.5)"
    )
    # Unknown names never start a run: Dagster's schema check names the path.
    with pytest.raises(DagsterInvalidConfigError, match='unexpected config entry "bogus" at path .*:gate'):
        launch({"gate": {"bogus": 1}})
