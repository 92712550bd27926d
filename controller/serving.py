"""How the HTTP server holds connections: bounded in number and in time.

uvicorn's h11 protocol keeps a connection for as long as the client likes: a new connection
that never sends a byte, headers or a body trickling in at a byte a second, a body that
keeps coming after the answer was sent. Each holds a file descriptor, and a few hundred of
them exhaust the process. This protocol adds what uvicorn does not offer:

- a bound on connections: past ``max_connections``, a new one is closed at once;
- a header deadline: a new connection's request, and every later request from its first
  byte, must have its headers complete within ``header_timeout``, or it is closed;
- a body deadline: a request's body must be complete within ``body_timeout`` of its
  headers, or the answer is 408 and the connection is closed;
- an answer sent before the body was read (401, 413 ...) closes the connection instead of
  reading the rest of a body nobody wants. Closing a socket with unread input makes the
  kernel reset the connection, and a client still sending would lose the answer; so the
  connection lingers first: the server stops writing and discards what still arrives, until
  the client stops, ``LINGER`` has passed, or ``LINGER_BYTES`` were discarded.

uvicorn's own ``timeout_keep_alive`` closes idle kept-alive connections, and h11 refuses
headers larger than 16 KiB. Each closing is counted in
``homeostat_http_connections_closed_total`` by reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar, cast

import h11
import structlog
from uvicorn.protocols.http import h11_impl

log = structlog.get_logger(__name__)

LINGER = timedelta(seconds=2)
LINGER_BYTES = 4 * 1024 * 1024
_TIMEOUT_BODY = b'{"error": "the request body did not arrive in time (limit: http.body_timeout)"}'


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionLimits:
    """How many connections, and how long a request may take to arrive."""

    max_connections: int = 512
    header_timeout: timedelta = timedelta(seconds=10)
    body_timeout: timedelta = timedelta(seconds=30)


def protocol(limits: ConnectionLimits, closed: Any) -> type[asyncio.Protocol]:
    """The uvicorn ``http`` protocol class that enforces ``limits``.

    Args:
        limits: the bounds.
        closed: a counter with a ``reason`` label (``Metrics.http_connections_closed``).
    """

    class _Bounded(_BoundedH11Protocol):
        _limits = limits
        _closed = closed

    return _Bounded


class _BoundedH11Protocol(h11_impl.H11Protocol):
    """uvicorn's h11 protocol with a connection bound and header and body deadlines."""

    _limits: ClassVar[ConnectionLimits]
    _closed: ClassVar[Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline: asyncio.TimerHandle | None = None
        self._body_deadline: asyncio.TimerHandle | None = None
        self._socket: asyncio.Transport | None = None
        self._lingering: int | None = None
        """Bytes discarded since the connection started to linger; None when it is not."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._socket = transport
        # uvicorn closes through ``self.transport``: let that close linger when it must.
        lingering = _LingeringClose(transport, self._close_transport)
        self.transport = cast("asyncio.Transport", lingering)
        if len(self.connections) > self._limits.max_connections:
            self._close("too_many_connections")
            return
        self._follow()

    def data_received(self, data: bytes) -> None:
        if self._lingering is not None:
            self._lingering += len(data)
            if self._lingering > LINGER_BYTES and self._socket is not None:
                self._socket.close()
            return
        super().data_received(data)
        self._follow()

    def eof_received(self) -> None:
        if self._lingering is not None and self._socket is not None:
            self._socket.close()

    def _close_transport(self) -> None:
        """Close now, or linger first while the client is still sending its body."""
        socket = self._socket
        if socket is None or self._lingering is not None:
            return
        self._cancel_head()
        self._cancel_body()
        if socket.is_closing() or self.conn.their_state is not h11.SEND_BODY:
            socket.close()
            return
        self._lingering = 0
        if socket.can_write_eof():
            socket.write_eof()
        self.loop.call_later(LINGER.total_seconds(), socket.close)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.SEND_BODY:
            # Answered before the body was read: do not wait for the rest of it.
            self.transport.close()
            return
        self._follow()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head()
        self._cancel_body()
        super().connection_lost(exc)

    def _follow(self) -> None:
        """Arm or disarm the deadlines by where the client is in its request."""
        if self.transport.is_closing():
            return
        state = self.conn.their_state
        if state is h11.IDLE:
            # A new connection, or bytes of the next request: its headers are due.
            waiting = self.conn.trailing_data[0] or self.cycle is None
            if waiting and self._head_deadline is None:
                self._head_deadline = self.loop.call_later(
                    self._limits.header_timeout.total_seconds(), self._headers_late
                )
            return
        self._cancel_head()
        if state is h11.SEND_BODY:
            if self._body_deadline is None:
                self._body_deadline = self.loop.call_later(
                    self._limits.body_timeout.total_seconds(), self._body_late
                )
            return
        self._cancel_body()

    def _headers_late(self) -> None:
        self._head_deadline = None
        if self.conn.their_state is h11.IDLE:
            self._close("header_timeout")

    def _body_late(self) -> None:
        self._body_deadline = None
        if self.conn.their_state is not h11.SEND_BODY:
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_started:
            self._send_timeout()
            cycle.response_started = True
            cycle.response_complete = True
        if cycle is not None:
            # The application's pending read of the body ends as a disconnect.
            cycle.disconnected = True
            cycle.message_event.set()
        self._close("body_timeout")

    def _send_timeout(self) -> None:
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(_TIMEOUT_BODY)).encode()),
            (b"connection", b"close"),
        ]
        try:
            self.transport.write(
                self.conn.send(
                    h11.Response(status_code=408, headers=headers, reason=b"Request Timeout")
                )
                + self.conn.send(h11.Data(data=_TIMEOUT_BODY))
                + self.conn.send(h11.EndOfMessage())
            )
        except h11.LocalProtocolError:
            log.debug("http_timeout_answer_not_sent")

    def _close(self, reason: str) -> None:
        self._closed.labels(reason=reason).inc()
        log.debug("http_connection_closed", reason=reason, client=self.client)
        self.transport.close()

    def _cancel_head(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _cancel_body(self) -> None:
        if self._body_deadline is not None:
            self._body_deadline.cancel()
            self._body_deadline = None


class _LingeringClose:
    """A transport whose ``close`` is the protocol's: everything else is the socket's."""

    def __init__(self, transport: asyncio.Transport, close: Callable[[], None]) -> None:
        self._transport = transport
        self._close = close
        self._closed = False

    def close(self) -> None:
        self._closed = True
        self._close()

    def is_closing(self) -> bool:
        return self._closed or self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
