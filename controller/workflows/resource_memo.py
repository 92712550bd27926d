"""The resource workflow's memo: what lists and views read without a worker.

Temporal returns a workflow's memo and search attributes with every visibility answer
(``ListWorkflowExecutions``, ``DescribeWorkflowExecution``), so ``homeostat resource
list`` and ``show`` read them instead of querying the workflow: a query needs a running
worker and replays an evicted workflow, a visibility call needs neither. The search
attributes carry what lists filter on (kind, phase, rule); the memo carries the rest, in
one ``ResourceMemo`` under the key ``homeostat``.

Each upsert is a history event, so the workflow upserts only when the memo changed, and
the memo leaves out what changes with every transition (the dedupe window, counters).
Workflows started before the memo existed replay unchanged: the upsert sits behind
``workflow.patched(MEMO_PATCH)``.

Ingest reads the open episodes back from here when it starts (``operations.open_episodes``):
rule, episode id and start, and the ``group_by`` values of the conditions that started it
(``groups``). ``groups`` needs no patch: it is copied from the ``fired`` transition, which
is fixed for the episode's life, so the memo changes (and is upserted) exactly when it did
before; histories whose transitions have no ``groups`` build the memo they recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from controller.domain import resources, transitions
    from controller.workflows import remediation_io
    from controller.workflows import resource_io as io

MEMO_KEY: Final = "homeostat"
"""The memo key holding the ``ResourceMemo``."""
MEMO_PATCH: Final = "homeostat-resource-memo"
"""Patch id guarding the memo upserts (histories recorded before them have none)."""
MEMO_VERSION: Final = 1
EPISODES_KEPT: Final = 20
"""Open episodes listed in the memo, newest first; ``open_episodes`` counts them all."""
OUTCOMES_KEPT: Final = 5
NOTE_CHARS: Final = 300
GROUPS_CHARS: Final = 1024
"""Characters of ``group_by`` names and values an episode keeps in the memo (memos stay small)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoEpisode:
    """An open episode, as views show it.

    Attributes:
        episode: its id.
        rule: the rule that fired.
        severity: the rule's severity.
        plan: the remediation plan the rule names ("" for none).
        status: what the workflow did about it.
        started_at: when the condition started firing.
        resolved: its condition cleared (it stays open while its remediation runs).
        outcome: how its remediation ended, once it did.
        note: why it was not remediated, or what went wrong (cut short).
        merged_into: the episode whose remediation covers it.
        groups: the conditions that started it, by ``group_by`` values (rules with
            ``group_by`` only; as many as fit in ``GROUPS_CHARS``): a restarted rules
            engine takes the episode up with them.
    """

    episode: resources.EpisodeId
    rule: str
    severity: str
    plan: str
    status: io.EpisodeStatus
    started_at: datetime
    resolved: bool = False
    outcome: remediation_io.Outcome | None = None
    note: str = ""
    merged_into: resources.EpisodeId | None = None
    groups: tuple[transitions.GroupValues, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoBudget:
    """A plan's remediation budget on this resource.

    Attributes:
        plan: the plan.
        used: remediations started inside the window.
        limit: the plan's ``budget.runs`` (0 when unknown).
        per: the window.
        frees_at: when the oldest use leaves the window.
    """

    plan: str
    used: int
    limit: int
    per: timedelta
    frees_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceMemo:
    """What a view of the resource shows, kept in the workflow's memo.

    Attributes:
        version: the memo's schema version.
        resource: the resource.
        phase: where it stands.
        phase_since: when it entered that phase.
        open_episodes: how many episodes are open.
        episodes: the newest ``EPISODES_KEPT`` open episodes, newest first.
        running: the remediation running now.
        queued: episodes waiting for a remediation.
        cooldowns: per-plan cooldown deadlines.
        budget: per-plan budget use.
        silenced_until: automation is silenced until then.
        silenced_by: who silenced it.
        silence_reason: why.
        paused: automation is paused.
        paused_by: who paused it.
        paused_at: since when.
        pause_reason: why.
        outcomes: the last ``OUTCOMES_KEPT`` closed episodes, newest first.
        last_rule: the rule of the episode the resource is about now, else of the last one.
    """

    version: int = MEMO_VERSION
    resource: resources.ResourceKey
    phase: io.Phase
    phase_since: datetime | None = None
    open_episodes: int = 0
    episodes: tuple[MemoEpisode, ...] = ()
    running: io.Running | None = None
    queued: int = 0
    cooldowns: tuple[io.Cooldown, ...] = ()
    budget: tuple[MemoBudget, ...] = ()
    silenced_until: datetime | None = None
    silenced_by: str = ""
    silence_reason: str = ""
    paused: bool = False
    paused_by: str = ""
    paused_at: datetime | None = None
    pause_reason: str = ""
    outcomes: tuple[io.OutcomeRecord, ...] = ()
    last_rule: str = ""


def _short(text: str) -> str:
    return text if len(text) <= NOTE_CHARS else text[: NOTE_CHARS - 1] + "…"


def _groups(groups: tuple[transitions.GroupValues, ...]) -> tuple[transitions.GroupValues, ...]:
    """The first conditions whose names and values fit in ``GROUPS_CHARS`` together."""
    kept: list[transitions.GroupValues] = []
    room = GROUPS_CHARS
    for group in groups:
        size = sum(len(name) + len(value) for name, value in group)
        if size > room:
            break
        room -= size
        kept.append(group)
    return tuple(kept)


def _episode(record: io.EpisodeRecord) -> MemoEpisode:
    fired = record.fired
    return MemoEpisode(
        episode=record.episode,
        rule=fired.rule,
        severity=fired.severity.value,
        plan=fired.remediation or "",
        status=record.status,
        started_at=fired.started_at,
        resolved=record.resolved,
        outcome=record.outcome,
        note=_short(record.note),
        merged_into=record.merged_into,
        groups=_groups(fired.groups),
    )


def _budget(state: io.ResourceState) -> tuple[MemoBudget, ...]:
    by_plan: dict[str, list[io.BudgetUse]] = {}
    for use in state.budget:
        by_plan.setdefault(use.plan, []).append(use)
    return tuple(
        MemoBudget(
            plan=plan,
            used=len(uses),
            limit=max(use.limit for use in uses),
            per=uses[-1].per,
            frees_at=min(use.at + use.per for use in uses),
        )
        for plan, uses in sorted(by_plan.items())
    )


def build(
    state: io.ResourceState, *, focus_rule: str, now: datetime, previous: ResourceMemo | None
) -> ResourceMemo:
    """The memo for ``state``; ``phase_since`` carries over while the phase stays the same."""
    since = previous.phase_since if previous is not None and previous.phase is state.phase else now
    outcomes = tuple(reversed(state.outcomes[-OUTCOMES_KEPT:]))
    last_rule = focus_rule or (outcomes[0].rule if outcomes else "")
    return ResourceMemo(
        resource=state.resource,
        phase=state.phase,
        phase_since=since,
        open_episodes=len(state.episodes),
        episodes=tuple(_episode(record) for record in reversed(state.episodes[-EPISODES_KEPT:])),
        running=state.running,
        queued=len(state.queue),
        cooldowns=state.cooldowns,
        budget=_budget(state),
        silenced_until=state.silenced_until,
        silenced_by=state.silenced_by,
        silence_reason=_short(state.silence_reason),
        paused=state.paused,
        paused_by=state.paused_by,
        paused_at=state.paused_at,
        pause_reason=_short(state.pause_reason),
        outcomes=tuple(
            io.OutcomeRecord(
                episode=outcome.episode,
                rule=outcome.rule,
                plan=outcome.plan,
                status=outcome.status,
                outcome=outcome.outcome,
                closed_at=outcome.closed_at,
                note=_short(outcome.note),
            )
            for outcome in outcomes
        ),
        last_rule=last_rule,
    )
