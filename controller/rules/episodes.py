"""Episodes: alerts of one rule on one resource, coalesced into one fired/resolved pair.

Several series or events of a rule can point at one resource (two instances of one
service). The resource workflow needs one episode: it starts when the first of them fires
and ends when the last one resolves. Its id derives from (rule, resource, start), so the
same history always yields the same ids.

``cooldown`` is the least time between two episode starts on one resource: an alert that
fires sooner is held, and its episode starts at the end of the cooldown if it is still
firing then. A silenced episode is not announced; if the silence ends while it is still
open it is announced then (its id and start unchanged), and its end is announced only if
its start was.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from controller.domain import resources, transitions
from controller.rules import alerts, model

Silenced = Callable[[model.Rule, resources.ResourceKey, Mapping[str, str], datetime], bool]
"""Whether a transition of (rule, resource, labels) at an instant is silenced."""


@dataclass(slots=True, kw_only=True)
class Episode:
    """An open episode: mutable engine state."""

    id: resources.EpisodeId
    resource: resources.ResourceKey
    started_at: datetime
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    members: set[alerts.AlertKey] = field(default_factory=set)
    announced: bool = False


@dataclass(slots=True, kw_only=True)
class _Held:
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    members: set[alerts.AlertKey] = field(default_factory=set)


class Episodes:
    """The episodes of one rule, by resource."""

    __slots__ = ("_bounds", "_held", "_last_start", "_silenced", "open", "revision", "rule")

    def __init__(
        self,
        rule: model.Rule,
        *,
        revision: str,
        silenced: Silenced,
        bounds: transitions.Bounds | None = None,
    ) -> None:
        """No episode yet; an episode keeps its labels and annotations within ``bounds``."""
        self.rule = rule
        self.revision = revision
        self._silenced = silenced
        self._bounds = bounds or transitions.Bounds()
        self.open: dict[resources.ResourceKey, Episode] = {}
        self._held: dict[resources.ResourceKey, _Held] = {}
        self._last_start: dict[resources.ResourceKey, datetime] = {}

    def apply(self, change: alerts.Change) -> list[transitions.Transition]:
        """Fold one alert change into the episodes (changes come in time order)."""
        strict = change.kind is transitions.TransitionKind.RESOLVED
        out = self._release(change.at, strict=strict, only=change.resource)
        if change.kind is transitions.TransitionKind.FIRED:
            return out + self._fired(change)
        return out + self._resolved(change)

    def _fired(self, change: alerts.Change) -> list[transitions.Transition]:
        episode = self.open.get(change.resource)
        if episode is not None:
            episode.members.add(change.key)
            return []
        ready = self._cooldown_end(change.resource)
        if ready is not None and change.at < ready:
            held = self._held.setdefault(
                change.resource, _Held(labels=change.labels, annotations=change.annotations)
            )
            held.members.add(change.key)
            return []
        return self._start(
            change.resource, change.at, change.labels, change.annotations, {change.key}
        )

    def _resolved(self, change: alerts.Change) -> list[transitions.Transition]:
        held = self._held.get(change.resource)
        if held is not None:
            held.members.discard(change.key)
            if not held.members:
                del self._held[change.resource]
        episode = self.open.get(change.resource)
        if episode is None or change.key not in episode.members:
            return []
        episode.members.discard(change.key)
        if episode.members:
            return []
        return self.close(change.resource, change.at)

    def holds(self, resource: resources.ResourceKey) -> bool:
        """Whether ``resource`` has an open episode, or one held back by the cooldown."""
        return resource in self.open or resource in self._held

    def seed(self, episode: transitions.OpenEpisode, members: set[alerts.AlertKey]) -> None:
        """Take up ``episode``, open in its resource workflow, as already announced.

        Nothing is sent: the workflow has it. Its labels and annotations are not known
        (the workflow keeps them); its ``resolved`` carries ``alertname`` only.
        """
        self.open[episode.resource] = Episode(
            id=episode.episode,
            resource=episode.resource,
            started_at=episode.started_at,
            labels={"alertname": self.rule.name},
            annotations={},
            members=set(members),
            announced=True,
        )
        if self.rule.cooldown:
            self._last_start[episode.resource] = episode.started_at

    def close_unjoined(self, at: datetime) -> list[transitions.Transition]:
        """End the episodes taken over with no condition that no condition joined since."""
        out: list[transitions.Transition] = []
        for resource, episode in list(self.open.items()):
            if not episode.members:
                out += self.close(resource, at)
        return out

    def forget(self, episode_id: resources.EpisodeId) -> set[alerts.AlertKey]:
        """Undo the start of ``episode_id`` (its ``fired`` was refused); its alerts' keys.

        The episode is gone as if it never started, so the next event that makes its
        condition true starts it again.
        """
        for resource, episode in list(self.open.items()):
            if episode.id == episode_id:
                del self.open[resource]
                if self._last_start.get(resource) == episode.started_at:
                    del self._last_start[resource]
                return episode.members
        return set()

    def close(self, resource: resources.ResourceKey, at: datetime) -> list[transitions.Transition]:
        """End the open episode of ``resource`` at ``at``."""
        episode = self.open.pop(resource, None)
        self._held.pop(resource, None)
        if episode is None or not episode.announced:
            return []
        at = max(at, episode.started_at)
        return [self._transition(episode, transitions.TransitionKind.RESOLVED, at)]

    def advance(self, now: datetime) -> list[transitions.Transition]:
        """Start held episodes whose cooldown ended, announce those whose silence ended."""
        out = self._release(now, strict=False)
        for episode in self.open.values():
            if not episode.announced and not self._silenced(
                self.rule, episode.resource, episode.labels, now
            ):
                episode.announced = True
                out.append(self._transition(episode, transitions.TransitionKind.FIRED, now))
        if self.rule.cooldown and len(self._last_start) > len(self.open):
            horizon = now - self.rule.cooldown
            for resource, started in list(self._last_start.items()):
                if started < horizon and resource not in self.open:
                    del self._last_start[resource]
        return out

    def _release(
        self, now: datetime, *, strict: bool, only: resources.ResourceKey | None = None
    ) -> list[transitions.Transition]:
        """Start the held episodes (of ``only``) whose cooldown ends before (or at) ``now``."""
        out: list[transitions.Transition] = []
        candidates = list(self._held) if only is None else [only]
        for resource in (resource for resource in candidates if resource in self._held):
            ready = self._cooldown_end(resource) or now
            if ready < now or (ready == now and not strict):
                held = self._held.pop(resource)
                out += self._start(resource, ready, held.labels, held.annotations, held.members)
        return out

    def _cooldown_end(self, resource: resources.ResourceKey) -> datetime | None:
        if not self.rule.cooldown:
            return None
        last = self._last_start.get(resource)
        return None if last is None else last + self.rule.cooldown

    def _start(
        self,
        resource: resources.ResourceKey,
        at: datetime,
        labels: Mapping[str, str],
        annotations: Mapping[str, str],
        members: set[alerts.AlertKey],
    ) -> list[transitions.Transition]:
        keep = {name for name, _ in self.rule.labels} | {"alertname"}
        labels = self._bounds.labels(labels, keep=keep)
        episode = Episode(
            id=transitions.episode_id(rule=self.rule.name, resource=resource, started_at=at),
            resource=resource,
            started_at=at,
            labels=labels,
            annotations=self._bounds.annotations(annotations),
            members=set(members),
        )
        self.open[resource] = episode
        if self.rule.cooldown:
            self._last_start[resource] = at
        if self._silenced(self.rule, resource, labels, at):
            return []
        episode.announced = True
        return [self._transition(episode, transitions.TransitionKind.FIRED, at)]

    def _groups(self, episode: Episode) -> tuple[transitions.GroupValues, ...]:
        """The ``group_by`` values of an event rule's episode's conditions, bounded like labels.

        An event condition's key is its resource, then its ``group_by`` values.
        """
        if not self.rule.group_by or self.rule.family is not model.Family.EVENT:
            return ()
        value = self._bounds.value
        found = sorted(
            tuple((name, value(text)) for name, text in key[1:]) for key in episode.members
        )
        return tuple(found[: self._bounds.max_labels])

    def _transition(
        self, episode: Episode, kind: transitions.TransitionKind, at: datetime
    ) -> transitions.Transition:
        fired = kind is transitions.TransitionKind.FIRED
        return transitions.Transition(
            kind=kind,
            rule=self.rule.name,
            resource=episode.resource,
            episode=episode.id,
            started_at=episode.started_at,
            at=at,
            severity=self.rule.severity,
            remediation=self.rule.remediation,
            labels=dict(episode.labels),
            annotations=dict(episode.annotations),
            revision=self.revision,
            groups=self._groups(episode) if fired else (),
        )
