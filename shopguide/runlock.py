"""One pipeline run at a time per SHOPGUIDE_HOME, and readers that never stand in its way.

Two lock files, both `flock`ed, so the operating system releases them when a process dies
(kill -9 included) and a stale file can never block anyone:

- `run.lock` (home folder): a run holds it exclusively from before it loads anything to its
  end, and writes who it is into it (run id, job, days, start, PID). A second run finds it
  held and is refused at once with that line, before doing any work.
- `warehouse.lock` (next to the DuckDB file): readers (`shopguide status`) hold it shared
  while they have DuckDB open; a run takes it exclusively after `run.lock`, waiting for the
  readers already inside to finish (seconds). A reader that finds `run.lock` held does not
  open DuckDB at all (it reads the figures the run recorded), so readers cannot starve a
  run and a run's write never meets a reader's DuckDB lock.

Runs launched from the Dagster UI (`dagster dev`) do not take these locks; they are found in
the instance's run records instead (`runs_in_progress`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from core.errors import ShopguideError
from core.settings import Paths, can_write
from warehouse.store import WarehouseBusy, process_command

# A run waits this long for readers that opened the warehouse before it started; a status
# takes well under a second on small warehouses and a few seconds on millions of rows.
READER_WAIT_S = 60.0
# A `run.lock` held without a live run's details: a reader probing it, or a run that has
# just taken it and not yet written who it is. Either lasts milliseconds.
SETTLE_S = 3.0


class RunInProgress(ShopguideError):
    """Another run is working on this SHOPGUIDE_HOME; nothing was done."""


def run_lock_path(paths: Paths) -> Path:
    return paths.home / "run.lock"


def warehouse_lock_path(paths: Paths) -> Path:
    return paths.warehouse.parent / "warehouse.lock"


@dataclass(frozen=True)
class RunInfo:
    """Who holds `run.lock`: written into it, read by whoever is refused or reads a snapshot."""

    run_id: str
    job: str
    first_day: str
    last_day: str
    started_at: str  # UTC, ISO 8601
    pid: int
    command: str

    def describe(self) -> str:
        if self.pid == 0:
            return "a run that is starting"
        span = self.first_day if self.first_day == self.last_day else f"{self.first_day}..{self.last_day}"
        return f"run {self.run_id} ({self.job}, {span}) started {self.started_at} by PID {self.pid}"


def process_start_ticks(pid: int) -> int | None:
    """When a process started (clock ticks since boot, Linux): with the PID, it tells a
    process from a later one that reused its number."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: count after the last ')'.
    return int(stat.rsplit(")", 1)[1].split()[19])


def process_alive(pid: int, start_ticks: int | None = None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return start_ticks is None or process_start_ticks(pid) in (None, start_ticks)


def _read_info(fd: int) -> RunInfo | None:
    raw = os.pread(fd, 64 * 1024, 0)
    try:
        return RunInfo(**json.loads(raw))
    except (ValueError, TypeError):  # empty (no run inside) or a run halfway through writing it
        return None


def _try_flock(fd: int, operation: int) -> bool:
    try:
        fcntl.flock(fd, operation | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def current_run(paths: Paths) -> RunInfo | None:
    """The run holding this home's `run.lock` now, or None. Probes without keeping anything,
    and creates nothing (a read-only home has no lock file to probe: no run there)."""
    try:
        fd = os.open(run_lock_path(paths), os.O_RDONLY)
    except OSError:
        return None
    try:
        if _try_flock(fd, fcntl.LOCK_SH):
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        info = _read_info(fd)
        if info is None or not process_alive(info.pid):
            # Held, but not (yet) with a live run's details: a run starting this instant.
            return RunInfo("", "", "", "", "", 0, "")
        return info
    finally:
        os.close(fd)


def lock_holders(path: Path) -> list[int]:
    """PIDs holding a lock on `path`, from /proc/locks (Linux); [] where it cannot be read."""
    try:
        stat = path.stat()
        table = Path("/proc/locks").read_text()
    except OSError:
        return []
    wanted = f"{os.major(stat.st_dev):02x}:{os.minor(stat.st_dev):02x}:{stat.st_ino}"
    pids = []
    for line in table.splitlines():
        fields = line.split()
        if "->" in fields:  # a process waiting for the lock, not holding it
            continue
        if len(fields) >= 6 and fields[5] == wanted and fields[4].isdigit():
            pids.append(int(fields[4]))
    return sorted(set(pids) - {os.getpid()})


def refuse_if_running(paths: Paths) -> None:
    """Refuse early, before work that precedes the run itself (the demo's import). Only a
    courtesy: `exclusive_run` is what actually keeps runs apart."""
    holder = current_run(paths)
    if holder is not None:
        raise RunInProgress(_refusal(paths, holder))


def _refusal(paths: Paths, holder: RunInfo) -> str:
    if holder.pid == 0:
        return (
            f"a run is starting on {paths.home}; `shopguide status` names it in a moment. "
            "Try again when it ends."
        )
    return (
        f"another run is working on {paths.home}: {holder.describe()}. Wait for it "
        f"(`tail --pid={holder.pid} -f /dev/null`, or watch it in `shopguide ui`) or cancel it "
        f"with `kill -INT {holder.pid}`, then try again."
    )


@contextlib.contextmanager
def exclusive_run(paths: Paths, info: RunInfo) -> Iterator[None]:
    """Hold this home for one run: `run.lock`, then `warehouse.lock` once the readers inside
    have left. Raises RunInProgress (another run) or WarehouseBusy (a reader that stays)."""
    fd = os.open(run_lock_path(paths), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + SETTLE_S
        while not _try_flock(fd, fcntl.LOCK_EX):
            holder = _read_info(fd)
            if holder is not None and process_alive(holder.pid):
                raise RunInProgress(_refusal(paths, holder))
            if time.monotonic() >= deadline:
                pids = ", ".join(map(str, lock_holders(run_lock_path(paths)))) or "unknown"
                raise RunInProgress(
                    f"{run_lock_path(paths)} is held by PID {pids}, which does not say which run it "
                    "is. Wait for it to finish and try again."
                )
            time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(asdict(info)).encode(), 0)
        os.fsync(fd)
        try:
            with _warehouse_exclusive(paths, READER_WAIT_S):
                yield
        finally:
            os.ftruncate(fd, 0)  # a finished run leaves no details behind (the lock goes with close)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _warehouse_exclusive(paths: Paths, wait_s: float) -> Iterator[None]:
    path = warehouse_lock_path(paths)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline, delay = time.monotonic() + wait_s, 0.05
        while not _try_flock(fd, fcntl.LOCK_EX):
            if time.monotonic() >= deadline:
                readers = ", ".join(
                    f"PID {pid} ({process_command(pid) or '?'})" for pid in lock_holders(path)
                )
                raise WarehouseBusy(
                    f"the warehouse is still being read after {wait_s:g} s by "
                    f"{readers or 'another process'}; "
                    "stop that reader or wait for it, then try again."
                )
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def reading_warehouse(paths: Paths) -> Iterator[bool]:
    """For a reader: yields True while it may open the DuckDB file (no run of this home
    writes it, and none can start writing until the reader leaves), False when a run holds
    the home (the reader must take its figures elsewhere). Creates nothing but the lock
    file, and nothing at all in a home it cannot write."""
    if current_run(paths) is not None:
        yield False
        return
    path = warehouse_lock_path(paths)
    # Created if missing (a home from before this lock), or a run starting now would not
    # wait for this reader; but never in a home that cannot be written (read commands
    # write nothing there, and no run can write there either).
    flags = os.O_RDONLY | (os.O_CREAT if path.exists() or can_write(path.parent) else 0)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError:  # a read-only home from before the lock: no run can be writing it
        yield True
        return
    try:
        if not _try_flock(fd, fcntl.LOCK_SH):
            yield False
            return
        yield True
    finally:
        os.close(fd)


@contextlib.contextmanager
def outside_runs(paths: Paths, command: str) -> Iterator[None]:
    """For a command that needs the warehouse itself (not a run's recorded figures): holds
    the readers' lock while it works, so a run starting meanwhile waits for it; refuses at
    once while a run holds the home, instead of making that run fail."""
    with reading_warehouse(paths) as may_open:
        if not may_open:
            run = current_run(paths)
            raise RunInProgress(
                f"{run.describe() if run else 'a run'} is writing the warehouse, which `shopguide "
                f"{command}` reads: try again when it ends."
            )
        yield


def this_command() -> str:
    return " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else ""
