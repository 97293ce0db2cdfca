import json
from datetime import UTC, date, datetime

import pytest

from assets.dbt_args import dbt_build_args, landing_days, landing_window


def test_one_day_partition_is_a_one_day_window():
    start = datetime(2011, 3, 14, tzinfo=UTC)
    end = datetime(2011, 3, 15, tzinfo=UTC)
    assert landing_window(start, end) == (date(2011, 3, 14), date(2011, 3, 14))


def test_range_window_is_inclusive_of_its_last_day():
    assert landing_window(date(2011, 3, 1), date(2011, 4, 1)) == (date(2011, 3, 1), date(2011, 3, 31))


def test_empty_window_is_an_error():
    with pytest.raises(ValueError):
        landing_window(date(2011, 3, 1), date(2011, 3, 1))


def test_build_args_pass_the_window_as_vars_and_skip_unit_tests():
    args = dbt_build_args(date(2011, 3, 1), date(2011, 3, 31))
    assert args[:3] == ["build", "--exclude-resource-type", "unit_test"]
    assert args[3] == "--vars"
    assert json.loads(args[4]) == {"min_date": "2011-03-01", "max_date": "2011-03-31"}
    assert len(args) == 5  # the profile's default target, duckdb: no --target


def test_build_args_name_another_target():
    args = dbt_build_args(date(2011, 3, 1), date(2011, 3, 1), target="spark")
    assert args[:5] == dbt_build_args(date(2011, 3, 1), date(2011, 3, 1))
    assert args[5:] == ["--target", "spark"]


def test_landing_days_lists_the_window_inclusively():
    assert landing_days(date(2011, 2, 27), date(2011, 3, 1)) == [
        date(2011, 2, 27),
        date(2011, 2, 28),
        date(2011, 3, 1),
    ]
