"""core.imports.import_in_background: modules imported in a thread, failures left to the real import."""

import sys

from core.imports import import_in_background


def test_modules_are_imported_in_the_background_and_a_broken_one_is_skipped(tmp_path, monkeypatch):
    (tmp_path / "ahead_first.py").write_text("VALUE = 1\n")
    (tmp_path / "ahead_broken.py").write_text("raise RuntimeError('broken on purpose')\n")
    (tmp_path / "ahead_last.py").write_text("VALUE = 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("ahead_first", "ahead_broken", "ahead_last"):
        monkeypatch.delitem(sys.modules, name, raising=False)

    thread = import_in_background(["ahead_first", "ahead_missing", "ahead_broken", "ahead_last"])
    thread.join(timeout=30)

    assert not thread.is_alive() and thread.daemon
    assert sys.modules["ahead_first"].VALUE == 1 and sys.modules["ahead_last"].VALUE == 3
    assert "ahead_broken" not in sys.modules  # a failed import leaves nothing half-made behind
