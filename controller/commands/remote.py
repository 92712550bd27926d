"""The CLI's way to steer through the operator API (``--api URL --token TOKEN``).

The same verbs as ``operations.steering.Steering``, over HTTP: the API authenticates the
token, so the change is recorded under the token's name, never under a name the caller
chose. Answers come back as the same ``Decided``/``Steered`` values; statuses become the
same errors::

    401  ->  errors.AuthError        403  ->  errors.ForbiddenError
    404  ->  errors.NotFoundError    409, 422  ->  errors.RefusedError
    anything else, or no answer  ->  errors.DependencyError
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import pydantic

from controller import errors
from controller.domain import resources
from controller.operations import steering

T = TypeVar("T")
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
        return await self._post(f"/v1/episodes/{_path(episode)}/{verb}", body, steering.Decided)

    async def silence(
        self, resource: resources.ResourceKey, *, until: datetime, reason: str = ""
    ) -> steering.Steered:
        """``POST /v1/resources/{resource}/silence``."""
        body = {"until": until.isoformat(), "reason": reason}
        return await self._post(f"/v1/resources/{_path(resource)}/silence", body, steering.Steered)

    async def operate(
        self, verb: str, resource: resources.ResourceKey, *, reason: str = ""
    ) -> steering.Steered:
        """``POST /v1/resources/{resource}/{verb}`` for unsilence, pause and resume."""
        body = {"reason": reason}
        return await self._post(f"/v1/resources/{_path(resource)}/{verb}", body, steering.Steered)

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
        return await self._post(f"/v1/resources/{_path(resource)}/reset", body, steering.Steered)

    async def _post(self, path: str, body: dict[str, Any], kind: type[T]) -> T:
        url = self._base + path
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as client:
                answer = await client.post(
                    url, json=body, headers={"Authorization": f"Bearer {self._token}"}
                )
        except httpx.HTTPError as exc:
            raise errors.DependencyError(
                f"cannot reach the API at {self._base}: {type(exc).__name__}: {exc}"
            ) from None
        if answer.status_code != 200:  # noqa: PLR2004
            raise _error(answer)
        try:
            return pydantic.TypeAdapter(kind).validate_json(answer.content)
        except pydantic.ValidationError as exc:
            raise errors.DependencyError(f"{url}: unexpected answer: {exc}") from None


def _path(value: str) -> str:
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
