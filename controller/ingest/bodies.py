"""Request bodies read within limits: per request, and for all requests together.

A body announced larger than its endpoint's limit (``Content-Length``) is refused before a
byte of it is read; a chunked body is counted while it streams and refused the moment it
passes the limit. All bodies held at once share one ``Budget``: when it is spent, a request
is refused with a retryable error instead of growing memory, whoever sends it (a signed
request's body must be read before it can be authenticated). How long a body may take is
the HTTP server's business (``serving``): it answers 408 and closes the connection.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import fastapi
from starlette import requests as starlette_requests

from controller import errors


class Budget:
    """Bytes of request bodies held in memory at once, all requests together."""

    def __init__(self, capacity: int, *, setting: str) -> None:
        """Allow ``capacity`` bytes; ``setting`` is named when they are spent."""
        self.capacity = capacity
        self.used = 0
        self._setting = setting

    def reserve(self, size: int) -> None:
        """Take ``size`` bytes.

        Raises:
            errors.OverloadedError: fewer than ``size`` bytes are left.
        """
        if self.used + size > self.capacity:
            raise errors.OverloadedError(
                f"request bodies in memory would pass {self.capacity} bytes "
                f"({self._setting}); retry shortly"
            )
        self.used += size

    def release(self, size: int) -> None:
        """Give ``size`` bytes back."""
        self.used -= size


@contextlib.asynccontextmanager
async def read(
    request: fastapi.Request, *, limit: int, setting: str, budget: Budget
) -> AsyncIterator[bytes]:
    """Yield the whole body of ``request``, held against ``budget`` until the block ends.

    Args:
        request: the request whose body has not been read yet.
        limit: the most bytes accepted.
        setting: the setting that sets ``limit``, named in the error.
        budget: the bytes all bodies may hold together.

    Raises:
        errors.LimitError: the body is, or is announced, larger than ``limit``.
        errors.OverloadedError: the budget has no room for it.
        errors.PayloadError: the client went away, or the server gave up waiting
            (``http.body_timeout``), before the body was complete.
    """
    announced = request.headers.get("content-length")
    expected = int(announced) if announced is not None and announced.isdigit() else None
    if expected is not None and expected > limit:
        raise errors.LimitError(
            setting, f"request body of {expected} bytes is over the limit of {limit} bytes"
        )
    held = 0
    try:
        if expected is not None:
            budget.reserve(expected)
            held = expected
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise errors.LimitError(
                        setting, f"request body is over the limit of {limit} bytes"
                    )
                if size > held:
                    budget.reserve(size - held)
                    held = size
                chunks.append(chunk)
        except starlette_requests.ClientDisconnect:
            raise errors.PayloadError(
                "(body)", "the connection closed before the body was complete"
            ) from None
        yield b"".join(chunks)
    finally:
        budget.release(held)
