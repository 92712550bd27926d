"""A load generator for the CPU scenario: replicas sharing a load, scraped by Prometheus.

It stands for a service running on ``replicas`` processes that together must do ``cores``
CPU-seconds of work per second: each replica burns ``min(1, cores / replicas)``, exposed
as its own ``process_cpu_seconds_total{service, replica}`` counter, exactly as if each
replica's process were scraped. Scaling out spreads the same load over more replicas, so
their average CPU falls, which is what the HPA rule counts on. The counters are computed
from elapsed time, not burned, so the scenario costs no CPU.

HTTP:

- ``GET /metrics``: the counters (Prometheus text format);
- ``GET /replicas``, ``PUT /replicas`` ``{"replicas": n}``: the scale actuator's contract
  (``actuator: http``), also what the ``kubectl`` stand-in of the tests calls;
- ``GET /load``, ``PUT /load`` ``{"cores": x}``: the load to share.

    python -m controller.demo.loadgen --port 9101 --service web --replicas 2 --cores 1.9
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import prometheus_client
from prometheus_client import core, registry


class Deployment(registry.Collector):
    """Replicas sharing a load; every replica's CPU-seconds counter, integrated over time."""

    def __init__(
        self,
        *,
        service: str,
        replicas: int,
        cores: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Start with ``replicas`` replicas doing ``cores`` CPU-seconds per second together."""
        self.service = service
        self._clock = clock
        self._lock = threading.Lock()
        self._replicas = replicas
        self._cores = cores
        self._spent: dict[int, float] = dict.fromkeys(range(1, replicas + 1), 0.0)
        self._since = clock()

    def _advance(self) -> None:
        now = self._clock()
        share = min(1.0, self._cores / self._replicas) if self._replicas else 0.0
        for replica in range(1, self._replicas + 1):
            self._spent[replica] = self._spent.get(replica, 0.0) + share * (now - self._since)
        self._since = now

    @property
    def replicas(self) -> int:
        """How many replicas run."""
        with self._lock:
            return self._replicas

    @property
    def cores(self) -> float:
        """The load, in CPU-seconds per second."""
        with self._lock:
            return self._cores

    def scale(self, replicas: int) -> None:
        """Run ``replicas`` replicas from now on (a replica that is back keeps its counter)."""
        with self._lock:
            self._advance()
            self._replicas = max(0, replicas)

    def load(self, cores: float) -> None:
        """Share ``cores`` CPU-seconds per second from now on."""
        with self._lock:
            self._advance()
            self._cores = max(0.0, cores)

    def collect(self) -> Iterator[core.Metric]:
        """The counters of the running replicas."""
        with self._lock:
            self._advance()
            spent = {r: self._spent[r] for r in range(1, self._replicas + 1)}
        family = core.CounterMetricFamily(
            "process_cpu_seconds_total",
            "CPU time each replica spent, in seconds.",
            labels=["service", "replica"],
        )
        for replica, seconds in spent.items():
            family.add_metric([self.service, f"{self.service}-{replica}"], seconds)
        yield family


def _read(deployment: Deployment, path: str) -> tuple[int, Any]:
    if path == "/replicas":
        return 200, {"replicas": deployment.replicas}
    if path == "/load":
        return 200, {"cores": deployment.cores}
    return 404, {"error": "not found"}


def _write(deployment: Deployment, path: str, body: Any) -> tuple[int, Any]:
    try:
        if path == "/replicas":
            deployment.scale(int(body["replicas"]))
        elif path == "/load":
            deployment.load(float(body["cores"]))
        else:
            return 404, {"error": "not found"}
    except (ValueError, KeyError, TypeError) as exc:
        return 400, {"error": str(exc)}
    return _read(deployment, path)


def _handler(deployment: Deployment, metrics: registry.CollectorRegistry) -> type:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._send(200, prometheus_client.generate_latest(metrics), "text/plain")
            else:
                self._json(*_read(deployment, self.path))

        def do_PUT(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            self._json(*_write(deployment, self.path, body))

        def _json(self, status: int, body: Any) -> None:
            self._send(status, json.dumps(body).encode(), "application/json")

        def _send(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
            del format, args

    return Handler


def serve(deployment: Deployment, *, host: str, port: int) -> None:
    """Answer HTTP until SIGTERM."""
    metrics = registry.CollectorRegistry()
    metrics.register(deployment)
    server = ThreadingHTTPServer((host, port), _handler(deployment, metrics))
    signal.signal(signal.SIGTERM, _terminate)
    try:
        server.serve_forever(poll_interval=0.2)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()


def _terminate(signum: int, frame: object) -> None:
    del signum, frame
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    """The command line; its exit status."""
    parser = argparse.ArgumentParser(prog="python -m controller.demo.loadgen")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--service", default="web")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--cores", type=float, default=0.5)
    options = parser.parse_args(argv)
    deployment = Deployment(service=options.service, replicas=options.replicas, cores=options.cores)
    serve(deployment, host=options.host, port=options.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
