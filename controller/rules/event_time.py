"""Event time in the rules engine: late and duplicate events, and conditions to forget.

Events arrive in time order per condition (resource and ``group_by`` values): an event
older than the last one seen there is late and ignored, and an exact duplicate of the last
one is ignored too, so replayed or duplicated observations never start a second episode.
An event older than the rule's horizon (its longest window) behind the newest time seen
is ignored as well, even for a condition the engine no longer remembers. "The newest time
seen" is kept per rule and stream, advanced only by events that rule matched, and by
``tick``: an event that no rule matches moves nothing, and an event of one stream cannot
make another stream's events late. (Sources bound event time against receive time before
it gets here: see ``ingest.admission``.)

A condition that is inactive, whose window is empty and whose last event is older than
the horizon is forgotten by ``sweep``: its events could no longer change anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from controller.domain import observations
from controller.rules import alerts, runtimes

LATE = "late"
"""The drop reason of an event older than what its condition, or its rule, has seen."""
DUPLICATE = "duplicate"
"""The drop reason of an exact repeat of the last event of a condition."""
STREAMS_KEPT = 1024
"""Streams a rule keeps a newest time for before it starts over (bounds memory)."""


def admit(
    runtime: runtimes.Runtime,
    condition: runtimes.Condition,
    observation: observations.Observation,
    *,
    ticked: datetime | None,
) -> runtimes.Tracked | str:
    """The tracked state of ``condition`` that ``observation`` moves on, or why it is dropped.

    Notes the event's time as the newest of its stream for the rule, and starts tracking
    the condition on its first event unless that event is too late to matter: older than
    the rule's horizon behind the newest time the rule matched on the event's stream
    before it, or behind ``ticked`` (the last tick, when every source was read up to it).

    Returns:
        The condition's state, or ``LATE`` or ``DUPLICATE``.
    """
    key = condition[1]
    at = observation.at
    stream = observation.stream
    newest = runtime.newest.get(stream)
    if newest is None:
        if len(runtime.newest) >= STREAMS_KEPT:
            runtime.newest.clear()
        runtime.newest[stream] = at
    elif at > newest:
        runtime.newest[stream] = at
    tracked = runtime.tracked.get(key)
    if tracked is None:
        seen = max((t for t in (newest, ticked) if t is not None), default=None)
        if seen is not None and at < seen - runtime.horizon:
            return LATE
        resource, key = condition
        alert = alerts.Alert(key=key, resource=resource, labels={}, annotations={})
        tracked = runtime.tracked[key] = runtimes.Tracked(alert, runtime.rule)
    last_at = tracked.last_at
    if last_at is not None:
        if at < last_at:
            return LATE
        if at == last_at:
            if observation in tracked.last_seen:
                return DUPLICATE
            tracked.last_seen.append(observation)
            return tracked
    tracked.last_at = at
    tracked.last_seen = [observation]
    return tracked


def sweep(runtime: runtimes.Runtime, now: datetime) -> None:
    """Forget the conditions no event could change any more; at most once a horizon."""
    if runtime.swept is not None and now - runtime.swept <= runtime.horizon:
        return
    runtime.swept = now
    for key, tracked in list(runtime.tracked.items()):
        if _forgettable(tracked, runtime, now):
            del runtime.tracked[key]


def newest(rules: Iterable[runtimes.Runtime], also: datetime | None) -> datetime | None:
    """The newest event time any rule matched on any stream, or ``also`` if newer."""
    times = [time for runtime in rules for time in runtime.newest.values()]
    if also is not None:
        times.append(also)
    return max(times, default=None)


def _forgettable(tracked: runtimes.Tracked, runtime: runtimes.Runtime, now: datetime) -> bool:
    if tracked.alert.state is not alerts.State.INACTIVE or tracked.last_at is None:
        return False
    if tracked.window is not None and not tracked.window.expired(now):
        return False
    return now - tracked.last_at > runtime.horizon
