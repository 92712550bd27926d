"""What may enter the rules engine: event times near the receive time.

Checked before the engine sees an observation, so a refused one changes no state at all:
a webhook answers 400 naming the problem (its sender can fix and resend), a Kafka message
goes to the dead-letter topic. Each refusal is counted by reason.

Event time is bounded against receive time. An event stamped further in the future than
``max_clock_skew`` is refused, not clamped: its sender's clock is wrong, and a clamped time
would be a time nobody observed. Without this bound one producer running minutes ahead
would make every later event of its conditions "late" for those minutes. Events from the
past are not bounded here: a backlog is legitimately old, and the engine drops what is too
late for a condition (counted as ``late``). Only event sources (Kafka, webhooks, GitLab)
are bounded; Alertmanager's times come from Prometheus and Alertmanager themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from controller import errors
from controller.domain import durations, observations

_EVENT_SOURCES = frozenset(
    {observations.SourceKind.KAFKA, observations.SourceKind.WEBHOOK, observations.SourceKind.GITLAB}
)


class Reason(StrEnum):
    """Why an observation was refused (the ``reason`` label of the drop counter)."""

    CLOCK_SKEW = "clock_skew"


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Bounds on what enters the engine.

    Attributes:
        max_clock_skew: how far an event's time may be ahead of its receive time.
    """

    max_clock_skew: timedelta = timedelta(minutes=1)


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal:
    """Why one observation may not enter, and the error to answer its sender with."""

    reason: Reason
    error: errors.PayloadError


def latest(now: datetime, limits: Limits) -> datetime:
    """The latest event time ``refusal`` admits at ``now`` (for checking many at once).

    An event source's observation at or before it is admitted; one after it is refused.
    """
    try:
        return now + limits.max_clock_skew
    except OverflowError:  # a skew reaching past datetime's range admits every time
        return datetime.max.replace(tzinfo=UTC)


def refusal(
    observation: observations.Observation, *, now: datetime, limits: Limits
) -> Refusal | None:
    """Why ``observation``, received at ``now``, may not enter the engine; ``None`` if it may."""
    if observation.source in _EVENT_SOURCES and observation.at - now > limits.max_clock_skew:
        ahead = durations.format_duration(observation.at - now)
        allowed = durations.format_duration(limits.max_clock_skew)
        return Refusal(
            reason=Reason.CLOCK_SKEW,
            error=errors.PayloadError(
                "(event time)",
                f"event time {observation.at.isoformat()} is {ahead} ahead of the time it was "
                f"received ({now.isoformat()}); ingest.max_clock_skew allows {allowed}: "
                "check the sender's clock",
            ),
        )
    return None
