"""The operator routes that read: resources, one resource, timelines of episodes and resources.

The same views as ``homeostat resource list|show --json`` and ``homeostat history --json``
(``controller.operations``), in the same JSON (``operations.encoding``): one schema, built
once, documented in docs/operations.md. Resources come from Temporal's visibility (search
attributes and memo), so listing needs no worker; a timeline is read from the workflow
histories. Every route needs an operator token.
"""

# No ``from __future__ import annotations``: FastAPI reads the routes' annotations, and
# ``Who`` below is local to ``build_router``.

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import fastapi
import pydantic
from fastapi import responses
from temporalio import client as temporal_client

from controller import errors
from controller.api import answers, auth
from controller.operations import encoding, histories, identity, links, views
from controller.operations import timeline_model as tm
from controller.workflows import resource_io

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "no valid operator token"},
    404: {"description": "no workflow for this resource or episode"},
    422: {"description": "a malformed id or filter"},
    503: {"description": "Temporal did not answer"},
}


def _seconds(schema: Any) -> Any:
    """The schema with durations as numbers of seconds, as ``encoding`` writes them."""
    if isinstance(schema, dict):
        if schema.get("type") == "string" and schema.get("format") == "duration":
            return {"type": "number", "description": "seconds"}
        return {key: _seconds(value) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_seconds(item) for item in schema]
    return schema


def answer_schema(kind: Any, description: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI 200 answer of a route that serves ``kind`` through ``encoding``."""
    schema = pydantic.TypeAdapter(kind).json_schema(mode="serialization")
    return {
        200: {
            "description": description,
            "content": {"application/json": {"schema": _seconds(schema)}},
        },
        **_ERRORS,
    }


async def _served(work: Callable[[], Awaitable[Any]]) -> responses.JSONResponse:
    try:
        found = await work()
    except errors.HomeostatError as exc:
        answer = answers.status_of(exc)
        if answer is None:
            raise
        raise fastapi.HTTPException(status_code=answer[0], detail=str(exc)) from None
    return responses.JSONResponse(encoding.to_json(found))


def build_router(
    *,
    client: temporal_client.Client,
    links_to: links.Links,
    authenticate: auth.Authenticator,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> fastapi.APIRouter:
    """The ``/v1`` operator routes that read.

    Args:
        client: Temporal, with Homeostat's data converter.
        links_to: how to link to the Temporal Web UI.
        authenticate: the operator-token dependency (``auth.authenticator``).
        clock: the current time (cooldowns left).
    """
    router = fastapi.APIRouter(prefix="/v1", tags=["operator"])
    Who = Annotated[identity.Identity, fastapi.Depends(authenticate)]  # noqa: N806

    @router.get(
        "/resources",
        summary="Resources whose workflow runs, from Temporal's visibility (no worker needed)",
        responses=answer_schema(views.ResourceList, "the resources, sorted by name"),
    )
    async def list_resources(
        who: Who,
        phase: Annotated[resource_io.Phase | None, fastapi.Query()] = None,
        rule: Annotated[str | None, fastapi.Query(max_length=200)] = None,
        kind: Annotated[str | None, fastapi.Query(max_length=63)] = None,
        limit: Annotated[int | None, fastapi.Query(ge=1, le=100_000)] = None,
    ) -> responses.JSONResponse:
        del who
        selection = views.ResourceFilter(phase=phase, rule=rule, kind=kind)
        return await _served(
            lambda: views.list_resources(
                client, selection=selection, links=links_to, now=clock(), limit=limit
            )
        )

    @router.get(
        "/resources/{resource:path}",
        summary="One resource: phase, open episodes, cooldowns, budget, silence, pause, outcomes",
        responses=answer_schema(views.ResourceView, "the resource (as `resource show --json`)"),
    )
    async def show_resource(resource: str, who: Who) -> responses.JSONResponse:
        del who
        key = answers.resource_key(resource)
        return await _served(lambda: views.show_resource(client, key, links=links_to, now=clock()))

    @router.get(
        "/episodes/{episode:path}",
        summary="An episode's timeline, from its workflow history (as `history --json`)",
        responses=answer_schema(tm.Timeline, "the timeline"),
    )
    async def episode(episode: str, who: Who) -> responses.JSONResponse:
        del who
        return await _served(lambda: histories.episode_timeline(client, episode, links=links_to))

    @router.get(
        "/history/{target:path}",
        summary="The timeline of an episode or of a resource across its runs (as `history`)",
        responses=answer_schema(tm.Timeline, "the timeline"),
    )
    async def history(target: str, who: Who) -> responses.JSONResponse:
        del who
        return await _served(lambda: histories.timeline_of(client, target, links=links_to))

    return router
