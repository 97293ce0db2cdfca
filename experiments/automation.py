"""The optional automation: the daily readout promotes or aborts the canary by the decision
rule, through the same serving functions `shopguide experiment promote|abort` call, and the
serving history records who acted, the verdict, its figures and the rule (docs/experiments.md,
"Automation").

It acts only on the readout of the latest day in the warehouse (a backfill or a re-run of an
older day reports what it would have done and changes nothing), at most once per canary and
day: the pointer's own check (`expected` snapshot, under the publish lock) stops a second
action on a canary already promoted or aborted, and the history stops a re-run of a day from
acting again on the same snapshot started anew.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import Enum
from pathlib import Path

from experiments.readout import ABORT, KEEP, PROMOTE, RULE_VERSION, Readout
from serving.errors import ServingError
from serving.publish import abort_canary, history, promote_canary

AUTOMATION = "automation"


class Automation(Enum):
    """What the daily readout may do by itself. Member names are the config values."""

    off = "off"  # record the decision only (the default): a person acts
    abort_only = "abort_only"  # abort by the rule (always safe); promotion stays with a person
    on = "on"  # promote and abort by the rule


@dataclass(frozen=True)
class AutomationOutcome:
    action: str | None  # promote | abort when the pointer changed, else None
    message: str  # what was done or why nothing was


def readout_details(readout: Readout, by: str, as_of: date | None, run_id: str | None = None) -> dict:
    """The history line's account of a decision: who acted, the verdict, the figures it rested
    on and the rule (its settings and RULE_VERSION), so the line alone explains the action."""
    details = {
        "by": by,
        "readout": {
            "as_of": as_of.isoformat() if as_of else None,
            "decision": readout.decision,
            "reason": readout.reason,
            "days_running": readout.days_running,
            "shoppers": readout.shoppers,
            "exposures": readout.exposures,
            "srm_p_value": readout.srm.p_value,
            "metrics": {
                m.metric: {
                    "control": m.control,
                    "canary": m.canary,
                    "lift": m.lift.estimate,
                    "lift_low": m.lift.low,
                    "lift_high": m.lift.high,
                    "p_value": m.lift.p_value,
                }
                for m in readout.metrics.values()
            },
            "rule_version": RULE_VERSION,
            "rule": readout.rule.model_dump(),
        },
    }
    return {**details, "run_id": run_id} if run_id else details


def acted_on(root: Path, snapshot_id: str, as_of: date) -> dict | None:
    """The automation's history line for this snapshot on `as_of` or a later day, if any."""
    for line in reversed(history(root)):
        readout = line.get("readout") or {}
        if (
            line.get("by") == AUTOMATION
            and line.get("snapshot") == snapshot_id
            and (readout.get("as_of") or "") >= as_of.isoformat()
        ):
            return line
    return None


def act_on_readout(
    root: Path,
    snapshot_id: str,
    readout: Readout,
    as_of: date,
    latest_day: date,
    mode: Automation,
    run_id: str,
) -> AutomationOutcome:
    """Promote or abort the canary `snapshot_id` when `mode` allows the readout's decision and
    `as_of` is the latest day with data; otherwise change nothing and say why."""
    if mode is Automation.off:
        return AutomationOutcome(None, "automation off: the decision is recorded, a person acts")
    if readout.decision == KEEP:
        return AutomationOutcome(None, f"keep collecting: {readout.reason}")
    if as_of < latest_day:
        return AutomationOutcome(
            None, f"readout as of {as_of} is not the latest day ({latest_day}): only the latest day acts"
        )
    if readout.decision == PROMOTE and mode is Automation.abort_only:
        return AutomationOutcome(None, "the readout says promote; abort_only leaves that to a person")
    earlier = acted_on(root, snapshot_id, as_of)
    if earlier is not None:
        return AutomationOutcome(
            None,
            f"already acted on {snapshot_id} ({earlier['action']} at {earlier['at']}, readout as of "
            f"{earlier['readout']['as_of']}): not again",
        )
    act = promote_canary if readout.decision == PROMOTE else abort_canary
    reason = f"automation: readout as of {as_of}: {readout.decision}: {readout.reason}"
    details = readout_details(readout, AUTOMATION, as_of, run_id)
    try:
        act(root, reason=reason, expected=snapshot_id, details=details)
    except ServingError as changed:
        # The canary was promoted, aborted or replaced since the readout started: that stands.
        return AutomationOutcome(None, f"nothing done: {changed}")
    done = {PROMOTE: "promoted", ABORT: "aborted"}[readout.decision]
    return AutomationOutcome(readout.decision, f"{done} canary {snapshot_id}: {readout.reason}")
