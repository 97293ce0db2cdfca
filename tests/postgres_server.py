"""A throwaway PostgreSQL server for integration tests: a new cluster (`initdb`) in a temporary
folder, listening on 127.0.0.1 on a free port, stopped and deleted afterwards.

It fails (never skips) when the server cannot start: the tests that use it are the only proof
that Dagster runs on PostgreSQL, and a skip would hide a broken set-up as a pass.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

USER = "shopguide"
PASSWORD = "shopguide-test"  # a throwaway cluster on loopback; a real one takes a secret
DATABASE = "dagster"


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    user: str
    password: str
    database: str

    def env(self) -> dict[str, str]:
        """The variables core/instance.py's PostgreSQL dagster.yaml reads."""
        return {
            "SHOPGUIDE_DAGSTER_STORAGE": "postgres",
            "DAGSTER_POSTGRES_HOST": self.host,
            "DAGSTER_POSTGRES_PORT": str(self.port),
            "DAGSTER_POSTGRES_USER": self.user,
            "DAGSTER_POSTGRES_PASSWORD": self.password,
            "DAGSTER_POSTGRES_DB": self.database,
        }

    def connect(self):
        import psycopg2

        return psycopg2.connect(
            host=self.host, port=self.port, user=self.user, password=self.password, dbname=self.database
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_binaries() -> Path:
    """The folder with initdb and pg_ctl: on PATH, or Debian's /usr/lib/postgresql/<v>/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl", path=str(Path(found).parent)):
        return Path(found).parent
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    pytest.fail(
        "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in /usr/lib/postgresql/*/bin: "
        "install the PostgreSQL server package (e.g. apt-get install postgresql)."
    )


def _as_server_user() -> tuple[list[str], int | None, int | None]:
    """PostgreSQL refuses to run as root (CI and these machines run tests as root): then run
    its programs as the `postgres` account, or `nobody`, through setpriv."""
    if os.geteuid() != 0:
        return [], None, None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            prefix = ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups"]
            return prefix, entry.pw_uid, entry.pw_gid
    pytest.fail("running as root and no unprivileged account (postgres, nobody) to run PostgreSQL as")


def _run(command: list[str], what: str, log: Path | None = None) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        server_log = log.read_text()[-2000:] if log is not None and log.exists() else ""
        pytest.fail(f"PostgreSQL could not {what}: {' | '.join(detail)}\n{server_log}")


@contextlib.contextmanager
def postgres_server() -> Iterator[Server]:
    binaries = server_binaries()
    prefix, uid, gid = _as_server_user()
    # Not pytest's tmp_path: that folder is private to root, and the server may run as another user.
    root = Path(tempfile.mkdtemp(prefix="shopguide-pg-"))
    data, sockets, log = root / "data", root / "sockets", root / "server.log"
    pwfile = root / "pwfile"
    pwfile.write_text(PASSWORD + "\n")
    sockets.mkdir()
    if uid is not None:
        for path in (root, sockets, pwfile):
            os.chown(path, uid, gid)
    port = free_port()
    started = False
    try:
        _run(
            [
                *prefix,
                str(binaries / "initdb"),
                "-D",
                str(data),
                "-U",
                USER,
                f"--pwfile={pwfile}",
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",  # a throwaway cluster: no need to wait for the disk
            ],
            "create a cluster (initdb)",
        )
        _run(
            [
                *prefix,
                str(binaries / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(log),
                "-w",
                "-t",
                "60",
                "-o",
                f"-p {port} -c listen_addresses=127.0.0.1 -k {sockets} -c fsync=off",
                "start",
            ],
            f"start on 127.0.0.1:{port}",
            log,
        )
        started = True
        server = Server("127.0.0.1", port, USER, PASSWORD, DATABASE)
        import psycopg2

        with contextlib.closing(
            psycopg2.connect(host=server.host, port=port, user=USER, password=PASSWORD, dbname="postgres")
        ) as connection:
            connection.autocommit = True  # CREATE DATABASE cannot run in a transaction
            with connection.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE {DATABASE}")
        yield server
    finally:
        if started:
            # "fast": roll back open transactions and disconnect clients, then stop.
            subprocess.run(
                [*prefix, str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "60", "stop"],
                capture_output=True,
                timeout=90,
            )
        shutil.rmtree(root, ignore_errors=True)
