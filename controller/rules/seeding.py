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

Kafka rules rebuild by re-reading ``kafka.rebuild_window`` of their topics, which cannot
rebuild an episode that started before it: the replay would find the condition inactive,
start a second episode (never sent) at its first true event, and the all-clear would
resolve that one, leaving the real episode open for good. So before a partition is
rebuilt the engine is told which episodes are open (``Engine.expect``), and each is decided
at the first event of its resource that the engine sees, replayed or live
(``take_pending``): it is taken up as above, as of that event, unless that event lies far
enough before the episode's start that the replay rebuilds the episode itself (same id).
Deciding at an event, not at once, keeps each episode with the replica that reads its
resource's partition: another replica never hears of it, so it never resolves it stale.

Prometheus rules rebuild by replaying ``query_range`` over their lookback; a series firing
since before it looked new, and the rebuild sent a second episode (a second page) while
the all-clear resolved only that one. Before a rule is rebuilt its open episodes are taken
over (``take_over``): open, already announced, with no condition yet; the first series of
the resource that fires in the replay joins the episode instead of starting one. An
episode no series joined in the replay has ended while nobody watched: it is resolved.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from enum import StrEnum

from controller.domain import resources, transitions
from controller.rules import alerts, model, runtimes


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
    REPLAYED = "replayed"
    """Its start lies in what the Kafka rebuild re-reads: the replay starts it again (same id)."""


def lookback(rule: model.Rule) -> timedelta:
    """How long before an episode's start the events that started it can lie."""
    window = timedelta(0)
    if rule.count is not None:
        window = rule.count.within
    elif rule.correlation is not None:
        window = rule.correlation.within
    return rule.hold + window


def expect(
    runtime: runtimes.Runtime,
    found: Collection[transitions.OpenEpisode],
) -> list[tuple[Outcome, transitions.OpenEpisode]]:
    """Make ``found`` (an event rule's open episodes) the ones ``runtime`` waits for.

    Those the engine already has state for are not waited for (``KNOWN``): that state
    stands. The others wait in ``runtime.pending`` for the first event of their resource
    (``take_pending``).

    Returns:
        The episodes decided at once, with their outcome.
    """
    runtime.pending.clear()
    if not found:
        return []
    tracked = {key[0][1] for key in runtime.tracked}
    decided = []
    for episode in found:
        resource = episode.resource
        if runtime.episodes.holds(resource) or resource in tracked:
            decided.append((Outcome.KNOWN, episode))
        else:
            runtime.pending[resource] = episode
    return decided


def take_pending(
    runtime: runtimes.Runtime, resource: resources.ResourceKey, *, at: datetime
) -> tuple[Outcome, transitions.OpenEpisode] | None:
    """Decide the episode ``runtime`` waits for on ``resource``, at an event at ``at``.

    Called before the event is evaluated. ``None`` if no episode waits there.
    """
    episode = runtime.pending.pop(resource, None)
    if episode is None:
        return None
    if at <= episode.started_at - lookback(runtime.rule):
        # The events that started it come after this one: the replay rebuilds it.
        return Outcome.REPLAYED, episode
    return take_up(runtime, episode, at=at), episode


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


def take_over(runtime: runtimes.Runtime, episode: transitions.OpenEpisode) -> Outcome:
    """Open ``episode`` (a Prometheus rule's) in ``runtime``, announced, with no condition yet."""
    if runtime.episodes.holds(episode.resource):
        return Outcome.KNOWN
    runtime.episodes.seed(episode, set())
    return Outcome.SEEDED
