"""`homeostat up` as a user runs it: a real process with an embedded Temporal dev server."""

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from harness import processes

REPO = Path(__file__).resolve().parents[1]


def _processes_using(marker: str) -> list[int]:
    """Pids of live processes whose command line mentions ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().split()[2]
        except OSError:
            continue
        if marker in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


class Running:
    def __init__(self, process: subprocess.Popen, api: str, ui: str, db_file: Path):
        self.process = process
        self.api = api
        self.ui = ui
        self.db_file = db_file


@pytest.fixture
def homeostat_up(tmp_path: Path) -> Iterator[Running]:
    """`homeostat up` on free ports, with the shipped rules, until the test stops it."""
    api_port, grpc_port, ui_port = (processes.free_port() for _ in range(3))
    state = tmp_path / "state"
    config = tmp_path / "homeostat.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "temporal": {
                    "state_dir": str(state),
                    "embedded_port": grpc_port,
                    "ui_port": ui_port,
                },
                "http": {"port": api_port},
                "rules": {
                    "rules_dir": str(REPO / "rules"),
                    "remediations_dir": str(REPO / "remediations"),
                    "playbooks_dir": str(REPO / "playbooks"),
                },
            }
        )
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "controller", "up", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "HOMEOSTAT_LOGGING__FORMAT": "json"},
    )
    running = Running(
        process,
        f"http://127.0.0.1:{api_port}",
        f"http://127.0.0.1:{ui_port}",
        state / "temporal.db",
    )
    try:
        ready = _wait_for(
            lambda: process.poll() is not None or processes.http_ok(f"{running.api}/readyz"),
            timeout=60,
        )
        if not ready or process.poll() is not None:
            process.kill()
            pytest.fail(f"/readyz never answered 200:\n{process.communicate()[0]}")
        yield running
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        for pid in _processes_using(str(running.db_file)):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_up_serves_api_and_ui_and_stops_everything(homeostat_up: Running, stop_signal):
    """`up` is ready with a Web UI, and Ctrl-C or SIGTERM leaves no temporal process."""
    assert processes.http_ok(f"{homeostat_up.api}/healthz")
    with urllib.request.urlopen(homeostat_up.ui, timeout=5) as response:
        assert response.status == 200
    assert len(_processes_using(str(homeostat_up.db_file))) == 1, "one embedded temporal server"
    homeostat_up.process.send_signal(stop_signal)
    output, _ = homeostat_up.process.communicate(timeout=30)
    assert homeostat_up.process.returncode == 0, output
    assert f"Temporal Web UI  {homeostat_up.ui}" in output
    assert _processes_using(str(homeostat_up.db_file)) == []


def test_killed_homeostat_takes_its_temporal_server_along(homeostat_up: Running):
    """Even a SIGKILL of `homeostat up` leaves no orphaned temporal process."""
    assert _processes_using(str(homeostat_up.db_file))
    homeostat_up.process.kill()
    homeostat_up.process.wait()
    assert _wait_for(lambda: not _processes_using(str(homeostat_up.db_file)), timeout=15)
