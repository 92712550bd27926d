"""Transitions: the only thing the rules engine sends into Temporal.

An episode starts when a condition starts firing for a resource and ends when it
resolves. Its id derives from (rule, resource, start), so evaluating the same history
twice yields the same ids, and a replayed transition is a no-op in the workflow.
"""

from __future__ import annotations

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

    @property
    def transition_id(self) -> str:
        """Unique per (episode, kind): the workflow dedupes on it."""
        return f"{self.episode}#{self.kind}"


@dataclass(frozen=True, slots=True, kw_only=True)
class TransitionBatch:
    """Transitions for one resource, oldest first: the argument of the ``transitions`` signal."""

    transitions: tuple[Transition, ...] = ()
