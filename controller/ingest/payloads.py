"""Shared handling of inbound JSON payloads: parse once, and name the bad field."""

from __future__ import annotations

from typing import TypeVar

import pydantic

from controller import errors

Model = TypeVar("Model", bound=pydantic.BaseModel)


def parse(model: type[Model], body: bytes) -> Model:
    """Validate ``body`` (JSON) as ``model``.

    Raises:
        errors.PayloadError: the body is not JSON or does not fit the model; ``field`` is
            the dotted path of the first bad field (``alerts[0].startsAt``) and the
            message lists every problem.
    """
    try:
        return model.model_validate_json(body)
    except pydantic.ValidationError as exc:
        problems = exc.errors(include_url=False)
        fields = [field_path(problem["loc"]) for problem in problems]
        if problems and problems[0]["type"] == "json_invalid":
            raise errors.PayloadError("(body)", f"not valid JSON: {problems[0]['msg']}") from None
        details = "; ".join(
            f"{path}: {problem['msg']}" for path, problem in zip(fields, problems, strict=True)
        )
        raise errors.PayloadError(fields[0] if fields else "(body)", details) from None


def field_path(loc: tuple[int | str, ...]) -> str:
    """Render a pydantic error location as ``alerts[0].startsAt``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(body)"
