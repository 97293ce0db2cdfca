"""Errors of the serving layer, each with a message that says what to do next.

`ServingError` is a `ShopguideError`, so the CLI's `friendly_errors` prints it as one line
(exit code 2) without a traceback; it stays a `ValueError` for callers written against that.
"""

from __future__ import annotations

from core.errors import ShopguideError


class ServingError(ShopguideError, ValueError):
    """Something about published data an operator can fix (nothing published, unknown id, ...)."""


class SnapshotExists(ServingError):
    """A snapshot id is taken: snapshots are immutable, so it is never overwritten."""


class SnapshotNotFound(ServingError):
    """No complete snapshot with that id under the serving root."""


class PublishBlocked(ServingError):
    """The quality gate failed (or was never run) and `force` was not given.

    `snapshot_id` and `gate` name the candidate that was blocked, when there is one."""

    def __init__(self, message: str, snapshot_id: str | None = None, gate=None):
        super().__init__(message)
        self.snapshot_id = snapshot_id
        self.gate = gate
