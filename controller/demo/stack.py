"""Prometheus and Alertmanager for the demo: their configuration, their binaries run and stopped.

The binaries come from the system (Debian's ``prometheus`` and ``prometheus-alertmanager``
packages). Each runs in its own process group with a parent-death signal, on loopback
ports, with its files in the demo's folder, and is stopped with its whole group.

The configuration is the self-healing scenario's (docs/scenarios.md): Prometheus scrapes
the stand-in service every second and fires ``DemoServiceDown`` (``prometheus-rules.yml``,
shipped beside this module) after three seconds of ``up == 0``; Alertmanager forwards
it to Homeostat's webhook with a bearer token read from a file, resolved alerts included.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from controller import embedded, errors
from controller.demo import standin

PROMETHEUS_RULES = Path(__file__).with_name("prometheus-rules.yml")
"""The Prometheus alerting rule of the scenario: ``DemoServiceDown``."""
JOB = "homeostat-demo"
"""The scrape job of the stand-in services; the alerting rule selects it."""
PROMETHEUS_BINARIES = ("prometheus",)
ALERTMANAGER_BINARIES = ("prometheus-alertmanager", "alertmanager")
_INSTALL_HINT = (
    "install the Debian packages: apt-get install prometheus prometheus-alertmanager "
    "(make test does it when run as root)"
)
_STOP_GRACE_SECONDS = 10.0


def find_binary(names: tuple[str, ...]) -> str:
    """The first of ``names`` on ``PATH``.

    Raises:
        errors.DependencyError: none is installed; the message says how to install it.
    """
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise errors.DependencyError(f"{names[0]} is not installed: {_INSTALL_HINT}")


def prometheus_config(
    *, services: list[standin.Unit], alertmanager: str, rule_files: list[str]
) -> dict[str, Any]:
    """Scrape ``services`` every second; send alerts to ``alertmanager`` (``host:port``).

    Each target carries the labels the plan reads: ``service`` (its name) and
    ``services_dir`` (where its unit lives, for the restart playbook).
    """
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": rule_files,
        "scrape_configs": [
            {
                "job_name": JOB,
                "static_configs": [
                    {
                        "targets": [unit.address],
                        "labels": {"service": unit.name, "services_dir": str(unit.directory)},
                    }
                    for unit in services
                ],
            }
        ],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
    }


def alertmanager_config(*, webhook_url: str, token_file: Path) -> dict[str, Any]:
    """Route every alert to Homeostat's webhook at once, resolved alerts included."""
    return {
        "route": {
            "receiver": "homeostat",
            "group_by": ["alertname", "service"],
            "group_wait": "0s",
            "group_interval": "1s",
            "repeat_interval": "4h",
        },
        "receivers": [
            {
                "name": "homeostat",
                "webhook_configs": [
                    {
                        "url": webhook_url,
                        "send_resolved": True,
                        "http_config": {
                            "authorization": {
                                "type": "Bearer",
                                "credentials_file": str(token_file),
                            }
                        },
                    }
                ],
            }
        ],
    }


@dataclass(kw_only=True)
class Server:
    """A Prometheus or Alertmanager binary, started with its config in ``workdir``.

    Attributes:
        name: what it is, for messages.
        binary: the executable.
        workdir: its config, storage and log live here.
        port: the loopback port it serves on.
        config: its configuration file's content.
        files: further files to write beside the config (name -> text).
        flags: command-line flags besides config, storage and address.
    """

    name: str
    binary: str
    workdir: Path
    port: int
    config: Mapping[str, Any]
    files: Mapping[str, str] = field(default_factory=dict)
    flags: tuple[str, ...] = ()
    _process: asyncio.subprocess.Process | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        """Its base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        """``host:port``."""
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        """The exact command line (absolute paths, so the folder names its processes)."""
        return [
            self.binary,
            f"--config.file={self.workdir / 'config.yml'}",
            f"--storage.{'tsdb.' if self.name == 'Prometheus' else ''}path={self.workdir / 'data'}",
            f"--web.listen-address={self.address}",
            "--log.level=warn",
            *self.flags,
        ]

    async def start(self, *, ready_within: float = 30.0) -> None:
        """Start it and wait until ``/-/ready`` answers.

        Raises:
            errors.DependencyError: it exited or did not get ready; the message has its output.
        """
        self.workdir.mkdir(parents=True, exist_ok=True)
        for name, text in self.files.items():
            (self.workdir / name).write_text(text)
        (self.workdir / "config.yml").write_text(yaml.safe_dump(dict(self.config)))
        log_path = self.workdir / "output.log"
        with log_path.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                *self.command(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=True,
                preexec_fn=embedded.die_with_parent,
            )
        deadline = time.monotonic() + ready_within
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline:
                if self._process.returncode is not None:
                    break
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.url}/-/ready")).status_code == 200:  # noqa: PLR2004
                        return
                await asyncio.sleep(0.1)
        output = log_path.read_bytes()[-2000:].decode(errors="replace")
        await self.stop()
        raise errors.DependencyError(f"{self.name} did not start on {self.address}:\n{output}")

    async def stop(self) -> None:
        """Stop it and its process group (SIGTERM, then SIGKILL)."""
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), _STOP_GRACE_SECONDS)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()


def prometheus(
    *, workdir: Path, port: int, services: list[standin.Unit], alertmanager: str
) -> Server:
    """Prometheus scraping ``services``, with the scenario's alerting rule."""
    return Server(
        name="Prometheus",
        binary=find_binary(PROMETHEUS_BINARIES),
        workdir=workdir,
        port=port,
        config=prometheus_config(
            services=services, alertmanager=alertmanager, rule_files=[PROMETHEUS_RULES.name]
        ),
        files={PROMETHEUS_RULES.name: PROMETHEUS_RULES.read_text()},
    )


def alertmanager(*, workdir: Path, port: int, webhook_url: str, token: str) -> Server:
    """Alertmanager notifying ``webhook_url`` with ``token``; clustering off."""
    token_file = workdir / "homeostat-token"
    return Server(
        name="Alertmanager",
        binary=find_binary(ALERTMANAGER_BINARIES),
        workdir=workdir,
        port=port,
        config=alertmanager_config(webhook_url=webhook_url, token_file=token_file),
        files={token_file.name: token},
        flags=("--cluster.listen-address=",),
    )
