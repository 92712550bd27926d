"""How a failed side effect reaches Temporal: the one boundary every activity goes through.

Activity code raises ``errors.TransientError`` (a retry may help: timeouts, connection
errors, 429, 5xx, unreachable hosts) or ``errors.PermanentError`` (it cannot: missing
playbook, syntax error, 4xx, bad arguments). ``reported`` turns them into the
``ApplicationError`` types the workflows' retry policies name (``activity_io``)::

    errors.TransientError  ->  ApplicationError(type=TRANSIENT_ERROR)           retried
    errors.PermanentError  ->  ApplicationError(type=PERMANENT_ERROR,
                                                non_retryable=True)             not retried

Third-party exceptions never get this far: each client module translates its library's
exceptions (``http_failure`` does it for httpx) right where it calls the library.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
from temporalio.exceptions import ApplicationError

from controller import errors
from controller.workflows import activity_io

_RETRYABLE_STATUS = frozenset({408, 409, 423, 425, 429})
"""Client-error statuses that mean "not now" rather than "never"."""
_MESSAGE_LIMIT = 2000


def to_application_error(exc: errors.RemediationError) -> ApplicationError:
    """The ``ApplicationError`` Temporal records for ``exc``."""
    message = str(exc)[:_MESSAGE_LIMIT]
    if isinstance(exc, errors.PermanentError):
        return ApplicationError(message, type=activity_io.PERMANENT_ERROR, non_retryable=True)
    return ApplicationError(message, type=activity_io.TRANSIENT_ERROR)


@contextlib.contextmanager
def reported() -> Iterator[None]:
    """Translate remediation errors raised inside into ``ApplicationError``."""
    try:
        yield
    except errors.RemediationError as exc:
        raise to_application_error(exc) from exc


def status_error(status: int, what: str) -> errors.RemediationError:
    """The error for an unexpected HTTP status: 408/409/423/425/429 and 5xx may pass."""
    if status in _RETRYABLE_STATUS or status >= 500:  # noqa: PLR2004
        return errors.TransientError(f"{what}: HTTP {status}")
    return errors.PermanentError(f"{what}: HTTP {status}")


def http_failure(exc: httpx.HTTPError, what: str) -> errors.RemediationError:
    """Translate any httpx exception into the remediation error it means.

    Timeouts and connection problems may pass; a URL or protocol that cannot work, and
    4xx other than "not now", cannot. The message never holds request headers.
    """
    if isinstance(exc, httpx.HTTPStatusError):
        return status_error(exc.response.status_code, what)
    if isinstance(exc, httpx.LocalProtocolError):
        # Its text quotes the offending header value, which may be a credential.
        return errors.PermanentError(f"{what}: the request is not valid HTTP (a header value?)")
    if isinstance(exc, httpx.UnsupportedProtocol):
        return errors.PermanentError(f"{what}: {type(exc).__name__}: {exc}")
    if isinstance(exc, httpx.TooManyRedirects):
        return errors.PermanentError(f"{what}: too many redirects")
    if isinstance(exc, httpx.DecodingError):
        return errors.TransientError(f"{what}: undecodable response: {exc}")
    return errors.TransientError(f"{what}: {type(exc).__name__}: {exc}")


@contextlib.contextmanager
def http_errors(what: str) -> Iterator[None]:
    """Translate httpx exceptions raised inside (``http_failure``)."""
    try:
        yield
    except httpx.InvalidURL as exc:  # not an HTTPError subclass
        raise errors.PermanentError(f"{what}: invalid URL: {exc}") from exc
    except httpx.HTTPError as exc:
        raise http_failure(exc, what) from exc


def json_or_none(response: httpx.Response) -> Any:
    """The response body as JSON, or ``None`` when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None
