"""A small threaded HTTP(S) server for SaaS fakes, with scripted faults.

A fake subclasses ``FakeService`` and implements ``route``; the server answers JSON. Faults
are queued per test: answer a status instead of handling the request, or handle it and
then drop the connection without answering (a response lost to a network failure or a
worker killed right after the request reached the service).
"""

from __future__ import annotations

import json
import ssl
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trustme


@dataclass
class Request:
    """A request as the fake saw it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class Fault:
    """What to do instead of (or after) handling a request.

    Attributes:
        status: answer this status (with ``body``) without handling the request.
        body: the body of that answer.
        drop_after: handle the request, then close the connection without answering.
        match: only requests whose "METHOD path" contains this.
    """

    status: int = 0
    body: Any = field(default_factory=dict)
    drop_after: bool = False
    match: str = ""


class FakeService:
    """A fake SaaS API on 127.0.0.1; ``route`` answers ``(status, body)``."""

    def __init__(self, *, tls: bool = False) -> None:
        self.requests: list[Request] = []
        self.faults: deque[Fault] = deque()
        self.lock = threading.Lock()
        self._tls = tls
        self.ca: trustme.CA | None = None
        self.ca_file: Path | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def route(self, request: Request) -> tuple[int, Any]:
        raise NotImplementedError

    @property
    def url(self) -> str:
        assert self._server is not None
        scheme = "https" if self._tls else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}"

    def start(self, workdir: Path) -> FakeService:
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                del format, args

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query={k: v[-1] for k, v in parse_qs(parts.query).items()},
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                with service.lock:
                    service.requests.append(request)
                    fault = service._take_fault(request)
                    if fault is not None and not fault.drop_after:
                        status, answer = fault.status, fault.body
                    else:
                        status, answer = service.route(request)
                if fault is not None and fault.drop_after:
                    self.close_connection = True
                    return
                data = b"" if answer is None else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _handle  # noqa: N815

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        if self._tls:
            self.ca = trustme.CA()
            cert = self.ca.issue_cert("127.0.0.1", "localhost")
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            cert.configure_cert(context)
            server.socket = context.wrap_socket(server.socket, server_side=True)
            self.ca_file = workdir / f"{type(self).__name__}-ca.pem"
            self.ca.cert_pem.write_to_path(str(self.ca_file))
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def fail(self, *faults: Fault) -> None:
        """Queue faults for the next matching requests, in order."""
        with self.lock:
            self.faults.extend(faults)

    def _take_fault(self, request: Request) -> Fault | None:
        line = f"{request.method} {request.path}"
        for fault in list(self.faults):
            if fault.match in line:
                self.faults.remove(fault)
                return fault
        return None
