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

Events arrive in time order per condition; late and duplicate events are dropped, and
what counts as late is judged per rule and stream (``event_time``). Each rule's state
lives in a ``runtimes.Runtime``.

Every dropped observation is counted in ``stats`` by reason and reported to ``on_drop``.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from controller.domain import observations, resources, transitions
from controller.rules import (
    alerts,
    episodes,
    event_time,
    expressions,
    model,
    reports,
    runtimes,
    seeding,
    templates,
    windows,
)

Clock = Callable[[], datetime]
"""Where ``replace_rules`` reads "now" when the engine was given one."""

OnDrop = Callable[[str, str, "observations.Observation | None"], None]
"""Told of each dropped observation: the reason, the rule (or ``""``), the observation."""

OnSeed = Callable[["seeding.Outcome", "transitions.OpenEpisode"], None]
"""Told of each open episode an event decided (``expect``): taken up, known or replayed."""

OnError = Callable[["observations.Observation", Exception], None]
"""Told of an observation that made the engine raise (a defect), and of the error."""

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
_UNKNOWN: Any = object()


FiringAlert = reports.FiringAlert
RuleCounts = reports.RuleCounts
ConditionState = reports.ConditionState
RuleState = reports.RuleState


@functools.lru_cache(maxsize=65536)
def _resource(text: str) -> resources.ResourceKey | None:
    try:
        return resources.parse_resource_key(text)
    except ValueError:
        return None


def _values(labels: Mapping[str, str], names: tuple[str, ...]) -> tuple[str, ...]:
    """The values of labels ``names``, ``""`` for a missing one: a condition's cache key."""
    return tuple([labels.get(name, "") for name in names])


class Engine:
    """Turns observations and evaluations into transitions; holds all rule state."""

    def __init__(
        self,
        rule_set: model.RuleSet,
        *,
        clock: Clock | None = None,
        on_drop: OnDrop | None = None,
        bounds: transitions.Bounds | None = None,
        on_seed: OnSeed | None = None,
    ) -> None:
        """Start with no state.

        Args:
            rule_set: the rules in force.
            clock: "now" for ``replace_rules``; without one, the newest time the engine was
                fed (keeping the engine deterministic).
            on_drop: told of every dropped observation (to log it).
            bounds: how much of labels and annotations a transition carries.
            on_seed: told of each episode ``expect`` waited for, once an event decided it.
        """
        self._clock = clock
        self._on_drop = on_drop
        self._on_seed = on_seed
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
        self._runtimes: dict[str, runtimes.Runtime] = {}
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
        now = (
            self._clock()
            if self._clock is not None
            else event_time.newest(self._runtimes.values(), self._now)
        )
        keep: dict[str, runtimes.Runtime] = {}
        for name, runtime in self._runtimes.items():
            replacement = rule_set.rules.get(name)
            if replacement is not None and replacement.digest == runtime.rule.digest:
                keep[name] = runtime
            elif now is not None:
                # Episodes still waited for are open in their workflows: end them too.
                for episode in runtime.pending.values():
                    runtime.episodes.seed(episode, set())
                for resource in list(runtime.episodes.open):
                    out += runtime.episodes.close(resource, now)
        self._rule_set = rule_set
        self._install(rule_set, keep=keep)
        return out

    def _install(self, rule_set: model.RuleSet, *, keep: dict[str, runtimes.Runtime]) -> None:
        revision = str(rule_set.revision)
        installed: dict[str, runtimes.Runtime] = {}
        for name, rule in rule_set.rules.items():
            runtime = keep.get(name)
            if runtime is None:
                runtime = runtimes.Runtime(
                    rule, revision=revision, silenced=self._silenced, bounds=self._bounds
                )
            else:
                runtime.retarget(rule, revision=revision)
            installed[name] = runtime
        self._runtimes = installed
        self._index = runtimes.Index(installed.values())
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
                self._runtimes[name] = runtimes.Runtime(
                    rule, revision=revision, silenced=self._silenced, bounds=self._bounds
                )
        self._index = runtimes.Index(self._runtimes.values())

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
        return self._observe(observation)

    def observe_batch(
        self,
        batch: Iterable[observations.Observation],
        *,
        on_error: OnError | None = None,
    ) -> list[transitions.Transition]:
        """Feed observations in order: what ``observe`` gives for each in turn, concatenated.

        The same transitions in the same order, the same drops and the same state after as
        one ``observe`` call per observation (a hypothesis property holds the two to that),
        for one call per batch.

        Args:
            batch: the observations, in the order they arrived.
            on_error: told of an observation that made the engine raise (a defect), which
                is then skipped: the ones after it are fed all the same. Without it the
                error propagates.
        """
        out: list[transitions.Transition] = []
        observe = self._observe
        for observation in batch:
            try:
                found = observe(observation)
            except Exception as exc:
                if on_error is None:
                    raise
                on_error(observation, exc)
                continue
            if found:
                out += found
        return out

    def _observe(self, observation: observations.Observation) -> list[transitions.Transition]:
        if observation.at.tzinfo is None:
            raise ValueError("times must be timezone-aware")
        self._matched = False
        source = observation.source
        changes: list[tuple[runtimes.Runtime, alerts.Change]] = []
        if source in _EVENT_SOURCES:
            for runtime in self._index.candidates(observation):
                runtime.evaluations += 1
                found = self._event(runtime, observation)
                if self._problems:
                    self._unevaluable(runtime, observation)
                if found:
                    changes += [(runtime, change) for change in found]
        elif source is _ALERTMANAGER:
            self._saw(observation.at)
            for runtime in self._index.candidates(observation):
                runtime.evaluations += 1
                runtime.last_at = observation.at
                changes += [(runtime, change) for change in self._alert(runtime, observation)]
        else:
            self._drop("not_an_event", "", observation)
            return []
        if not self._matched:
            self._drop("no_rule", "", observation)
        if not changes:
            return []
        return self._fold(changes)

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
        changes: list[tuple[runtimes.Runtime, alerts.Change]] = []
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
        changes: list[tuple[runtimes.Runtime, alerts.Change]] = []
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
            event_time.sweep(runtime, now)
        out = self._fold(changes)
        for runtime in self._runtimes.values():
            out += runtime.episodes.advance(now)
        return out

    def seed(
        self,
        found: Iterable[transitions.OpenEpisode],
        *,
        at: datetime,
        sources: Collection[observations.SourceKind],
    ) -> collections.Counter[seeding.Outcome]:
        """Take up episodes their resource workflows hold open; nothing is sent.

        Only episodes of event rules in force that read one of ``sources`` are taken up
        (the sources with nothing to rebuild state from), each as firing conditions
        confirmed at ``at`` (see ``rules.seeding``); state the engine already has stands.

        Returns:
            How many episodes had each outcome.
        """
        if at.tzinfo is None:
            raise ValueError("times must be timezone-aware")
        outcomes: collections.Counter[seeding.Outcome] = collections.Counter()
        for episode in found:
            runtime = self._runtimes.get(episode.rule)
            if runtime is None:
                outcomes[seeding.Outcome.UNKNOWN_RULE] += 1
            elif runtime.rule.family is not model.Family.EVENT or (
                runtime.rule.source not in sources
            ):
                outcomes[seeding.Outcome.OTHER_SOURCE] += 1
            else:
                outcomes[seeding.take_up(runtime, episode, at=at)] += 1
        return outcomes

    def expect(
        self,
        found: Iterable[transitions.OpenEpisode],
        *,
        sources: Collection[observations.SourceKind],
    ) -> collections.Counter[seeding.Outcome]:
        """Wait for the first event of each episode's resource to take the episode up.

        Before Kafka partitions are rebuilt: episodes that started before the window the
        rebuild re-reads would otherwise never be resolved (see ``rules.seeding``). Only
        episodes of event rules in force that read one of ``sources`` are waited for; what
        was waited for before by those rules is forgotten. Each is decided by the first
        event of its resource, replayed or live, and reported to ``on_seed``.

        Returns:
            How many episodes were decided at once, by outcome (``unknown_rule``, and
            ``known`` for those the engine has state for); the others wait.
        """
        mine = {
            name: runtime
            for name, runtime in self._runtimes.items()
            if runtime.rule.family is model.Family.EVENT and runtime.rule.source in sources
        }
        by_rule: dict[str, list[transitions.OpenEpisode]] = {name: [] for name in mine}
        outcomes: collections.Counter[seeding.Outcome] = collections.Counter()
        for episode in found:
            if episode.rule in by_rule:
                by_rule[episode.rule].append(episode)
            elif episode.rule not in self._runtimes:
                outcomes[seeding.Outcome.UNKNOWN_RULE] += 1
        for name, runtime in mine.items():
            for outcome, _ in seeding.expect(runtime, by_rule[name]):
                outcomes[outcome] += 1
        return outcomes

    def take_over(
        self, found: Iterable[transitions.OpenEpisode], *, rules: Collection[str]
    ) -> collections.Counter[seeding.Outcome]:
        """Open the episodes of Prometheus rules ``rules`` their workflows hold, before a rebuild.

        Each is open and announced with no condition (see ``rules.seeding``): the first
        series of its resource that fires joins it. After the rebuild, ``close_unjoined``
        ends those no series joined. Nothing is sent; episodes of other rules are skipped.

        Returns:
            How many episodes had each outcome (``seeded``, ``known``).
        """
        outcomes: collections.Counter[seeding.Outcome] = collections.Counter()
        for episode in found:
            runtime = self._runtimes.get(episode.rule)
            if (
                episode.rule in rules
                and runtime is not None
                and runtime.rule.family is model.Family.PROMETHEUS
            ):
                outcomes[seeding.take_over(runtime, episode)] += 1
        return outcomes

    def close_unjoined(self, rule: str, at: datetime) -> list[transitions.Transition]:
        """End ``rule``'s taken-over episodes that no series joined: resolved at ``at``."""
        runtime = self._runtimes.get(rule)
        return [] if runtime is None else runtime.episodes.close_unjoined(at)

    def _take_pending(
        self, runtime: runtimes.Runtime, resource: resources.ResourceKey, at: datetime
    ) -> None:
        decided = seeding.take_pending(runtime, resource, at=at)
        if decided is not None and self._on_seed is not None:
            self._on_seed(*decided)

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
        return reports.firing(rule, self._runtimes[rule])

    def open_episodes(self) -> list[episodes.Episode]:
        """Every open episode, of every rule."""
        return [
            episode
            for runtime in self._runtimes.values()
            for episode in runtime.episodes.open.values()
        ]

    def rule_counts(self) -> list[RuleCounts]:
        """Every rule's evaluations so far and its conditions pending and firing now."""
        return [reports.counts(name, runtime) for name, runtime in self._runtimes.items()]

    def conditions(self) -> list[ConditionState]:
        """Every condition pending or firing now, of every rule, by rule and resource."""
        found = [
            condition
            for name, runtime in self._runtimes.items()
            for condition in reports.conditions(name, runtime)
        ]
        found.sort(key=lambda condition: (condition.rule, condition.resource))
        return found

    def rule_states(self) -> list[RuleState]:
        """Every rule's evaluations, last evaluation, conditions and problems, in rule order."""
        return [reports.state(name, runtime) for name, runtime in self._runtimes.items()]

    # --- internals -------------------------------------------------------------------------

    def _saw(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("times must be timezone-aware")
        if self._now is None or at > self._now:
            self._now = at

    def _drop(self, reason: str, rule: str, observation: observations.Observation | None) -> None:
        self.stats[reason] += 1
        stream = observation.stream if observation is not None else ""
        self.ignored_by_stream[stream if stream in self._streams else "other", reason] += 1
        if self._on_drop is not None:
            self._on_drop(reason, rule, observation)

    def _fold(
        self, changes: list[tuple[runtimes.Runtime, alerts.Change]]
    ) -> list[transitions.Transition]:
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
        self, runtime: runtimes.Runtime, observation: observations.Observation
    ) -> list[alerts.Change]:
        # Once per event and rule: the common case (a condition whose key is cached, an
        # event that changes nothing) makes no call it can do without.
        rule = runtime.rule
        stream = observation.stream
        if rule.stream is not None and stream != rule.stream:
            return []
        at = observation.at
        runtime.last_at = at
        labels = observation.labels
        variables: dict[str, Any] = {"labels": labels, "body": observation.body, "stream": stream}
        problems = self._problems
        matched = self._matches(runtime, variables, problems) if runtime.filtered else []
        if matched is None:
            return []
        self._matched = True
        # Without a window the truth is ``when`` alone (pure): known before the state is.
        plain: bool | None = None
        if runtime.plain:
            plain = rule.when is None or expressions.evaluate(rule.when, variables, problems)
        names = runtime.key_labels
        values: runtimes.KeyValues = ""
        condition: runtimes.Condition | None = _UNKNOWN
        if names is not None:
            values = labels.get(names[0], "") if len(names) == 1 else _values(labels, names)
            condition = runtime.keys.get(values, _UNKNOWN)
        if condition is _UNKNOWN:
            condition = self._render(runtime, observation, values)
        if condition is None:
            self._drop("invalid_resource", rule.name, observation)
            return []
        if runtime.pending:
            self._take_pending(runtime, condition[0], at)
        tracked = event_time.admit(runtime, condition, observation, ticked=self._ticked)
        if isinstance(tracked, str):
            self._drop(tracked, rule.name, observation)
            return []
        if plain is False and tracked.alert.state is _INACTIVE:
            # The common case: nothing was due and nothing became true; the time is noted.
            return []
        return self._move(
            runtime,
            tracked,
            observation=observation,
            variables=variables,
            plain=plain,
            matched=matched,
        )

    def _move(
        self,
        runtime: runtimes.Runtime,
        tracked: runtimes.Tracked,
        *,
        observation: observations.Observation,
        variables: Mapping[str, Any],
        plain: bool | None,
        matched: list[int],
    ) -> list[alerts.Change]:
        """Apply an event that may change its condition: deadlines due, then its truth."""
        rule = runtime.rule
        alert = tracked.alert
        at = observation.at
        changes = alerts.advance(alert, rule, at, inclusive=False)
        truth, until = (
            (plain, at + rule.stale_after)
            if plain is not None
            else self._truth(rule, tracked, variables, at, matched)
        )
        if truth and alert.state is _INACTIVE:
            labels = observation.labels
            alert.labels = alerts.alert_labels(rule, labels, body=observation.body)
            alert.annotations = alerts.annotations_of(rule, labels, body=observation.body)
        changes += alerts.apply(alert, rule, at, truth=truth, until=until)
        if alert.state is _INACTIVE:
            runtime.due.discard(alert.key)
        else:
            runtime.due.add(alert.key)
        return changes

    @staticmethod
    def _matches(
        runtime: runtimes.Runtime, variables: Mapping[str, Any], problems: list[expressions.Problem]
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

    def _unevaluable(
        self, runtime: runtimes.Runtime, observation: observations.Observation
    ) -> None:
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
        tracked: runtimes.Tracked,
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

    @staticmethod
    def _condition(
        runtime: runtimes.Runtime, observation: observations.Observation
    ) -> runtimes.Condition | None:
        """The condition an event belongs to; ``None`` if its resource is not a valid key.

        Rendered conditions are cached by the label values they are rendered from, when the
        resource template reads labels only: by the value itself when there is one.
        """
        labels = observation.labels
        names = runtime.key_labels
        values: runtimes.KeyValues = ""
        if names is not None:
            values = labels.get(names[0], "") if len(names) == 1 else _values(labels, names)
            cached: runtimes.Condition | None = runtime.keys.get(values, _UNKNOWN)
            if cached is not _UNKNOWN:
                return cached
        return Engine._render(runtime, observation, values)

    @staticmethod
    def _render(
        runtime: runtimes.Runtime, observation: observations.Observation, values: runtimes.KeyValues
    ) -> runtimes.Condition | None:
        """Render the condition of an event not in the cache, and cache it under ``values``."""
        labels = observation.labels
        names = runtime.key_labels
        rule = runtime.rule
        resource = _resource(templates.render(rule.resource, labels=labels, body=observation.body))
        condition: runtimes.Condition | None = None
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
        self, runtime: runtimes.Runtime, observation: observations.Observation
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
