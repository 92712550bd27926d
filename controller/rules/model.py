"""Rules as the engine sees them: compiled, typed, immutable.

``loader`` builds these from ``schema`` models after every check has passed, so the engine
never meets a duration string, an uncompiled expression or an unparsed template.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cached_property

from controller.domain import observations, transitions
from controller.rules import expressions, templates

DEFAULT_STALE_AFTER = timedelta(minutes=5)
"""An event rule's condition counts as false after this long without a qualifying event."""


class Family(StrEnum):
    """How a rule's condition is evaluated."""

    PROMETHEUS = "prometheus"
    """``expr`` is queried at evaluation times; every returned series is a true condition."""
    EVENT = "event"
    """``match``/``when`` (or a correlation) per event, in event time."""
    ALERTMANAGER = "alertmanager"
    """An alert that already fired upstream starts the episode; its resolution ends it."""


class Combine(StrEnum):
    """How the conditions of a correlation combine."""

    ALL = "all"
    ANY = "any"


@dataclass(frozen=True, slots=True, kw_only=True)
class Correlation:
    """True while all (or any) of ``conditions`` matched an event within ``within``."""

    combine: Combine
    conditions: tuple[expressions.Expression, ...]
    within: timedelta


@dataclass(frozen=True, slots=True, kw_only=True)
class Count:
    """True while at least ``threshold`` qualifying events fell within ``within``."""

    threshold: int
    within: timedelta


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """One compiled rule.

    Attributes:
        name: unique in the rule set; the ``alertname`` of its alerts.
        group: the name of its group.
        source: the observations it reads.
        family: how its condition is evaluated.
        expr: PromQL (Prometheus rules).
        stream: only observations of this stream (Kafka topic, webhook path), if set.
        match: which observations the rule reads (event and Alertmanager rules).
        when: the condition per matching event; absent means "true".
        correlation: ``all``/``any`` of conditions within a window.
        count: at least N matches within a window.
        hold: ``for``.
        keep_firing_for: ``keep_firing_for``.
        stale_after: event rules: silence longer than this counts as false.
        resource: template of the resource key.
        remediation: the plan name, if any.
        severity: carried into transitions.
        cooldown: minimum time between two episode starts on one resource.
        group_by: labels that tell apart conditions on one resource (event rules).
        labels: extra alert labels (templates).
        annotations: annotations (templates).
        digest: hash of everything that defines the rule's state; hot reload keeps the
            state of a rule whose digest did not change.
    """

    name: str
    group: str
    source: observations.SourceKind
    family: Family
    expr: str | None = None
    stream: str | None = None
    match: expressions.Expression | None = None
    when: expressions.Expression | None = None
    correlation: Correlation | None = None
    count: Count | None = None
    hold: timedelta = timedelta(0)
    keep_firing_for: timedelta = timedelta(0)
    stale_after: timedelta = DEFAULT_STALE_AFTER
    resource: templates.Template
    remediation: str | None = None
    severity: transitions.Severity = transitions.Severity.WARNING
    cooldown: timedelta = timedelta(0)
    group_by: tuple[str, ...] = ()
    labels: tuple[tuple[str, templates.Template], ...] = ()
    annotations: tuple[tuple[str, templates.Template], ...] = ()
    digest: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Group:
    """A named list of rules evaluated together (Prometheus rules at ``interval``)."""

    name: str
    interval: timedelta | None = None
    rules: tuple[Rule, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Silence:
    """Transitions matching ``match`` (CEL over labels, rule, resource) are held back."""

    name: str
    match: expressions.Expression
    starts_at: datetime
    ends_at: datetime
    comment: str = ""

    def active(self, at: datetime) -> bool:
        """Whether the silence covers instant ``at`` (start included, end excluded)."""
        return self.starts_at <= at < self.ends_at


@dataclass(frozen=True, slots=True, kw_only=True)
class Revision:
    """Which rule files produced a transition: their content hash, and git commit if known."""

    content_hash: str
    commit: str | None = None

    def __str__(self) -> str:
        """Render as ``sha256:<12 hex>`` with ``@git:<12 hex>`` when the commit is known."""
        text = f"sha256:{self.content_hash[:12]}"
        return f"{text}@git:{self.commit[:12]}" if self.commit else text


@dataclass(frozen=True, kw_only=True)
class RuleSet:
    """Every enabled rule, by group, with the silences written in the files."""

    groups: tuple[Group, ...] = ()
    silences: tuple[Silence, ...] = ()
    revision: Revision = field(
        default_factory=lambda: Revision(content_hash=hashlib.sha256().hexdigest())
    )

    @cached_property
    def rules(self) -> dict[str, Rule]:
        """Every rule by name."""
        return {rule.name: rule for group in self.groups for rule in group.rules}

    @cached_property
    def groups_by_name(self) -> dict[str, Group]:
        """Every group by name."""
        return {group.name: group for group in self.groups}
