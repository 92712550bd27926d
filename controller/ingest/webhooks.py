"""HTTP ingest: the Alertmanager webhook, generic events (JSON, CloudEvents), and GitLab.

Every endpoint authenticates first (401, counted, on failure), parses the body into a
typed model (400 naming the bad field), and answers 200 only after the pipeline handed
every resulting transition to Temporal. When Temporal does not accept them in time, the
answer is 503 with ``Retry-After``: Alertmanager and GitLab retry, and the transitions
already queued still go out, so the retry finds nothing left to do.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import fastapi
import structlog
from fastapi import responses

from controller import dispatch, errors
from controller.domain import observations
from controller.ingest import alertmanager, auth, events, payloads, pipeline

log = structlog.get_logger(__name__)

GITLAB_EVENTS = {
    "Push Hook": "push",
    "Tag Push Hook": "tag_push",
    "Merge Request Hook": "merge_request",
    "Pipeline Hook": "pipeline",
    "Deployment Hook": "deployment",
}
"""``X-Gitlab-Event`` values accepted, and the stream name each becomes."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookConfig:
    """What the webhook endpoints need to know."""

    alertmanager: auth.Credentials
    events: auth.Credentials
    gitlab_token: str | None
    dispatch_deadline: timedelta = timedelta(seconds=10)
    timestamp_field: str = "timestamp"


Decoder = Callable[[bytes, dict[str, str]], list[observations.Observation]]
"""Authenticates and parses one request body into observations."""


class _Handler:
    """Authenticate, parse, ingest, answer: the same steps for every endpoint."""

    def __init__(self, *, config: WebhookConfig, pipe: pipeline.Pipeline, metrics: Any) -> None:
        self._config = config
        self._pipe = pipe
        self._metrics = metrics

    async def __call__(
        self, route: str, request: fastapi.Request, decode: Decoder
    ) -> responses.JSONResponse:
        started = time.perf_counter()
        answer = await self._handle(route, request, decode)
        seconds = time.perf_counter() - started
        code = str(answer.status_code)
        self._metrics.http_request_seconds.labels(route=route, code=code).observe(seconds)
        return answer

    async def _handle(
        self, route: str, request: fastapi.Request, decode: Decoder
    ) -> responses.JSONResponse:
        body = await request.body()
        headers = {key.lower(): value for key, value in request.headers.items()}
        try:
            found = decode(body, headers)
            transitions = await self._pipe.ingest(found, deadline=self._config.dispatch_deadline)
        except errors.AuthError as exc:
            self._metrics.unauthenticated_requests.labels(route=route).inc()
            log.warning("webhook_unauthenticated", route=route, reason=str(exc))
            return self._answer(route, 401, str(exc))
        except errors.PayloadError as exc:
            log.warning("webhook_malformed", route=route, field=exc.field, error=exc.message)
            return self._answer(route, 400, exc.message, exc.field)
        except dispatch.DispatchTimeoutError as exc:
            return self._answer(route, 503, str(exc), retry_after=10)
        except dispatch.DispatchError as exc:
            return self._answer(route, 500, str(exc))
        self._metrics.http_requests.labels(route=route, status="2xx").inc()
        return responses.JSONResponse(
            {"accepted": len(found), "transitions": [t.transition_id for t in transitions]}
        )

    def _answer(
        self,
        route: str,
        status: int,
        message: str,
        field: str | None = None,
        *,
        retry_after: int | None = None,
    ) -> responses.JSONResponse:
        self._metrics.http_requests.labels(route=route, status=f"{status // 100}xx").inc()
        content: dict[str, Any] = {"error": message}
        if field is not None:
            content["field"] = field
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        return responses.JSONResponse(content, status_code=status, headers=headers)


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "malformed payload; `field` names the offending field"},
    401: {"description": "not authenticated"},
    503: {"description": "Temporal did not accept the hand-off in time; retry"},
}


def build_router(
    *,
    config: WebhookConfig,
    pipe: pipeline.Pipeline,
    clock: Callable[[], datetime],
    metrics: Any,
) -> fastapi.APIRouter:
    """The ``/v1`` webhook routes.

    Args:
        config: credentials and limits.
        pipe: where observations go.
        clock: the current time, for events that carry none.
        metrics: ``observability.metrics.Metrics`` (request and auth counters).
    """
    router = fastapi.APIRouter(prefix="/v1", tags=["ingest"])
    handle = _Handler(config=config, pipe=pipe, metrics=metrics)

    @router.post("/alertmanager", summary="Alertmanager webhook (version 4)", responses=_ERRORS)
    async def alertmanager_webhook(request: fastapi.Request) -> responses.JSONResponse:
        return await handle("alertmanager", request, _alertmanager_decoder(config))

    @router.post("/events", summary="An event: CloudEvents 1.0 or JSON", responses=_ERRORS)
    async def default_events(request: fastapi.Request) -> responses.JSONResponse:
        return await handle("events", request, _events_decoder(config, clock, "default"))

    @router.post("/events/{stream}", summary="An event on a named stream", responses=_ERRORS)
    async def stream_events(stream: str, request: fastapi.Request) -> responses.JSONResponse:
        return await handle("events", request, _events_decoder(config, clock, stream))

    @router.post("/gitlab", summary="GitLab webhook", responses=_ERRORS)
    async def gitlab_webhook(request: fastapi.Request) -> responses.JSONResponse:
        return await handle("gitlab", request, _gitlab_decoder(config, clock))

    return router


def _alertmanager_decoder(config: WebhookConfig) -> Decoder:
    def decode(body: bytes, headers: dict[str, str]) -> list[observations.Observation]:
        auth.verify(config.alertmanager, headers=headers, body=body)
        notification = payloads.parse(alertmanager.Notification, body)
        return alertmanager.to_observations(notification)

    return decode


def _gitlab_decoder(config: WebhookConfig, clock: Callable[[], datetime]) -> Decoder:
    def decode(body: bytes, headers: dict[str, str]) -> list[observations.Observation]:
        _verify_gitlab(config.gitlab_token, headers)
        kind = GITLAB_EVENTS.get(headers.get("x-gitlab-event", ""))
        if kind is None:
            raise errors.PayloadError(
                "X-Gitlab-Event", f"unsupported event; accepted: {', '.join(GITLAB_EVENTS)}"
            )
        return [_gitlab_observation(kind, _json_object(body), clock())]

    return decode


def _events_decoder(config: WebhookConfig, clock: Callable[[], datetime], stream: str) -> Decoder:
    def decode(body: bytes, headers: dict[str, str]) -> list[observations.Observation]:
        auth.verify(config.events, headers=headers, body=body)
        value = _json(body)
        items: Sequence[Any] = value if isinstance(value, list) else [value]
        found = []
        for index, item in enumerate(items):
            try:
                found.append(
                    events.decode(
                        item,
                        source=observations.SourceKind.WEBHOOK,
                        stream=stream,
                        received_at=clock(),
                        timestamp_field=config.timestamp_field,
                    )
                )
            except errors.PayloadError as exc:
                where = f"[{index}].{exc.field}" if isinstance(value, list) else exc.field
                raise errors.PayloadError(where, exc.message) from None
        return found

    return decode


def _verify_gitlab(token: str | None, headers: dict[str, str]) -> None:
    if token is None:
        raise errors.AuthError(
            "this endpoint has no credentials configured; it refuses all requests"
        )
    sent = headers.get("x-gitlab-token", "")
    if not hmac.compare_digest(sent.encode(), token.encode()):
        raise errors.AuthError("missing or wrong X-Gitlab-Token")


def _gitlab_observation(kind: str, body: dict[str, Any], at: datetime) -> observations.Observation:
    project = _object(body.get("project"))
    attributes = _object(body.get("object_attributes"))
    ref = body.get("ref") or attributes.get("ref") or attributes.get("target_branch") or ""
    labels = {
        "object_kind": str(body.get("object_kind", kind)),
        "project": str(project.get("path_with_namespace", "")),
        "ref": str(ref),
    }
    for label, value in (
        ("status", attributes.get("status")),
        ("action", attributes.get("action")),
        ("user", body.get("user_username")),
    ):
        if value is not None:
            labels[label] = str(value)
    return observations.Observation(
        source=observations.SourceKind.GITLAB, stream=kind, at=at, labels=labels, body=body
    )


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise errors.PayloadError("(body)", f"not valid JSON: {exc}") from None


def _json_object(body: bytes) -> dict[str, Any]:
    value = _json(body)
    if not isinstance(value, dict):
        raise errors.PayloadError("(body)", "must be a JSON object")
    return value
