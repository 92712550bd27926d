"""``POST /v1/slack/interactions``: Approve/Deny clicks from Slack's approval messages.

Slack signs every request with the app's signing secret:
``X-Slack-Signature: v0=<hex HMAC-SHA256(secret, "v0:{X-Slack-Request-Timestamp}:{raw body}")>``.
The signature is checked on the raw body, in constant time, before anything is parsed,
and the timestamp must be within five minutes of now (a captured request cannot be
replayed later). Then only the Slack users the settings allow (``slack.approvers``: user
ids, or approver groups listing ``slack:<user id>``) may decide; everyone else gets 403.

A click becomes the same ``approve``/``deny`` update as the API's, by the identity
``slack:<user id>``, so the plan's ``approvers:`` apply to it too (403 when it does not
list that user or one of their groups). Its update id derives from the click (user,
action, action timestamp): Slack resending the same payload is the same update, and the
workflow refuses any answer after the first, so a decision is delivered exactly once.
Slack wants an answer within 3 seconds: a decision still in flight then is answered 200
and completes in the background (the message is updated by the workflow when it lands).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

import fastapi
import pydantic
import structlog
from fastapi import responses

from controller import errors
from controller.api import bodies
from controller.domain import approvals
from controller.ingest import auth, payloads
from controller.operations import identity, steering

log = structlog.get_logger(__name__)

SIGNATURE_HEADER = "x-slack-signature"
TIMESTAMP_HEADER = "x-slack-request-timestamp"
_VERSION = "v0"


@dataclass(frozen=True, slots=True, kw_only=True)
class SlackInteractions:
    """What the interactions endpoint needs.

    Attributes:
        signing_secret: the Slack app's signing secret; ``None`` refuses every request.
        approvers: Slack user ids, ``slack:<user id>`` identities or approver-group names
            whose members may click; empty refuses every click.
        tolerance: how far a request's timestamp may be from now.
        answer_within: how long to wait for the decision before answering Slack anyway.
    """

    signing_secret: str | None = field(repr=False)
    approvers: frozenset[str] = frozenset()
    tolerance: timedelta = timedelta(minutes=5)
    answer_within: timedelta = timedelta(seconds=2.5)


class SignatureError(errors.AuthError):
    """The request is not signed by Slack with the configured secret (or no secret is set)."""

    def __init__(self, message: str, *, outcome: str) -> None:
        """``outcome`` labels the refusal in metrics: ``bad_signature`` or ``stale``."""
        super().__init__(message)
        self.outcome = outcome


def sign(secret: str, *, timestamp: str, body: bytes) -> str:
    """The ``X-Slack-Signature`` of ``body`` sent at ``timestamp``."""
    base = f"{_VERSION}:{timestamp}:".encode() + body
    return f"{_VERSION}=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def verify(
    secret: str | None,
    *,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    tolerance: timedelta,
) -> None:
    """Check Slack's v0 signature of a request.

    Args:
        secret: the signing secret.
        headers: request headers with lower-case names.
        body: the raw body, exactly as received.
        now: the current Unix time.
        tolerance: how far the request's timestamp may be from ``now``.

    Raises:
        SignatureError: no secret configured, a header missing, a stale timestamp, or a
            signature that does not match; the message never echoes what was sent.
    """
    if not secret:
        raise SignatureError(
            "Slack is not configured (slack.signing_secret): every request is refused",
            outcome="bad_signature",
        )
    stamp = headers.get(TIMESTAMP_HEADER, "")
    sent = headers.get(SIGNATURE_HEADER, "")
    seconds = auth.unix_seconds(stamp)
    if seconds is None or not sent:
        raise SignatureError(
            f"missing or malformed {SIGNATURE_HEADER} or {TIMESTAMP_HEADER}",
            outcome="bad_signature",
        )
    if abs(now - seconds) > tolerance.total_seconds():
        raise SignatureError(
            f"{TIMESTAMP_HEADER} is more than {tolerance} away from now", outcome="stale"
        )
    if not hmac.compare_digest(sent.encode(), sign(secret, timestamp=stamp, body=body).encode()):
        raise SignatureError(f"wrong {SIGNATURE_HEADER}", outcome="bad_signature")


class _User(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore", frozen=True)
    id: str = pydantic.Field(pattern=r"^[A-Z0-9]{2,32}$")


class _Action(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore", frozen=True)
    action_id: str = ""
    value: str = ""
    action_ts: str = ""


class BlockActions(pydantic.BaseModel):
    """The part of Slack's ``block_actions`` payload Homeostat reads (upstream adds more)."""

    model_config = pydantic.ConfigDict(extra="ignore", frozen=True)
    type: str
    user: _User
    actions: list[_Action] = []


def allowed(
    user_id: str, *, approvers: Iterable[str], groups: Mapping[str, frozenset[str]]
) -> bool:
    """Whether the Slack user ``user_id`` may click, per ``slack.approvers``."""
    who = approvals.slack_identity(user_id)
    for entry in approvers:
        if entry in (user_id, who) or who in groups.get(entry, frozenset()):
            return True
    return False


def update_id(payload: BlockActions, action: _Action) -> str:
    """One id per click: Slack's resends of the same click share it."""
    seed = f"{payload.user.id}|{action.action_id}|{action.action_ts}|{action.value}"
    return "slack-" + hashlib.sha256(seed.encode()).hexdigest()[:40]


class _Endpoint:
    """Verify, parse, allow, decide, answer."""

    def __init__(
        self,
        *,
        config: SlackInteractions,
        steer: steering.Steering,
        directory: identity.Directory,
        metrics: Any,
        clock: Callable[[], float],
    ) -> None:
        self._config = config
        self._steer = steer
        self._directory = directory
        self._metrics = metrics
        self._clock = clock
        self._background: set[asyncio.Task[steering.Decided]] = set()

    def _refuse(
        self, status: int, outcome: str, message: str, **fields: Any
    ) -> fastapi.HTTPException:
        self._metrics.operator_actions.labels(
            action="slack", channel=approvals.Channel.SLACK.value, outcome=outcome
        ).inc()
        if status == 401:  # noqa: PLR2004
            self._metrics.unauthenticated_requests.labels(route="slack").inc()
        log.warning("slack_interaction_refused", outcome=outcome, reason=message, **fields)
        return fastapi.HTTPException(status_code=status, detail=message)

    async def __call__(self, request: fastapi.Request) -> responses.JSONResponse:
        body = await bodies.raw(request)
        headers = {key.lower(): value for key, value in request.headers.items()}
        try:
            verify(
                self._config.signing_secret,
                headers=headers,
                body=body,
                now=self._clock(),
                tolerance=self._config.tolerance,
            )
        except SignatureError as exc:
            raise self._refuse(401, exc.outcome, str(exc)) from None
        payload = self._parse(body)
        if payload is None or payload.type != "block_actions":
            return responses.JSONResponse({"ok": True, "ignored": True})
        action = next(
            (
                each
                for each in payload.actions
                if each.action_id in {approvals.APPROVE_ACTION, approvals.DENY_ACTION}
            ),
            None,
        )
        if action is None:
            return responses.JSONResponse({"ok": True, "ignored": True})
        user = payload.user.id
        if not allowed(user, approvers=self._config.approvers, groups=self._directory.groups):
            raise self._refuse(
                403, "unlisted_user", f"Slack user {user} may not answer approvals", user=user
            )
        try:
            button = approvals.ButtonValue.decode(action.value)
        except ValueError as exc:
            raise self._refuse(400, "malformed", f"button value: {exc}") from None
        return await self._decide(payload, action, button)

    def _parse(self, body: bytes) -> BlockActions | None:
        try:
            form = parse_qs(body.decode(), strict_parsing=True, max_num_fields=10)
            return BlockActions.model_validate(payloads.loads(form["payload"][0].encode()))
        except (errors.PayloadError, UnicodeDecodeError, ValueError, KeyError, IndexError) as exc:
            why = f"not a Slack interaction payload: {exc}"
            raise self._refuse(400, "malformed", why) from None

    async def _decide(
        self, payload: BlockActions, action: _Action, button: approvals.ButtonValue
    ) -> responses.JSONResponse:
        who = self._directory.identify(
            approvals.slack_identity(payload.user.id), approvals.Channel.SLACK
        )
        approve = action.action_id == approvals.APPROVE_ACTION
        verb = "approve" if approve else "deny"
        task = asyncio.create_task(
            self._steer.decide(
                episode=button.episode,
                approve=approve,
                who=who,
                resource=button.resource,
                update_id=update_id(payload, action),
            )
        )
        done, _ = await asyncio.wait({task}, timeout=self._config.answer_within.total_seconds())
        if not done:
            self._background.add(task)
            task.add_done_callback(self._finished(verb, who, button))
            return responses.JSONResponse({"ok": True, "pending": True})
        return self._answer(verb, who, button, task)

    def _finished(
        self, verb: str, who: identity.Identity, button: approvals.ButtonValue
    ) -> Callable[[asyncio.Task[steering.Decided]], None]:
        def done(task: asyncio.Task[steering.Decided]) -> None:
            self._background.discard(task)
            # A refusal is counted and logged by _answer; nobody waits for the answer now.
            with contextlib.suppress(fastapi.HTTPException):
                self._answer(verb, who, button, task)

        return done

    def _answer(
        self,
        verb: str,
        who: identity.Identity,
        button: approvals.ButtonValue,
        task: asyncio.Task[steering.Decided],
    ) -> responses.JSONResponse:
        fields = {"episode": button.episode, "by": who.name}
        try:
            task.result()
        except errors.ForbiddenError as exc:
            raise self._refuse(403, "forbidden", str(exc), **fields) from None
        except errors.OperatorError as exc:
            # A resend after the decision, or a click on a message whose step ended:
            # nothing changes, and Slack should not show the user an error for it.
            self._count(verb, "refused")
            log.info("slack_interaction_refused", outcome="refused", reason=str(exc), **fields)
            return responses.JSONResponse({"ok": False, "error": str(exc)})
        except errors.DependencyError as exc:
            raise self._refuse(503, "error", str(exc), **fields) from None
        self._count(verb, "ok")
        log.info("operator_action", action=verb, channel="slack", outcome="ok", **fields)
        return responses.JSONResponse({"ok": True, "decision": verb})

    def _count(self, verb: str, outcome: str) -> None:
        self._metrics.operator_actions.labels(
            action=verb, channel=approvals.Channel.SLACK.value, outcome=outcome
        ).inc()


def build_router(
    *,
    config: SlackInteractions,
    steer: steering.Steering,
    directory: identity.Directory,
    metrics: Any,
    clock: Callable[[], float] = time.time,
) -> fastapi.APIRouter:
    """The ``/v1/slack/interactions`` route (Slack's interactivity request URL)."""
    router = fastapi.APIRouter(prefix="/v1/slack", tags=["slack"])
    endpoint = _Endpoint(
        config=config, steer=steer, directory=directory, metrics=metrics, clock=clock
    )

    @router.post(
        "/interactions",
        summary="Slack interactivity: Approve/Deny clicks (signed by Slack)",
        responses={
            400: {"description": "not a Slack interaction payload"},
            401: {"description": "missing, wrong or stale Slack signature"},
            403: {"description": "this Slack user may not answer this approval"},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "payload": {
                                    "type": "string",
                                    "description": "Slack's block_actions payload, JSON",
                                }
                            },
                            "required": ["payload"],
                        }
                    }
                },
            }
        },
    )
    async def interactions(request: fastapi.Request) -> responses.JSONResponse:
        return await endpoint(request)

    return router
