"""Durations written the way Prometheus writes them: ``90s``, ``5m``, ``1h30m``, ``2d``.

One grammar for rule files, plans and settings (``coerce``): a number needs a unit
everywhere (``5`` is refused, ``5s`` or ``5m`` says which), except ``0``, as in Prometheus.
"""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
    "y": timedelta(days=365),
}
_ORDER = ["y", "w", "d", "h", "m", "s", "ms"]
_PART = re.compile(r"(\d+)(ms|y|w|d|h|m|s)")


def parse_duration(text: str) -> timedelta:
    """Parse a Prometheus duration; units in descending order, each at most once.

    Raises:
        ValueError: the text is not a duration; the message shows the accepted form.
    """
    position = 0
    last_unit = -1
    total = timedelta()
    stripped = text.strip()
    if stripped == "0":
        return total
    while position < len(stripped):
        match = _PART.match(stripped, position)
        if match is None:
            break
        unit_index = _ORDER.index(match.group(2))
        if unit_index <= last_unit:
            break
        last_unit = unit_index
        total += int(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if not stripped or position != len(stripped):
        raise ValueError(
            f"{text!r} is not a duration: write a number and a unit (ms, s, m, h, d, w, y), "
            "largest unit first, like 30s, 5m or 1h30m"
        )
    return total


def coerce(value: object) -> timedelta:
    """A duration from a file or an environment variable: text, ``0``, or a ``timedelta``.

    Raises:
        ValueError: a number other than 0 (it needs a unit), or text that is not a duration.
    """
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        message = f"{value!r} is not a duration: write a number and a unit, like 30s or 5m"
        raise ValueError(message)  # noqa: TRY004 - pydantic validators report ValueError
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.isdigit() and stripped != "0":
            raise ValueError(_needs_unit(stripped))
        return parse_duration(value)
    if value == 0:
        return timedelta(0)
    raise ValueError(_needs_unit(f"{value:g}"))


def _needs_unit(number: str) -> str:
    return f"{number} needs a unit, like {number}s or {number}m"


def format_duration(value: timedelta) -> str:
    """Render a duration in the same notation, e.g. ``1h30m``; ``0s`` for zero."""
    remaining = value
    parts = []
    for unit in _ORDER:
        size = _UNITS[unit]
        count = remaining // size
        if count:
            parts.append(f"{count}{unit}")
            remaining -= count * size
    return "".join(parts) or "0s"
