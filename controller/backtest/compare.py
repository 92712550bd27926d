"""Two backtests of one window, lined up: what a change of the rule set adds, removes, moves.

Episodes are matched per (rule, resource): an episode of one run pairs with one of the
other when they overlap in time or start within ``tolerance`` of each other. A pair whose
start or end moved by more than ``tolerance`` (one evaluation interval) is ``shifted``; an
episode left without a pair was ``added`` (only the new run has it) or ``removed``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from controller.backtest import replay

_FOREVER = datetime.max.replace(tzinfo=UTC)


class Change(StrEnum):
    """How an episode differs between the two runs."""

    ADDED = "added"
    REMOVED = "removed"
    SHIFTED = "shifted"


@dataclass(frozen=True, slots=True, kw_only=True)
class Difference:
    """One episode that differs: ``before`` in the base run, ``after`` in the new one."""

    change: Change
    rule: str
    resource: str
    before: replay.Episode | None
    after: replay.Episode | None


def compare(
    before: Sequence[replay.Episode],
    after: Sequence[replay.Episode],
    *,
    tolerance: Callable[[str], timedelta],
) -> list[Difference]:
    """The differences from ``before`` (``--against``) to ``after``, by time then rule."""
    keys = sorted({(item.rule, item.resource) for item in (*before, *after)})
    found: list[Difference] = []
    for rule, resource in keys:
        old = [item for item in before if (item.rule, item.resource) == (rule, resource)]
        new = [item for item in after if (item.rule, item.resource) == (rule, resource)]
        found += _one(old, new, rule=rule, resource=resource, tolerance=tolerance(rule))
    return sorted(found, key=lambda item: (_start(item), item.rule, item.resource))


def _one(
    old: list[replay.Episode],
    new: list[replay.Episode],
    *,
    rule: str,
    resource: str,
    tolerance: timedelta,
) -> list[Difference]:
    found: list[Difference] = []
    unmatched = list(old)
    for episode in new:
        partner = next((item for item in unmatched if _pairs(item, episode, tolerance)), None)
        if partner is None:
            found.append(
                Difference(
                    change=Change.ADDED, rule=rule, resource=resource, before=None, after=episode
                )
            )
            continue
        unmatched.remove(partner)
        if _moved(partner, episode, tolerance):
            found.append(
                Difference(
                    change=Change.SHIFTED,
                    rule=rule,
                    resource=resource,
                    before=partner,
                    after=episode,
                )
            )
    found += [
        Difference(change=Change.REMOVED, rule=rule, resource=resource, before=item, after=None)
        for item in unmatched
    ]
    return found


def _pairs(left: replay.Episode, right: replay.Episode, tolerance: timedelta) -> bool:
    overlap = left.start <= _end(right) and right.start <= _end(left)
    return overlap or abs(left.start - right.start) <= tolerance


def _moved(left: replay.Episode, right: replay.Episode, tolerance: timedelta) -> bool:
    if abs(left.start - right.start) > tolerance:
        return True
    if left.end is None or right.end is None:
        return (left.end is None) != (right.end is None)
    return abs(left.end - right.end) > tolerance


def _end(episode: replay.Episode) -> datetime:
    return episode.end if episode.end is not None else _FOREVER


def _start(difference: Difference) -> datetime:
    episode = difference.after or difference.before
    if episode is None:  # pragma: no cover - a difference has at least one side
        raise ValueError("empty difference")
    return episode.start
