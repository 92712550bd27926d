"""How the operator routes answer: Homeostat's errors as HTTP statuses, and ids from paths.

One table for every ``/v1`` operator route, so the same failure is the same status
wherever it happens: 403 not an approver, 404 no such workflow, 409 refused by the
workflow, 422 a malformed id or filter, 503 Temporal did not answer.
"""

from __future__ import annotations

import fastapi

from controller import errors
from controller.domain import resources

_STATUSES: tuple[tuple[type[errors.HomeostatError], int, str], ...] = (
    (errors.ForbiddenError, 403, "forbidden"),
    (errors.RefusedError, 409, "refused"),
    (errors.NotFoundError, 404, "not_found"),
    (errors.ConfigError, 422, "invalid"),
    (errors.DependencyError, 503, "error"),
)


def status_of(exc: errors.HomeostatError) -> tuple[int, str] | None:
    """The HTTP status of ``exc`` and its outcome label (metrics), or ``None`` for a defect."""
    for kind, status, outcome in _STATUSES:
        if isinstance(exc, kind):
            return status, outcome
    return None


def resource_key(text: str) -> resources.ResourceKey:
    """The resource key in a path, or 422 naming what is wrong with it."""
    try:
        return resources.parse_resource_key(text)
    except ValueError as exc:
        raise fastapi.HTTPException(status_code=422, detail=str(exc)) from None
