"""The two exposure-log types: recommendation_shown and recommendation_clicked."""

import json
from datetime import date

import pytest

from warehouse.envelope import EVENT_TYPES, SHOP_EVENT_TYPES, InvalidEvent, Window, validate_event
from warehouse.ingest import ingest_landing_day
from warehouse.landing import write_jsonl

DAY = date(2024, 3, 10)
WINDOW = Window.for_landing_day(DAY)


def shown(**properties):
    base = {"snapshot_id": "snap-2", "arm": "canary", "surface": "home", "products": ["SKU-1", "SKU-2", 3]}
    base.update(properties)
    return {
        "event_id": "x-1",
        "event_type": "recommendation_shown",
        "occurred_at": "2024-03-10T12:00:00Z",
        "user_id": "u-1",
        "session_id": "s-1",
        "properties": {k: v for k, v in base.items() if v is not ...},
    }


def clicked(**properties):
    base = {"snapshot_id": "snap-2", "arm": "control", "surface": "email", "rank": 2}
    base.update(properties)
    return {
        "event_id": "x-2",
        "event_type": "recommendation_clicked",
        "occurred_at": "2024-03-10T12:00:05Z",
        "user_id": "u-1",
        "product_id": "SKU-2",
        "properties": {k: v for k, v in base.items() if v is not ...},
    }


def test_new_types_are_appended_so_the_old_ones_keep_their_positions():
    assert EVENT_TYPES[: len(SHOP_EVENT_TYPES)] == SHOP_EVENT_TYPES
    assert EVENT_TYPES[-2:] == ("recommendation_shown", "recommendation_clicked")


def test_valid_exposure_and_click_are_stored_as_sent():
    row = validate_event(shown(), WINDOW)
    assert row["event_type"] == "recommendation_shown" and row["product_id"] is None
    assert row["properties"]["products"] == ["SKU-1", "SKU-2", 3]
    row = validate_event(clicked(), WINDOW)
    assert row["product_id"] == "SKU-2" and row["properties"]["rank"] == 2


def test_a_guest_exposure_is_accepted():
    # Guests are never in a canary (routing needs a user id); the readout leaves them out.
    assert validate_event({**shown(), "user_id": None}, WINDOW)["user_id"] is None


@pytest.mark.parametrize(
    "record, reason, words",
    [
        ({**shown(), "properties": None}, "missing_field", "properties is required"),
        (shown(snapshot_id=...), "missing_field", "properties.snapshot_id"),
        (shown(snapshot_id=" "), "missing_field", "properties.snapshot_id is empty"),
        (shown(snapshot_id=["a"]), "wrong_type", "properties.snapshot_id"),
        (shown(snapshot_id="a\u200bb"), "invalid_identifier", "U+200B"),
        (shown(arm=...), "missing_field", "properties.arm"),
        (shown(arm="treatment"), "invalid_value", "not one of control, canary"),
        (shown(arm="Canary"), "invalid_value", "properties.arm"),
        (shown(arm=1), "wrong_type", "properties.arm"),
        (shown(surface="sidebar"), "invalid_value", "properties.surface"),
        (shown(surface=...), "missing_field", "properties.surface"),
        (shown(products=...), "missing_field", "properties.products"),
        (shown(products="SKU-1"), "wrong_type", "must be a list"),
        (shown(products=[]), "invalid_value", "is empty"),
        (shown(products=["SKU-1", None]), "wrong_type", "properties.products[1]"),
        (shown(products=["SKU-1", 2.5]), "wrong_type", "properties.products[1]"),
        (shown(products=["SKU-1", ""]), "invalid_value", "properties.products[1] is empty"),
        (shown(products=["SKU-1", "sku-1"]), "invalid_value", "repeats"),
        (shown(products=[f"P{i}" for i in range(201)]), "invalid_value", "more than 200"),
        (clicked(rank=...), "missing_field", "properties.rank"),
        (clicked(rank="2"), "wrong_type", "properties.rank"),
        (clicked(rank=True), "wrong_type", "properties.rank"),
        (clicked(rank=0), "invalid_value", "from 1 to 200"),
        ({**clicked(), "product_id": None}, "missing_field", "product_id"),
    ],
)
def test_bad_recommendation_events_are_refused_with_a_reason(record, reason, words):
    with pytest.raises(InvalidEvent) as refused:
        validate_event(record, WINDOW)
    assert refused.value.reason == reason
    assert words in refused.value.detail


def test_recommendation_keys_on_other_types_stay_free_form():
    # Backwards compatible: a view that already carried its own `rank` or `arm` is still valid.
    view = {**clicked(rank="top", arm="B"), "event_type": "view"}
    assert validate_event(view, WINDOW)["properties"]["arm"] == "B"


def test_ingest_quarantines_bad_exposures_and_reconciles(tmp_path):
    lines = [
        shown(),
        {**shown(arm="treatment"), "event_id": "x-3"},
        clicked(),
        {**clicked(rank=0), "event_id": "x-4"},
    ]
    write_jsonl(tmp_path / DAY.isoformat() / "tracker.jsonl", lines)
    result = ingest_landing_day(tmp_path, DAY)
    assert sorted(r["event_id"] for r in result.accepted) == ["x-1", "x-2"]
    assert sorted((q["line_number"], q["reason"]) for q in result.quarantined) == [
        (2, "invalid_value"),
        (4, "invalid_value"),
    ]
    assert json.loads(result.quarantined[0]["raw_text"])["event_id"] == "x-3"


def test_generated_experiment_lines_all_pass_the_envelope(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from shopguide.cli import app
    from warehouse.landing import landing_days

    monkeypatch.setenv("SHOPGUIDE_HOME", str(tmp_path))
    args = ["generate", "--events", "2000", "--days", "3", "--start-date", "2024-01-01"]
    result = CliRunner().invoke(app, [*args, "--experiment-lift", "0.1", "--experiment-shoppers", "300"])
    assert result.exit_code == 0, result.output
    assert "experiment: " in result.output and "planted lift +10.0%" in result.output
    types, quarantined = set(), []
    for day in landing_days(tmp_path / "landing"):
        ingested = ingest_landing_day(tmp_path / "landing", day)
        types |= {r["event_type"] for r in ingested.accepted if r["source_file"].endswith("experiment.jsonl")}
        quarantined += [q for q in ingested.quarantined if q["source_file"].endswith("experiment.jsonl")]
    assert not quarantined
    assert types == {"recommendation_shown", "recommendation_clicked", "add_to_cart", "purchase"}
    bad = CliRunner().invoke(app, [*args, "--experiment-lift", "0.1", "--experiment-share", "1.5"])
    assert bad.exit_code == 2 and bad.output.strip() == "error: --experiment-share 1.5: use 0.01 to 0.99."
