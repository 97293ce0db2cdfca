"""Importing, ahead of time, the libraries a later step will need, while this process waits.

A nightly run imports most of its libraries on the way, step by step (the definitions import
only what they need, to start fast). Some steps mostly wait on another process, dbt above
all: this process only reads dbt's output then, and a core is free. Importing the later
steps' libraries in that time takes them off the run's critical path.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterable


def import_in_background(modules: Iterable[str]) -> threading.Thread:
    """Start importing `modules` (in order) in a daemon thread and return it. Join it before
    the work that needs them, so that no other thread is importing them at the same time.
    A module that fails to import is skipped here: the step that needs it imports it again
    and reports the error where it matters."""
    names = list(modules)

    def work() -> None:
        for name in names:
            try:
                importlib.import_module(name)
            except Exception:  # see the docstring: the real import raises it again
                continue

    thread = threading.Thread(target=work, name="import-ahead", daemon=True)
    thread.start()
    return thread
