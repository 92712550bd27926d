"""Request bodies read only after authentication, and only up to a limit.

Routes declare no FastAPI body parameter (FastAPI would read the body before the
authentication dependency runs); they call ``read`` once the caller is known. The size
is checked against ``Content-Length`` before reading and again while reading.
"""

from __future__ import annotations

from typing import TypeVar

import fastapi
import pydantic

Model = TypeVar("Model", bound=pydantic.BaseModel)

LIMIT = 64 * 1024
"""Operator and Slack requests are small: a few hundred bytes."""


async def raw(request: fastapi.Request, *, limit: int = LIMIT) -> bytes:
    """The body, or 413 past ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def read(request: fastapi.Request, model: type[Model], *, limit: int = LIMIT) -> Model:
    """The body as ``model`` (an empty body is ``{}``), or 422 naming what is wrong."""
    body = await raw(request, limit=limit)
    try:
        return model.model_validate_json(body or b"{}")
    except pydantic.ValidationError as exc:
        problems = [
            f"{'.'.join(str(part) for part in error['loc']) or '(body)'}: {error['msg']}"
            for error in exc.errors()
        ]
        raise fastapi.HTTPException(status_code=422, detail="; ".join(problems)) from None


def _too_large(limit: int) -> fastapi.HTTPException:
    return fastapi.HTTPException(status_code=413, detail=f"the body is larger than {limit} bytes")


def schema(model: type[pydantic.BaseModel]) -> dict[str, object]:
    """The OpenAPI ``requestBody`` of ``model``, for routes that read it themselves."""
    return {
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }
