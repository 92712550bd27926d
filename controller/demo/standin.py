"""The demo's stand-in service: a real process that Prometheus scrapes and a playbook restarts.

``serve`` answers ``GET /healthz`` and ``GET /metrics`` (the process metrics of
``prometheus_client``). ``start``, ``stop`` and ``status`` manage it by name like a tiny
service manager: the unit file ``DIR/NAME.json`` says where it listens, ``DIR/NAME.pid``
holds the running process id. ``start`` leaves a running service alone and prints
``already running``; otherwise it prints ``started``: the restart playbook reports a change
only then.

A started service is detached (a session of its own, output in ``DIR/NAME.log``) and gets
a minimal environment: it must outlive the playbook that started it, and every process that
carries a playbook run's directory in its environment is ended with the run.

    python -m controller.demo.standin start web --dir /tmp/svc --port 8099
    python -m controller.demo.standin stop web --dir /tmp/svc
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import prometheus_client

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_START_WITHIN = 15.0
_STOP_WITHIN = 5.0
_KEPT_ENV = ("PATH", "LANG", "LC_ALL", "TZ")
NOT_RUNNING = 3
"""Exit status of ``status`` for a service that does not run (as LSB init scripts use)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Unit:
    """Where a named stand-in service lives.

    Attributes:
        name: the service's name.
        directory: where its unit, pid and log files are.
        host: the address it listens on.
        port: the port it listens on.
    """

    name: str
    directory: Path
    host: str = "127.0.0.1"
    port: int

    @property
    def unit_file(self) -> Path:
        """The unit file (JSON: host and port)."""
        return self.directory / f"{self.name}.json"

    @property
    def pid_file(self) -> Path:
        """The file holding the running process id."""
        return self.directory / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        """The service's own output."""
        return self.directory / f"{self.name}.log"

    @property
    def address(self) -> str:
        """``host:port``, as Prometheus calls the target."""
        return f"{self.host}:{self.port}"


def write_unit(unit: Unit) -> None:
    """Create (or replace) the unit file of ``unit``."""
    unit.directory.mkdir(parents=True, exist_ok=True)
    unit.unit_file.write_text(json.dumps({"host": unit.host, "port": unit.port}) + "\n")


def read_unit(directory: Path, name: str) -> Unit:
    """The unit called ``name`` in ``directory``.

    Raises:
        FileNotFoundError: there is no such unit.
    """
    data = json.loads((directory / f"{name}.json").read_text())
    return Unit(name=name, directory=directory, host=str(data["host"]), port=int(data["port"]))


def running_pid(unit: Unit) -> int | None:
    """The service's process id while it runs (a zombie does not count), else ``None``."""
    try:
        pid = int(unit.pid_file.read_text().strip())
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    state = stat[stat.rfind(")") + 2 :].split()[0]
    if state in {"Z", "X"} or str(unit.unit_file).encode() not in cmdline:
        return None
    return pid


def start(unit: Unit) -> tuple[int, bool]:
    """Start the service unless it runs; its process id and whether it was started now.

    Raises:
        RuntimeError: it did not listen within a few seconds.
    """
    pid = running_pid(unit)
    if pid is not None:
        return pid, False
    env = {name: os.environ[name] for name in _KEPT_ENV if name in os.environ}
    with unit.log_file.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "controller.demo.standin", "serve", str(unit.unit_file)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=unit.directory,
            env=env,
            start_new_session=True,
        )
    unit.pid_file.write_text(f"{process.pid}\n")
    deadline = time.monotonic() + _START_WITHIN
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{unit.name} exited at start; see {unit.log_file}")
        if _listening(unit):
            return process.pid, True
        time.sleep(0.05)
    raise RuntimeError(f"{unit.name} did not listen on {unit.address} within {_START_WITHIN} s")


def stop(unit: Unit) -> int | None:
    """Stop the service (SIGTERM, then SIGKILL); the process id it had, or ``None``."""
    pid = running_pid(unit)
    if pid is None:
        return None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + _STOP_WITHIN
    while running_pid(unit) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    unit.pid_file.unlink(missing_ok=True)
    return pid


def _listening(unit: Unit) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.2)
        return probe.connect_ex((unit.host, unit.port)) == 0


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/healthz":
            body, kind = b"ok\n", "text/plain"
        elif self.path == "/metrics":
            body, kind = prometheus_client.generate_latest(), prometheus_client.CONTENT_TYPE_LATEST
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
        del format, args


def serve(unit: Unit) -> None:
    """Answer ``/healthz`` and ``/metrics`` until SIGTERM."""
    server = ThreadingHTTPServer((unit.host, unit.port), _Handler)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        with contextlib.suppress(KeyboardInterrupt, SystemExit):
            server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM ends ``serve_forever`` (``shutdown()`` from its own thread would wait forever)."""
    del signum, frame
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    """The command line; its exit status."""
    parser = argparse.ArgumentParser(prog="python -m controller.demo.standin")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="run the service (foreground)")
    serve_parser.add_argument("unit_file", type=Path)
    for name in ("start", "stop", "status"):
        sub = commands.add_parser(name)
        sub.add_argument("name")
        sub.add_argument("--dir", type=Path, required=True)
        if name == "start":
            sub.add_argument("--port", type=int, help="create the unit listening on this port")
    options = parser.parse_args(argv)
    if options.command == "serve":
        unit_file: Path = options.unit_file
        serve(read_unit(unit_file.parent, unit_file.stem))
        return 0
    if not _NAME.fullmatch(options.name):
        sys.stderr.write(f"{options.name!r} is not a service name (letters, digits, '_.-')\n")
        return 2
    directory: Path = options.dir.resolve()
    if options.command == "start" and options.port:
        write_unit(Unit(name=options.name, directory=directory, port=options.port))
    try:
        unit = read_unit(directory, options.name)
    except FileNotFoundError:
        sys.stderr.write(f"no unit {options.name!r} in {directory}\n")
        return 2
    if options.command == "start":
        try:
            pid, started = start(unit)
        except RuntimeError as exc:
            sys.stderr.write(f"{exc}\n")
            return 1
        verb = "started" if started else "already running"
        sys.stdout.write(f"{verb}: {unit.name} (pid {pid}) on {unit.address}\n")
    elif options.command == "stop":
        stopped = stop(unit)
        sys.stdout.write(f"stopped: {unit.name} (pid {stopped})\n" if stopped else "not running\n")
    else:
        pid_now = running_pid(unit)
        sys.stdout.write(f"running: pid {pid_now}\n" if pid_now else "not running\n")
        return 0 if pid_now else NOT_RUNNING
    return 0


if __name__ == "__main__":
    sys.exit(main())
