"""Rule tests in the format of ``promtool test rules``, run through Homeostat's engine.

A test file names rule files (Homeostat's format), input series, and the alerts expected
at given times, exactly as promtool's unit tests do. PromQL is evaluated by a real
Prometheus holding the series (see ``sandbox``), queried through ``Query`` at every
evaluation time; pending, firing, ``keep_firing_for`` and episodes are this engine's work.

Homeostat's extension, ``exp_transitions`` in a test group, lists every transition the
group's evaluations must produce (kind, time, rule, resource, and the remediation that would
be dispatched). promtool rejects unknown keys, so ``promtool.convert`` strips it.

Each test group's series are written at their own far-apart offset (``GROUP_SPACING``)
so groups never see each other's samples; rule evaluation times are reported relative to
the group's start, as promtool reports them.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pydantic

from controller import errors
from controller.domain import durations, observations, transitions
from controller.rules import alerts, engine, loader, model, schema, series, sourcemap

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
"""Engine time of a group's first sample, as in promtool."""
GROUP_SPACING = timedelta(days=30)
"""How far apart groups' series sit in the sandbox; a test and its range selectors must be
shorter. (The sandbox accepts samples up to a century apart.)"""

_EVALUATION_ERROR = "duplicate_labelset"
_DUPLICATES = "vector contains metrics with the same labelset after applying alert labels"
"""promtool's words for the evaluation error, so both tools say the same."""

Query = Callable[[str, datetime], Sequence[alerts.Sample]]
Decode = Callable[["EventSpec", datetime], Sequence[observations.Observation]]
"""What ingest makes of an ``input_events`` item sent at an instant."""
"""Evaluate PromQL at an instant (``ingest.promql.Client.instant``)."""
Write = Callable[[Iterable[tuple[dict[str, str], tuple[tuple[int, float], ...]]]], None]
"""Store series as (labels, (milliseconds, value) points)."""


class _Strict(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)


class SeriesSpec(_Strict):
    """``input_series`` item."""

    series: str
    values: str


class AlertSpec(_Strict):
    """``exp_alerts`` item."""

    exp_labels: dict[str, str] = pydantic.Field(default_factory=dict)
    exp_annotations: dict[str, str] = pydantic.Field(default_factory=dict)


class AlertTestSpec(_Strict):
    """``alert_rule_test`` item."""

    eval_time: schema.Duration
    alertname: str
    exp_alerts: list[AlertSpec] = pydantic.Field(default_factory=list)


class SampleSpec(_Strict):
    """``exp_samples`` item."""

    labels: str
    value: float


class ExprTestSpec(_Strict):
    """``promql_expr_test`` item."""

    expr: str
    eval_time: schema.Duration
    exp_samples: list[SampleSpec] = pydantic.Field(default_factory=list)


class TransitionSpec(_Strict):
    """``exp_transitions`` item (Homeostat's extension)."""

    at: schema.Duration
    kind: transitions.TransitionKind
    rule: str
    resource: str
    started_at: schema.Duration | None = None
    remediation: str | None = None


class EventSpec(_Strict):
    """``input_events`` item (Homeostat's extension): an event, as its source sends it.

    ``event`` is the JSON body: a Kafka message's value, a webhook request's body, a GitLab
    webhook body (``stream`` is its kind, like ``pipeline``), or one Alertmanager alert
    (``status``, ``labels``, ``annotations``; it fires or resolves at ``at``). ``at`` is
    relative to the group's start, like ``eval_time``; ``repeat`` sends it that many times,
    ``every`` apart.
    """

    at: schema.Duration
    source: schema.Source
    stream: str = ""
    event: dict[str, Any] = pydantic.Field(default_factory=dict)
    repeat: int = pydantic.Field(default=1, ge=1, le=100_000)
    every: schema.Duration = "0"


class GroupSpec(_Strict):
    """``tests`` item."""

    name: str = ""
    interval: schema.Duration | None = None
    input_series: list[SeriesSpec] = pydantic.Field(default_factory=list)
    input_events: list[EventSpec] = pydantic.Field(default_factory=list)
    alert_rule_test: list[AlertTestSpec] = pydantic.Field(default_factory=list)
    promql_expr_test: list[ExprTestSpec] = pydantic.Field(default_factory=list)
    exp_transitions: list[TransitionSpec] | None = None
    external_labels: dict[str, str] = pydantic.Field(default_factory=dict)


class TestFileSpec(_Strict):
    """A rule-test file."""

    rule_files: list[str]
    evaluation_interval: schema.Duration = "1m"
    group_eval_order: list[str] = pydantic.Field(default_factory=list)
    tests: list[GroupSpec] = pydantic.Field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class TestFile:
    """A parsed rule-test file, with its rules loaded."""

    path: Path
    spec: TestFileSpec
    rule_set: model.RuleSet


@dataclass(kw_only=True)
class Outcome:
    """What running one file found, and what it exercised."""

    path: Path
    failures: list[str] = field(default_factory=list)
    checks: int = 0
    series: int = 0
    events: collections.Counter[str] = field(default_factory=collections.Counter)
    """Events fed, by source."""
    exercised: collections.Counter[str] = field(default_factory=collections.Counter)
    """Evaluations (Prometheus) or events that reached each rule, by rule name."""


def parse(path: Path, *, known_remediations: set[str] | None = None) -> TestFile:
    """Read a test file and load the rule files it names.

    Raises:
        errors.RuleFileError: the test file or a rule file is invalid (a ``RuleSetError``
            carries every problem).
    """
    text = sourcemap.read(path)
    data, source_map = sourcemap.load(text, file=str(path))
    try:
        spec = TestFileSpec.model_validate(data)
    except pydantic.ValidationError as exc:
        raise loader.RuleSetError(sourcemap.validation_errors(exc, source_map)) from None
    problems: list[errors.RuleFileError] = []
    files: list[Path] = []
    for index, name in enumerate(spec.rule_files):
        target = path.parent / name
        if not target.is_file():
            problems.append(source_map.error(("rule_files", index), f"no rule file {name!r}"))
        files.append(target)
    for group_index, group in enumerate(spec.tests):
        for index, item in enumerate(group.input_series):
            where = ("tests", group_index, "input_series", index)
            try:
                series.parse_selector(item.series)
                series.expand(item.values)
            except ValueError as exc:
                problems.append(source_map.error(where, str(exc)))
    if problems:
        raise loader.RuleSetError(problems)
    rule_set, rule_problems = loader.compile_files(
        files, known_remediations=known_remediations, base=path.parent
    )
    if rule_problems:
        raise loader.RuleSetError(rule_problems)
    return TestFile(path=path, spec=spec, rule_set=rule_set)


def write_series(files: Sequence[TestFile], write: Write) -> list[list[datetime]]:
    """Write every group's input series at its own offset, in one batch for all files.

    Returns:
        The offset of each group, per file: pass a file's list to ``run``.
    """
    batch: list[tuple[dict[str, str], tuple[tuple[int, float], ...]]] = []
    offsets: list[list[datetime]] = []
    for test_file in files:
        default = durations.parse_duration(test_file.spec.evaluation_interval)
        mine: list[datetime] = []
        for group in test_file.spec.tests:
            mine.append(EPOCH + GROUP_SPACING * (1 + sum(map(len, offsets)) + len(mine)))
            step = durations.parse_duration(group.interval) if group.interval else default
            base = _millis(mine[-1] - EPOCH)
            for item in group.input_series:
                points = tuple(
                    (base + index * _millis(step), _stored(value))
                    for index, value in enumerate(series.expand(item.values))
                    if not isinstance(value, series.Missing)
                )
                batch.append((series.parse_selector(item.series), points))
        offsets.append(mine)
    write(batch)
    return offsets


def run(
    test_file: TestFile,
    *,
    offsets: Sequence[datetime],
    query: Query,
    decode: Decode | None = None,
) -> Outcome:
    """Run every test group of ``test_file``, its series written at ``offsets``.

    Args:
        test_file: the parsed file.
        offsets: where each group's series were written (``write_series``).
        query: evaluates PromQL at an instant.
        decode: turns an ``input_events`` item at an instant into what ingest would make
            of it (``ingest.recorded.test_event``); needed when a group has events.
    """
    outcome = Outcome(path=test_file.path)
    for group, offset in zip(test_file.spec.tests, offsets, strict=True):
        _run_group(test_file, group, offset=offset, query=query, decode=decode, outcome=outcome)
    return outcome


def _events(group: GroupSpec, decode: Decode | None) -> list[observations.Observation]:
    found: list[tuple[datetime, int, observations.Observation]] = []
    order = 0
    for item in group.input_events:
        if decode is None:
            raise errors.DependencyError("input_events need the ingest decoders")
        first = durations.parse_duration(item.at)
        every = durations.parse_duration(item.every)
        for index in range(item.repeat):
            at = EPOCH + first + every * index
            for observation in decode(item, at):
                found.append((observation.at, order, observation))
                order += 1
    found.sort(key=lambda entry: (entry[0], entry[1]))
    return [observation for _, _, observation in found]


def _run_group(  # noqa: C901 - one loop over time, in promtool's order
    test_file: TestFile,
    group: GroupSpec,
    *,
    offset: datetime,
    query: Query,
    decode: Decode | None,
    outcome: Outcome,
) -> None:
    spec = test_file.spec
    label = f"{group.name or 'test'}"
    interval = durations.parse_duration(spec.evaluation_interval)
    eng = engine.Engine(test_file.rule_set)
    prometheus_rules = [
        rule for rule in test_file.rule_set.rules.values() if rule.family is model.Family.PROMETHEUS
    ]
    ticking = any(
        rule.family is not model.Family.PROMETHEUS for rule in test_file.rule_set.rules.values()
    )
    events = _events(group, decode)
    outcome.series += len(group.input_series)
    outcome.events.update(observation.source.value for observation in events)
    alert_tests = sorted(
        group.alert_rule_test, key=lambda item: durations.parse_duration(item.eval_time)
    )
    expr_times = [durations.parse_duration(item.eval_time) for item in group.promql_expr_test]
    ends = [durations.parse_duration(item.eval_time) for item in alert_tests] + expr_times
    ends += [durations.parse_duration(item.at) for item in group.exp_transitions or []]
    ends += [observation.at - EPOCH for observation in events]
    last = max(ends, default=timedelta(0))
    produced: list[transitions.Transition] = []
    pending = list(alert_tests)
    moment = timedelta(0)

    def until(at: timedelta) -> None:
        """Feed the events up to ``at``, then let the engine's time reach it."""
        nonlocal produced
        while events and events[0].at <= EPOCH + at:
            produced += eng.observe(events.pop(0))
        if ticking:
            produced += eng.tick(EPOCH + at)

    while moment <= last:
        until(moment)
        for rule in prometheus_rules:
            samples = query(rule.expr or "", offset + moment)
            failed_before = eng.stats[_EVALUATION_ERROR]
            produced += eng.evaluate(rule.name, EPOCH + moment, samples)
            if eng.stats[_EVALUATION_ERROR] > failed_before:
                outcome.failures.append(
                    f"{label}: rule: {rule.name}, time: {durations.format_duration(moment)}, "
                    f"err: {_DUPLICATES}"
                )
        while pending and durations.parse_duration(pending[0].eval_time) < moment + interval:
            test = pending.pop(0)
            outcome.checks += 1
            if ticking and durations.parse_duration(test.eval_time) > moment:
                until(durations.parse_duration(test.eval_time))
            problem = _check_alerts(eng, test)
            if problem:
                outcome.failures.append(f"{label}: {problem}")
        moment += interval
    for counts in eng.rule_counts():
        outcome.exercised[counts.rule] += counts.evaluations
    _final_checks(group, offset=offset, query=query, produced=produced, outcome=outcome)


def _final_checks(
    group: GroupSpec,
    *,
    offset: datetime,
    query: Query,
    produced: Sequence[transitions.Transition],
    outcome: Outcome,
) -> None:
    """``promql_expr_test`` items and ``exp_transitions``, once the group's time has run."""
    label = f"{group.name or 'test'}"
    for expr_test in group.promql_expr_test:
        outcome.checks += 1
        at = offset + durations.parse_duration(expr_test.eval_time)
        problem = _check_expr(expr_test, query(expr_test.expr, at))
        if problem:
            outcome.failures.append(f"{label}: {problem}")
    if group.exp_transitions is not None:
        outcome.checks += 1
        problem = _check_transitions(group.exp_transitions, produced)
        if problem:
            outcome.failures.append(f"{label}: {problem}")


def _check_alerts(eng: engine.Engine, test: AlertTestSpec) -> str | None:
    try:
        firing = eng.firing(test.alertname)
    except KeyError:
        firing = []
    got = sorted(_show(alert.labels, alert.annotations) for alert in firing)
    expected = sorted(
        _show({**item.exp_labels, "alertname": test.alertname}, item.exp_annotations)
        for item in test.exp_alerts
    )
    if got == expected:
        return None
    return (
        f"alertname: {test.alertname}, time: {test.eval_time},\n"
        f"        exp: {_lines(expected)}\n        got: {_lines(got)}"
    )


def _check_expr(test: ExprTestSpec, got: Sequence[alerts.Sample]) -> str | None:
    expected = sorted(
        (tuple(sorted(series.parse_selector(item.labels).items())), item.value)
        for item in test.exp_samples
    )
    actual = sorted((tuple(sorted(sample.labels.items())), sample.value) for sample in got)
    same = len(expected) == len(actual) and all(
        left[0] == right[0] and _same_value(left[1], right[1])
        for left, right in zip(expected, actual, strict=True)
    )
    if same:
        return None
    return (
        f"expr: {test.expr!r}, time: {test.eval_time},\n"
        f"        exp: {expected}\n        got: {actual}"
    )


def _check_transitions(
    expected: Sequence[TransitionSpec], produced: Sequence[transitions.Transition]
) -> str | None:
    """Every produced transition, in order, against the expected ones (fields they give)."""
    same = len(expected) == len(produced) and all(
        _matches(item, actual) for item, actual in zip(expected, produced, strict=True)
    )
    if same:
        return None
    exp = [
        f"{item.kind} at {item.at} {item.rule} {item.resource}"
        + (f" started {item.started_at}" if item.started_at else "")
        + (f" remediation {item.remediation}" if item.remediation else "")
        for item in expected
    ]
    got = [
        f"{item.kind} at {durations.format_duration(item.at - EPOCH)} {item.rule} {item.resource}"
        f" started {durations.format_duration(item.started_at - EPOCH)}"
        + (f" remediation {item.remediation}" if item.remediation else "")
        for item in produced
    ]
    return f"transitions:\n        exp: {_lines(exp)}\n        got: {_lines(got)}"


def _matches(item: TransitionSpec, actual: transitions.Transition) -> bool:
    if (item.kind, item.rule, item.resource) != (actual.kind, actual.rule, actual.resource):
        return False
    if EPOCH + durations.parse_duration(item.at) != actual.at:
        return False
    if (
        item.started_at is not None
        and EPOCH + durations.parse_duration(item.started_at) != actual.started_at
    ):
        return False
    return item.remediation is None or item.remediation == actual.remediation


def _show(labels: Mapping[str, str], annotations: Mapping[str, str]) -> str:
    return f"labels {sorted(labels.items())} annotations {sorted(annotations.items())}"


def _lines(items: Sequence[str]) -> str:
    if not items:
        return "[]"
    return "\n" + "\n".join(f"          {item}" for item in items)


def _same_value(left: float, right: float) -> bool:
    if math.isnan(left) or math.isnan(right):
        return math.isnan(left) and math.isnan(right)
    return left == right or math.isclose(left, right, rel_tol=1e-12)


def _stored(value: series.Value) -> float:
    if isinstance(value, series.Stale):
        return series.STALE_NAN
    if isinstance(value, series.Missing):  # pragma: no cover - filtered out by the caller
        raise TypeError("missing samples are not written")
    return value


def _millis(span: timedelta) -> int:
    return round(span.total_seconds() * 1000)
