"""The JSON form of every operations value: one encoder, so CLI and API print the same.

Dataclasses become objects with their field names, in declaration order; datetimes are
ISO 8601 strings in UTC; durations (``timedelta``) are numbers of seconds; enums are their
values; tuples are arrays. ``None`` stays ``null``. The schema of each view is the
dataclass that holds it, documented in ``docs/operations.md``; fields are only ever
added.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any


def to_json(value: Any) -> Any:  # noqa: PLR0911 - one return per kind of value
    """``value`` as plain JSON data (dicts, lists, strings, numbers, booleans, ``None``)."""
    if value is None or (
        isinstance(value, bool | int | float | str) and not isinstance(value, enum.Enum)
    ):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, timedelta):
        return value.total_seconds()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {item.name: to_json(getattr(value, item.name)) for item in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(key): to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json(item) for item in value]
    return str(value)


def dumps(value: Any) -> str:
    """``value`` as indented JSON text."""
    return json.dumps(to_json(value), indent=2, ensure_ascii=False)
