"""Transitions: the only thing the rules engine sends into Temporal.

An episode starts when a condition starts firing for a resource and ends when it
resolves. Its id derives from (rule, resource, start), so evaluating the same history
twice yields the same ids, and a replayed transition is a no-op in the workflow.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from controller.domain import resources


class TransitionKind(StrEnum):
    """What happened to an episode."""

    FIRED = "fired"
    RESOLVED = "resolved"


class Severity(StrEnum):
    """Severity levels, named as PagerDuty names them."""

    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


def episode_id(
    *, rule: str, resource: resources.ResourceKey, started_at: datetime
) -> resources.EpisodeId:
    """The deterministic id of the episode of ``rule`` on ``resource`` begun at ``started_at``."""
    if started_at.tzinfo is None:
        raise ValueError("started_at must be timezone-aware")
    stamp = started_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return resources.EpisodeId(f"{rule}/{resource}/{stamp}")


GroupValues = tuple[tuple[str, str], ...]
"""One condition of an episode on its resource: the ``group_by`` labels' (name, value) pairs."""

DROPPED_LABELS = "homeostat_dropped_labels"
"""The label that says how many labels a transition left out (``Bounds.max_labels``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Bounds:
    """How much of an event's labels and annotations a transition carries.

    A transition travels in a Temporal signal and stays in its resource workflow's state
    while the episode is open; Temporal refuses payloads over about 2 MB and gRPC messages
    over 4 MB. So every value is cut to ``max_value_length`` characters with a marker that
    says how much was cut, and past ``max_labels`` labels the rest are left out (the rule's
    own labels and ``alertname`` always stay), counted in ``homeostat_dropped_labels``.
    A label whose name is longer than ``max_name_length`` is left out the same way.

    Attributes:
        max_value_length: characters of one label or annotation value.
        max_labels: labels of one transition.
        max_name_length: characters of one label name.
    """

    max_value_length: int = 2048
    max_labels: int = 64
    max_name_length: int = 128

    def labels(self, labels: Mapping[str, str], *, keep: Collection[str] = ()) -> dict[str, str]:
        """``labels`` within these bounds, in their order; the names in ``keep`` stay."""
        named = [name for name in labels if name in keep or len(name) <= self.max_name_length]
        room = self.max_labels - sum(1 for name in named if name in keep)
        others = len(named) - (self.max_labels - room)
        if others > room or len(named) < len(labels):
            room -= 1  # one for the count of labels left out
        kept: dict[str, str] = {}
        for name in named:
            if name not in keep:
                if room <= 0:
                    continue
                room -= 1
            kept[name] = self.value(labels[name])
        if len(kept) < len(labels):
            kept[DROPPED_LABELS] = str(len(labels) - len(kept))
        return kept

    def annotations(self, annotations: Mapping[str, str]) -> dict[str, str]:
        """``annotations`` with every value within ``max_value_length``."""
        return {name: self.value(text) for name, text in annotations.items()}

    def value(self, text: str) -> str:
        """``text``, or its start and a marker saying how many characters were cut."""
        if len(text) <= self.max_value_length:
            return text
        cut = len(text) - self.max_value_length
        return f"{text[: self.max_value_length]}...[{cut} characters cut]"


@dataclass(frozen=True, slots=True, kw_only=True)
class Transition:
    """An episode fired or resolved; the signal payload of the resource workflow.

    Attributes:
        kind: fired or resolved.
        rule: the rule's name.
        resource: the resource the episode is about.
        episode: the episode's deterministic id.
        started_at: when the episode started firing (event or evaluation time).
        at: when this transition happened (equal to ``started_at`` for ``fired``).
        severity: the rule's severity.
        remediation: the remediation plan the rule names, if any.
        labels: the labels of the firing series or event, after the rule's own labels.
        annotations: rendered annotations (summary, description, runbook_url ...).
        revision: the rule set's revision (content hash, and git commit when known).
        groups: ``fired`` of a rule with ``group_by``: the conditions that started the
            episode, each by its ``group_by`` values (bounded like labels). The resource
            workflow keeps them in its memo, so a restarted engine knows which conditions
            the all-clear must clear (``OpenEpisode``).
    """

    kind: TransitionKind
    rule: str
    resource: resources.ResourceKey
    episode: resources.EpisodeId
    started_at: datetime
    at: datetime
    severity: Severity = Severity.WARNING
    remediation: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    revision: str = ""
    groups: tuple[GroupValues, ...] = ()

    @property
    def transition_id(self) -> str:
        """Unique per (episode, kind): the workflow dedupes on it."""
        return f"{self.episode}#{self.kind}"


@dataclass(frozen=True, slots=True, kw_only=True)
class TransitionBatch:
    """Transitions for one resource, oldest first: the argument of the ``transitions`` signal."""

    transitions: tuple[Transition, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenEpisode:
    """An episode its resource workflow holds open, as the rules engine is seeded with it.

    A restarted engine has no state for the conditions of webhook and GitLab rules (no
    topic to re-read): it takes these from Temporal instead (``Engine.seed``).

    Attributes:
        rule: the rule that fired.
        resource: the resource the episode is about.
        episode: the episode's id.
        started_at: when it started firing.
        groups: the conditions that started it, by ``group_by`` values (``Transition.groups``).
    """

    rule: str
    resource: resources.ResourceKey
    episode: resources.EpisodeId
    started_at: datetime
    groups: tuple[GroupValues, ...] = ()
