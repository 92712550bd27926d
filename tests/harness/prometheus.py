"""Real Prometheus and Alertmanager from the Debian packages, on free loopback ports."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import prometheus_client
import pytest
import yaml

from harness import processes

PROMETHEUS = "prometheus"
ALERTMANAGER_CANDIDATES = ("prometheus-alertmanager", "alertmanager")


def binary(*candidates: str) -> str:
    for name in candidates:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        f"{candidates[0]} is not installed; `make test` installs it "
        f"(apt-get install {candidates[0]})"
    )


@contextlib.contextmanager
def exporter(registry: prometheus_client.CollectorRegistry) -> Iterator[int]:
    """Serve ``registry`` as a /metrics target on a free loopback port; yields the port."""
    port = processes.free_port()
    server, thread = prometheus_client.start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        yield port
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@dataclass
class Server:
    url: str
    port: int
    process: processes.ManagedProcess
    workdir: Path


def start_prometheus(
    workdir: Path, *, config: dict[str, Any], rule_files: dict[str, str] | None = None
) -> Server:
    """Start Prometheus with ``config``; ``rule_files`` are written beside it and loaded."""
    workdir.mkdir(parents=True, exist_ok=True)
    names = []
    for name, text in (rule_files or {}).items():
        (workdir / name).write_text(text)
        names.append(name)
    if names:
        config = {**config, "rule_files": names}
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = processes.free_port()
    process = processes.ManagedProcess(
        [
            binary(PROMETHEUS),
            "--config.file=prometheus.yml",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle",
            "--log.level=warn",
        ],
        log_path=workdir / "prometheus.log",
        cwd=workdir,
    )
    url = f"http://127.0.0.1:{port}"
    process.start(ready=lambda: processes.http_ok(f"{url}/-/ready"))
    return Server(url=url, port=port, process=process, workdir=workdir)


def start_alertmanager(workdir: Path, *, config: dict[str, Any]) -> Server:
    """Start Alertmanager with ``config``, clustering off."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "alertmanager.yml").write_text(yaml.safe_dump(config))
    port = processes.free_port()
    process = processes.ManagedProcess(
        [
            binary(*ALERTMANAGER_CANDIDATES),
            "--config.file=alertmanager.yml",
            f"--storage.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        log_path=workdir / "alertmanager.log",
        cwd=workdir,
    )
    url = f"http://127.0.0.1:{port}"
    process.start(ready=lambda: processes.http_ok(f"{url}/-/ready"))
    return Server(url=url, port=port, process=process, workdir=workdir)


@pytest.fixture
def prometheus_factory(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start as many Prometheus servers as a test needs; all stop at its end."""
    started: list[Server] = []

    def start(*, config: dict[str, Any], rule_files: dict[str, str] | None = None) -> Server:
        server = start_prometheus(
            tmp_path / f"prometheus-{len(started)}", config=config, rule_files=rule_files
        )
        started.append(server)
        return server

    yield start
    for server in started:
        server.process.stop()


@pytest.fixture
def alertmanager_factory(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start as many Alertmanagers as a test needs; all stop at its end."""
    started: list[Server] = []

    def start(*, config: dict[str, Any]) -> Server:
        server = start_alertmanager(tmp_path / f"alertmanager-{len(started)}", config=config)
        started.append(server)
        return server

    yield start
    for server in started:
        server.process.stop()
