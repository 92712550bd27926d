"""HTTP steps: the ``http_call`` activity, and requests shared with scaling and verification.

The HTTP scale actuator and CEL verification build and read requests the same way.

A request is data (``spec.HttpRequest``); the credential it names is attached here, from
the worker's configuration, so tokens never appear in a workflow history. What comes
back is data too: the status, the JSON body (secrets masked) or the text's tail.

Errors: a status the step expects is ``ok``; 408/429/5xx (unless expected) and network
errors are ``TransientError`` (Temporal retries); any other status is an answer with
``ok=False`` for the plan's ``on_failure`` to handle.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
from temporalio import activity

from controller import errors
from controller.activities import config as config_module
from controller.activities import failures, redaction
from controller.plans import spec
from controller.workflows import activity_io

_RETRYABLE = frozenset({408, 429})
_JSON_LIMIT = 256 * 1024
"""Bodies larger than this are returned as text tails, not JSON, to keep histories small."""


class Requests:
    """Turns ``spec.HttpRequest`` into ``httpx.Request`` and responses into outputs."""

    def __init__(
        self,
        *,
        credentials: Mapping[str, config_module.HttpCredential],
        redactor: redaction.Redactor,
    ) -> None:
        """Attach ``credentials`` by name; mask secrets with ``redactor``."""
        self._credentials = credentials
        self._redactor = redactor

    def build(self, request: spec.HttpRequest) -> httpx.Request:
        """The request, with its credential attached.

        Raises:
            errors.PermanentError: the URL is not http(s) or the credential is unknown.
        """
        scheme = urlsplit(request.url).scheme
        if scheme not in {"http", "https"}:
            raise errors.PermanentError(f"URL {request.url!r} is not http or https")
        credential = self._credential(request.credentials)
        headers = dict(request.headers)
        headers.update(_auth_headers(credential))
        _check_headers(headers)
        params = dict(request.params)
        if credential is not None:
            params.update(credential.params)
        json_body = request.json_body
        try:
            return httpx.Request(
                request.method.upper(),
                request.url,
                headers=headers,
                params=params,
                json=json_body if json_body is not None else None,
            )
        except (httpx.InvalidURL, ValueError, TypeError) as exc:
            raise errors.PermanentError(f"request to {request.url!r} is invalid: {exc}") from exc

    def answer(
        self, request: spec.HttpRequest, response: httpx.Response
    ) -> activity_io.HttpCallOutput:
        """The response as an output.

        Raises:
            errors.TransientError: a retryable status the step does not expect.
        """
        status = response.status_code
        expected = status in request.expect_status if request.expect_status else 200 <= status < 300  # noqa: PLR2004
        if not expected and (status in _RETRYABLE or status >= 500):  # noqa: PLR2004
            tail = self._redactor.text(response.text[-300:])
            raise errors.TransientError(
                f"{request.method} {_where(request.url)}: HTTP {status}: {tail}"
            )
        body: Any = None
        if len(response.content) <= _JSON_LIMIT:
            body = failures.json_or_none(response)
        if body is not None:
            return activity_io.HttpCallOutput(
                ok=expected, status=status, json_body=self._redactor.data(body)
            )
        text = response.content[-activity_io.OUTPUT_TAIL_BYTES :].decode("utf-8", errors="replace")
        return activity_io.HttpCallOutput(
            ok=expected, status=status, text=self._redactor.text(text)
        )

    def _credential(self, name: str) -> config_module.HttpCredential | None:
        if not name:
            return None
        credential = self._credentials.get(name)
        if credential is None:
            known = ", ".join(sorted(self._credentials)) or "none"
            raise errors.PermanentError(f"unknown credential {name!r} (configured: {known})")
        return credential


def _auth_headers(credential: config_module.HttpCredential | None) -> dict[str, str]:
    if credential is None:
        return {}
    headers = dict(credential.headers)
    if credential.bearer_token:
        headers["Authorization"] = f"Bearer {credential.bearer_token}"
    elif credential.username:
        pair = redaction.basic_pair(credential.username, credential.password)
        headers["Authorization"] = f"Basic {pair}"
    return headers


_FORBIDDEN_IN_HEADERS = frozenset("\r\n\0")


def _check_headers(headers: Mapping[str, str]) -> None:
    """Refuse header names or values holding CR, LF or NUL (a label can carry them).

    Raises:
        errors.PermanentError: naming the header, never its value (it may be a secret).
    """
    for name, value in headers.items():
        if _FORBIDDEN_IN_HEADERS.intersection(name) or _FORBIDDEN_IN_HEADERS.intersection(value):
            raise errors.PermanentError(
                f"header {name!r} holds CR, LF or NUL, which HTTP cannot carry "
                "(a label or variable rendered into it?); the request was not sent"
            )


def _where(url: str) -> str:
    """The URL without its query (which may hold secrets) for messages."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


class HttpActivities:
    """``http_call``, with credentials and an HTTP client injected."""

    def __init__(self, *, requests: Requests, client: httpx.AsyncClient) -> None:
        """Send requests built by ``requests`` with ``client``."""
        self._requests = requests
        self._client = client

    @activity.defn(name=activity_io.HTTP_CALL)
    async def http_call(self, request: activity_io.HttpCallInput) -> activity_io.HttpCallOutput:
        """Make one HTTP request."""
        with failures.reported():
            return await send(self._client, self._requests, request.request)


async def send(
    client: httpx.AsyncClient, requests: Requests, request: spec.HttpRequest
) -> activity_io.HttpCallOutput:
    """Send ``request`` and return its answer (see ``Requests.answer``)."""
    built = requests.build(request)
    with failures.http_errors(f"{request.method} {_where(request.url)}"):
        response = await client.send(built)
    return requests.answer(request, response)


def send_sync(
    client: httpx.Client, requests: Requests, request: spec.HttpRequest
) -> activity_io.HttpCallOutput:
    """``send`` for sync activities."""
    built = requests.build(request)
    with failures.http_errors(f"{request.method} {_where(request.url)}"):
        response = client.send(built)
    return requests.answer(request, response)
