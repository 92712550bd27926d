"""HTTP/1.1 written byte by byte: what a hostile or broken client sends, and no library would."""

from __future__ import annotations

import asyncio
import contextlib
import json
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
    lines = [f"{method} {path} HTTP/1.1", "Host: homeostat", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()
