"""A throwaway Prometheus that holds a rule test's input series, so real PromQL evaluates them.

``homeostat rules test`` starts one (the ``prometheus`` binary on a free loopback port,
storage in a temporary folder), writes every test's series into it through the remote-write
receiver, and stops it at the end. Remote write, rather than a backfilled block, because it
carries promtool's ``stale`` markers as the real staleness NaN, and because an out-of-order
window lets tests sit at any timestamps, far apart, in one server.

The remote-write body is encoded here by hand: a few protobuf fields, and snappy's block
format with literal chunks only (valid snappy that needs no compressor).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from controller import errors

_CONFIG = """\
global:
  evaluation_interval: 1h
storage:
  tsdb:
    out_of_order_time_window: 100y
"""
_READY_TIMEOUT = 30.0
_BATCH = 2000


@dataclass(frozen=True, slots=True, kw_only=True)
class Points:
    """One series to write: labels (``__name__`` included) and (milliseconds, value) points."""

    labels: Mapping[str, str]
    points: tuple[tuple[int, float], ...]


class Sandbox:
    """A temporary Prometheus server; use it as a context manager."""

    def __init__(self, *, binary: str = "prometheus") -> None:
        """Prepare; nothing starts until ``start`` or ``with``."""
        self._binary = binary
        self._process: subprocess.Popen[bytes] | None = None
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self.url = ""

    def __enter__(self) -> Self:
        """Start the server."""
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the server and remove its storage."""
        self.stop()

    def start(self) -> None:
        """Start Prometheus and wait until it is ready.

        Raises:
            errors.DependencyError: the binary is missing or the server did not come up.
        """
        found = shutil.which(self._binary)
        if found is None:
            raise errors.DependencyError(
                f"{self._binary!r} is not installed (Debian: apt-get install prometheus); "
                "rule tests evaluate PromQL with a real Prometheus"
            )
        self._folder = tempfile.TemporaryDirectory(prefix="homeostat-rules-test-")
        folder = Path(self._folder.name)
        (folder / "prometheus.yml").write_text(_CONFIG)
        port = _free_port()
        log = (folder / "prometheus.log").open("wb")
        self._process = subprocess.Popen(
            [
                found,
                f"--config.file={folder / 'prometheus.yml'}",
                f"--storage.tsdb.path={folder / 'data'}",
                # Tests sit far apart in time: never let retention drop the older ones.
                "--storage.tsdb.retention.time=200y",
                f"--web.listen-address=127.0.0.1:{port}",
                "--web.enable-remote-write-receiver",
                "--log.level=warn",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.url = f"http://127.0.0.1:{port}"
        self._wait_ready(folder / "prometheus.log")

    def _wait_ready(self, log: Path) -> None:
        deadline = time.monotonic() + _READY_TIMEOUT
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                output = log.read_text(errors="replace")[-2000:]
                self.stop()
                raise errors.DependencyError(f"prometheus exited at start:\n{output}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/-/ready", timeout=1).status_code == httpx.codes.OK:
                    return
            time.sleep(0.05)
        self.stop()
        raise errors.DependencyError(f"prometheus was not ready within {_READY_TIMEOUT:.0f} s")

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None

    def write(self, series: Iterable[Points]) -> None:
        """Store ``series`` through the remote-write receiver.

        Raises:
            errors.DependencyError: Prometheus refused the samples.
        """
        batch: list[bytes] = []
        for item in series:
            batch.append(_field(1, _timeseries(item)))
            if len(batch) >= _BATCH:
                self._post(b"".join(batch))
                batch = []
        if batch:
            self._post(b"".join(batch))

    def _post(self, request: bytes) -> None:
        try:
            response = httpx.post(
                f"{self.url}/api/v1/write",
                content=_snappy_literal(request),
                headers={
                    "Content-Encoding": "snappy",
                    "Content-Type": "application/x-protobuf",
                    "X-Prometheus-Remote-Write-Version": "0.1.0",
                },
                timeout=30,
            )
        except httpx.HTTPError as exc:
            raise errors.DependencyError(f"remote write to the sandbox failed: {exc}") from exc
        if response.status_code >= httpx.codes.BAD_REQUEST:
            raise errors.DependencyError(
                f"sandbox Prometheus refused the series: {response.status_code} {response.text}"
            )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        low = number & 0x7F
        number >>= 7
        if number:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _field(number: int, data: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _timeseries(series: Points) -> bytes:
    labels = b"".join(
        _field(1, _field(1, name.encode()) + _field(2, value.encode()))
        for name, value in sorted(series.labels.items())
    )
    samples = b"".join(
        _field(2, b"\x09" + struct.pack("<d", value) + b"\x10" + _varint(millis))
        for millis, value in series.points
    )
    return labels + samples


def _snappy_literal(data: bytes) -> bytes:
    """``data`` in snappy's block format, as literal chunks of at most 64 KiB."""
    out = bytearray(_varint(len(data)))
    for start in range(0, len(data), 65536):
        chunk = data[start : start + 65536]
        size = len(chunk) - 1
        if size < 60:  # noqa: PLR2004 - snappy's inline literal length limit
            out.append(size << 2)
        else:
            out.append(61 << 2)
            out += struct.pack("<H", size)
        out += chunk
    return bytes(out)
