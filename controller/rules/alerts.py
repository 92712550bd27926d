"""Per-series alert state: pending, firing, keep_firing_for, exactly as Prometheus does it.

``PrometheusAlerts`` is a port of ``AlertingRule.Eval`` (Prometheus 2.42): a series present
at an evaluation becomes pending; it fires at the first evaluation at least ``for`` after it
became active; an evaluation without it resets a pending alert, and resolves a firing one
unless ``keep_firing_for`` holds it, in which case a reappearing series continues it.

``EventAlert`` is the same automaton in event time. An event makes the condition true or
false; a true condition stays true until ``until`` (its staleness deadline or window end)
unless a later event says otherwise. Deadlines fall at exact instants computed from event
times (``active_at + for``, ``until``, ``cleared_at + keep_firing_for``), so when the
engine learns of them (next event or ``tick``) never changes what happened or when: replaying
the same events gives the same transitions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from controller import errors
from controller.domain import resources, transitions
from controller.rules import model, templates

_ZERO = timedelta(0)

AlertKey = tuple[tuple[str, str], ...]
"""An alert's identity: its sorted labels (Prometheus) or resource and group_by values."""


class State(StrEnum):
    """Where an alert is in its life."""

    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"


class Sample(Protocol):
    """One series of a PromQL result at an evaluation time."""

    @property
    def labels(self) -> Mapping[str, str]:
        """The series labels, ``__name__`` included when the expression keeps it."""

    @property
    def value(self) -> float:
        """The sample value."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """An alert fired or resolved at ``at``."""

    kind: transitions.TransitionKind
    at: datetime
    key: AlertKey
    resource: resources.ResourceKey
    labels: Mapping[str, str]
    annotations: Mapping[str, str]


class Alert:
    """One alert of one rule, mutable engine state."""

    __slots__ = (
        "active_at",
        "annotations",
        "cleared_at",
        "fired_at",
        "key",
        "labels",
        "resource",
        "state",
        "until",
        "value",
    )

    def __init__(
        self,
        *,
        key: AlertKey,
        resource: resources.ResourceKey,
        labels: dict[str, str],
        annotations: dict[str, str],
        value: float | None = None,
    ) -> None:
        """An inactive alert."""
        self.key = key
        self.resource = resource
        self.labels = labels
        self.annotations = annotations
        self.value = value
        self.state = State.INACTIVE
        self.active_at: datetime | None = None
        self.fired_at: datetime | None = None
        self.cleared_at: datetime | None = None
        self.until: datetime | None = None

    def change(self, kind: transitions.TransitionKind, at: datetime) -> Change:
        """This alert's ``kind`` transition at ``at``."""
        return Change(
            kind=kind,
            at=at,
            key=self.key,
            resource=self.resource,
            labels=self.labels,
            annotations=self.annotations,
        )


def alert_labels(
    rule: model.Rule,
    labels: Mapping[str, str],
    *,
    value: float | None = None,
    body: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """An alert's labels: the series' (less ``__name__``), the rule's, then ``alertname``."""
    result = {name: text for name, text in labels.items() if name != "__name__"}
    for name, template in rule.labels:
        result[name] = templates.render(template, labels=labels, value=value, body=body)
    result["alertname"] = rule.name
    return result


def annotations_of(
    rule: model.Rule,
    labels: Mapping[str, str],
    *,
    value: float | None = None,
    body: Mapping[str, Any] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The rule's annotations rendered for one series or event."""
    return {
        name: templates.render(
            template, labels=labels, value=value, body=body, annotations=annotations
        )
        for name, template in rule.annotations
    }


class DuplicateLabelsError(errors.HomeostatError):
    """Two series of one evaluation have the same labels after the rule's labels apply.

    ``__name__`` is dropped and the rule's labels added; Prometheus then fails such an
    evaluation and changes no state.
    """


class PrometheusAlerts:
    """The alerts of one Prometheus rule, advanced one evaluation at a time."""

    __slots__ = ("active", "rule")

    def __init__(self, rule: model.Rule) -> None:
        """No alert yet."""
        self.rule = rule
        self.active: dict[AlertKey, Alert] = {}

    def evaluate(
        self, at: datetime, series: Iterable[tuple[resources.ResourceKey, Sample]]
    ) -> list[Change]:
        """Apply one evaluation at ``at`` whose result is ``series`` (each with its resource).

        Raises:
            DuplicateLabelsError: two series have one label set; no state changed.
        """
        rule = self.rule
        present: dict[AlertKey, Alert] = {}
        for resource, sample in series:
            labels = _grouped(sample.labels, rule.group_by)
            final = alert_labels(rule, labels, value=sample.value)
            key = tuple(sorted(final.items()))
            if key in present:
                raise DuplicateLabelsError(
                    "vector contains metrics with the same labelset after applying alert labels"
                )
            annotations = annotations_of(rule, labels, value=sample.value)
            present[key] = Alert(
                key=key,
                resource=resource,
                labels=final,
                annotations=annotations,
                value=sample.value,
            )
        for key, fresh in present.items():
            existing = self.active.get(key)
            if existing is not None:
                existing.value = fresh.value
                existing.annotations = fresh.annotations
                continue
            fresh.state = State.PENDING
            fresh.active_at = at
            self.active[key] = fresh
        changes: list[Change] = []
        for key, alert in list(self.active.items()):
            if key not in present:
                if self._keeps_firing(alert, at):
                    continue
                del self.active[key]
                if alert.state is State.FIRING:
                    changes.append(alert.change(transitions.TransitionKind.RESOLVED, at))
                continue
            alert.cleared_at = None
            if alert.state is State.PENDING and at - _known(alert.active_at) >= rule.hold:
                alert.state = State.FIRING
                alert.fired_at = at
                changes.append(alert.change(transitions.TransitionKind.FIRED, at))
        return changes

    def _keeps_firing(self, alert: Alert, at: datetime) -> bool:
        if alert.state is not State.FIRING or self.rule.keep_firing_for <= _ZERO:
            return False
        if alert.cleared_at is None:
            alert.cleared_at = at
        return at - alert.cleared_at < self.rule.keep_firing_for


def _grouped(labels: Mapping[str, str], group_by: tuple[str, ...]) -> Mapping[str, str]:
    if not group_by:
        return labels
    return {name: labels[name] for name in group_by if name in labels}


def _known(moment: datetime | None) -> datetime:
    if moment is None:  # pragma: no cover - set whenever an alert leaves INACTIVE
        raise AssertionError("alert has no active_at")
    return moment


def advance(alert: Alert, rule: model.Rule, now: datetime, *, inclusive: bool) -> list[Change]:
    """Apply the deadlines of an event-time alert that fall before ``now``.

    With ``inclusive`` (a ``tick``) a deadline at exactly ``now`` is applied too; before an
    event at ``now`` it is not, because that event may still decide it.
    """
    changes: list[Change] = []

    def reached(deadline: datetime) -> bool:
        return deadline <= now if inclusive else deadline < now

    until = alert.until
    if alert.state is State.PENDING and until is not None:
        fire_at = _known(alert.active_at) + rule.hold
        if fire_at <= until and reached(fire_at):
            alert.state = State.FIRING
            alert.fired_at = fire_at
            changes.append(alert.change(transitions.TransitionKind.FIRED, fire_at))
        elif until < now:
            alert.state = State.INACTIVE
    if alert.state is State.FIRING:
        if alert.cleared_at is None and until is not None and until < now:
            alert.cleared_at = until
        if alert.cleared_at is not None:
            resolve_at = alert.cleared_at + rule.keep_firing_for
            if reached(resolve_at):
                changes.append(_resolve(alert, resolve_at))
    return changes


def apply(
    alert: Alert, rule: model.Rule, at: datetime, *, truth: bool, until: datetime | None
) -> list[Change]:
    """Apply one evaluation of an event-time alert's condition at ``at``."""
    if truth:
        if alert.state is State.INACTIVE:
            alert.state = State.PENDING
            alert.active_at = at
        alert.until = until
        alert.cleared_at = None
        if alert.state is State.PENDING and at - _known(alert.active_at) >= rule.hold:
            alert.state = State.FIRING
            alert.fired_at = at
            return [alert.change(transitions.TransitionKind.FIRED, at)]
        return []
    if alert.state is State.PENDING:
        alert.state = State.INACTIVE
    elif alert.state is State.FIRING:
        if alert.cleared_at is None:
            alert.cleared_at = at
        if at - alert.cleared_at >= rule.keep_firing_for:
            return [_resolve(alert, alert.cleared_at + rule.keep_firing_for)]
    return []


def _resolve(alert: Alert, at: datetime) -> Change:
    alert.state = State.INACTIVE
    alert.cleared_at = None
    alert.until = None
    return alert.change(transitions.TransitionKind.RESOLVED, at)
