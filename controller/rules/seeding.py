"""A restarted engine takes up the episodes that resource workflows hold open.

Kafka rules rebuild their state by reading their topics back, Prometheus rules with
``query_range``, and Alertmanager sends again what still fires (its episode ids derive
from ``startsAt``). Webhook and GitLab events (``webhooks.mode: direct``) leave nothing to
read back: a restart forgot their firing conditions, so the all-clear that followed found
nothing to resolve and the episode stayed open for good. The resource workflows know
their open episodes; the engine is seeded with them (``Engine.seed``), before it sees the
first event of those sources.

A seeded condition is firing since its episode started, with the same episode id, and as
of the seed time it counts as just confirmed: staleness (``stale_after``) runs from the
seed time, a count or correlation window is full at the seed time. The first event
afterwards decides it as usual (a false one resolves the episode). Seeding sends nothing.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from controller.domain import transitions
from controller.rules import alerts, runtimes


class Outcome(StrEnum):
    """What seeding did with one open episode (a metric label)."""

    SEEDED = "seeded"
    """Its conditions are firing and the episode open in the engine."""
    UNKNOWN_RULE = "unknown_rule"
    """Its rule is not in the rule set in force (removed or renamed)."""
    OTHER_SOURCE = "other_source"
    """Its rule rebuilds its state otherwise (Kafka, Prometheus, Alertmanager)."""
    KNOWN = "known"
    """The engine already has state for it (events arrived first); that state stands."""
    NO_GROUPS = "no_groups"
    """A ``group_by`` rule's episode recorded without its conditions (an older version)."""


def take_up(
    runtime: runtimes.Runtime, episode: transitions.OpenEpisode, *, at: datetime
) -> Outcome:
    """Make ``episode``'s conditions firing in ``runtime`` (an event rule's), as of ``at``."""
    rule = runtime.rule
    resource = episode.resource
    if runtime.episodes.holds(resource):
        return Outcome.KNOWN
    base: alerts.AlertKey = (("", resource),)
    if rule.group_by:
        if not episode.groups:
            return Outcome.NO_GROUPS
        keys = {base + group for group in episode.groups}
    else:
        keys = {base}
    if any(key in runtime.tracked for key in keys):
        return Outcome.KNOWN
    for key in keys:
        alert = alerts.Alert(key=key, resource=resource, labels={}, annotations={})
        alert.state = alerts.State.FIRING
        alert.active_at = episode.started_at - rule.hold
        alert.fired_at = episode.started_at
        tracked = runtimes.Tracked(alert, rule)
        if tracked.window is not None:
            tracked.window.fill(at)
            alert.until = tracked.window.truth(at)[1]
        else:
            alert.until = at + rule.stale_after
        runtime.tracked[key] = tracked
        runtime.due.add(key)
    runtime.episodes.seed(episode, keys)
    return Outcome.SEEDED
