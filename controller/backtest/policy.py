"""What the resource workflow would have done with each episode: the plan-level policy.

The decisions are the workflow's own, made by its ledger (``workflows.ledger.Ledger``):
``admit`` (concurrency: start, queue, merge or skip), ``refusal`` (cooldown, budget: the
episode escalates instead, or nothing runs when the plan has no escalation), ``spend``
and ``start_cooldown``. Only the passing of time is simulated here, per resource, in the
order the workflow handles it: a remediation is taken to run for ``remediation_time``
(it ends then: its cooldown starts and the queue moves on), then transitions in the
order they were sent.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from controller.backtest import replay
from controller.domain import resources
from controller.plans import spec
from controller.workflows import ledger as ledger_module
from controller.workflows import remediation_io as rio
from controller.workflows import resource_io as io


class Action(StrEnum):
    """What an episode got."""

    REMEDIATE = "remediate"
    ESCALATE = "escalate"
    """Refused by cooldown or budget: only the plan's escalation ran."""
    NOTHING = "nothing"
    """Refused, and the plan has no escalation; or no plan; or suppressed."""
    QUEUED = "queued"
    """Waited behind a running remediation and resolved before its turn."""
    MERGED = "merged"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """The workflow's decision for one episode; ``suppressed_by`` says why it did not run."""

    action: Action
    suppressed_by: str = ""
    note: str = ""


def decide(
    episodes: Sequence[replay.Episode],
    plans: Mapping[str, spec.Plan],
    *,
    remediation_time: timedelta,
) -> dict[str, Decision]:
    """The decision for every episode, by episode id."""
    found: dict[str, Decision] = {}
    by_resource: dict[str, list[replay.Episode]] = {}
    for episode in episodes:
        if episode.silence:
            found[episode.id] = Decision(
                action=Action.NOTHING, suppressed_by=f"silence {episode.silence}"
            )
        elif not episode.plan:
            found[episode.id] = Decision(action=Action.NOTHING, note="the rule names no plan")
        elif episode.plan not in plans:
            found[episode.id] = Decision(
                action=Action.NOTHING, suppressed_by="plan missing", note=episode.plan
            )
        else:
            by_resource.setdefault(episode.resource, []).append(episode)
    for resource, mine in by_resource.items():
        found.update(_Resource(resource, plans, remediation_time).run(mine))
    return found


class _Resource:
    """One resource's workflow, in simulated time."""

    def __init__(
        self, resource: str, plans: Mapping[str, spec.Plan], remediation_time: timedelta
    ) -> None:
        key = resources.ResourceKey(resource)
        self.book = ledger_module.Ledger(io.ResourceState(resource=key), io.ResourceOptions())
        self.plans = plans
        self.remediation_time = remediation_time
        self.decisions: dict[str, Decision] = {}
        self.finishes: list[tuple[datetime, int, str]] = []
        self.order = itertools.count()

    def run(self, episodes: Sequence[replay.Episode]) -> dict[str, Decision]:
        moments: list[tuple[datetime, int, int, str, replay.Episode]] = []
        for episode in episodes:
            moments.append((episode.start, 1, next(self.order), "fired", episode))
            if episode.end is not None:
                moments.append((episode.end, 2, next(self.order), "resolved", episode))
        moments.sort(key=lambda moment: moment[:3])
        for at, _, _, kind, episode in moments:
            self._finish_until(at)
            if kind == "fired":
                self._fired(episode, at)
            else:
                self._resolved(episode, at)
        self._finish_until(None)
        return self.decisions

    def _finish_until(self, moment: datetime | None) -> None:
        """End the remediations due by ``moment`` (all of them for ``None``), in order."""
        while self.finishes and (moment is None or self.finishes[0][0] <= moment):
            at, _, episode = heapq.heappop(self.finishes)
            self._finished(episode, at)

    def _fired(self, episode: replay.Episode, now: datetime) -> None:
        book = self.book
        book.expire(now)
        fired = episode.fired
        if fired is None or fired.episode in book.episodes:
            return
        plan = self.plans[episode.plan]
        record = io.EpisodeRecord(fired=fired, status=io.EpisodeStatus.OPEN)
        admission = book.admit(record, plan, now)
        if admission is ledger_module.Admission.START:
            self._start(book.episodes[fired.episode], plan, now)
        elif admission is ledger_module.Admission.QUEUED:
            self.decisions[episode.id] = Decision(action=Action.QUEUED, suppressed_by="concurrency")
        else:
            action = (
                Action.MERGED if admission is ledger_module.Admission.MERGED else Action.SKIPPED
            )
            self.decisions[episode.id] = Decision(action=action, suppressed_by="concurrency")

    def _start(self, record: io.EpisodeRecord, plan: spec.Plan, now: datetime) -> None:
        book = self.book
        refusal = book.refusal(plan, now)
        reason = book.refusal_reason(plan, now)
        why = reason.value if reason is not None else ""
        if refusal and not plan.escalation:
            book.update(dataclasses.replace(record, status=io.EpisodeStatus.DONE, note=refusal))
            self.decisions[record.episode] = Decision(
                action=Action.NOTHING, suppressed_by=why, note=refusal
            )
            return
        mode = rio.Mode.ESCALATE if refusal else rio.Mode.REMEDIATE
        if mode is rio.Mode.REMEDIATE:
            book.spend(plan, now)
        book.running = io.Running(
            episode=record.episode,
            workflow_id=resources.remediation_workflow_id(record.episode),
            mode=mode,
            plan=plan.name,
            phase=io.Phase.ESCALATED if refusal else io.Phase.REMEDIATING,
            started_at=now,
            lost_after=now + plan.timeout,
            cooldown=plan.cooldown,
        )
        book.update(dataclasses.replace(record, status=io.EpisodeStatus.RUNNING, note=refusal))
        self.decisions[record.episode] = Decision(
            action=Action.ESCALATE if refusal else Action.REMEDIATE,
            suppressed_by=why,
            note=refusal,
        )
        heapq.heappush(
            self.finishes, (now + self.remediation_time, next(self.order), record.episode)
        )

    def _finished(self, episode: str, now: datetime) -> None:
        book = self.book
        running = book.running
        if running is None or running.episode != episode:
            return
        book.running = None
        if running.mode is rio.Mode.REMEDIATE:
            book.start_cooldown(running.plan, running.cooldown, now)
        for merged in running.merged:
            if merged in book.episodes and book.episodes[merged].resolved:
                book.close(merged, now)
        record = book.episodes.get(resources.EpisodeId(episode))
        if record is not None:
            record = dataclasses.replace(record, status=io.EpisodeStatus.DONE)
            book.update(record)
            if record.resolved:
                book.close(record.episode, now)
        self._start_next(now)

    def _start_next(self, now: datetime) -> None:
        book = self.book
        while book.running is None and book.queue:
            record = book.episodes.get(book.queue.popleft())
            if record is None or record.resolved:
                continue
            plan = self.plans[record.fired.remediation or ""]
            self._start(record, plan, now)

    def _resolved(self, episode: replay.Episode, now: datetime) -> None:
        book = self.book
        record = book.episodes.get(resources.EpisodeId(episode.id))
        if record is None:
            return
        record = dataclasses.replace(record, resolved=True)
        book.update(record)
        if record.status is io.EpisodeStatus.RUNNING:
            return
        if record.status is io.EpisodeStatus.QUEUED:
            self.decisions[episode.id] = Decision(
                action=Action.QUEUED,
                suppressed_by="concurrency",
                note="resolved before its remediation started",
            )
        book.close(record.episode, now)


def count_by(
    decisions: Mapping[str, Decision], episodes: Sequence[replay.Episode]
) -> dict[str, dict[str, int]]:
    """Per rule: episodes, and how many got each action."""
    totals: dict[str, dict[str, int]] = {}
    for episode in episodes:
        row = totals.setdefault(episode.rule, {"episodes": 0})
        row["episodes"] += 1
        action = decisions[episode.id].action.value
        row[action] = row.get(action, 0) + 1
    return totals
