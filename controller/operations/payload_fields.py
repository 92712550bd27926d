"""Fields of history payloads, read leniently: a missing or mistyped field is empty.

Homeostat's payloads are ``json/plain`` (pydantic's JSON of the ``*_io`` dataclasses). A
timeline reads them as plain JSON, field by field, so a history recorded by another
version of the code still reads.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Final

from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent

TAIL: Final = 500
"""Characters kept of outputs and messages."""


def decode(payload: Payload) -> Any:
    """A payload as JSON data; ``None`` for null and for encodings that are not JSON."""
    encoding = payload.metadata.get("encoding", b"")
    if encoding == b"json/plain":
        try:
            return json.loads(payload.data)
        except ValueError:
            return None
    return None


def first(payloads: Payloads) -> Any:
    """The first payload of ``payloads`` as JSON data."""
    return decode(payloads.payloads[0]) if payloads.payloads else None


def obj(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def text(value: Any) -> str:
    """``value`` if it is a string, else ""."""
    return value if isinstance(value, str) else ""


def integer(value: Any) -> int | None:
    """``value`` if it is an integer (not a boolean), else ``None``."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def moment(value: Any) -> datetime | None:
    """``value`` as a timezone-aware datetime, if it is an ISO 8601 string."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def strings(value: Any) -> tuple[str, ...]:
    """The strings of ``value`` if it is a list."""
    return tuple(item for item in value if isinstance(item, str)) if isinstance(value, list) else ()


def labels(value: Any) -> dict[str, str]:
    """``value`` as a string-to-string mapping."""
    return {str(key): str(item) for key, item in obj(value).items()}


def tail(value: Any) -> str:
    """The last ``TAIL`` characters of a text output."""
    return text(value)[-TAIL:]


def failure_message(failure: Failure) -> str:
    """The innermost message of a failure chain (the activity's own error)."""
    message = failure.message
    while failure.HasField("cause"):
        failure = failure.cause
        message = failure.message or message
    return message[:TAIL]


def event_time(event: HistoryEvent) -> datetime:
    """When the event happened, in UTC."""
    return event.event_time.ToDatetime().replace(tzinfo=UTC)
