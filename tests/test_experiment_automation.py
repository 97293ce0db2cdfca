"""The optional automation on crafted readouts: it promotes or aborts by the rule through the
serving pointer, records who acted and on what in the history, and acts only on the latest
day, once."""

from datetime import date, datetime

import pytest

from experiments.automation import Automation, act_on_readout, readout_details
from experiments.readout import ABORT, KEEP, PROMOTE, RULE_VERSION, DecisionRule
from serving.publish import abort_canary, history, publish, read_pointer, start_canary
from serving.snapshots import write_snapshot
from tests.crafted_readouts import BROKEN, crafted_readout, intervals
from tests.recommendation_tables import make_tables

DAY = date(2024, 6, 12)
BETTER = intervals(primary=(0.01, 0.05))
WORSE = intervals(primary=(-0.08, -0.02))


@pytest.fixture
def serving(tmp_path):
    """A published control and a running 50 % canary: (root, control id, canary id)."""
    root = tmp_path / "serving"
    control = write_snapshot(root, make_tables(0), {}, created_at=datetime(2024, 6, 1)).snapshot_id
    canary = write_snapshot(root, make_tables(1), {}, created_at=datetime(2024, 6, 2)).snapshot_id
    publish(root, control, None, force=True)
    start_canary(root, canary, 50, None, force=True)
    return root, control, canary


def run(root, canary, readout, mode=Automation.on, as_of=DAY, latest=DAY, run_id="run-1"):
    return act_on_readout(root, canary, readout, as_of, latest, mode, run_id)


def test_promote_by_the_rule_records_who_the_verdict_the_figures_and_the_rule(serving):
    root, control, canary = serving
    readout = crafted_readout(BETTER, days=9)
    assert readout.decision == PROMOTE
    outcome = run(root, canary, readout)
    assert outcome.action == PROMOTE and outcome.message.startswith(f"promoted canary {canary}")
    pointer = read_pointer(root)
    assert pointer["current"] == canary and pointer["canary"] is None and pointer["previous"][0] == control
    line = history(root, limit=1)[0]
    assert line["action"] == "promote_canary" and line["snapshot"] == canary
    assert line["by"] == "automation" and line["run_id"] == "run-1"
    assert line["reason"] == f"automation: readout as of {DAY}: promote: {readout.reason}"
    recorded = line["readout"]
    assert recorded["as_of"] == "2024-06-12" and recorded["decision"] == PROMOTE
    assert recorded["days_running"] == 9 and recorded["shoppers"] == {"control": 5000, "canary": 5000}
    assert recorded["metrics"]["conversion_rate"]["lift_low"] == pytest.approx(0.01)
    assert recorded["metrics"]["conversion_rate"]["lift_high"] == pytest.approx(0.05)
    assert recorded["rule_version"] == RULE_VERSION and recorded["rule"] == DecisionRule().model_dump()


@pytest.mark.parametrize(
    "readout, words",
    [
        (crafted_readout(WORSE, days=2), "primary significantly worse"),
        (crafted_readout(days=28), "maximum duration (28 days) reached"),
        (crafted_readout(BETTER, srm=BROKEN, days=10), "sample ratio mismatch"),
    ],
    ids=["primary-worse", "max-duration", "srm"],
)
def test_abort_by_the_rule(serving, readout, words):
    root, control, canary = serving
    assert readout.decision == ABORT and words in readout.reason
    outcome = run(root, canary, readout)
    assert outcome.action == ABORT
    assert read_pointer(root)["current"] == control and read_pointer(root)["canary"] is None
    line = history(root, limit=1)[0]
    assert line["action"] == "abort_canary" and line["by"] == "automation" and words in line["reason"]
    assert line["readout"]["decision"] == ABORT


def test_keep_collecting_changes_nothing(serving):
    root, _, canary = serving
    before = history(root)
    readout = crafted_readout(BETTER, days=3)  # significant, before the minimum 7 days
    assert readout.decision == KEEP
    outcome = run(root, canary, readout)
    assert outcome.action is None and outcome.message.startswith("keep collecting")
    assert read_pointer(root)["canary"]["snapshot"] == canary and history(root) == before


@pytest.mark.parametrize("readout", [crafted_readout(BETTER, days=9), crafted_readout(WORSE, days=9)])
def test_automation_off_is_the_default_and_never_acts(serving, readout):
    from assets.resources import ExperimentSettings

    root, _, canary = serving
    assert ExperimentSettings().automation is Automation.off
    before = history(root)
    outcome = run(root, canary, readout, mode=Automation.off)
    assert outcome.action is None and "automation off" in outcome.message
    assert read_pointer(root)["canary"]["snapshot"] == canary and history(root) == before


def test_abort_only_aborts_but_leaves_promotion_to_a_person(serving):
    root, _, canary = serving
    kept = run(root, canary, crafted_readout(BETTER, days=9), mode=Automation.abort_only)
    assert kept.action is None and "abort_only" in kept.message
    assert read_pointer(root)["canary"]["snapshot"] == canary
    assert run(root, canary, crafted_readout(WORSE, days=9), mode=Automation.abort_only).action == ABORT
    assert read_pointer(root)["canary"] is None


def test_a_readout_older_than_the_latest_day_does_not_act(serving):
    root, _, canary = serving
    outcome = run(root, canary, crafted_readout(WORSE, days=5), as_of=date(2024, 6, 8), latest=DAY)
    assert outcome.action is None and "not the latest day (2024-06-12)" in outcome.message
    assert read_pointer(root)["canary"]["snapshot"] == canary


def test_a_rerun_of_the_same_day_does_not_act_twice_or_flip_state(serving):
    root, control, canary = serving
    abort = crafted_readout(WORSE, days=9)
    assert run(root, canary, abort).action == ABORT
    lines = len(history(root))
    again = run(root, canary, abort, run_id="run-2")
    assert again.action is None and again.message.startswith(f"already acted on {canary} (abort_canary")
    assert len(history(root)) == lines
    # An operator starts the same snapshot again; a re-run of that day (or an older one) must
    # not abort it a second time on the figures it already acted on.
    start_canary(root, canary, 50, None, force=True)
    lines = len(history(root))
    for as_of in (DAY, date(2024, 6, 11)):
        repeat = run(root, canary, abort, as_of=as_of, latest=as_of, run_id="run-3")
        assert repeat.action is None and repeat.message.startswith(f"already acted on {canary} (abort_canary")
    assert read_pointer(root)["canary"]["snapshot"] == canary and len(history(root)) == lines
    # A later day's readout is a new decision.
    assert run(root, canary, abort, as_of=date(2024, 6, 13), latest=date(2024, 6, 13)).action == ABORT
    assert read_pointer(root)["current"] == control


def test_a_canary_stopped_or_replaced_since_the_readout_is_left_alone(serving):
    root, _, canary = serving
    promote = crafted_readout(BETTER, days=9)
    abort_canary(root, reason="by hand")
    lines = len(history(root))
    # The pointer itself refuses (under the publish lock): no second action, no history line.
    stopped = run(root, canary, promote)
    assert stopped.action is None and stopped.message.startswith("nothing done: no canary is running")
    assert len(history(root)) == lines
    other = write_snapshot(root, make_tables(2), {}, created_at=datetime(2024, 6, 3)).snapshot_id
    start_canary(root, other, 10, None, force=True)
    outcome = run(root, canary, promote)
    assert outcome.action is None and f"the running canary is {other}, not {canary}" in outcome.message
    assert read_pointer(root)["canary"]["snapshot"] == other


def test_details_cannot_rewrite_the_pointer_fields(serving):
    root, control, canary = serving
    details = {**readout_details(crafted_readout(), "operator", None), "action": "x", "snapshot": "y"}
    abort_canary(root, reason="test", expected=canary, details=details)
    line = history(root, limit=1)[0]
    assert (line["action"], line["snapshot"], line["by"]) == ("abort_canary", canary, "operator")
    assert line["readout"]["as_of"] is None
