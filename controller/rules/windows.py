"""Time windows for event correlation: ``count`` of matches and ``all``/``any`` of conditions.

Both answer the same question at an event's time ``t``: is the condition true now, and
until when will it stay true if nothing else arrives? Windows are closed on both ends
(``[t - within, t]``), like staleness (``stale_after`` is "no event for *longer* than").
Memory is bounded: a count window keeps only its last ``threshold`` timestamps, a
correlation only the last match time of each condition.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime

from controller.rules import model


class CountWindow:
    """At least ``threshold`` qualifying events within ``within``."""

    __slots__ = ("_spec", "_times")

    def __init__(self, spec: model.Count) -> None:
        """Start empty."""
        self._spec = spec
        self._times: deque[datetime] = deque(maxlen=spec.threshold)

    def add(self, at: datetime) -> None:
        """Count one qualifying event at ``at`` (events arrive in time order)."""
        self._times.append(at)

    def fill(self, at: datetime) -> None:
        """Count the window as just met at ``at`` (a condition taken up as firing)."""
        self._times.extend([at] * self._spec.threshold)

    def truth(self, at: datetime) -> tuple[bool, datetime | None]:
        """Whether the window holds at ``at``, and the last instant it holds without news."""
        if len(self._times) < self._spec.threshold:
            return False, None
        until = self._times[0] + self._spec.within
        return (at <= until), until

    def expired(self, at: datetime) -> bool:
        """Whether every remembered event has left the window at ``at``."""
        return not self._times or self._times[-1] + self._spec.within < at


class CorrelationWindow:
    """All (or any) of several conditions matched an event within ``within``."""

    __slots__ = ("_last", "_spec")

    def __init__(self, spec: model.Correlation) -> None:
        """Start with no condition seen."""
        self._spec = spec
        self._last: list[datetime | None] = [None] * len(spec.conditions)

    def add(self, index: int, at: datetime) -> None:
        """Condition ``index`` matched an event at ``at``."""
        self._last[index] = at

    def fill(self, at: datetime) -> None:
        """Count every condition as matched at ``at`` (a correlation taken up as firing)."""
        self._last = [at] * len(self._last)

    def truth(self, at: datetime) -> tuple[bool, datetime | None]:
        """Whether the correlation holds at ``at``, and the last instant it holds without news."""
        seen = [moment for moment in self._last if moment is not None]
        if not seen:
            return False, None
        if self._spec.combine is model.Combine.ALL:
            if len(seen) < len(self._last):
                return False, None
            until = min(seen) + self._spec.within
        else:
            until = max(seen) + self._spec.within
        return (at <= until), until

    def expired(self, at: datetime) -> bool:
        """Whether every remembered match has left the window at ``at``."""
        seen = [moment for moment in self._last if moment is not None]
        return not seen or max(seen) + self._spec.within < at
