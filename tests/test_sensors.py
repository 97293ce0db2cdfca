import os

from orchestration.sensors import landing_run_requests


def test_one_request_per_landing_day_and_a_new_key_when_files_change(tmp_path):
    (tmp_path / "2011-01-04").mkdir()
    (tmp_path / "2011-01-04" / "a.jsonl").write_text("{}\n")
    (tmp_path / "2011-01-05").mkdir()  # empty day: no run
    (tmp_path / "not-a-day").mkdir()
    valid = {"2011-01-04", "2011-01-05"}
    first = landing_run_requests(tmp_path, valid)
    assert [r.partition_key for r in first] == ["2011-01-04"]
    assert landing_run_requests(tmp_path, valid)[0].run_key == first[0].run_key  # nothing new
    (tmp_path / "2011-01-04" / "b.jsonl").write_text("{}\n")
    assert landing_run_requests(tmp_path, valid)[0].run_key != first[0].run_key


def test_days_outside_the_partitions_are_ignored(tmp_path):
    (tmp_path / "1999-01-01").mkdir()
    (tmp_path / "1999-01-01" / "a.jsonl").write_text("{}\n")
    assert landing_run_requests(tmp_path, {"2011-01-04"}) == []


def test_a_file_name_that_is_not_utf8_still_gets_its_day_a_run(tmp_path):
    # Ingestion quarantines such a file (unreadable_file); the sensor must not crash on it first.
    (tmp_path / "2011-01-04").mkdir()
    (tmp_path / "2011-01-04" / os.fsdecode(b"caf\xe9.jsonl")).write_text("{}\n")
    assert [r.partition_key for r in landing_run_requests(tmp_path, {"2011-01-04"})] == ["2011-01-04"]
