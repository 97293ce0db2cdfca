"""The pointer: which snapshot shoppers see, switched atomically.

`root/CURRENT.json` names the current snapshot, the ones before it (for rollback) and an
optional canary:

    {"current": "20111209T020000Z-1a2b3c4d", "previous": ["20111208T020000Z-..."],
     "canary": {"snapshot": "...", "percent": 10, "salt": "..."} | null,
     "overlay": {"id": "20111209T101500Z-...", "snapshot": "20111209T020000Z-1a2b3c4d"} | null,
     "updated_at": "2011-12-09T02:00:01.000000Z"}

`overlay` names the intraday lists served on top of `current` (serving/overlays.py). A
publish (the nightly run folds the day's events into its snapshot), a rollback and a canary
promotion drop it in the same pointer write, so no shopper ever sees an overlay on top of a
snapshot it was not built for.

Why a pointer file: publishing, rolling back and promoting are one small atomic file
replace (temp file in the same folder, fsync, `os.replace`), so a reader sees the old
version or the new one and never a mix, and no table is rewritten. Two publishers (a
nightly run and an operator's rollback) take an exclusive `flock` on `root/.publish.lock`
for the read-modify-write, so neither loses the other's update. On an object store the
pointer is written back only if it is still the one read (a conditional PUT on its ETag):
the publisher that lost the race gets `PointerConflict` and changed nothing, and running it
again repairs (serving/store.py, docs/deployment.md).

The gate result is recorded next to the snapshot as `gate.json` (with `forced` when an
operator overrode a failed gate) and every pointer change is appended as one JSON line to
`root/history.jsonl` (the audit trail: who-what-when, forced or not). The history is kept
out of the pointer so readers, which parse the pointer on every call, parse a few bytes.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl

from core.clock import iso_utc, utc_now
from core.files import dump_json
from serving.errors import PublishBlocked, ServingError
from serving.gate import GateContext, GateResult, GateThresholds, evaluate_gate
from serving.snapshots import (
    list_snapshots,
    read_manifest,
    read_table,
    snapshot_key,
    sweep_temp,
    write_snapshot,
)
from serving.store import PointerUpdate, Store, open_store

POINTER = "CURRENT.json"
GATE_FILE = "gate.json"
MAX_PREVIOUS = 20
HISTORY = "history.jsonl"
VERSIONS_HINT = "`shopguide versions` lists them"


def _empty_pointer() -> dict:
    return {"current": None, "previous": [], "canary": None, "overlay": None, "updated_at": None}


def _parse_pointer(data: bytes | None) -> dict:
    return _empty_pointer() if data is None else {**_empty_pointer(), **json.loads(data)}


def read_pointer(root: Path) -> dict:
    """The pointer as a dict; an empty one (current None) when nothing was ever published."""
    try:
        data = open_store(root).read_bytes(POINTER)
    except FileNotFoundError:
        return _empty_pointer()
    return _parse_pointer(data)


def current_snapshot(root: Path) -> str | None:
    return read_pointer(root)["current"]


@dataclass
class _Change:
    """A read-modify-write of the pointer in progress: modify `pointer`, then `_write_pointer`."""

    store: Store
    pointer: dict
    update: PointerUpdate


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[_Change]:
    """One writer's read-modify-write of the pointer (a lock locally, a conditional write on an
    object store: serving/store.py); yields the pointer to modify."""
    store = open_store(root)
    with store.pointer_update(POINTER) as update:
        yield _Change(store, _parse_pointer(update.data), update)


def _write_pointer(change: _Change, event: dict) -> dict:
    now = iso_utc(utc_now())
    pointer = change.pointer
    pointer["previous"] = pointer["previous"][:MAX_PREVIOUS]
    pointer["updated_at"] = now
    change.update.replace(dump_json(pointer))
    # After the pointer: a crash in between loses a history line, never a publish.
    change.store.append_line(HISTORY, json.dumps({"at": now, **event, "pointer": pointer}, default=str))
    return pointer


def history(root: Path, limit: int | None = None) -> list[dict]:
    """Pointer changes, oldest first (the last `limit` when given)."""
    return [json.loads(line) for line in open_store(root).read_lines(HISTORY, limit)]


def _require_snapshot(root: Path, snapshot_id: str) -> None:
    read_manifest(root, snapshot_id)  # raises SnapshotNotFound with a hint


def read_gate(root: Path, snapshot_id: str) -> dict | None:
    """The recorded gate of a snapshot (GateResult.to_dict() plus `forced`), None if never gated."""
    try:
        return json.loads(open_store(root).read_bytes(f"{snapshot_key(snapshot_id)}/{GATE_FILE}"))
    except FileNotFoundError:
        return None


def record_gate(root: Path, snapshot_id: str, gate: GateResult, forced: bool = False) -> dict:
    """Write `gate.json` next to the snapshot (the Parquet files and manifest stay untouched)."""
    manifest = read_manifest(root, snapshot_id)
    mismatched = {
        name: (rows, manifest.row_counts.get(name))
        for name, rows in gate.row_counts.items()
        if name in manifest.row_counts and manifest.row_counts[name] != rows
    }
    if mismatched:
        raise ServingError(
            f"this gate result was computed on other data than snapshot {snapshot_id} "
            f"(rows gated vs in snapshot: {mismatched}); evaluate the gate on the snapshot's tables."
        )
    payload = {**gate.to_dict(), "snapshot_id": snapshot_id, "forced": bool(forced and not gate.passed)}
    if payload["forced"]:
        payload["forced_at"] = iso_utc(utc_now())
    _write_gate(root, snapshot_id, payload)
    return payload


def _write_gate(root: Path, snapshot_id: str, payload: dict) -> None:
    open_store(root).replace_bytes(f"{snapshot_key(snapshot_id)}/{GATE_FILE}", dump_json(payload))


def _check_gate(root: Path, snapshot_id: str, gate: GateResult | None, force: bool, action: str) -> dict:
    """Record `gate` (or use the recorded one when None); raise PublishBlocked unless it passed
    or force. Returns the history fields: gate_passed, forced."""
    if gate is not None:
        recorded = record_gate(root, snapshot_id, gate, forced=force)
        summary = gate.summary()
    else:
        recorded = read_gate(root, snapshot_id)
        if recorded is None:
            if not force:
                raise PublishBlocked(
                    f"snapshot {snapshot_id} was never gated; evaluate the gate first "
                    f"(serving.gate.evaluate_gate), or {action} anyway with --force."
                )
            return {"gate_passed": None, "forced": True}
        summary = GateResult.from_dict(recorded).summary()
        if force and not recorded.get("passed") and not recorded.get("forced"):
            recorded = {**recorded, "forced": True, "forced_at": iso_utc(utc_now())}
            _write_gate(root, snapshot_id, recorded)
    # A failed gate needs --force every time (an earlier override does not carry over).
    if not recorded.get("passed") and not force:
        raise PublishBlocked(
            f"refusing to {action} snapshot {snapshot_id}: its quality gate failed.\n{summary}\n"
            f"Fix the data and run again, or {action} anyway with --force (recorded as forced)."
        )
    return {"gate_passed": recorded.get("passed"), "forced": bool(force and not recorded.get("passed"))}


def publish(root: Path, snapshot_id: str, gate: GateResult | None = None, force: bool = False) -> dict:
    """Make `snapshot_id` the version every shopper sees; returns the new pointer.

    `gate` is the GateResult of this snapshot's tables (recorded as gate.json); None uses the
    gate recorded earlier. A failed (or missing) gate raises PublishBlocked unless `force`.
    Publishing the running canary's snapshot promotes it; publishing another snapshot while
    a canary runs is refused (promote or abort the canary first).
    """
    _require_snapshot(root, snapshot_id)
    with _locked(root) as change:
        pointer = change.pointer
        canary = pointer["canary"]
        if canary and canary["snapshot"] != snapshot_id:
            raise ServingError(
                f"a canary of {canary['snapshot']} ({canary['percent']}%) is running; promote it "
                "(`shopguide publish --promote-canary`) or abort it (`--abort-canary`) first."
            )
        gate_event = _check_gate(root, snapshot_id, gate, force, "publish")
        old = pointer["current"]
        if old != snapshot_id:
            pointer["previous"] = [p for p in [old, *pointer["previous"]] if p and p != snapshot_id]
        pointer["current"] = snapshot_id
        pointer["canary"] = None
        event = {"action": "publish", "snapshot": snapshot_id, **gate_event, **_drop_overlay(pointer)}
        return _write_pointer(change, event)


def rollback(root: Path, to: str | None = None, force: bool = False) -> dict:
    """Serve an earlier version: the one before the current (default) or `to`.

    The version rolled away from is dropped from `previous`, so repeated rollbacks walk back
    in time; `publish` it again to return to it. A target whose gate failed or was never
    recorded is refused unless `force`. A running canary is left alone (abort it separately)
    unless it is the target, in which case it is simply made current.
    """
    with _locked(root) as change:
        pointer = change.pointer
        old = pointer["current"]
        if old is None:
            raise ServingError("nothing is published yet, so there is nothing to roll back.")
        if to is None:
            if not pointer["previous"]:
                raise ServingError(
                    f"no earlier version to roll back to (current is {old}); "
                    f"pass --to with an id ({VERSIONS_HINT})."
                )
            target = pointer["previous"][0]
        else:
            target = to
        if target == old:
            raise ServingError(f"{target} is already the current version.")
        _require_snapshot(root, target)
        gate_event = _check_gate(root, target, None, force, "roll back to")
        pointer["previous"] = [p for p in pointer["previous"] if p != target]
        pointer["current"] = target
        if pointer["canary"] and pointer["canary"]["snapshot"] == target:
            pointer["canary"] = None
        event = {
            "action": "rollback",
            "snapshot": target,
            "from": old,
            **gate_event,
            **_drop_overlay(pointer),
        }
        return _write_pointer(change, event)


def start_canary(
    root: Path,
    snapshot_id: str,
    percent: int,
    gate: GateResult | None = None,
    force: bool = False,
    salt: str | None = None,
) -> dict:
    """Serve `snapshot_id` to `percent`% of users (by a stable hash of user id and salt).

    Calling it again for the running canary's snapshot changes the percent and keeps the
    salt, so users already in the canary stay in it while it ramps up.
    """
    if isinstance(percent, bool) or not isinstance(percent, int) or not 1 <= percent <= 99:
        raise ServingError(f"canary percent must be an integer from 1 to 99, got {percent!r}.")
    _require_snapshot(root, snapshot_id)
    with _locked(root) as change:
        pointer = change.pointer
        if pointer["current"] is None:
            raise ServingError("nothing is published yet; publish the first version directly (no canary).")
        if pointer["current"] == snapshot_id:
            raise ServingError(f"{snapshot_id} is already the current version; a canary needs another one.")
        canary = pointer["canary"]
        if canary and canary["snapshot"] != snapshot_id:
            raise ServingError(
                f"a canary of {canary['snapshot']} is already running; promote it "
                "(`shopguide publish --promote-canary`) or abort it (`--abort-canary`) first."
            )
        gate_event = _check_gate(root, snapshot_id, gate, force, "canary")
        salt = canary["salt"] if canary else (salt or snapshot_id)
        pointer["canary"] = {"snapshot": snapshot_id, "percent": percent, "salt": salt}
        event = {"action": "canary", "snapshot": snapshot_id, "percent": percent, **gate_event}
        return _write_pointer(change, event)


def _running_canary(pointer: dict, expected: str | None, nothing: str) -> dict:
    canary = pointer["canary"]
    if not canary:
        raise ServingError(nothing)
    # A decision taken on one canary's readout must not act on another started since.
    if expected is not None and canary["snapshot"] != expected:
        raise ServingError(f"the running canary is {canary['snapshot']}, not {expected}; nothing changed.")
    return canary


def _annotated(event: dict, reason: str | None, details: dict | None) -> dict:
    # The pointer's own fields win: details cannot rewrite what was done to which snapshot.
    return {**(details or {}), **({"reason": reason} if reason else {}), **event}


def promote_canary(
    root: Path, reason: str | None = None, expected: str | None = None, details: dict | None = None
) -> dict:
    """Make the canary's snapshot current for everyone; `reason` (the experiment readout's,
    say) and `details` (who acted, the readout's figures) go into the history line."""
    with _locked(root) as change:
        pointer = change.pointer
        canary = _running_canary(
            pointer, expected, "no canary is running; `shopguide versions` shows the pointer."
        )
        old, new = pointer["current"], canary["snapshot"]
        pointer["previous"] = [p for p in [old, *pointer["previous"]] if p and p != new]
        pointer["current"] = new
        pointer["canary"] = None
        event = {"action": "promote_canary", "snapshot": new, "from": old, **_drop_overlay(pointer)}
        return _write_pointer(change, _annotated(event, reason, details))


def abort_canary(
    root: Path, reason: str | None = None, expected: str | None = None, details: dict | None = None
) -> dict:
    """Stop the canary: everyone gets the current version again (history as promote_canary's)."""
    with _locked(root) as change:
        pointer = change.pointer
        canary = _running_canary(pointer, expected, "no canary is running; nothing to abort.")
        pointer["canary"] = None
        event = {"action": "abort_canary", "snapshot": canary["snapshot"]}
        return _write_pointer(change, _annotated(event, reason, details))


def _drop_overlay(pointer: dict) -> dict:
    """Clear the pointer's overlay; the history fields saying which one was dropped."""
    overlay = pointer.get("overlay")
    pointer["overlay"] = None
    return {"dropped_overlay": overlay["id"]} if overlay else {}


def set_overlay(root: Path, overlay_id: str, snapshot_id: str, reason: str | None = None) -> dict:
    """Serve overlay `overlay_id` (written by serving.overlays.write_overlay) on top of
    `snapshot_id`. Refused when `snapshot_id` is no longer current (a publish or rollback
    came first): the overlay was computed for another snapshot, the next refresh redoes it."""
    with _locked(root) as change:
        pointer = change.pointer
        if pointer["current"] != snapshot_id:
            raise ServingError(
                f"overlay {overlay_id} was built on snapshot {snapshot_id}, but {pointer['current']} is "
                "current now; nothing changed (the next `shopguide refresh` builds one on it)."
            )
        pointer["overlay"] = {"id": overlay_id, "snapshot": snapshot_id}
        event = {"action": "overlay", "snapshot": snapshot_id, "overlay": overlay_id}
        return _write_pointer(change, _annotated(event, reason, None))


def drop_overlay(root: Path, reason: str | None = None) -> dict:
    """Stop serving the overlay: every shopper gets the snapshot's lists again."""
    with _locked(root) as change:
        pointer = change.pointer
        if not pointer.get("overlay"):
            raise ServingError("no overlay is served; nothing to drop.")
        event = {"action": "drop_overlay", "snapshot": pointer["current"], **_drop_overlay(pointer)}
        return _write_pointer(change, _annotated(event, reason, None))


def versions(root: Path) -> list[dict]:
    """Every complete snapshot, newest first, with its gate and pointer status."""
    pointer = read_pointer(root)
    canary = pointer["canary"] or {}
    rows = []
    for snapshot_id in reversed(list_snapshots(root)):
        manifest = read_manifest(root, snapshot_id)
        gate = read_gate(root, snapshot_id)
        rows.append(
            {
                "id": snapshot_id,
                "created_at": manifest.created_at,
                "partition_date": manifest.partition_date,
                "gate_passed": None if gate is None else gate.get("passed"),
                "forced": bool(gate and gate.get("forced")),
                "is_current": snapshot_id == pointer["current"],
                "is_canary": snapshot_id == canary.get("snapshot"),
                "canary_percent": canary.get("percent") if snapshot_id == canary.get("snapshot") else None,
                "is_previous": snapshot_id in pointer["previous"],
                "row_counts": manifest.row_counts,
                "model_fingerprint": manifest.model_fingerprint,
            }
        )
    return rows


def prune(root: Path, keep: int = 10) -> list[str]:
    """Delete old snapshots beyond the newest `keep`, never the current, canary or previous ones."""
    with _locked(root) as change:
        pointer = change.pointer
        protected = {pointer["current"], *pointer["previous"], (pointer["canary"] or {}).get("snapshot")}
        ids = list_snapshots(root)
        doomed = [s for s in ids[: max(len(ids) - keep, 0)] if s not in protected]
        for snapshot_id in doomed:
            change.store.remove_folder(snapshot_key(snapshot_id))
        return doomed


@dataclass(frozen=True)
class PublishOutcome:
    snapshot_id: str
    gate: GateResult
    published: bool  # current or canary now points at it
    canary_percent: int | None
    pointer: dict


def publish_tables(
    root: Path,
    tables: dict[str, pl.DataFrame],
    manifest_fields: dict,
    context: GateContext,
    thresholds: GateThresholds | None = None,
    canary_percent: int | None = None,
    force: bool = False,
    created_at: datetime | None = None,
) -> PublishOutcome:
    """The whole nightly step: write a snapshot, gate it, record the gate, publish or canary.

    The snapshot is written even when the gate fails, so the candidate can be inspected and
    published later by id with force; in that case PublishBlocked is raised after recording.
    `context.current_recommendations` is filled from the published version when left None.
    """
    sweep_temp(root)  # folders a publish killed mid-write left behind (only old ones: see sweep_temp)
    current = current_snapshot(root)
    if context.current_recommendations is None and current is not None:
        context = GateContext(
            active_user_ids=context.active_user_ids,
            excluded_product_ids=context.excluded_product_ids,
            excluded_pairs=context.excluded_pairs,
            current_recommendations=read_table(root, current, "user_recommendations"),
            current_snapshot_id=current,
        )
    gate = evaluate_gate(tables, context, thresholds)
    manifest = write_snapshot(root, tables, manifest_fields, created_at=created_at)
    snapshot_id = manifest.snapshot_id
    if not gate.passed and not force:
        record_gate(root, snapshot_id, gate)
        raise PublishBlocked(
            f"snapshot {snapshot_id} was written but not published: the quality gate failed.\n"
            f"{gate.summary()}\n"
            f"Shoppers keep {current or 'nothing (no version published yet)'}. Fix the data and run again, "
            f"or publish this one anyway: `shopguide publish --snapshot {snapshot_id} --force`.",
            snapshot_id=snapshot_id,
            gate=gate,
        )
    if canary_percent is None or current is None:  # the first version has nothing to canary against
        pointer = publish(root, snapshot_id, gate, force=force)
        canary_percent = None
    else:
        pointer = start_canary(root, snapshot_id, canary_percent, gate, force=force)
    return PublishOutcome(snapshot_id, gate, True, canary_percent, pointer)
