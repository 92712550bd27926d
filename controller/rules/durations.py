"""Durations written the way Prometheus writes them (``30s``, ``5m``, ``1h30m``, ``1d``).

Rule files are read by people who know Prometheus, so ``for: 5m`` must mean what it means
there: the units ``ms s m h d w y`` (a day is 24 h, a week 7 d, a year 365 d), largest
first, each at most once, and ``0`` alone for zero.
"""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {
    "y": timedelta(days=365),
    "w": timedelta(weeks=1),
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
    "ms": timedelta(milliseconds=1),
}
_PATTERN = re.compile(
    r"^(?:(?P<y>\d+)y)?(?:(?P<w>\d+)w)?(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?"
    r"(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?(?:(?P<ms>\d+)ms)?$"
)


def parse(text: str) -> timedelta:
    """Parse a Prometheus duration.

    Raises:
        ValueError: the text is not a duration; the message shows the expected form.
    """
    if text == "0":
        return timedelta(0)
    found = _PATTERN.fullmatch(text) if text else None
    if found is None or not any(found.groupdict().values()):
        raise ValueError(
            f"{text!r} is not a duration like 30s, 5m, 1h30m, 1d (units: ms s m h d w y)"
        )
    total = timedelta(0)
    for unit, amount in found.groupdict().items():
        if amount is not None:
            total += int(amount) * _UNITS[unit]
    return total


def format_duration(value: timedelta) -> str:
    """Render a duration in the same notation, largest units first (``1h30m``)."""
    milliseconds = round(value.total_seconds() * 1000)
    if milliseconds == 0:
        return "0s"
    parts: list[str] = []
    for unit, size in _UNITS.items():
        step = round(size.total_seconds() * 1000)
        count, milliseconds = divmod(milliseconds, step)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
