"""`shopguide ui` serves the Dagster UI on 127.0.0.1 and stops on Ctrl-C (SIGINT)."""

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ui_starts_on_loopback_and_stops_on_sigint(home, dbt_manifest):
    port = free_port()
    shopguide = Path(sys.executable).with_name("shopguide")
    process = subprocess.Popen(
        [str(shopguide), "ui", "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline, info = time.monotonic() + 90, None
        while time.monotonic() < deadline and info is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2) as reply:
                    info = reply.read()
            except OSError:
                time.sleep(1)
        assert info is not None and b"dagster_webserver_version" in info
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=40) is not None
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2)
    finally:
        if process.poll() is None:
            process.kill()
