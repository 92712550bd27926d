"""The CLI through the operator API (``--api URL --token TOKEN``) instead of Temporal.

The same verbs as ``operations.steering.Steering``, and the same reads as
``operations.views`` and ``operations.histories``, over HTTP: the API authenticates the
token, so a change is recorded under the token's name, never under a name the caller
chose. Answers come back as the same dataclasses (``Decided``, ``Steered``,
``ResourceList``, ``Timeline`` ...); statuses become the same errors::

    401  ->  errors.AuthError        403  ->  errors.ForbiddenError
    404  ->  errors.NotFoundError    409, 422  ->  errors.RefusedError
    anything else, or no answer  ->  errors.DependencyError
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime
from typing import Annotated, Any, NoReturn, TypeVar
from urllib.parse import quote

import httpx
import pydantic
import typer

from controller import errors
from controller.domain import resources
from controller.operations import steering

T = TypeVar("T")

ApiOption = Annotated[
    str,
    typer.Option(
        "--api",
        envvar="HOMEOSTAT_API_URL",
        help="The operator API's URL (http://homeostat:8080); unset: straight to Temporal.",
        show_default=False,
    ),
]
TokenOption = Annotated[
    str,
    typer.Option(
        "--token",
        envvar="HOMEOSTAT_API_TOKEN",
        help="Your operator token (api.tokens), with --api.",
        show_default=False,
    ),
]
_STATUS_ERRORS: dict[int, type[errors.HomeostatError]] = {
    401: errors.AuthError,
    403: errors.ForbiddenError,
    404: errors.NotFoundError,
    409: errors.RefusedError,
    422: errors.RefusedError,
}


class RemoteSteering:
    """Steer through the operator API at ``base_url`` with a named token."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 30.0) -> None:
        """Talk to ``base_url`` (``http://homeostat:8080``) as the owner of ``token``."""
        self._base = base_url.rstrip("/")
        self._token = token
        self._timeout = timeout

    async def decide(
        self,
        *,
        episode: resources.EpisodeId,
        approve: bool,
        comment: str = "",
        resource: resources.ResourceKey | None = None,
    ) -> steering.Decided:
        """``POST /v1/episodes/{episode}/approve`` (or ``deny``)."""
        verb = "approve" if approve else "deny"
        body: dict[str, Any] = {"comment": comment}
        if resource is not None:
            body["resource"] = resource
        return await self._post(f"/v1/episodes/{path_of(episode)}/{verb}", body, steering.Decided)

    async def silence(
        self, resource: resources.ResourceKey, *, until: datetime, reason: str = ""
    ) -> steering.Steered:
        """``POST /v1/resources/{resource}/silence``."""
        body = {"until": until.isoformat(), "reason": reason}
        return await self._post(
            f"/v1/resources/{path_of(resource)}/silence", body, steering.Steered
        )

    async def operate(
        self, verb: str, resource: resources.ResourceKey, *, reason: str = ""
    ) -> steering.Steered:
        """``POST /v1/resources/{resource}/{verb}`` for unsilence, pause and resume."""
        body = {"reason": reason}
        return await self._post(f"/v1/resources/{path_of(resource)}/{verb}", body, steering.Steered)

    async def reset(
        self,
        resource: resources.ResourceKey,
        *,
        cooldown: bool = True,
        budget: bool = True,
        reason: str = "",
    ) -> steering.Steered:
        """``POST /v1/resources/{resource}/reset``."""
        body = {"cooldown": cooldown, "budget": budget, "reason": reason}
        return await self._post(f"/v1/resources/{path_of(resource)}/reset", body, steering.Steered)

    async def _post(self, path: str, body: dict[str, Any], kind: type[T]) -> T:
        return await call(
            self._base, self._token, "POST", path, kind, body=body, seconds=self._timeout
        )


async def call(
    base: str,
    token: str,
    method: str,
    path: str,
    kind: type[T],
    *,
    body: dict[str, Any] | None = None,
    params: Mapping[str, str] | None = None,
    seconds: float = 30.0,
) -> T:
    """One request to the API, its answer read as ``kind``.

    Raises:
        errors.HomeostatError: the status's error (see the module docstring).
    """
    url = base.rstrip("/") + path
    try:
        async with httpx.AsyncClient(timeout=seconds) as client:
            answer = await client.request(
                method,
                url,
                json=body,
                params=dict(params or {}),
                headers={"Authorization": f"Bearer {token}"},
            )
    except httpx.HTTPError as exc:
        raise errors.DependencyError(
            f"cannot reach the API at {base}: {type(exc).__name__}: {exc}"
        ) from None
    if answer.status_code != 200:  # noqa: PLR2004
        raise _error(answer)
    try:
        return pydantic.TypeAdapter(kind).validate_json(answer.content)
    except pydantic.ValidationError as exc:
        raise errors.DependencyError(f"{url}: unexpected answer: {exc}") from None


def read(
    api: str,
    token: str,
    path: str,
    answer: type[T],
    params: Mapping[str, str | None] | None = None,
) -> T:
    """``GET path`` for a read command: the answer, or exit 1 (2 without a token) saying why."""
    if not token:
        _exit("--api needs --token (or HOMEOSTAT_API_TOKEN)", 2)
    query = {name: value for name, value in (params or {}).items() if value is not None}
    return run(lambda: call(api, token, "GET", path, answer, params=query))


def run(work: Callable[[], Coroutine[object, object, T]]) -> T:
    """Run one API call; an expected failure becomes a message and exit 1."""
    message = ""
    try:
        return asyncio.run(work())
    except errors.AuthError as exc:
        message = f"the API did not accept the token: {exc}"
    except errors.ForbiddenError as exc:
        message = f"refused: {exc}"
    except errors.RefusedError as exc:
        message = f"refused by the workflow: {exc}"
    except errors.HomeostatError as exc:
        message = str(exc)
    finally:
        gc.collect()
    return _exit(message, 1)


def _exit(message: str, code: int) -> NoReturn:
    typer.echo(f"homeostat: {message}", err=True)
    raise typer.Exit(code)


def path_of(value: str) -> str:
    """``value`` as a URL path part (slashes kept: ids contain them)."""
    return quote(value, safe="/:@")


def _error(answer: httpx.Response) -> errors.HomeostatError:
    try:
        found = answer.json()
        detail = found.get("detail") or found.get("error") or ""
    except (ValueError, AttributeError):
        detail = ""
    message = str(detail) or f"HTTP {answer.status_code}"
    kind = _STATUS_ERRORS.get(answer.status_code, errors.DependencyError)
    if kind is errors.DependencyError:
        message = f"the API answered HTTP {answer.status_code}: {message}"
    return kind(message)
