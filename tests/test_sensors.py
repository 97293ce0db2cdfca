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


def test_the_intraday_sensor_asks_for_a_refresh_only_when_a_file_after_the_snapshot_is_new(home):
    from datetime import datetime

    from dagster import RunRequest, SkipReason
    from recommendation_tables import make_tables

    from orchestration.sensors import intraday_run_request
    from serving import serving_root
    from serving.overlays import write_overlay
    from serving.publish import publish, set_overlay
    from serving.snapshots import write_snapshot

    root = serving_root(home)
    assert isinstance(intraday_run_request(home), SkipReason)  # nothing published
    base = write_snapshot(root, make_tables(), {"partition_date": "2011-12-08"}).snapshot_id
    publish(root, base, force=True)
    (home.landing / "2011-12-08").mkdir(parents=True)
    (home.landing / "2011-12-08" / "a.jsonl").write_text("{}\n")  # the snapshot's own day
    assert isinstance(intraday_run_request(home), SkipReason)
    today = home.landing / "2011-12-09"
    today.mkdir()
    (today / "a.jsonl").write_text("{}\n")
    first = intraday_run_request(home)
    assert isinstance(first, RunRequest) and first.run_key.startswith(base)
    # Once an overlay has recorded the file as it is, nothing is asked; a change asks again.
    stat = (today / "a.jsonl").stat()
    seen = {"2011-12-09/a.jsonl": f"{stat.st_size}:{stat.st_mtime_ns}"}
    rows = make_tables()["user_recommendations"].head(0)
    written = write_overlay(root, base, rows, as_of=datetime(2011, 12, 10), refreshed=0, files=seen, gate={})
    set_overlay(root, written.overlay_id, base)
    assert isinstance(intraday_run_request(home), SkipReason)
    (today / "b.jsonl").write_text("{}\n")
    second = intraday_run_request(home)
    assert isinstance(second, RunRequest) and second.run_key != first.run_key
