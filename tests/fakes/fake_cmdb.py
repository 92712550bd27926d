"""A CMDB REST API with NetBox-style pagination and token authentication.

Contract (as ``controller.activities.config.CmdbConfig`` states it): ``GET /hosts/?limit=N
&offset=M`` with ``Authorization: Token <token>`` answers ``{"count", "next", "previous",
"results"}``; ``next`` is the absolute URL of the following page or null. A wrong token
answers 403 ``{"detail": "Invalid token."}``, none 401.
"""

from __future__ import annotations

from typing import Any

from fake_http import FakeService, Request


class FakeCmdb(FakeService):
    def __init__(self, *, token: str, hosts: list[dict[str, Any]]) -> None:
        super().__init__()
        self.token = token
        self.hosts = hosts

    def page_requests(self) -> int:
        return sum(1 for r in self.requests if r.path == "/hosts/")

    def route(self, request: Request) -> tuple[int, Any]:
        header = request.headers.get("authorization", "")
        if not header:
            return 401, {"detail": "Authentication credentials were not provided."}
        if header != f"Token {self.token}":
            return 403, {"detail": "Invalid token."}
        if request.path != "/hosts/" or request.method != "GET":
            return 404, {"detail": "Not found."}
        limit = int(request.query.get("limit", "50"))
        offset = int(request.query.get("offset", "0"))
        page = self.hosts[offset : offset + limit]
        following = offset + limit
        return 200, {
            "count": len(self.hosts),
            "next": f"{self.url}/hosts/?limit={limit}&offset={following}"
            if following < len(self.hosts)
            else None,
            "previous": None,
            "results": page,
        }
