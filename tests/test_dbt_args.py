from datetime import UTC, date, datetime

import pytest

from assets.dbt_args import dbt_build_args, dbt_selection_env, dbt_window_env, landing_days, landing_window
from core.dbt_manifest import DBT_DIR


def test_one_day_partition_is_a_one_day_window():
    start = datetime(2011, 3, 14, tzinfo=UTC)
    end = datetime(2011, 3, 15, tzinfo=UTC)
    assert landing_window(start, end) == (date(2011, 3, 14), date(2011, 3, 14))


def test_range_window_is_inclusive_of_its_last_day():
    assert landing_window(date(2011, 3, 1), date(2011, 4, 1)) == (date(2011, 3, 1), date(2011, 3, 31))


def test_empty_window_is_an_error():
    with pytest.raises(ValueError):
        landing_window(date(2011, 3, 1), date(2011, 3, 1))


def test_build_args_skip_unit_tests_and_carry_no_vars():
    # The window travels as environment variables: any --vars would re-parse the project.
    assert dbt_build_args() == ["build", "--exclude-resource-type", "unit_test"]


def test_the_window_is_passed_as_the_environment_the_window_macro_reads():
    env = dbt_window_env(date(2011, 3, 1), date(2011, 3, 31))
    assert env == {"SHOPGUIDE_DBT_MIN_DATE": "2011-03-01", "SHOPGUIDE_DBT_MAX_DATE": "2011-03-31"}
    macro = (DBT_DIR / "macros" / "window.sql").read_text()
    assert all(f'env_var("{name}", var(' in macro for name in env)


def test_build_args_name_another_target():
    assert dbt_build_args("spark") == [*dbt_build_args(), "--target", "spark"]


def test_landing_days_lists_the_window_inclusively():
    assert landing_days(date(2011, 2, 27), date(2011, 3, 1)) == [
        date(2011, 2, 27),
        date(2011, 2, 28),
        date(2011, 3, 1),
    ]


def test_a_partial_build_runs_only_buildable_tests_unless_the_operator_says_otherwise():
    assert dbt_selection_env({}) == {"DBT_INDIRECT_SELECTION": "buildable"}
    assert dbt_selection_env({"DBT_INDIRECT_SELECTION": "cautious"}) == {"DBT_INDIRECT_SELECTION": "cautious"}
