"""The rules engine: observations and query results in, transitions out. Pure.

No I/O and no clock of its own: events carry their time, evaluations are given theirs, and
``tick(now)`` applies deadlines (staleness, ``for``, ``keep_firing_for``, cooldowns) that fall
due without an event. All state is a function of what it was fed, so replaying the recent
past through a new engine rebuilds it, with the same episode ids.

Rules are indexed by source and by one ``labels.NAME == 'value'`` conjunct of their
``match``, so an observation costs the rules it could match, not every rule. Most events
leave a condition as it was (false, and not pending or firing): for those the engine only
finds the condition's state, by the label values its resource template and ``group_by``
read (rendered keys are cached), and notes the event's time; nothing is rendered or
allocated.

Events arrive in time order per condition (resource and ``group_by`` values): an event
older than the last one seen there is late and ignored, and an exact duplicate of the last
one is ignored too, so replayed or duplicated observations never start a second episode.
An event older than the rule's horizon (its longest window) behind the newest time seen
is ignored as well, even for a condition the engine no longer remembers. "The newest time
seen" is kept per rule and stream, advanced only by events that rule matched, and by
``tick``: an event that no rule matches moves nothing, and an event of one stream cannot
make another stream's events late. (Sources bound event time against receive time before
it gets here: see ``ingest.admission``.)

Every dropped observation is counted in ``stats`` by reason and reported to ``on_drop``.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from controller.domain import observations, resources, transitions
from controller.rules import alertmanager, alerts, episodes, expressions, model, templates, windows

Clock = Callable[[], datetime]
"""Where ``replace_rules`` reads "now" when the engine was given one."""

OnDrop = Callable[[str, str, "observations.Observation | None"], None]
"""Told of each dropped observation: the reason, the rule (or ``""``), the observation."""

_EVENT_SOURCES = frozenset(
    {observations.SourceKind.KAFKA, observations.SourceKind.WEBHOOK, observations.SourceKind.GITLAB}
)
_FIRED_FIRST = {transitions.TransitionKind.FIRED: 0, transitions.TransitionKind.RESOLVED: 1}
# Per-event code compares with these: reading a member off its enum class costs an
# attribute lookup through the enum's metaclass every time.
_ALERTMANAGER = observations.SourceKind.ALERTMANAGER
_INACTIVE = alerts.State.INACTIVE
_KEY_CACHE_SIZE = 65536
"""Rendered condition keys a rule remembers before it starts over (bounds memory)."""
_STREAMS_KEPT = 1024
"""Streams a rule keeps a newest time for before it starts over (bounds memory)."""
_UNKNOWN: Any = object()


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


@functools.lru_cache(maxsize=65536)
def _resource(text: str) -> resources.ResourceKey | None:
    try:
        return resources.parse_resource_key(text)
    except ValueError:
        return None


_Condition = tuple[resources.ResourceKey, alerts.AlertKey]
"""An event's condition: its resource and alert key (resource and ``group_by`` values)."""


class _Tracked:
    """An event rule's state for one condition: its alert, window and recent history."""

    __slots__ = ("alert", "last_at", "last_seen", "window")

    def __init__(self, alert: alerts.Alert, rule: model.Rule) -> None:
        self.alert = alert
        self.last_at: datetime | None = None
        self.last_seen: list[observations.Observation] = []
        self.window: windows.CountWindow | windows.CorrelationWindow | None = None
        if rule.count is not None:
            self.window = windows.CountWindow(rule.count)
        elif rule.correlation is not None:
            self.window = windows.CorrelationWindow(rule.correlation)


class _Runtime:
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
        self.tracked: dict[alerts.AlertKey, _Tracked] = {}
        self.due: set[alerts.AlertKey] = set()
        """Conditions pending or firing: the only ones with deadlines for ``tick``."""
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
        self.keys: dict[tuple[str, ...], _Condition | None] = {}
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


class Engine:
    """Turns observations and evaluations into transitions; holds all rule state."""

    def __init__(
        self,
        rule_set: model.RuleSet,
        *,
        clock: Clock | None = None,
        on_drop: OnDrop | None = None,
        bounds: transitions.Bounds | None = None,
    ) -> None:
        """Start with no state.

        Args:
            rule_set: the rules in force.
            clock: "now" for ``replace_rules``; without one, the newest time the engine was
                fed (keeping the engine deterministic).
            on_drop: told of every dropped observation (to log it).
            bounds: how much of labels and annotations a transition carries.
        """
        self._clock = clock
        self._on_drop = on_drop
        self._bounds = bounds or transitions.Bounds()
        self._now: datetime | None = None
        self._ticked: datetime | None = None
        """The latest ``tick``: every source was read up to it (a trusted "now")."""
        self._runtime_silences: dict[str, model.Silence] = {}
        self.stats: collections.Counter[str] = collections.Counter()
        """Observations dropped, by reason (late, duplicate, invalid_resource, ...)."""
        self.ignored_by_stream: collections.Counter[tuple[str, str]] = collections.Counter()
        """The same, by (stream, reason); streams no rule names count as ``other``."""
        self._problems: list[expressions.Problem] = []
        self._matched = False
        self._streams: frozenset[str] = frozenset()
        self._rule_set = rule_set
        self._runtimes: dict[str, _Runtime] = {}
        self._install(rule_set, keep={})

    @property
    def rule_set(self) -> model.RuleSet:
        """The rule set in force."""
        return self._rule_set

    # --- configuration -------------------------------------------------------------------

    def replace_rules(self, rule_set: model.RuleSet) -> list[transitions.Transition]:
        """Put ``rule_set`` in force, keeping the state of every rule whose digest is unchanged.

        Returns:
            The resolutions of episodes of rules that were removed or changed.
        """
        out: list[transitions.Transition] = []
        now = self._clock() if self._clock is not None else self._newest()
        keep: dict[str, _Runtime] = {}
        for name, runtime in self._runtimes.items():
            replacement = rule_set.rules.get(name)
            if replacement is not None and replacement.digest == runtime.rule.digest:
                keep[name] = runtime
            elif now is not None:
                for resource in list(runtime.episodes.open):
                    out += runtime.episodes.close(resource, now)
        self._rule_set = rule_set
        self._install(rule_set, keep=keep)
        return out

    def _install(self, rule_set: model.RuleSet, *, keep: dict[str, _Runtime]) -> None:
        revision = str(rule_set.revision)
        runtimes: dict[str, _Runtime] = {}
        for name, rule in rule_set.rules.items():
            runtime = keep.get(name)
            if runtime is None:
                runtime = _Runtime(
                    rule, revision=revision, silenced=self._silenced, bounds=self._bounds
                )
            else:
                runtime.retarget(rule, revision=revision)
            runtimes[name] = runtime
        self._runtimes = runtimes
        self._index = _Index(runtimes.values())
        self._streams = frozenset(rule.stream for rule in rule_set.rules.values() if rule.stream)

    def route_key(self, observation: observations.Observation) -> resources.ResourceKey | None:
        """The resource the first rule that could take ``observation`` derives from it.

        Replicas partition events by this key, so that one replica sees every event of a
        condition; ``None`` when no rule could take the event.
        """
        for runtime in self._index.candidates(observation):
            rule = runtime.rule
            if rule.stream is not None and observation.stream != rule.stream:
                continue
            condition = self._condition(runtime, observation)
            if condition is not None:
                return condition[0]
        return None

    def forget(self, names: Iterable[str]) -> None:
        """Drop the state of rules ``names``: another replica evaluates them now."""
        revision = str(self._rule_set.revision)
        for name in names:
            rule = self._rule_set.rules.get(name)
            if rule is not None and name in self._runtimes:
                self._runtimes[name] = _Runtime(
                    rule, revision=revision, silenced=self._silenced, bounds=self._bounds
                )
        self._index = _Index(self._runtimes.values())

    def silence(self, silence: model.Silence) -> None:
        """Add (or replace, by name) a silence at run time."""
        self._runtime_silences[silence.name] = silence

    def unsilence(self, name: str) -> bool:
        """Remove a run-time silence; whether it existed."""
        return self._runtime_silences.pop(name, None) is not None

    def _silenced(
        self,
        rule: model.Rule,
        resource: resources.ResourceKey,
        labels: Mapping[str, str],
        at: datetime,
    ) -> bool:
        active = [
            silence
            for silence in (*self._rule_set.silences, *self._runtime_silences.values())
            if silence.active(at)
        ]
        if not active:
            return False
        variables = {"labels": labels, "rule": rule.name, "resource": str(resource)}
        return any(expressions.evaluate(silence.match, variables) for silence in active)

    # --- inputs ----------------------------------------------------------------------------

    def observe(self, observation: observations.Observation) -> list[transitions.Transition]:
        """Feed one event (Kafka, webhook, GitLab) or Alertmanager alert, in event time.

        An event moves the engine's time only when a rule matched it.
        """
        if observation.at.tzinfo is None:
            raise ValueError("times must be timezone-aware")
        self._matched = False
        if observation.source is _ALERTMANAGER:
            self._saw(observation.at)
            changes = []
            for runtime in self._index.candidates(observation):
                runtime.evaluations += 1
                runtime.last_at = observation.at
                changes += [(runtime, change) for change in self._alert(runtime, observation)]
        elif observation.source in _EVENT_SOURCES:
            changes = self._events(observation)
        else:
            self._drop("not_an_event", "", observation)
            return []
        if not self._matched:
            self._drop("no_rule", "", observation)
        if not changes:
            return []
        return self._fold(changes)

    def _events(
        self, observation: observations.Observation
    ) -> list[tuple[_Runtime, alerts.Change]]:
        """An event against each rule that could match it; what changed."""
        changes: list[tuple[_Runtime, alerts.Change]] = []
        for runtime in self._index.candidates(observation):
            runtime.evaluations += 1
            found = self._event(runtime, observation)
            if self._problems:
                self._unevaluable(runtime, observation)
            if found:
                changes += [(runtime, change) for change in found]
        return changes

    def evaluate(
        self,
        target: str,
        at: datetime,
        samples: Sequence[alerts.Sample] | Mapping[str, Sequence[alerts.Sample]],
    ) -> list[transitions.Transition]:
        """Apply one evaluation of a Prometheus rule, or of a group, at ``at``.

        Args:
            target: a rule name (``samples`` is its query result) or a group name
                (``samples`` maps rule names to results; a rule left out is not evaluated,
                as when its query failed).
            at: the evaluation time, the time the query was run at.
            samples: the query result(s) at ``at``.

        Raises:
            KeyError: ``target`` names no Prometheus rule or group in force.
        """
        self._saw(at)
        if target in self._runtimes:
            results = {target: samples} if isinstance(samples, Sequence) else dict(samples)
        elif target in self._rule_set.groups_by_name:
            if not isinstance(samples, Mapping):
                raise TypeError("a group evaluation takes a mapping of rule name to samples")
            results = dict(samples)
        else:
            raise KeyError(f"no rule or group named {target!r}")
        changes: list[tuple[_Runtime, alerts.Change]] = []
        out: list[transitions.Transition] = []
        failed: set[str] = set()
        for name, result in results.items():
            runtime = self._runtimes.get(name)
            if runtime is None or runtime.prometheus is None:
                raise KeyError(f"no prometheus rule named {name!r}")
            runtime.evaluations += 1
            runtime.last_at = at
            series = list(self._series(runtime.rule, result))
            try:
                found = runtime.prometheus.evaluate(at, series)
            except alerts.DuplicateLabelsError:
                # As in Prometheus: the evaluation fails and the rule's state stays as it was.
                self._drop("duplicate_labelset", name, None)
                failed.add(name)
                continue
            changes += [(runtime, change) for change in found]
        out += self._fold(changes)
        for name in results:
            if name not in failed:
                out += self._runtimes[name].episodes.advance(at)
        return out

    def tick(self, now: datetime) -> list[transitions.Transition]:
        """Apply every deadline due at ``now``; forget conditions that no longer matter."""
        self._saw(now)
        if self._ticked is None or now > self._ticked:
            self._ticked = now
        changes: list[tuple[_Runtime, alerts.Change]] = []
        for runtime in self._runtimes.values():
            if runtime.rule.family is not model.Family.EVENT:
                continue
            rule = runtime.rule
            for key in list(runtime.due):
                alert = runtime.tracked[key].alert
                changes += [
                    (runtime, change) for change in alerts.advance(alert, rule, now, inclusive=True)
                ]
                if alert.state is alerts.State.INACTIVE:
                    runtime.due.discard(key)
            if runtime.swept is None or now - runtime.swept > runtime.horizon:
                runtime.swept = now
                for key, tracked in list(runtime.tracked.items()):
                    if _forgettable(tracked, now, runtime.horizon):
                        del runtime.tracked[key]
        out = self._fold(changes)
        for runtime in self._runtimes.values():
            out += runtime.episodes.advance(now)
        return out

    def revert(self, refused: Iterable[transitions.Transition]) -> None:
        """Undo the ``fired`` transitions in ``refused``: Temporal refused their hand-off.

        Each episode is forgotten with the state of the conditions that started it, so the
        same event sent again (the sender's retry) starts it again instead of finding it
        already firing. A refused ``resolved`` cannot be undone here; it is only reported.
        """
        for transition in refused:
            if transition.kind is not transitions.TransitionKind.FIRED:
                continue
            runtime = self._runtimes.get(transition.rule)
            if runtime is None:
                continue
            for key in runtime.episodes.forget(transition.episode):
                runtime.tracked.pop(key, None)
                runtime.due.discard(key)
                if runtime.prometheus is not None:
                    runtime.prometheus.active.pop(key, None)
                if runtime.alertmanager is not None:
                    runtime.alertmanager.active.pop(key, None)

    # --- queries ---------------------------------------------------------------------------

    def firing(self, rule: str) -> list[FiringAlert]:
        """The alerts of ``rule`` that are firing now (``promtool``'s view), sorted by labels."""
        runtime = self._runtimes[rule]
        if runtime.prometheus is not None:
            found: Iterable[alerts.Alert] = runtime.prometheus.active.values()
        elif runtime.alertmanager is not None:
            found = runtime.alertmanager.active.values()
        else:
            found = (tracked.alert for tracked in runtime.tracked.values())
        return [
            FiringAlert(
                rule=rule,
                resource=alert.resource,
                labels=dict(alert.labels),
                annotations=dict(alert.annotations),
                active_at=alert.active_at,
                fired_at=alert.fired_at,
            )
            for alert in sorted(found, key=lambda alert: alert.key)
            if alert.state is alerts.State.FIRING
        ]

    def open_episodes(self) -> list[episodes.Episode]:
        """Every open episode, of every rule."""
        return [
            episode
            for runtime in self._runtimes.values()
            for episode in runtime.episodes.open.values()
        ]

    def rule_counts(self) -> list[RuleCounts]:
        """Every rule's evaluations so far and its conditions pending and firing now."""
        found = []
        for name, runtime in self._runtimes.items():
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
            found.append(
                RuleCounts(
                    rule=name,
                    evaluations=runtime.evaluations,
                    pending=states.count(alerts.State.PENDING),
                    firing=states.count(alerts.State.FIRING),
                )
            )
        return found

    def conditions(self) -> list[ConditionState]:
        """Every condition pending or firing now, of every rule, by rule and resource."""
        found: list[ConditionState] = []
        for name, runtime in self._runtimes.items():
            last: dict[alerts.AlertKey, datetime | None] = {}
            if runtime.prometheus is not None:
                active: Iterable[alerts.Alert] = runtime.prometheus.active.values()
            elif runtime.alertmanager is not None:
                active = runtime.alertmanager.active.values()
            else:
                tracked = [runtime.tracked[key] for key in runtime.due if key in runtime.tracked]
                active = [each.alert for each in tracked]
                last = {each.alert.key: each.last_at for each in tracked}
            found += [
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
        found.sort(key=lambda condition: (condition.rule, condition.resource))
        return found

    def rule_states(self) -> list[RuleState]:
        """Every rule's evaluations, last evaluation, conditions and problems, in rule order."""
        counts = {counts.rule: counts for counts in self.rule_counts()}
        return [
            RuleState(
                rule=name,
                family=runtime.rule.family.value,
                evaluations=runtime.evaluations,
                last_at=runtime.last_at,
                pending=counts[name].pending,
                firing=counts[name].firing,
                problems=runtime.problems,
                last_problem=runtime.last_problem,
                last_problem_at=runtime.last_problem_at,
            )
            for name, runtime in self._runtimes.items()
        ]

    # --- internals -------------------------------------------------------------------------

    def _saw(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("times must be timezone-aware")
        if self._now is None or at > self._now:
            self._now = at

    def _newest(self) -> datetime | None:
        """The newest time the engine was fed: ticks, evaluations, alerts, matched events."""
        times = [time for runtime in self._runtimes.values() for time in runtime.newest.values()]
        if self._now is not None:
            times.append(self._now)
        return max(times, default=None)

    def _drop(self, reason: str, rule: str, observation: observations.Observation | None) -> None:
        self.stats[reason] += 1
        stream = observation.stream if observation is not None else ""
        self.ignored_by_stream[stream if stream in self._streams else "other", reason] += 1
        if self._on_drop is not None:
            self._on_drop(reason, rule, observation)

    def _fold(self, changes: list[tuple[_Runtime, alerts.Change]]) -> list[transitions.Transition]:
        if len(changes) > 1:
            changes.sort(key=lambda item: (item[1].at, _FIRED_FIRST[item[1].kind]))
        out: list[transitions.Transition] = []
        for runtime, change in changes:
            out += runtime.episodes.apply(change)
        return out

    def _series(
        self, rule: model.Rule, samples: Sequence[alerts.Sample]
    ) -> Iterable[tuple[resources.ResourceKey, alerts.Sample]]:
        for sample in samples:
            resource = _resource(templates.render(rule.resource, labels=sample.labels))
            if resource is None:
                self._drop("invalid_resource", rule.name, None)
                continue
            yield resource, sample

    def _event(
        self, runtime: _Runtime, observation: observations.Observation
    ) -> list[alerts.Change]:
        rule = runtime.rule
        if rule.stream is not None and observation.stream != rule.stream:
            return []
        runtime.last_at = observation.at
        variables: dict[str, Any] = {
            "labels": observation.labels,
            "body": observation.body,
            "stream": observation.stream,
        }
        problems = self._problems
        matched = self._matches(runtime, variables, problems) if runtime.filtered else []
        if matched is None:
            return []
        self._matched = True
        # Without a window the truth is ``when`` alone (pure): known before the state is.
        plain: bool | None = None
        if runtime.plain:
            plain = rule.when is None or expressions.evaluate(rule.when, variables, problems)
        tracked = self._tracked(runtime, observation)
        if tracked is None:
            return []
        alert = tracked.alert
        if plain is False and alert.state is _INACTIVE:
            # The common case: nothing was due and nothing became true; the time is noted.
            return []
        at = observation.at
        changes = alerts.advance(alert, rule, at, inclusive=False)
        truth, until = (
            (plain, at + rule.stale_after)
            if plain is not None
            else self._truth(rule, tracked, variables, at, matched)
        )
        if truth and alert.state is _INACTIVE:
            alert.labels = alerts.alert_labels(rule, observation.labels, body=observation.body)
            alert.annotations = alerts.annotations_of(
                rule, observation.labels, body=observation.body
            )
        changes += alerts.apply(alert, rule, at, truth=truth, until=until)
        if alert.state is _INACTIVE:
            runtime.due.discard(alert.key)
        else:
            runtime.due.add(alert.key)
        return changes

    @staticmethod
    def _matches(
        runtime: _Runtime, variables: Mapping[str, Any], problems: list[expressions.Problem]
    ) -> list[int] | None:
        """Whether the event is the rule's (``None`` if not); the correlation conditions met."""
        rule = runtime.rule
        if (
            rule.match is not None
            and not runtime.implied
            and not expressions.evaluate(rule.match, variables, problems)
        ):
            return None
        if rule.correlation is None:
            return []
        matched = [
            index
            for index, condition in enumerate(rule.correlation.conditions)
            if expressions.evaluate(condition, variables, problems)
        ]
        return matched or None

    def _unevaluable(self, runtime: _Runtime, observation: observations.Observation) -> None:
        """Count and report what the rule's expressions could not evaluate on ``observation``."""
        problem = self._problems[-1]
        self._problems.clear()
        runtime.problems += 1
        runtime.last_problem = problem.detail
        runtime.last_problem_at = observation.at
        self._drop(problem.reason, runtime.rule.name, observation)

    def _truth(
        self,
        rule: model.Rule,
        tracked: _Tracked,
        variables: Mapping[str, Any],
        at: datetime,
        matched: list[int],
    ) -> tuple[bool, datetime | None]:
        window = tracked.window
        problems = self._problems
        if isinstance(window, windows.CountWindow):
            if rule.when is None or expressions.evaluate(rule.when, variables, problems):
                window.add(at)
            return window.truth(at)
        if isinstance(window, windows.CorrelationWindow):
            for index in matched:
                window.add(index, at)
            return window.truth(at)
        truth = rule.when is None or expressions.evaluate(rule.when, variables, problems)
        return truth, at + rule.stale_after

    def _tracked(self, runtime: _Runtime, observation: observations.Observation) -> _Tracked | None:
        condition = self._condition(runtime, observation)
        if condition is None:
            self._drop("invalid_resource", runtime.rule.name, observation)
            return None
        key = condition[1]
        at = observation.at
        stream = observation.stream
        newest = runtime.newest.get(stream)
        if newest is None:
            _first_of_stream(runtime, stream, at)
        elif at > newest:
            runtime.newest[stream] = at
        tracked = runtime.tracked.get(key)
        if tracked is None:
            tracked = self._track(runtime, observation, condition, newest)
            if tracked is None:
                return None
        last_at = tracked.last_at
        if last_at is not None:
            if at < last_at:
                self._drop("late", runtime.rule.name, observation)
                return None
            if at == last_at:
                if observation in tracked.last_seen:
                    self._drop("duplicate", runtime.rule.name, observation)
                    return None
                tracked.last_seen.append(observation)
                return tracked
        tracked.last_at = at
        tracked.last_seen = [observation]
        return tracked

    def _track(
        self,
        runtime: _Runtime,
        observation: observations.Observation,
        condition: _Condition,
        newest: datetime | None,
    ) -> _Tracked | None:
        """Start tracking a condition, unless its first event is too late to matter.

        Too late: older than the rule's horizon behind ``newest`` (the newest time the rule
        matched on the event's stream before it) or behind the last tick.
        """
        seen = max((t for t in (newest, self._ticked) if t is not None), default=None)
        if seen is not None and observation.at < seen - runtime.horizon:
            self._drop("late", runtime.rule.name, observation)
            return None
        resource, key = condition
        alert = alerts.Alert(key=key, resource=resource, labels={}, annotations={})
        tracked = runtime.tracked[key] = _Tracked(alert, runtime.rule)
        return tracked

    @staticmethod
    def _condition(runtime: _Runtime, observation: observations.Observation) -> _Condition | None:
        """The condition an event belongs to; ``None`` if its resource is not a valid key.

        Rendered conditions are cached by the label values they are rendered from, when the
        resource template reads labels only.
        """
        labels = observation.labels
        names = runtime.key_labels
        values: tuple[str, ...] = ()
        if names is not None:
            values = (
                (labels.get(names[0], ""),)
                if len(names) == 1
                else tuple([labels.get(name, "") for name in names])
            )
            cached: _Condition | None = runtime.keys.get(values, _UNKNOWN)
            if cached is not _UNKNOWN:
                return cached
        rule = runtime.rule
        resource = _resource(templates.render(rule.resource, labels=labels, body=observation.body))
        condition: _Condition | None = None
        if resource is not None:
            key: alerts.AlertKey = (("", resource),)
            key += tuple((name, labels.get(name, "")) for name in rule.group_by)
            condition = (resource, key)
        if names is not None:
            if len(runtime.keys) >= _KEY_CACHE_SIZE:
                runtime.keys.clear()
            runtime.keys[values] = condition
        return condition

    def _alert(
        self, runtime: _Runtime, observation: observations.Observation
    ) -> list[alerts.Change]:
        rule = runtime.rule
        raw = observation.body.get("annotations")
        annotations = (
            {str(name): str(text) for name, text in raw.items()} if isinstance(raw, Mapping) else {}
        )
        variables = {"labels": observation.labels, "annotations": annotations}
        if (
            runtime.alertmanager is None
            or rule.match is None
            or not expressions.evaluate(rule.match, variables)
        ):
            return []
        self._matched = True
        resource = _resource(
            templates.render(rule.resource, labels=observation.labels, annotations=annotations)
        )
        if resource is None:
            self._drop("invalid_resource", rule.name, observation)
            return []
        changes, ignored = runtime.alertmanager.observe(
            observation, resource=resource, annotations=annotations
        )
        if ignored is not None:
            self._drop(ignored, rule.name, observation)
        return changes


def _first_of_stream(runtime: _Runtime, stream: str, at: datetime) -> None:
    """Note ``runtime``'s first matched event of ``stream`` (bounded: start over at the cap)."""
    if len(runtime.newest) >= _STREAMS_KEPT:
        runtime.newest.clear()
    runtime.newest[stream] = at


def _forgettable(tracked: _Tracked, now: datetime, horizon: timedelta) -> bool:
    if tracked.alert.state is not alerts.State.INACTIVE or tracked.last_at is None:
        return False
    if tracked.window is not None and not tracked.window.expired(now):
        return False
    return now - tracked.last_at > horizon


class _Index:
    """Rules by source, then by one label equality of their ``match``."""

    __slots__ = ("_order", "_sources")

    def __init__(self, runtimes: Iterable[_Runtime]) -> None:
        plain: dict[observations.SourceKind, list[_Runtime]] = collections.defaultdict(list)
        keyed: dict[observations.SourceKind, dict[str, dict[str, list[_Runtime]]]] = (
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
            tuple[tuple[_Runtime, ...], tuple[tuple[str, dict[str, tuple[_Runtime, ...]]], ...]],
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

    def candidates(self, observation: observations.Observation) -> Sequence[_Runtime]:
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

    def _position(self, runtime: _Runtime) -> int:
        return self._order[runtime.rule.name]
