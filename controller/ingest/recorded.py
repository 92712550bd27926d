"""Recorded input as observations, decoded exactly as live ingest decodes it.

``homeostat rules backtest`` and ``homeostat rules test`` feed the engine what was (or
would be) received: webhook requests kept as JSON lines, and rule tests' input events.
Each is decoded by the same functions as the live path (``events.decode``, the
Alertmanager model, the GitLab webhook's observation), so a rule behaves the same on
recorded and on live input. Kafka records read back are decoded by the live consumer's
own ``ingest.kafka.RecordDecoder``.

A recorded webhook request is one JSON object per line::

    {"received_at": "2026-05-01T12:00:00Z", "source": "webhook", "stream": "deploys",
     "body": {...}}

``source`` is ``webhook`` (the default; ``stream`` defaults to ``default``, the stream of
``/v1/events``), ``gitlab`` (``stream`` is the ``X-Gitlab-Event`` header) or
``alertmanager`` (``body`` is the notification). ``received_at`` (RFC 3339 or epoch
seconds) is the time an event without a time of its own takes, as on receipt.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pydantic

from controller import errors
from controller.domain import observations
from controller.ingest import alertmanager, events, webhooks

DEFAULT_STREAM = "default"
"""The stream of ``POST /v1/events``."""


def webhook_request(
    body: Any,
    *,
    source: observations.SourceKind,
    stream: str,
    received_at: datetime,
    timestamp_field: str = "timestamp",
) -> list[observations.Observation]:
    """The observations one webhook request carried.

    Raises:
        errors.PayloadError: the body is not what that webhook accepts.
    """
    if source is observations.SourceKind.ALERTMANAGER:
        try:
            notification = alertmanager.Notification.model_validate(body)
        except pydantic.ValidationError as exc:
            raise errors.PayloadError(
                "(body)", f"not an Alertmanager notification: {exc}"
            ) from None
        return alertmanager.to_observations(notification)
    if source is observations.SourceKind.GITLAB:
        if stream not in webhooks.GITLAB_EVENTS.values() or not isinstance(body, dict):
            raise errors.PayloadError("stream", f"not a GitLab event kind: {stream!r}")
        return [webhooks.gitlab_observation(stream, body, received_at)]
    items: Sequence[Any] = body if isinstance(body, list) else [body]
    return [
        events.decode(
            item,
            source=observations.SourceKind.WEBHOOK,
            stream=stream,
            received_at=received_at,
            timestamp_field=timestamp_field,
        )
        for item in items
    ]


def read_requests(
    path: Path, *, timestamp_field: str = "timestamp"
) -> Iterator[tuple[int, list[observations.Observation]]]:
    """The observations of each line of a recorded-requests file, with its line number.

    Raises:
        errors.PayloadError: a line is not a recorded request; ``field`` names the line.
    """
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                yield number, _request(events.loads(line.encode()), timestamp_field)
            except errors.PayloadError as exc:
                raise errors.PayloadError(f"{path}:{number}", exc.message) from None
            except (ValueError, TypeError, RecursionError) as exc:
                raise errors.PayloadError(f"{path}:{number}", f"not valid JSON: {exc}") from None


def _request(value: Any, timestamp_field: str) -> list[observations.Observation]:
    if not isinstance(value, Mapping):
        raise errors.PayloadError("(line)", "a recorded request is a JSON object")
    if "body" not in value:
        raise errors.PayloadError("body", "a recorded request holds the request's body")
    try:
        source = observations.SourceKind(value.get("source", "webhook"))
    except ValueError:
        raise errors.PayloadError("source", "one of webhook, gitlab, alertmanager") from None
    if "received_at" not in value:
        raise errors.PayloadError("received_at", "a recorded request needs its time")
    received_at = events.parse_time(value["received_at"], field="received_at")
    return webhook_request(
        value["body"],
        source=source,
        stream=str(value.get("stream", DEFAULT_STREAM)),
        received_at=received_at,
        timestamp_field=timestamp_field,
    )


def test_event(
    source: observations.SourceKind, *, stream: str, event: Mapping[str, Any], at: datetime
) -> list[observations.Observation]:
    """A rule test's ``input_events`` item, sent at ``at``, as ingest would receive it.

    Kafka and webhook events are decoded as received at ``at``; a GitLab event is a
    webhook body of kind ``stream``; an Alertmanager event is one alert (``status``,
    ``labels``, ``annotations``) that fires, or resolves, at ``at``.

    Raises:
        errors.PayloadError: the event is not what that source accepts.
    """
    if source is observations.SourceKind.ALERTMANAGER:
        status = str(event.get("status", "firing"))
        alert = {
            "status": status,
            "labels": event.get("labels", {}),
            "annotations": event.get("annotations", {}),
            "startsAt": event.get("startsAt", at.isoformat()),
        }
        if status == "resolved":
            alert["endsAt"] = at.isoformat()
        body: Any = {"version": "4", "receiver": stream or "homeostat", "alerts": [alert]}
        return webhook_request(body, source=source, stream=stream, received_at=at)
    if source is observations.SourceKind.KAFKA:
        return [events.decode(dict(event), source=source, stream=stream, received_at=at)]
    return webhook_request(
        dict(event), source=source, stream=stream or DEFAULT_STREAM, received_at=at
    )
