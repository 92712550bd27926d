"""``GET /v1/alerts`` and ``GET /v1/rules``: the rules engine's live state, authenticated.

In the spirit of Prometheus's ``/api/v1/alerts`` and ``/api/v1/rules``: every condition
pending or firing now, and every rule with its last evaluation, duration and error
(``operations.rule_state``). They read this process's rules engine, so with several ingest
replicas each answers for the rule groups it evaluates.
"""

# No ``from __future__ import annotations``: FastAPI reads the routes' annotations, and
# ``Who`` below is local to ``build_router``.

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated

import fastapi
from fastapi import responses

from controller.api import auth, reads
from controller.operations import encoding, identity, rule_state


def build_router(
    *,
    engine: Callable[[], rule_state.LiveEngine],
    polls: Callable[[], Mapping[str, rule_state.PollHealth]],
    authenticate: auth.Authenticator,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> fastapi.APIRouter:
    """The live rule-state routes.

    Args:
        engine: the rules engine in force (it is replaced when rules reload).
        polls: the Prometheus poller's health by rule (empty without a poller).
        authenticate: the operator-token dependency (``auth.authenticator``).
        clock: the current time (time left before a pending condition fires).
    """
    router = fastapi.APIRouter(prefix="/v1", tags=["rules"])
    Who = Annotated[identity.Identity, fastapi.Depends(authenticate)]  # noqa: N806

    @router.get(
        "/alerts",
        summary="Every condition pending or firing now (rule, resource, since, for, time left)",
        responses=reads.answer_schema(rule_state.AlertsReport, "the conditions"),
    )
    async def alerts(who: Who) -> responses.JSONResponse:
        del who
        return responses.JSONResponse(
            encoding.to_json(rule_state.alerts_report(engine(), now=clock()))
        )

    @router.get(
        "/rules",
        summary="Every rule in force with its last evaluation, duration and error",
        responses=reads.answer_schema(rule_state.RulesReport, "the rules"),
    )
    async def rules(who: Who) -> responses.JSONResponse:
        del who
        return responses.JSONResponse(
            encoding.to_json(rule_state.rules_report(engine(), polls=polls()))
        )

    return router
