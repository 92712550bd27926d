"""Shared handling of inbound JSON payloads: parse once, and name the bad field.

Hostile JSON is malformed input like any other: nesting deeper than ``MAX_DEPTH``, integers
longer than Python converts (4,300 digits), bytes that are not UTF-8 all become a
``PayloadError`` naming the problem, never an exception that escapes as a 500.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

import pydantic

from controller import errors

Model = TypeVar("Model", bound=pydantic.BaseModel)

MAX_DEPTH = 64
"""Deepest nesting of arrays and objects accepted in a JSON body."""
_BODY = "(body)"


def loads(body: bytes) -> Any:
    """Parse ``body`` as JSON, refusing what the rest of Homeostat cannot handle.

    Raises:
        errors.PayloadError: not UTF-8, not JSON, nested deeper than ``MAX_DEPTH``, or an
            integer with more digits than Python converts; the message says which.
    """
    try:
        value = json.loads(body)
    except RecursionError:
        raise errors.PayloadError(_BODY, f"JSON nested deeper than {MAX_DEPTH} levels") from None
    except UnicodeDecodeError:
        raise errors.PayloadError(_BODY, "not valid JSON: the body is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise errors.PayloadError(_BODY, f"not valid JSON: {exc}") from None
    except ValueError:
        # json.loads raises a plain ValueError only for an over-long integer literal.
        raise errors.PayloadError(
            _BODY, "not valid JSON: an integer has more digits than accepted (4300)"
        ) from None
    check_depth(value)
    return value


def check_depth(value: Any) -> None:
    """Refuse a decoded JSON value nested deeper than ``MAX_DEPTH``.

    Raises:
        errors.PayloadError: it is.
    """
    if not isinstance(value, dict | list):
        return
    stack: list[tuple[dict[str, Any] | list[Any], int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > MAX_DEPTH:
            raise errors.PayloadError(_BODY, f"JSON nested deeper than {MAX_DEPTH} levels")
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))


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
            raise errors.PayloadError(_BODY, f"not valid JSON: {problems[0]['msg']}") from None
        details = "; ".join(
            f"{path}: {problem['msg']}" for path, problem in zip(fields, problems, strict=True)
        )
        raise errors.PayloadError(fields[0] if fields else _BODY, details) from None


def field_path(loc: tuple[int | str, ...]) -> str:
    """Render a pydantic error location as ``alerts[0].startsAt``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or _BODY
