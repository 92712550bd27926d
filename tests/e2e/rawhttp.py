"""HTTP/1.1 written byte by byte: what a hostile or broken client sends, and no library would."""

from __future__ import annotations

import asyncio
import contextlib
import json
import select
import socket
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body)


class Connection:
    """One TCP connection to the server under test."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, url: str) -> Connection:
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> bool:
        """Write ``data``; whether the server still took it (False once it closed)."""
        try:
            self.writer.write(data)
            await self.writer.drain()
        except (ConnectionError, OSError):
            return False
        return True

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> Response:
        await self.send(head(method, path, {"Content-Length": str(len(body)), **(headers or {})}))
        await self.send(body)
        return await self.response(timeout=timeout)

    async def response(self, *, timeout: float = 30) -> Response:
        """Read one response (Content-Length or chunked body)."""
        async with asyncio.timeout(timeout):
            status_line = await self.reader.readuntil(b"\r\n")
            status = int(status_line.split()[1])
            headers: dict[str, str] = {}
            while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            if headers.get("transfer-encoding", "").lower() == "chunked":
                body = b""
                while (size := int((await self.reader.readuntil(b"\r\n")).strip(), 16)) != 0:
                    body += await self.reader.readexactly(size)
                    await self.reader.readuntil(b"\r\n")
                await self.reader.readuntil(b"\r\n")
            else:
                body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return Response(status=status, headers=headers, body=body)

    async def closed_by_server(self, *, timeout: float) -> float | None:
        """Seconds until the server closed the connection, or None if it stayed open."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout):
                while await self.reader.read(65536):
                    pass
        except TimeoutError:
            return None
        except (ConnectionError, OSError):
            pass
        return time.monotonic() - started

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


def head(method: str, path: str, headers: dict[str, str]) -> bytes:
    """A request line and headers, ended by the blank line."""
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: homeostat",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class SyncConnection:
    """A blocking keep-alive connection, for code that runs in a thread (hypothesis)."""

    def __init__(self, url: str, *, timeout: float = 30) -> None:
        parts = urlsplit(url)
        self.address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.reader: Any = None
        self.connections = 0
        self.last_used = time.monotonic()
        self.keep_alive_seconds = 4.0
        """Idle time after which the server may close (its keep-alive timeout is 5 s)."""

    def _connect(self) -> socket.socket:
        if self.sock is not None and select.select([self.sock], [], [], 0)[0]:
            # Readable while idle: the server closed the kept-alive connection. After its
            # keep-alive timeout a client opens a new one, as HTTP clients do; sooner, the
            # server dropped a connection its last answer said it would keep.
            idle = time.monotonic() - self.last_used
            if idle < self.keep_alive_seconds:
                raise ConnectionError(
                    f"the server closed a kept-alive connection after {idle:.1f} s"
                )
            self.close()
        if self.sock is None:
            self.sock = socket.create_connection(self.address, timeout=self.timeout)
            # Head and body go out as separate writes: without this, Nagle's algorithm and the
            # server's delayed ACK hold the body back 40 ms.
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.reader = self.sock.makefile("rb")
            self.connections += 1
        return self.sock

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.reader.close()
                self.sock.close()
        self.sock = None

    def exchange(self, request_head: bytes, chunks: list[bytes] | tuple[bytes, ...]) -> Response:
        """Send a head and body chunks, stopping early if the server answers; read the answer.

        The connection is kept for the next exchange unless the server closes it (or says so).
        """
        sock = self._connect()
        sock.sendall(request_head)
        for chunk in chunks:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break  # answered before the body was sent: stop sending, as Go's client does
            try:
                sock.sendall(chunk)
            except OSError:
                break
        try:
            answer = self._read()
        except (OSError, ValueError):
            self.close()
            raise
        if answer.headers.get("connection", "").lower() == "close":
            self.close()
        self.last_used = time.monotonic()
        return answer

    def _read(self) -> Response:
        status_line = self.reader.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection without an answer")
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        while (line := self.reader.readline()) not in {b"\r\n", b"\n", b""}:
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while (size := int(self.reader.readline().strip(), 16)) != 0:
                body += self.reader.read(size)
                self.reader.readline()
            self.reader.readline()
        else:
            body = self.reader.read(int(headers.get("content-length", "0")))
        return Response(status=status, headers=headers, body=body)
