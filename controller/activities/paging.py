"""Paging through PagerDuty's Events API v2, with the ``pagerduty`` package.

One dedup key per episode (``activity_io.page_dedup_key``): every trigger of an episode,
retried or repeated, lands on the same incident, and resolving it twice is harmless. The
routing key comes from the configuration, chosen by name, and never travels in an
activity's input or output.

Retries are Temporal's, bounded by the step's retry policy: the client is told to answer
the first response it gets (it would otherwise retry 429 forever and 5xx with sleeps in
the activity). 429, 5xx and network errors become ``TransientError``; a 400 (the event or
the routing key rejected) and any other 4xx become ``PermanentError``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pagerduty
from temporalio import activity

from controller import errors
from controller.activities import config as config_module
from controller.activities import failures
from controller.domain import resources
from controller.workflows import activity_io

_RETRIED_BY_TEMPORAL = (429, 500, 502, 503, 504)
_SUMMARY_LIMIT = 1024
"""The Events API truncates longer summaries."""


def make_client(
    settings: config_module.PagerDutyConfig, routing_key: str
) -> pagerduty.EventsApiV2Client:
    """An Events API client that leaves every retry to Temporal."""
    client = pagerduty.EventsApiV2Client(
        routing_key,
        base_url=settings.events_url,
        verify=config_module.tls_verify(settings.ca_file),
    )
    client.timeout = max(1, round(settings.timeout.total_seconds()))
    # A status listed in ``retry`` is retried only while fewer than ``max_http_attempts``
    # attempts were made: with -1 the first response is returned, whatever its status.
    client.retry = dict.fromkeys(_RETRIED_BY_TEMPORAL, 1)
    client.max_http_attempts = -1
    client.max_network_attempts = 0
    return client


class PagingActivities:
    """``page_trigger`` and ``page_resolve``, with PagerDuty's settings injected."""

    def __init__(
        self,
        *,
        settings: config_module.PagerDutyConfig | None,
        links: config_module.LinksConfig,
        client_factory: Callable[..., pagerduty.EventsApiV2Client] = make_client,
    ) -> None:
        """Page through ``settings`` (``None``: paging is not configured)."""
        self._settings = settings
        self._links = links
        self._factory = client_factory
        self._clients: dict[str, pagerduty.EventsApiV2Client] = {}

    def close(self) -> None:
        """Close the clients' connections."""
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    @activity.defn(name=activity_io.PAGE_TRIGGER)
    def page_trigger(self, request: activity_io.PageTriggerInput) -> activity_io.PageOutput:
        """Trigger (or re-trigger) the episode's incident."""
        with failures.reported():
            client = self._client(request.routing)
            payload: dict[str, Any] = {
                "summary": request.summary[:_SUMMARY_LIMIT] or "Homeostat episode",
                "source": request.source,
                "severity": request.severity.value,
                "component": request.component or request.context.rule,
                "group": resources.resource_kind(request.context.resource),
                "class": request.context.rule,
                "custom_details": {
                    **dict(request.details),
                    "resource": request.context.resource,
                    "episode": request.context.episode,
                    "plan": request.context.plan,
                    "step": request.context.step,
                },
            }
            links = [{"href": link.href, "text": link.text or link.href} for link in request.links]
            links += self._episode_links(request.context)
            with _translated("trigger"):
                key = client.send_event(
                    "trigger", dedup_key=request.dedup_key, payload=payload, links=links
                )
            return activity_io.PageOutput(dedup_key=str(key), status="triggered")

    @activity.defn(name=activity_io.PAGE_RESOLVE)
    def page_resolve(self, request: activity_io.PageResolveInput) -> activity_io.PageOutput:
        """Resolve the incident of the dedup key."""
        with failures.reported():
            client = self._client(request.routing)
            with _translated("resolve"):
                key = client.resolve(request.dedup_key)
            return activity_io.PageOutput(dedup_key=str(key), status="resolved")

    def _client(self, routing: str) -> pagerduty.EventsApiV2Client:
        settings = self._settings
        if settings is None:
            raise errors.PermanentError("paging is not configured (no PagerDuty routing key)")
        if routing and routing not in settings.routing_keys:
            known = ", ".join(sorted(settings.routing_keys)) or "none"
            raise errors.PermanentError(f"unknown routing {routing!r} (configured: {known})")
        client = self._clients.get(routing)
        if client is None:
            key = settings.routing_keys[routing] if routing else settings.routing_key
            client = self._clients[routing] = self._factory(settings, key)
        return client

    def _episode_links(self, context: activity_io.ActivityContext) -> list[dict[str, str]]:
        href = self._links.episode_url(context.episode)
        return [{"href": href, "text": "Episode timeline (Temporal)"}] if href else []


@contextlib.contextmanager
def _translated(action: str) -> Iterator[None]:
    """Translate the ``pagerduty`` package's exceptions into remediation errors."""
    what = f"PagerDuty {action}"
    try:
        yield
    except pagerduty.HttpError as exc:
        if exc.response is None:
            raise errors.TransientError(f"{what}: {exc}") from exc
        status = int(exc.response.status_code)
        error = failures.status_error(status, what)
        detail = _error_detail(exc.response)
        raise type(error)(f"{error}: {detail}" if detail else str(error)) from exc
    except pagerduty.UrlError as exc:
        raise errors.PermanentError(f"{what}: {exc}") from exc
    except pagerduty.Error as exc:  # network errors: no response
        raise errors.TransientError(f"{what}: {exc}") from exc
    except (ValueError, TypeError) as exc:  # the client refused the event as malformed
        raise errors.PermanentError(f"{what}: {exc}") from exc


def _error_detail(response: Any) -> str:
    """The Events API's own explanation (``message`` and ``errors``), without the key."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    parts = [str(body.get("message", ""))] + [str(e) for e in body.get("errors", []) or []]
    return "; ".join(p for p in parts if p)[:500]
