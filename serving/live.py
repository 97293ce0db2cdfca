"""A serving process's view of the published snapshots: in memory, swapped whole.

The HTTP service answers a thousand requests a second from one process, so no request reads
`CURRENT.json` or opens a Parquet file. A watcher thread polls the pointer (every `poll_s`);
when it moves (publish, rollback, canary start/stop, a new intraday overlay), the newly
pointed snapshots and overlay are loaded completely *before* the switch, which is one
assignment of an immutable `ServingState`. A request takes the state once, so its answer
comes from one snapshot (and one overlay), and a publish is served
within `poll_s` plus the load time. If the serving folder becomes unreadable, or a new
snapshot cannot be loaded, the last good state keeps serving and `problem` says why.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from serving.errors import ServingError
from serving.overlays import read_overlay_rows
from serving.publish import POINTER, read_pointer
from serving.reader import Reader, _Overlaid, _Snapshot, overlay_for
from serving.snapshots import read_manifest

DEFAULT_POLL_S = 0.25


@dataclass(frozen=True)
class ServingState:
    pointer: dict
    snapshots: dict[str, _Snapshot]  # every snapshot the pointer routes to, loaded
    created_at: dict[str, datetime]  # snapshot id → when it was written (its manifest)
    overlay: _Overlaid | None = None  # the current snapshot with the pointer's overlay applied


def routed_ids(pointer: dict) -> list[str]:
    canary = pointer.get("canary")
    return [pointer["current"], *([canary["snapshot"]] if canary else [])]


class LiveReader(Reader):
    """A `Reader` whose snapshots are preloaded and swapped by a watcher thread."""

    def __init__(self, root: Path, poll_s: float = DEFAULT_POLL_S, watch: bool = True):
        super().__init__(root)
        self.poll_s = poll_s
        self._state: ServingState | None = None
        self.problem: str | None = None
        self._stop = threading.Event()
        self.refresh()
        self._thread = None
        if watch:
            self._thread = threading.Thread(target=self._watch, name="snapshot-watcher", daemon=True)
            self._thread.start()

    # the watcher ----------------------------------------------------------------------
    def _watch(self) -> None:
        while not self._stop.wait(self.poll_s):
            self.refresh()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def refresh(self) -> bool:
        """Follow the pointer; True when the served state changed. Never raises: a problem
        is recorded in `problem` and the last good state keeps serving."""
        try:
            pointer = read_pointer(self.store)
        except (OSError, ValueError) as error:  # ServingError (an unreachable store) is a ValueError
            self.problem = (
                f"cannot read {self.store.describe(POINTER)} ({error}); serving the last good snapshot"
            )
            return False
        state = self._state
        if state is not None and pointer == state.pointer:
            self.problem = None
            return False
        if pointer["current"] is None:
            self.problem = f"nothing is published under {self.root} yet; publish a version first"
            return False
        try:
            snapshots, created = {}, {}
            for snapshot_id in routed_ids(pointer):
                known = state.snapshots.get(snapshot_id) if state else None
                snapshots[snapshot_id] = known or _Snapshot(self.store, snapshot_id).preload()
                created[snapshot_id] = datetime.fromisoformat(
                    read_manifest(self.store, snapshot_id).created_at
                )
            overlay = None
            overlay_id = overlay_for(pointer, pointer["current"])
            if overlay_id is not None:
                known = (
                    state.overlay
                    if state and state.overlay and state.overlay.overlay_id == overlay_id
                    else None
                )
                rows = known.rows if known else read_overlay_rows(self.store, overlay_id)
                overlay = _Overlaid(snapshots[pointer["current"]], overlay_id, rows)
        except (OSError, ServingError, ValueError, pl.exceptions.PolarsError) as error:
            self.problem = (
                f"cannot load snapshot(s) {routed_ids(pointer)} ({error}); serving the last good one"
            )
            return False
        self._state = ServingState(pointer, snapshots, created, overlay)
        self.problem = None
        return True

    # what requests read ---------------------------------------------------------------
    @property
    def state(self) -> ServingState:
        state = self._state
        if state is None:
            raise ServingError(self.problem or f"nothing is published under {self.root} yet")
        return state

    def pointer(self) -> dict:
        return self.state.pointer

    def _serving_snapshot(self, user_id: str | None) -> _Snapshot | _Overlaid:
        state = self.state  # taken once: the answer comes from this state's snapshot and overlay
        snapshot_id = self._route(state.pointer, user_id)
        if state.overlay is not None and state.overlay.snapshot_id == snapshot_id:
            return state.overlay
        return state.snapshots[snapshot_id]

    def snapshot_for(self, user_id: str | None) -> _Snapshot | _Overlaid:
        return self._serving_snapshot(user_id)

    def age_seconds(self, snapshot_id: str) -> float:
        created = self.state.created_at[snapshot_id]  # manifests write UTC with a "Z"
        return max(0.0, (datetime.now(UTC) - created).total_seconds())

    def wait_for(self, snapshot_id: str, timeout_s: float = 10.0) -> bool:
        """Block until `snapshot_id` is current (tests and tools)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            state = self._state
            if state is not None and state.pointer["current"] == snapshot_id:
                return True
            time.sleep(self.poll_s / 5)
        return False
