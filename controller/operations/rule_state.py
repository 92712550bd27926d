"""Live rule state, in the spirit of Prometheus's ``/api/v1/alerts`` and ``/api/v1/rules``.

``alerts`` lists every condition pending or firing now (rule, resource, since, ``for``, time
left before it fires, last value); ``rules`` lists every rule with its last evaluation (time,
duration for polled rules, error) and its problems. Both read the running ingest's rules
engine (and the Prometheus poller's health) in process: the operator API serves them as
``GET /v1/alerts`` and ``GET /v1/rules``, and ``homeostat rules status`` asks that API.

Event rules are evaluated per event, in microseconds: their ``last_evaluation`` is the
time of the last event evaluated against them and their ``duration`` is ``null``; their
errors are the events their expressions could not evaluate (a missing field, a wrong type).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Protocol

from controller.rules import engine as engine_module
from controller.rules import model

SCHEMA_VERSION: Final = 1
"""Version of the JSON schema of ``AlertsReport`` and ``RulesReport``; fields are only added."""


class PollHealth(Protocol):
    """A polled rule's last evaluation (``ingest.prometheus.PollHealth`` fits)."""

    @property
    def evaluated_at(self) -> datetime | None:
        """When it was last evaluated (wall clock)."""

    @property
    def duration(self) -> timedelta | None:
        """How long the query and evaluation took."""

    @property
    def error(self) -> str:
        """Why the last attempt failed, or ""."""

    @property
    def error_at(self) -> datetime | None:
        """When the last failure was."""

    @property
    def errors(self) -> int:
        """Failures so far."""


class LiveEngine(Protocol):
    """What the reports read of the rules engine (``rules.engine.Engine`` fits)."""

    @property
    def rule_set(self) -> model.RuleSet:
        """The rules in force."""

    def conditions(self) -> list[engine_module.ConditionState]:
        """Every condition pending or firing now."""

    def rule_states(self) -> list[engine_module.RuleState]:
        """Every rule's health."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertView:
    """A condition pending or firing.

    Attributes:
        rule: the rule.
        resource: the resource.
        state: ``pending`` or ``firing``.
        since: since when its condition holds.
        fired_at: when it fired (``null`` while pending).
        hold: the rule's ``for``.
        time_left: how long until it fires, if it stays true (pending only).
        value: the last sample value (Prometheus rules).
        last_seen: the last observation or evaluation that concerned it.
        labels: its labels.
    """

    rule: str
    resource: str
    state: str
    since: datetime | None
    fired_at: datetime | None
    hold: timedelta
    time_left: timedelta | None
    value: float | None
    last_seen: datetime | None
    labels: Mapping[str, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertsReport:
    """``GET /v1/alerts``: every condition pending or firing, by rule and resource."""

    schema_version: int
    now: datetime
    pending: int
    firing: int
    alerts: tuple[AlertView, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleView:
    """A rule and how its evaluations go.

    Attributes:
        name: the rule.
        group: its group.
        family: ``prometheus``, ``alertmanager`` or ``event``.
        source: where its input comes from.
        stream: the stream (topic, webhook stream) it reads, if any.
        health: ``ok``, ``err`` (its last evaluation failed) or ``unknown`` (none yet).
        last_evaluation: when it was last evaluated (event time for event rules).
        duration: how long that took (polled rules only).
        error: the last error (a failed query, or an event its expressions could not read).
        error_at: when.
        errors: how many so far.
        evaluations: evaluations so far.
        pending: conditions pending now.
        firing: conditions firing now.
    """

    name: str
    group: str
    family: str
    source: str
    stream: str
    health: str
    last_evaluation: datetime | None
    duration: timedelta | None
    error: str
    error_at: datetime | None
    errors: int
    evaluations: int
    pending: int
    firing: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RulesReport:
    """``GET /v1/rules``: every rule in force, in file order, and the rule set's revision."""

    schema_version: int
    revision: str
    rules: tuple[RuleView, ...]


def alerts_report(engine: LiveEngine, *, now: datetime) -> AlertsReport:
    """Every condition pending or firing in ``engine`` at ``now``."""
    found = []
    for condition in engine.conditions():
        pending = condition.state.value == "pending"
        left = (
            condition.active_at + condition.hold - now
            if pending and condition.active_at is not None
            else None
        )
        found.append(
            AlertView(
                rule=condition.rule,
                resource=condition.resource,
                state=condition.state.value,
                since=condition.active_at,
                fired_at=condition.fired_at,
                hold=condition.hold,
                time_left=max(left, timedelta(0)) if left is not None else None,
                value=condition.value,
                last_seen=condition.last_at,
                labels=dict(condition.labels),
            )
        )
    return AlertsReport(
        schema_version=SCHEMA_VERSION,
        now=now,
        pending=sum(1 for alert in found if alert.state == "pending"),
        firing=sum(1 for alert in found if alert.state == "firing"),
        alerts=tuple(found),
    )


def _rule_view(
    state: engine_module.RuleState, rule: model.Rule, group: str, poll: PollHealth | None
) -> RuleView:
    error, error_at, errors = state.last_problem, state.last_problem_at, state.problems
    last, duration = state.last_at, None
    if poll is not None:
        duration = poll.duration
        last = poll.evaluated_at or last
        if poll.errors:
            error, error_at, errors = poll.error, poll.error_at, poll.errors + state.problems
    failing = bool(poll.error) if poll is not None else False
    health = "err" if failing else ("ok" if last is not None else "unknown")
    return RuleView(
        name=state.rule,
        group=group,
        family=state.family,
        source=rule.source.value,
        stream=rule.stream or "",
        health=health,
        last_evaluation=last,
        duration=duration,
        error=error,
        error_at=error_at,
        errors=errors,
        evaluations=state.evaluations,
        pending=state.pending,
        firing=state.firing,
    )


def rules_report(
    engine: LiveEngine, *, polls: Mapping[str, PollHealth] | None = None
) -> RulesReport:
    """Every rule in force in ``engine`` with its health (``polls``: the poller's, by rule)."""
    rule_set = engine.rule_set
    groups = {rule.name: group.name for group in rule_set.groups for rule in group.rules}
    states: Sequence[engine_module.RuleState] = engine.rule_states()
    return RulesReport(
        schema_version=SCHEMA_VERSION,
        revision=str(rule_set.revision),
        rules=tuple(
            _rule_view(
                state,
                rule_set.rules[state.rule],
                groups.get(state.rule, ""),
                (polls or {}).get(state.rule),
            )
            for state in states
            if state.rule in rule_set.rules
        ),
    )
