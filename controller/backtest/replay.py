"""Recorded inputs through the real rules engine, and the episodes that came out.

The engine is the one ingest runs, fed as ingest feeds it: Prometheus evaluations at their
grid times, events in event time, and ``tick`` every ``tick`` of event time (ingest ticks
every second) so deadlines without an event fall due. A silence in the rule files hides an
episode from the workflow; to report it anyway, the inputs are replayed a second time with
the silences left out, and every episode that only that run has is marked silenced.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from controller.backtest import history
from controller.domain import transitions
from controller.rules import engine, expressions, model


@dataclass(frozen=True, slots=True, kw_only=True)
class Episode:
    """One episode the rule set would have had.

    Attributes:
        id: the episode id (the live engine derives the same).
        rule: the rule.
        resource: the resource key.
        start: when it started.
        end: when it resolved; ``None`` while still open at the end of the window.
        plan: the plan the rule names ("" for none).
        silence: the silence in the rule files that hid it from the workflow, if any.
        fired: its ``fired`` transition (``None`` when silenced).
    """

    id: str
    rule: str
    resource: str
    start: datetime
    end: datetime | None
    plan: str
    silence: str = ""
    fired: transitions.Transition | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Run:
    """What one replay produced."""

    episodes: list[Episode]
    transitions: list[transitions.Transition]
    inputs: int
    evaluation_errors: int


def replay(
    rule_set: model.RuleSet,
    inputs: Callable[[], Iterable[history.Input]],
    *,
    start: datetime,
    end: datetime,
    tick: timedelta = timedelta(seconds=1),
) -> Run:
    """Run ``inputs()`` (called once, or twice when the rule set has silences) through an engine."""
    run = _run(rule_set, inputs(), start=start, end=end, tick=tick)
    if not rule_set.silences:
        return run
    unsilenced = _run(
        dataclasses.replace(rule_set, silences=()), inputs(), start=start, end=end, tick=tick
    )
    announced = {episode.id for episode in run.episodes}
    hidden = [
        dataclasses.replace(episode, silence=_silence(rule_set.silences, episode), fired=None)
        for episode in unsilenced.episodes
        if episode.id not in announced
    ]
    return dataclasses.replace(
        run, episodes=sorted([*run.episodes, *hidden], key=lambda item: (item.start, item.id))
    )


def _run(
    rule_set: model.RuleSet,
    inputs: Iterable[history.Input],
    *,
    start: datetime,
    end: datetime,
    tick: timedelta,
) -> Run:
    eng = engine.Engine(rule_set)
    ticking = any(rule.family is model.Family.EVENT for rule in rule_set.rules.values())
    out: list[transitions.Transition] = []
    count = 0
    next_tick = start
    for item in inputs:
        if item.at > end:
            break
        if item.at < start:
            continue
        count += 1
        while ticking and next_tick < item.at:
            out += eng.tick(next_tick)
            next_tick += tick
        if isinstance(item, history.Evaluation):
            out += eng.evaluate(item.rule, item.at, item.samples)
        else:
            out += eng.observe(item)
    while ticking and next_tick <= end:
        out += eng.tick(next_tick)
        next_tick += tick
    return Run(
        episodes=episodes_of(out, rule_set.rules),
        transitions=out,
        inputs=count,
        evaluation_errors=eng.stats["duplicate_labelset"],
    )


def episodes_of(
    found: Sequence[transitions.Transition], rules: Mapping[str, model.Rule]
) -> list[Episode]:
    """Episodes from ``fired``/``resolved`` transitions, in the order they started."""
    by_id: dict[str, Episode] = {}
    for transition in found:
        if transition.kind is transitions.TransitionKind.FIRED:
            rule = rules.get(transition.rule)
            by_id[transition.episode] = Episode(
                id=transition.episode,
                rule=transition.rule,
                resource=str(transition.resource),
                start=transition.started_at,
                end=None,
                plan=transition.remediation or (rule.remediation if rule else None) or "",
                fired=transition,
            )
        elif transition.episode in by_id:
            by_id[transition.episode] = dataclasses.replace(
                by_id[transition.episode], end=transition.at
            )
    return sorted(by_id.values(), key=lambda item: (item.start, item.id))


def _silence(silences: Sequence[model.Silence], episode: Episode) -> str:
    labels = episode.fired.labels if episode.fired is not None else {}
    variables = {"labels": labels, "rule": episode.rule, "resource": episode.resource}
    for silence in silences:
        if silence.active(episode.start) and expressions.evaluate(silence.match, variables):
            return silence.name
    return next((silence.name for silence in silences), "silence")
