"""dagster.yaml follows SHOPGUIDE_DAGSTER_STORAGE: SQLite by default, PostgreSQL on request."""

import pytest
import yaml

from core.errors import ConfigError
from core.instance import LEGACY_CONTENT, POSTGRES_ENV, STORAGE_ENV, write_instance_config
from core.settings import Paths

STORAGE_KEYS = ("run_storage", "event_log_storage", "schedule_storage")
PG = {
    "DAGSTER_POSTGRES_HOST": "db",
    "DAGSTER_POSTGRES_PORT": "5432",
    "DAGSTER_POSTGRES_USER": "dagster",
    "DAGSTER_POSTGRES_PASSWORD": "secret",
    "DAGSTER_POSTGRES_DB": "dagster",
}


@pytest.fixture
def clean_env(monkeypatch):
    for name in [STORAGE_ENV, *POSTGRES_ENV.values()]:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_sqlite_is_the_default_keeps_telemetry_off_and_batches_the_event_log(tmp_path, clean_env):
    config = yaml.safe_load(write_instance_config(tmp_path).read_text())
    assert config == {
        "telemetry": {"enabled": False},
        "event_log_storage": {"module": "orchestration.event_log", "class": "BatchedSqliteEventLogStorage"},
    }


def test_postgres_reads_its_connection_from_the_environment_and_writes_no_secret(tmp_path, clean_env):
    for name, value in PG.items():
        clean_env.setenv(name, value)
    clean_env.setenv(STORAGE_ENV, "postgres")
    text = write_instance_config(tmp_path).read_text()
    assert "secret" not in text
    config = yaml.safe_load(text)
    database = {
        "hostname": {"env": "DAGSTER_POSTGRES_HOST"},
        "port": {"env": "DAGSTER_POSTGRES_PORT"},
        "username": {"env": "DAGSTER_POSTGRES_USER"},
        "password": {"env": "DAGSTER_POSTGRES_PASSWORD"},
        "db_name": {"env": "DAGSTER_POSTGRES_DB"},
        "scheme": "postgresql+psycopg2",
    }
    # Runs, events and schedules in the one database; the event log is ours (planned subsets).
    storages = {key: (config[key]["module"], config[key]["class"]) for key in STORAGE_KEYS}
    assert storages == {
        "run_storage": ("dagster_postgres.run_storage", "PostgresRunStorage"),
        "event_log_storage": ("orchestration.event_log_postgres", "SubsetPlannedPostgresEventLogStorage"),
        "schedule_storage": ("dagster_postgres.schedule_storage", "PostgresScheduleStorage"),
    }
    assert all(config[key]["config"]["postgres_db"] == database for key in STORAGE_KEYS)
    assert "storage" not in config
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["telemetry"] == {"enabled": False}


def test_the_file_follows_the_switch_both_ways_and_the_old_default_is_upgraded(tmp_path, clean_env):
    (tmp_path / "dagster.yaml").write_text(LEGACY_CONTENT)
    for name, value in PG.items():
        clean_env.setenv(name, value)
    clean_env.setenv(STORAGE_ENV, "postgres")
    assert (
        "postgres_db" in yaml.safe_load(write_instance_config(tmp_path).read_text())["run_storage"]["config"]
    )
    clean_env.delenv(STORAGE_ENV)
    assert "run_storage" not in yaml.safe_load(write_instance_config(tmp_path).read_text())


def test_a_hand_written_file_is_left_alone(tmp_path, clean_env):
    custom = "telemetry:\n  enabled: false\nrun_launcher:\n  module: somewhere\n  class: Mine\n"
    (tmp_path / "dagster.yaml").write_text(custom)
    clean_env.setenv(STORAGE_ENV, "sqlite")
    assert write_instance_config(tmp_path).read_text() == custom


def test_a_wrong_switch_or_missing_connection_is_one_clear_line(tmp_path, clean_env):
    clean_env.setenv(STORAGE_ENV, "mysql")
    with pytest.raises(ConfigError, match="SHOPGUIDE_DAGSTER_STORAGE='mysql': use one of sqlite, postgres"):
        write_instance_config(tmp_path)
    clean_env.setenv(STORAGE_ENV, "postgres")
    clean_env.setenv("DAGSTER_POSTGRES_HOST", "db")
    with pytest.raises(ConfigError, match="missing: DAGSTER_POSTGRES_PORT, DAGSTER_POSTGRES_USER"):
        write_instance_config(tmp_path)
    assert not (tmp_path / "dagster.yaml").exists()


def test_the_cli_reports_a_missing_connection_as_one_line(tmp_path, clean_env):
    from typer.testing import CliRunner

    from shopguide.cli import app

    clean_env.setenv("SHOPGUIDE_HOME", str(tmp_path / "home"))
    clean_env.setenv(STORAGE_ENV, "postgres")
    result = CliRunner().invoke(app, ["daemon"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: SHOPGUIDE_DAGSTER_STORAGE=postgres needs DAGSTER_POSTGRES_HOST, DAGSTER_POSTGRES_PORT, "
        "DAGSTER_POSTGRES_USER, DAGSTER_POSTGRES_PASSWORD, DAGSTER_POSTGRES_DB; missing: "
        "DAGSTER_POSTGRES_HOST, DAGSTER_POSTGRES_PORT, DAGSTER_POSTGRES_USER, DAGSTER_POSTGRES_PASSWORD, "
        "DAGSTER_POSTGRES_DB."
    ]
    assert Paths.from_env().home.exists()  # the home was created before the instance config failed
