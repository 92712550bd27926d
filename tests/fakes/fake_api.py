"""A generic REST API for HTTP steps: echo, fixed statuses, a readiness flag, a replica count.

- ``ANY /echo`` answers what it received (method, query, headers, body).
- ``GET /status/<code>`` answers that status with a small JSON body.
- ``GET /ready`` answers ``{"ready": false}`` until it was asked ``ready_after`` times.
- ``GET|PUT /replicas`` reads or sets ``{"replicas": n}``; needs ``Authorization: Bearer
  <token>`` (401 otherwise), like an infrastructure API without a Terraform provider.
- ``GET /leaky`` answers a body with secrets in it.
- ``ANY /reflect`` answers, in a field named like nothing secret, the request line (query
  URL-encoded) and its ``Authorization`` header, as a careless API's debug output does.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fake_http import FakeService, Request


class FakeApi(FakeService):
    def __init__(self, *, token: str, replicas: int = 2, ready_after: int = 3) -> None:
        super().__init__()
        self.token = token
        self.replicas = replicas
        self.ready_after = ready_after
        self.ready_checks = 0

    def route(self, request: Request) -> tuple[int, Any]:
        if request.path.startswith("/status/"):
            code = request.path.rsplit("/", 1)[1]
            return int(code), {"status": code}
        handler = {
            "/echo": self._echo,
            "/ready": self._ready,
            "/leaky": self._leaky,
            "/reflect": self._reflect,
            "/replicas": self._replicas,
        }.get(request.path)
        return handler(request) if handler else (404, {"error": "not found"})

    def _echo(self, request: Request) -> tuple[int, Any]:
        return 200, {
            "method": request.method,
            "query": request.query,
            "headers": request.headers,
            "body": request.body,
        }

    def _reflect(self, request: Request) -> tuple[int, Any]:
        auth = request.headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        line = f"{request.method} {request.path}?{urlencode(request.query)}"
        return 200, {"debug": f"{line} as {scheme.lower()} {value}", "seen": value}

    def _ready(self, request: Request) -> tuple[int, Any]:
        del request
        self.ready_checks += 1
        return 200, {"ready": self.ready_checks >= self.ready_after, "checks": self.ready_checks}

    def _leaky(self, request: Request) -> tuple[int, Any]:
        del request
        return 200, {"access_token": "abc123", "note": f"uses {self.token}"}

    def _replicas(self, request: Request) -> tuple[int, Any]:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return 401, {"error": "unauthorized"}
        if request.method == "PUT":
            self.replicas = int((request.body or {})["replicas"])
        return 200, {"replicas": self.replicas}
