"""What the rules engine reports of its rules: alerts, counts, conditions and health.

Firing alerts (``promtool``'s view), live counts for metrics, the conditions pending or
firing (``/v1/alerts``) and each rule's health (``/v1/rules``).

Each function reads one rule's ``runtimes.Runtime``; the engine calls them for every rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from controller.domain import resources
from controller.rules import alerts, runtimes


@dataclass(frozen=True, slots=True, kw_only=True)
class FiringAlert:
    """An alert in the firing state, as ``promtool test rules`` lists them."""

    rule: str
    resource: resources.ResourceKey
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    active_at: datetime | None
    fired_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleCounts:
    """One rule's live counts, for metrics."""

    rule: str
    evaluations: int
    """Observations and query results evaluated against the rule since the engine started."""
    pending: int
    """Conditions true but not held for ``for`` yet."""
    firing: int
    """Conditions firing."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConditionState:
    """A condition pending or firing now: what ``/v1/alerts`` and ``rules status`` list.

    Attributes:
        rule: the rule.
        resource: the resource it is about.
        state: pending (true, not yet for ``hold``) or firing.
        active_at: since when it is true.
        fired_at: when it fired (``None`` while pending).
        hold: the rule's ``for``.
        labels: the alert's labels.
        value: the last sample value (Prometheus rules; ``None`` for events).
        last_at: when an observation last concerned it (events), or the last evaluation.
    """

    rule: str
    resource: resources.ResourceKey
    state: alerts.State
    active_at: datetime | None
    fired_at: datetime | None
    hold: timedelta
    labels: Mapping[str, str]
    value: float | None = None
    last_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleState:
    """One rule's health: what it was last evaluated on and what went wrong.

    Attributes:
        rule: the rule.
        family: ``prometheus``, ``alertmanager`` or ``event``.
        evaluations: observations and query results evaluated against it so far.
        last_at: the time of the last one (event time, or evaluation time).
        pending: conditions pending now.
        firing: conditions firing now.
        problems: observations its expressions could not be evaluated on.
        last_problem: the last such problem.
        last_problem_at: when.
    """

    rule: str
    family: str
    evaluations: int
    last_at: datetime | None
    pending: int
    firing: int
    problems: int = 0
    last_problem: str = ""
    last_problem_at: datetime | None = None


def firing(name: str, runtime: runtimes.Runtime) -> list[FiringAlert]:
    """The alerts of rule ``name`` that are firing now, sorted by labels."""
    if runtime.prometheus is not None:
        found: Iterable[alerts.Alert] = runtime.prometheus.active.values()
    elif runtime.alertmanager is not None:
        found = runtime.alertmanager.active.values()
    else:
        found = (tracked.alert for tracked in runtime.tracked.values())
    return [
        FiringAlert(
            rule=name,
            resource=alert.resource,
            labels=dict(alert.labels),
            annotations=dict(alert.annotations),
            active_at=alert.active_at,
            fired_at=alert.fired_at,
        )
        for alert in sorted(found, key=lambda alert: alert.key)
        if alert.state is alerts.State.FIRING
    ]


def counts(name: str, runtime: runtimes.Runtime) -> RuleCounts:
    """Rule ``name``'s evaluations so far and its conditions pending and firing now."""
    if runtime.prometheus is not None:
        states = [alert.state for alert in runtime.prometheus.active.values()]
    elif runtime.alertmanager is not None:
        states = [alert.state for alert in runtime.alertmanager.active.values()]
    else:
        states = [
            tracked.alert.state
            for tracked in map(runtime.tracked.get, runtime.due)
            if tracked is not None
        ]
    return RuleCounts(
        rule=name,
        evaluations=runtime.evaluations,
        pending=states.count(alerts.State.PENDING),
        firing=states.count(alerts.State.FIRING),
    )


def conditions(name: str, runtime: runtimes.Runtime) -> list[ConditionState]:
    """Rule ``name``'s conditions pending or firing now."""
    last: dict[alerts.AlertKey, datetime | None] = {}
    if runtime.prometheus is not None:
        active: Iterable[alerts.Alert] = runtime.prometheus.active.values()
    elif runtime.alertmanager is not None:
        active = runtime.alertmanager.active.values()
    else:
        tracked = [runtime.tracked[key] for key in runtime.due if key in runtime.tracked]
        active = [each.alert for each in tracked]
        last = {each.alert.key: each.last_at for each in tracked}
    return [
        ConditionState(
            rule=name,
            resource=alert.resource,
            state=alert.state,
            active_at=alert.active_at,
            fired_at=alert.fired_at,
            hold=runtime.rule.hold,
            labels=dict(alert.labels),
            value=alert.value,
            last_at=last.get(alert.key, runtime.last_at),
        )
        for alert in active
        if alert.state is not alerts.State.INACTIVE
    ]


def state(name: str, runtime: runtimes.Runtime) -> RuleState:
    """Rule ``name``'s evaluations, last evaluation, conditions and problems."""
    now = counts(name, runtime)
    return RuleState(
        rule=name,
        family=runtime.rule.family.value,
        evaluations=runtime.evaluations,
        last_at=runtime.last_at,
        pending=now.pending,
        firing=now.firing,
        problems=runtime.problems,
        last_problem=runtime.last_problem,
        last_problem_at=runtime.last_problem_at,
    )
