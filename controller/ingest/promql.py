"""A thin PromQL client: an instant query at a time, a range query, typed results.

Built on prometheus-api-client, and the one place that library's and requests' exceptions
are caught: each becomes a ``QueryError`` (a ``errors.DependencyError``) that says whether
retrying can help (Prometheus unreachable, timed out, 5xx) or not (a bad query, 4xx). The
Prometheus poller and ``homeostat rules test`` both query through it. No retries here: the
caller decides.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
import urllib3
from prometheus_api_client import exceptions as api_exceptions
from prometheus_api_client import prometheus_connect

from controller import errors

_CLIENT_ERROR = range(400, 500)


class QueryError(errors.DependencyError):
    """A query failed; ``transient`` says whether retrying may help."""

    def __init__(self, message: str, *, transient: bool, status: int | None = None) -> None:
        """Remember whether a retry may help and the HTTP status, if there was one."""
        super().__init__(message)
        self.transient = transient
        self.status = status


@dataclass(frozen=True, slots=True, kw_only=True)
class Sample:
    """One series of an instant query's result."""

    labels: Mapping[str, str] = field(default_factory=dict)
    value: float = math.nan


@dataclass(frozen=True, slots=True, kw_only=True)
class RangeSeries:
    """One series of a range query's result, points oldest first."""

    labels: Mapping[str, str] = field(default_factory=dict)
    points: tuple[tuple[datetime, float], ...] = ()


class Client:
    """Queries one Prometheus server."""

    def __init__(
        self,
        url: str,
        *,
        timeout: timedelta = timedelta(seconds=10),
        headers: dict[str, str] | None = None,
    ) -> None:
        """Prepare a client of the server at ``url``; nothing is sent yet."""
        self.url = url.rstrip("/")
        self._timeout = max(1, math.ceil(timeout.total_seconds()))
        self._api = prometheus_connect.PrometheusConnect(
            url=self.url,
            headers=dict(headers or {}),
            retry=urllib3.util.retry.Retry(total=0, raise_on_status=False),
            timeout=self._timeout,
        )

    def instant(self, query: str, *, at: datetime) -> list[Sample]:
        """The result of ``query`` evaluated at ``at``, one sample per series.

        A scalar result is one sample without labels.

        Raises:
            QueryError: the query failed.
        """
        with _translated(query):
            result = self._api.custom_query(
                query, params={"time": _seconds(at)}, timeout=self._timeout
            )
        if _is_scalar(result):
            return [Sample(labels={}, value=float(result[1]))]
        return [
            Sample(labels=dict(item.get("metric", {})), value=float(item["value"][1]))
            for item in result
        ]

    def range(
        self, query: str, *, start: datetime, end: datetime, step: timedelta
    ) -> list[RangeSeries]:
        """The result of ``query`` at every ``step`` from ``start`` to ``end``.

        Raises:
            QueryError: the query failed.
        """
        with _translated(query):
            result = self._api.custom_query_range(
                query,
                start_time=start,
                end_time=end,
                step=f"{step.total_seconds():g}s",
                timeout=self._timeout,
            )
        return [
            RangeSeries(
                labels=dict(item.get("metric", {})),
                points=tuple(
                    (datetime.fromtimestamp(float(moment), tz=UTC), float(value))
                    for moment, value in item.get("values", [])
                ),
            )
            for item in result
        ]


def _seconds(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("query times must be timezone-aware")
    return f"{at.timestamp():.3f}"


def _is_scalar(result: Any) -> bool:
    return (
        isinstance(result, list) and len(result) == 2 and isinstance(result[0], int | float)  # noqa: PLR2004
    )


@contextlib.contextmanager
def _translated(query: str) -> Iterator[None]:
    """Turn every failure of the library, requests and the response into a ``QueryError``."""
    try:
        yield
    except api_exceptions.PrometheusApiClientException as exc:
        status = _status(str(exc))
        transient = status is None or status not in _CLIENT_ERROR
        raise QueryError(
            f"query {query!r} failed: {exc}", transient=transient, status=status
        ) from exc
    except requests.Timeout as exc:
        raise QueryError(f"query {query!r} timed out: {exc}", transient=True) from exc
    except requests.RequestException as exc:
        raise QueryError(f"Prometheus unreachable for {query!r}: {exc}", transient=True) from exc
    except (ValueError, KeyError, TypeError, IndexError) as exc:  # malformed JSON or shape
        raise QueryError(f"unexpected answer to {query!r}: {exc!r}", transient=True) from exc


def _status(message: str) -> int | None:
    """The HTTP status in the library's message ``HTTP Status Code 400 (...)``."""
    prefix = "HTTP Status Code "
    if not message.startswith(prefix):
        return None
    digits = message[len(prefix) :].split(" ", 1)[0]
    return int(digits) if digits.isdigit() else None
