"""One rule's live state inside the rules engine, and the index of rules by what they match.

``Runtime`` holds everything the engine knows of one rule: its alerts (per family), the
conditions it tracks for events with their windows, its episodes, the event time it has
seen per stream, and its counters for metrics and ``/v1/rules``. ``Index`` finds the rules
an observation could match by its source and one ``labels.NAME == 'value'`` conjunct of
their ``match``, so an observation costs the rules it could match, not every rule.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Sequence
from datetime import datetime

from controller.domain import observations, resources, transitions
from controller.rules import alertmanager, alerts, episodes, model, templates, windows

Condition = tuple[resources.ResourceKey, alerts.AlertKey]
"""An event's condition: its resource and alert key (resource and ``group_by`` values)."""
KeyValues = str | tuple[str, ...]
"""The label values a condition is rendered from: the value itself when there is one."""


class Tracked:
    """An event rule's state for one condition: its alert, window and recent history."""

    __slots__ = ("alert", "last_at", "last_seen", "window")

    def __init__(self, alert: alerts.Alert, rule: model.Rule) -> None:
        """Track ``alert`` of ``rule``, with the window the rule counts or correlates in."""
        self.alert = alert
        self.last_at: datetime | None = None
        self.last_seen: list[observations.Observation] = []
        self.window: windows.CountWindow | windows.CorrelationWindow | None = None
        if rule.count is not None:
            self.window = windows.CountWindow(rule.count)
        elif rule.correlation is not None:
            self.window = windows.CorrelationWindow(rule.correlation)


class Runtime:
    """One rule's state: its alerts and its episodes."""

    __slots__ = (
        "alertmanager",
        "due",
        "episodes",
        "evaluations",
        "filtered",
        "horizon",
        "implied",
        "key_labels",
        "keys",
        "last_at",
        "last_problem",
        "last_problem_at",
        "newest",
        "pending",
        "plain",
        "problems",
        "prometheus",
        "rule",
        "swept",
        "tracked",
    )

    def __init__(
        self,
        rule: model.Rule,
        *,
        revision: str,
        silenced: episodes.Silenced,
        bounds: transitions.Bounds,
    ) -> None:
        """Start ``rule`` with no state; its episodes carry ``revision`` and ``bounds``."""
        self.rule = rule
        self.episodes = episodes.Episodes(rule, revision=revision, silenced=silenced, bounds=bounds)
        self.prometheus = (
            alerts.PrometheusAlerts(rule) if rule.family is model.Family.PROMETHEUS else None
        )
        self.alertmanager = (
            alertmanager.AlertmanagerAlerts(rule)
            if rule.family is model.Family.ALERTMANAGER
            else None
        )
        self.tracked: dict[alerts.AlertKey, Tracked] = {}
        self.due: set[alerts.AlertKey] = set()
        """Conditions pending or firing: the only ones with deadlines for ``tick``."""
        self.pending: dict[resources.ResourceKey, transitions.OpenEpisode] = {}
        """Open episodes (of a Kafka-fed rule) the first event of their resource decides."""
        self.evaluations = 0
        """Observations and query results evaluated against the rule (a metric)."""
        self.last_at: datetime | None = None
        """The time of the last observation or evaluation (``/v1/rules``)."""
        self.problems = 0
        self.last_problem = ""
        self.last_problem_at: datetime | None = None
        self.swept: datetime | None = None
        self.newest: dict[str, datetime] = {}
        """Per stream, the newest event time this rule matched."""
        self.implied = rule.match is not None and rule.match.only_equality
        """Whether the index lookup alone decides ``match``."""
        self.plain = rule.count is None and rule.correlation is None
        """Whether an event's truth is its ``when`` alone (no window)."""
        self.filtered = (rule.match is not None and not self.implied) or not self.plain
        """Whether an event needs expressions evaluated to know that it is the rule's."""
        self.key_labels: tuple[str, ...] | None = None
        self.keys: dict[KeyValues, Condition | None] = {}
        self._key_by_labels(rule)
        spans = [rule.stale_after, rule.hold + rule.keep_firing_for, rule.cooldown]
        spans += [rule.count.within] if rule.count else []
        spans += [rule.correlation.within] if rule.correlation else []
        self.horizon = max(spans)

    def _key_by_labels(self, rule: model.Rule) -> None:
        """Cache condition keys by label values when the resource template reads only labels."""
        self.keys = {}
        if rule.resource.scopes <= {templates.Scope.LABELS}:
            self.key_labels = (*sorted(rule.resource.labels), *rule.group_by)
        else:
            self.key_labels = None

    def retarget(self, rule: model.Rule, *, revision: str) -> None:
        """Take a new definition of the same rule (same digest) and revision."""
        self.rule = rule
        self._key_by_labels(rule)
        self.episodes.rule = rule
        self.episodes.revision = revision
        if self.prometheus is not None:
            self.prometheus.rule = rule
        if self.alertmanager is not None:
            self.alertmanager.rule = rule


class Index:
    """Rules by source, then by one label equality of their ``match``."""

    __slots__ = ("_order", "_sources")

    def __init__(self, runtimes: Iterable[Runtime]) -> None:
        """Index ``runtimes``; their order is the order ``candidates`` keeps."""
        plain: dict[observations.SourceKind, list[Runtime]] = collections.defaultdict(list)
        keyed: dict[observations.SourceKind, dict[str, dict[str, list[Runtime]]]] = (
            collections.defaultdict(dict)
        )
        self._order: dict[str, int] = {}
        for position, runtime in enumerate(runtimes):
            rule = runtime.rule
            self._order[rule.name] = position
            if rule.family is model.Family.PROMETHEUS:
                continue
            equalities = rule.match.equalities if rule.match is not None else ()
            if equalities:
                name, value = equalities[0]
                by_value = keyed[rule.source].setdefault(name, {})
                by_value.setdefault(value, []).append(runtime)
            else:
                plain[rule.source].append(runtime)
        self._sources: dict[
            observations.SourceKind,
            tuple[tuple[Runtime, ...], tuple[tuple[str, dict[str, tuple[Runtime, ...]]], ...]],
        ] = {
            source: (
                tuple(plain.get(source, ())),
                tuple(
                    (name, {value: tuple(found) for value, found in by_value.items()})
                    for name, by_value in keyed.get(source, {}).items()
                ),
            )
            for source in {*plain, *keyed}
        }

    def candidates(self, observation: observations.Observation) -> Sequence[Runtime]:
        """The rules that could match ``observation``, in rule-set order."""
        entry = self._sources.get(observation.source)
        if entry is None:
            return ()
        found, keyed = entry
        labels = observation.labels
        for name, by_value in keyed:
            value = labels.get(name)
            hits = by_value.get(value, ()) if value is not None else ()
            if hits:
                found = tuple(sorted((*found, *hits), key=self._position)) if found else hits
        return found

    def _position(self, runtime: Runtime) -> int:
        return self._order[runtime.rule.name]
