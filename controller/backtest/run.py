"""One backtest: a rule set, a window of recorded history, and what would have happened.

``backtest`` loads the set (rules, plans and playbooks, checked as ``rules lint`` checks
them), reads the window's history (Prometheus rules on their grid, Kafka topics, recorded
webhook requests: ``history``), replays it through the real engine (``replay``) and lets
the workflow's own policy decide what would have run (``policy``). ``homeostat rules
backtest`` renders the result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from controller import errors
from controller.backtest import history, policy, replay
from controller.ingest import promql
from controller.plans import bundle
from controller.rules import model

DEFAULT_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True, slots=True, kw_only=True)
class Window:
    """What to replay: the time span and where the history is."""

    start: datetime
    end: datetime
    prometheus: str | None = None
    bootstrap_servers: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    event_files: tuple[Path, ...] = ()
    interval: timedelta = DEFAULT_INTERVAL
    remediation_time: timedelta = timedelta(minutes=1)
    timestamp_field: str = "timestamp"


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    """One backtest: the set it ran, its episodes and the workflow's decision for each."""

    loaded: bundle.Bundle
    run: replay.Run
    decisions: dict[str, policy.Decision]
    not_evaluated: tuple[str, ...] = ()
    """Prometheus rules left out for want of ``--prometheus``."""


def backtest(sources: bundle.Sources, window: Window) -> Result:
    """Replay ``window`` through the set at ``sources``.

    Raises:
        bundle.SetError: the set has problems.
        errors.DependencyError: Prometheus or Kafka cannot be read.
        errors.PayloadError: an event file has a line that is not a recorded request.
    """
    loaded = bundle.load(sources)
    rule_set = loaded.rule_set
    run = replay.replay(
        rule_set,
        lambda: history.merged(_streams(rule_set, window)),
        start=window.start,
        end=window.end,
    )
    decisions = policy.decide(run.episodes, loaded.plans, remediation_time=window.remediation_time)
    skipped = (
        ()
        if window.prometheus
        else tuple(rule.name for rule in grid_rules(rule_set, window.interval))
    )
    return Result(loaded=loaded, run=run, decisions=decisions, not_evaluated=skipped)


def _streams(rule_set: model.RuleSet, window: Window) -> list[Iterable[history.Input]]:
    streams: list[Iterable[history.Input]] = []
    polled = grid_rules(rule_set, window.interval)
    if polled and window.prometheus is not None:
        client = promql.Client(window.prometheus, timeout=timedelta(seconds=60))
        streams += [
            history.evaluations(rule, client, start=window.start, end=window.end) for rule in polled
        ]
    if window.topics:
        if not window.bootstrap_servers:
            raise errors.ConfigError("--bootstrap-servers: needed to read --kafka topics")
        streams.append(
            history.kafka_observations(
                bootstrap_servers=window.bootstrap_servers,
                topics=window.topics,
                start=window.start,
                end=window.end,
                timestamp_field=window.timestamp_field,
            )
        )
    if window.event_files:
        streams.append(
            history.request_observations(
                window.event_files,
                start=window.start,
                end=window.end,
                timestamp_field=window.timestamp_field,
            )
        )
    return streams


def grid_rules(rule_set: model.RuleSet, interval: timedelta) -> list[history.GridRule]:
    """The Prometheus rules with their group's interval (``interval`` when it sets none)."""
    return [
        history.GridRule(name=rule.name, expr=rule.expr, interval=group.interval or interval)
        for group in rule_set.groups
        for rule in group.rules
        if rule.family is model.Family.PROMETHEUS and rule.expr
    ]


def tolerance_of(rule_set: model.RuleSet, interval: timedelta) -> Callable[[str], timedelta]:
    """One evaluation interval of each rule: how far an episode may move and stay the same."""
    by_rule = {
        rule.name: group.interval or interval for group in rule_set.groups for rule in group.rules
    }
    return lambda name: by_rule.get(name, interval)
