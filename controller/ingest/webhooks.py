"""HTTP ingest: the Alertmanager webhook, generic events (JSON, CloudEvents), and GitLab.

Every endpoint takes the same steps, cheapest refusal first:

1. authenticate what the headers alone prove (bearer token, GitLab token): 401 before a
   byte of the body is read;
2. read the body within the endpoint's size limit: 413 from ``Content-Length``, or the
   moment a chunked body passes the limit;
3. verify the request signature (it covers the body), and let each signed request count
   once: a replay of an accepted one answers 200 with ``replayed``;
4. parse into observations, off the event loop when the body is large: 400 naming the
   field, 413 past the events-per-request cap;
5. run them through the rules engine and answer 200 only after the pipeline handed every
   resulting transition to Temporal. When Temporal does not accept them in time, the answer
   is 503 with ``Retry-After``: Alertmanager and GitLab retry, and the transitions already
   queued still go out, so the retry finds nothing left to do.

Every answer is counted in ``homeostat_http_requests_total`` by route and status class, and
timed in ``homeostat_http_request_seconds`` by route and code.
An answer given before the body was read closes the connection; any other keeps it open.
The 200 answer reports observations a rule ignored (``dropped``, by reason).
"""

from __future__ import annotations

import asyncio
import collections
import hmac
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import fastapi
import structlog
from fastapi import responses

from controller import dispatch, errors
from controller.domain import observations
from controller.ingest import alertmanager, auth, bodies, events, payloads, pipeline

log = structlog.get_logger(__name__)

GITLAB_EVENTS = {
    "Push Hook": "push",
    "Tag Push Hook": "tag_push",
    "Merge Request Hook": "merge_request",
    "Pipeline Hook": "pipeline",
    "Deployment Hook": "deployment",
}
"""``X-Gitlab-Event`` values accepted, and the stream name each becomes."""

MEBIBYTE = 1024 * 1024
INLINE_BYTES = 64 * 1024
"""Bodies up to this size are parsed on the event loop; larger ones on a worker thread."""
PARSE_THREADS = 2
"""Large bodies parsed at once (parsing is CPU-bound; each may take ~25x its size)."""
MESSAGE_CHARS = 300
"""Error messages (answers and logs) quote at most this much of what was sent."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookConfig:
    """What the webhook endpoints need to know: credentials and limits."""

    alertmanager: auth.Credentials
    events: auth.Credentials
    gitlab_token: str | None
    dispatch_deadline: timedelta = timedelta(seconds=10)
    timestamp_field: str = "timestamp"
    alertmanager_max_body: int = 4 * MEBIBYTE
    events_max_body: int = 4 * MEBIBYTE
    gitlab_max_body: int = 4 * MEBIBYTE
    max_events: int = 1000
    max_body_memory: int = 64 * MEBIBYTE


Parser = Callable[[bytes, Mapping[str, str]], list[observations.Observation]]
"""Parses one request body (with its headers) into observations."""

Forward = Callable[[list[observations.Observation]], Awaitable[None]]
"""Hands observations to the replicas' Kafka topic instead of this process's engine."""
_FORWARDED_ROUTES = frozenset({"events", "gitlab"})


@dataclass(frozen=True, slots=True, kw_only=True)
class _Route:
    """One endpoint: its metric label, limit, and how it authenticates."""

    name: str
    max_body: int
    body_setting: str
    authenticate: Callable[[Mapping[str, str]], None]
    credentials: auth.Credentials | None = None


@dataclass(slots=True)
class _Progress:
    """How far a request got: an answer before its body was read closes the connection."""

    body_read: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class _Result:
    """What a processed request produced."""

    accepted: int = 0
    transitions: tuple[str, ...] = ()
    dropped: dict[str, int] = field(default_factory=dict)
    replayed: bool = False
    forwarded: int = 0

    def answer(self) -> dict[str, Any]:
        """The 200 answer's JSON body."""
        content: dict[str, Any] = {
            "accepted": self.accepted,
            "transitions": list(self.transitions),
            "dropped": self.dropped,
        }
        if self.replayed:
            content["replayed"] = True
        if self.forwarded:
            content["forwarded"] = self.forwarded
        return content


class _InFlightError(errors.HomeostatError):
    """The same signed request is being processed by another connection."""


class _Handler:
    """Authenticate, read, verify, parse, ingest, answer: the same steps for every endpoint."""

    def __init__(
        self,
        *,
        config: WebhookConfig,
        pipe: pipeline.Pipeline,
        clock: Callable[[], datetime],
        metrics: Any,
        forward: Forward | None = None,
    ) -> None:
        self._config = config
        self._pipe = pipe
        self._clock = clock
        self._metrics = metrics
        self._forward = forward
        self._replays = auth.ReplayGuard()
        self._budget = bodies.Budget(config.max_body_memory, setting="http.max_body_memory")
        self._parsing = asyncio.Semaphore(PARSE_THREADS)

    async def __call__(
        self, route: _Route, request: fastapi.Request, parse: Parser
    ) -> responses.JSONResponse:
        started = time.perf_counter()
        answer = await self._handle(route, request, parse)
        seconds = time.perf_counter() - started
        code = str(answer.status_code)
        self._metrics.http_request_seconds.labels(route=route.name, code=code).observe(seconds)
        return answer

    async def _handle(
        self, route: _Route, request: fastapi.Request, parse: Parser
    ) -> responses.JSONResponse:
        progress = _Progress()
        try:
            result = await self._process(route, request, parse, progress)
        except Exception as exc:  # noqa: BLE001 - every failure is answered, none escapes
            return self._refuse(route, exc, body_read=progress.body_read)
        self._metrics.http_requests.labels(route=route.name, status="2xx").inc()
        if result.replayed:
            log.info("webhook_replayed", route=route.name)
        return responses.JSONResponse(result.answer())

    def _refuse(self, route: _Route, exc: Exception, *, body_read: bool) -> responses.JSONResponse:
        """The answer to a request that failed with ``exc``: counted, logged, never a reset."""
        content: dict[str, Any] = {"error": _short(str(exc))}
        headers: dict[str, str] = {}
        if isinstance(exc, errors.AuthError):
            status = 401
            self._metrics.unauthenticated_requests.labels(route=route.name).inc()
            log.warning("webhook_unauthenticated", route=route.name, reason=str(exc))
        elif isinstance(exc, errors.LimitError):
            status = 413
            content = {"error": exc.message, "limit": exc.setting}
            log.warning("webhook_over_limit", route=route.name, setting=exc.setting)
        elif isinstance(exc, errors.PayloadError):
            status = 400
            content = {"error": _short(exc.message), "field": _short(exc.field)}
            log.warning("webhook_malformed", route=route.name, **content)
        elif isinstance(exc, errors.OverloadedError):
            status = 503
            headers["Retry-After"] = "1"
            log.warning("webhook_overloaded", route=route.name, error=str(exc))
        elif isinstance(exc, _InFlightError):
            status = 409
            content = {"error": "the same signed request is being processed; retry later"}
        elif isinstance(exc, dispatch.DispatchTimeoutError):
            status = 503
            headers["Retry-After"] = "10"
        elif isinstance(exc, dispatch.DispatchError):
            status = 500
        else:
            # A defect: still answered and counted, and the connection kept.
            status = 500
            content = {"error": "internal error; the request was not processed"}
            log.error("webhook_failed", route=route.name, exc_info=exc)
        if not body_read:
            # The body was not read: the connection cannot carry another request.
            headers["Connection"] = "close"
        self._metrics.http_requests.labels(route=route.name, status=f"{status // 100}xx").inc()
        return responses.JSONResponse(content, status_code=status, headers=headers)

    async def _process(
        self, route: _Route, request: fastapi.Request, parse: Parser, progress: _Progress
    ) -> _Result:
        headers = {key.lower(): value for key, value in request.headers.items()}
        route.authenticate(headers)
        async with bodies.read(
            request, limit=route.max_body, setting=route.body_setting, budget=self._budget
        ) as body:
            progress.body_read = True
            return await self._verified(route, request, parse, headers, body)

    async def _verified(
        self,
        route: _Route,
        request: fastapi.Request,
        parse: Parser,
        headers: Mapping[str, str],
        body: bytes,
    ) -> _Result:
        signature = auth.verify_signature(
            route.credentials or auth.Credentials(),
            headers=headers,
            path=_path(request),
            body=body,
            now=self._clock(),
        )
        if signature is None:
            return await self._ingest(route, parse, body, headers)
        replay = self._replays.claim(signature, now=self._clock())
        if replay is auth.Replay.ACCEPTED:
            return _Result(replayed=True)
        if replay is auth.Replay.IN_FLIGHT:
            raise _InFlightError
        try:
            result = await self._ingest(route, parse, body, headers)
        except BaseException:
            self._replays.release(signature)
            raise
        self._replays.accept(signature)
        return result

    async def _ingest(
        self, route: _Route, parse: Parser, body: bytes, headers: Mapping[str, str]
    ) -> _Result:
        if len(body) <= INLINE_BYTES:
            found = parse(body, headers)
        else:
            # Large bodies are parsed off the event loop, a few at a time (CPU-bound).
            async with self._parsing:
                found = await asyncio.to_thread(parse, body, headers)
        if self._forward is not None and route.name in _FORWARDED_ROUTES:
            await self._forward(found)
            return _Result(accepted=len(found), forwarded=len(found))
        dropped: collections.Counter[str] = collections.Counter()
        transitions = await self._pipe.ingest(
            found, deadline=self._config.dispatch_deadline, dropped=dropped
        )
        return _Result(
            accepted=len(found),
            transitions=tuple(t.transition_id for t in transitions),
            dropped=dict(dropped),
        )


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "malformed payload; `field` names the offending field"},
    401: {"description": "not authenticated"},
    408: {"description": "the body did not arrive within `http.body_timeout`"},
    409: {"description": "the same signed request is being processed; retry later"},
    413: {"description": "over a size or count limit; `limit` names the setting"},
    503: {
        "description": "Temporal did not accept the hand-off in time, or too many bodies "
        "are in memory; retry after `Retry-After`"
    },
}


def build_router(
    *,
    config: WebhookConfig,
    pipe: pipeline.Pipeline,
    clock: Callable[[], datetime],
    metrics: Any,
    forward: Forward | None = None,
) -> fastapi.APIRouter:
    """The ``/v1`` webhook routes.

    Args:
        config: credentials and limits.
        pipe: where observations go.
        clock: the current time, for events that carry none and for signature timestamps.
        metrics: ``observability.metrics.Metrics`` (request and auth counters).
        forward: with several replicas, where generic and GitLab events go instead of
            ``pipe`` (``ingest.forwarding``); they are answered once Kafka has them.
    """
    router = fastapi.APIRouter(prefix="/v1", tags=["ingest"])
    handle = _Handler(config=config, pipe=pipe, clock=clock, metrics=metrics, forward=forward)
    alertmanager_route = _Route(
        name="alertmanager",
        max_body=config.alertmanager_max_body,
        body_setting="alertmanager.max_body_size",
        authenticate=_token_check(config.alertmanager),
        credentials=config.alertmanager,
    )
    events_route = _Route(
        name="events",
        max_body=config.events_max_body,
        body_setting="webhooks.max_body_size",
        authenticate=_token_check(config.events),
        credentials=config.events,
    )
    gitlab_route = _Route(
        name="gitlab",
        max_body=config.gitlab_max_body,
        body_setting="webhooks.gitlab_max_body_size",
        authenticate=_gitlab_check(config.gitlab_token),
    )

    @router.post("/alertmanager", summary="Alertmanager webhook (version 4)", responses=_ERRORS)
    async def alertmanager_webhook(request: fastapi.Request) -> responses.JSONResponse:
        return await handle(alertmanager_route, request, _alertmanager_parser)

    @router.post("/events", summary="An event: CloudEvents 1.0 or JSON", responses=_ERRORS)
    async def default_events(request: fastapi.Request) -> responses.JSONResponse:
        return await handle(events_route, request, _events_parser(config, clock, "default"))

    @router.post("/events/{stream}", summary="An event on a named stream", responses=_ERRORS)
    async def stream_events(stream: str, request: fastapi.Request) -> responses.JSONResponse:
        return await handle(events_route, request, _events_parser(config, clock, stream))

    @router.post("/gitlab", summary="GitLab webhook", responses=_ERRORS)
    async def gitlab_webhook(request: fastapi.Request) -> responses.JSONResponse:
        return await handle(gitlab_route, request, _gitlab_parser(clock))

    return router


def _short(text: str) -> str:
    return text if len(text) <= MESSAGE_CHARS else text[:MESSAGE_CHARS] + "... (truncated)"


def _path(request: fastapi.Request) -> str:
    """The request path as the sender wrote it, without the query string (what it signed)."""
    raw = request.scope.get("raw_path")
    return raw.decode("latin-1") if isinstance(raw, bytes) else request.url.path


def _token_check(credentials: auth.Credentials) -> Callable[[Mapping[str, str]], None]:
    def check(headers: Mapping[str, str]) -> None:
        auth.verify_token(credentials, headers=headers)

    return check


def _gitlab_check(token: str | None) -> Callable[[Mapping[str, str]], None]:
    def check(headers: Mapping[str, str]) -> None:
        if token is None:
            raise errors.AuthError(
                "this endpoint has no credentials configured; it refuses all requests"
            )
        sent = headers.get("x-gitlab-token", "")
        if not hmac.compare_digest(sent.encode(), token.encode()):
            raise errors.AuthError("missing or wrong X-Gitlab-Token")

    return check


def _alertmanager_parser(body: bytes, headers: Mapping[str, str]) -> list[observations.Observation]:
    del headers
    notification = payloads.parse(alertmanager.Notification, body)
    return alertmanager.to_observations(notification)


def _gitlab_parser(clock: Callable[[], datetime]) -> Parser:
    def parse(body: bytes, headers: Mapping[str, str]) -> list[observations.Observation]:
        kind = GITLAB_EVENTS.get(headers.get("x-gitlab-event", ""))
        if kind is None:
            raise errors.PayloadError(
                "X-Gitlab-Event", f"unsupported event; accepted: {', '.join(GITLAB_EVENTS)}"
            )
        value = payloads.loads(body)
        if not isinstance(value, dict):
            raise errors.PayloadError("(body)", "must be a JSON object")
        return [gitlab_observation(kind, value, clock())]

    return parse


def _events_parser(config: WebhookConfig, clock: Callable[[], datetime], stream: str) -> Parser:
    def parse(body: bytes, headers: Mapping[str, str]) -> list[observations.Observation]:
        del headers
        value = payloads.loads(body)
        items: Sequence[Any] = value if isinstance(value, list) else [value]
        if len(items) > config.max_events:
            raise errors.LimitError(
                "webhooks.max_events",
                f"{len(items)} events in one request; at most {config.max_events} are accepted",
            )
        found = []
        for index, item in enumerate(items):
            try:
                found.append(
                    events.decode(
                        item,
                        source=observations.SourceKind.WEBHOOK,
                        stream=stream,
                        received_at=clock,
                        timestamp_field=config.timestamp_field,
                    )
                )
            except errors.PayloadError as exc:
                where = f"[{index}].{exc.field}" if isinstance(value, list) else exc.field
                raise errors.PayloadError(where, exc.message) from None
        return found

    return parse


def gitlab_observation(kind: str, body: dict[str, Any], at: datetime) -> observations.Observation:
    """A GitLab webhook body of kind ``kind`` (the stream) as an observation at ``at``."""
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
