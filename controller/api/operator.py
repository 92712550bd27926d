"""The operator routes under ``/v1``: steer resources and answer approvals, authenticated.

Every route needs an operator token (``auth``); every change is recorded in the resource
workflow's history under the token's name with the channel ``api``. Bodies are read after
authentication, so an unauthenticated request costs no more than its headers.

Answers: 200 with what changed; 401 without a valid token; 403 when the caller is not one
of the step's approvers; 404 when the resource or episode has no workflow; 409 when the
workflow refuses (nothing awaits approval, already answered, a silence in the past); 413
and 422 for bodies too large or malformed; 503 when Temporal does not answer. Error bodies
are ``{"detail": "..."}``.
"""

# No ``from __future__ import annotations``: FastAPI reads the routes' annotations, and
# ``Who`` below is local to ``build_router``.

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self, TypeVar

import fastapi
import pydantic
import structlog

from controller import errors
from controller.api import answers, auth, bodies
from controller.domain import durations, resources
from controller.operations import identity, steering

log = structlog.get_logger(__name__)

T = TypeVar("T")

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "no valid operator token"},
    404: {"description": "no workflow for this resource or episode"},
    409: {"description": "the workflow refused (see `detail`)"},
    413: {"description": "body too large"},
    422: {"description": "malformed body or id"},
    503: {"description": "Temporal did not answer"},
}
_DECISION_ERRORS = {**_ERRORS, 403: {"description": "you are not one of the step's approvers"}}


class _Body(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)


class ReasonBody(_Body):
    """Why (recorded with the change)."""

    reason: str = pydantic.Field(default="", max_length=1000, description="why (recorded)")


class SilenceBody(ReasonBody):
    """Silence until a moment, or for a duration: exactly one of the two."""

    until: pydantic.AwareDatetime | None = pydantic.Field(
        default=None, description="end of the silence (RFC 3339 with a time zone)"
    )
    duration: str | None = pydantic.Field(
        default=None, description="how long, as a duration (30m, 2h)", examples=["2h"]
    )

    @pydantic.model_validator(mode="after")
    def _one_end(self) -> Self:
        if (self.until is None) == (self.duration is None):
            raise ValueError("give exactly one of 'until' and 'duration'")
        if self.duration is not None:
            durations.parse_duration(self.duration)
        return self


class ResetBody(ReasonBody):
    """What to forget: the cooldowns, the budget use, or both (the default)."""

    cooldown: bool = pydantic.Field(default=True, description="end every plan's cooldown")
    budget: bool = pydantic.Field(default=True, description="forget the budget use")


class DecisionBody(_Body):
    """A comment, and the episode's resource if the caller knows it (saves a look-up)."""

    comment: str = pydantic.Field(default="", max_length=1000, description="why (recorded)")
    resource: str | None = pydantic.Field(default=None, description="the episode's resource")


class _Recorder:
    """Runs one operator action: counts it, logs it, and turns errors into statuses."""

    def __init__(self, metrics: Any) -> None:
        self._metrics = metrics

    async def __call__(
        self, action: str, who: identity.Identity, subject: str, work: Callable[[], Awaitable[T]]
    ) -> T:
        try:
            done = await work()
        except errors.HomeostatError as exc:
            answer = answers.status_of(exc)
            if answer is None:
                raise
            status, outcome = answer
            self._count(action, who, outcome, subject, reason=str(exc))
            raise fastapi.HTTPException(status_code=status, detail=str(exc)) from None
        self._count(action, who, "ok", subject)
        return done

    def _count(
        self, action: str, who: identity.Identity, outcome: str, subject: str, reason: str = ""
    ) -> None:
        self._metrics.operator_actions.labels(
            action=action, channel=who.channel.value, outcome=outcome
        ).inc()
        log.info(
            "operator_action",
            action=action,
            subject=subject,
            by=who.name,
            channel=who.channel.value,
            outcome=outcome,
            reason=reason,
        )


def build_router(
    *,
    steer: steering.Steering,
    authenticate: auth.Authenticator,
    metrics: Any,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> fastapi.APIRouter:
    """The ``/v1`` operator routes that change things.

    Args:
        steer: how changes reach the workflows.
        authenticate: the operator-token dependency (``auth.authenticator``).
        metrics: ``observability.metrics.Metrics`` (``operator_actions``).
        clock: the current time, for silences given as a duration.
    """
    router = fastapi.APIRouter(prefix="/v1", tags=["operator"])
    record = _Recorder(metrics)
    Who = Annotated[identity.Identity, fastapi.Depends(authenticate)]  # noqa: N806

    def decision_route(verb: Literal["approve", "deny"]) -> None:
        @router.post(
            f"/episodes/{{episode:path}}/{verb}",
            summary=f"{verb.capitalize()} the approval step the episode waits at",
            response_model=steering.Decided,
            responses=_DECISION_ERRORS,
            openapi_extra=bodies.schema(DecisionBody),
            name=f"{verb}_episode",
        )
        async def decide(episode: str, who: Who, request: fastapi.Request) -> steering.Decided:
            body = await bodies.read(request, DecisionBody)
            owner = answers.resource_key(body.resource) if body.resource else None
            return await record(
                verb,
                who,
                episode,
                lambda: steer.decide(
                    episode=resources.EpisodeId(episode),
                    approve=verb == "approve",
                    who=who,
                    comment=body.comment,
                    resource=owner,
                ),
            )

    decision_route("approve")
    decision_route("deny")

    @router.post(
        "/resources/{resource:path}/silence",
        summary="Silence automation until a moment or for a while (episodes are still recorded)",
        response_model=steering.Steered,
        responses=_ERRORS,
        openapi_extra=bodies.schema(SilenceBody),
    )
    async def silence(resource: str, who: Who, request: fastapi.Request) -> steering.Steered:
        key = answers.resource_key(resource)
        body = await bodies.read(request, SilenceBody)
        until = body.until or clock() + durations.parse_duration(body.duration or "0s")
        return await record(
            "silence",
            who,
            key,
            lambda: steer.silence(key, until=until, who=who, reason=body.reason),
        )

    def reason_route(verb: Literal["unsilence", "pause", "resume"], summary: str) -> None:
        @router.post(
            f"/resources/{{resource:path}}/{verb}",
            summary=summary,
            response_model=steering.Steered,
            responses=_ERRORS,
            openapi_extra=bodies.schema(ReasonBody),
            name=f"{verb}_resource",
        )
        async def operate(resource: str, who: Who, request: fastapi.Request) -> steering.Steered:
            key = answers.resource_key(resource)
            body = await bodies.read(request, ReasonBody)
            action = {"unsilence": steer.unsilence, "pause": steer.pause, "resume": steer.resume}
            return await record(
                verb, who, key, lambda: action[verb](key, who=who, reason=body.reason)
            )

    reason_route("unsilence", "End a silence now")
    reason_route("pause", "Pause automation until resumed (episodes are still recorded)")
    reason_route("resume", "Resume automation")

    @router.post(
        "/resources/{resource:path}/reset",
        summary="End the cooldowns and/or forget the budget use of the resource's plans",
        response_model=steering.Steered,
        responses=_ERRORS,
        openapi_extra=bodies.schema(ResetBody),
    )
    async def reset(resource: str, who: Who, request: fastapi.Request) -> steering.Steered:
        key = answers.resource_key(resource)
        body = await bodies.read(request, ResetBody)
        return await record(
            "reset",
            who,
            key,
            lambda: steer.reset(
                key, who=who, cooldown=body.cooldown, budget=body.budget, reason=body.reason
            ),
        )

    return router
