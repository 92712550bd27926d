"""The resource workflow's working state: mutable inside a run, frozen between runs.

``Ledger`` holds what ``ResourceState`` holds, in shapes that are cheap to change (dicts,
deques), and answers the questions the workflow asks of it: may this plan run now, what
phase is the resource in, when must the workflow wake up next, is there anything left to
remember. Every method is a pure function of the state and the ``now`` it is given, so it
is deterministic on replay and testable without Temporal.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from datetime import datetime, timedelta
from enum import StrEnum

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from controller.domain import resources
    from controller.plans import spec
    from controller.workflows import remediation_io as rio
    from controller.workflows import resource_io as io
    from controller.workflows import scaling, telemetry

_PROGRESS_PHASES = {
    rio.ProgressPhase.REMEDIATING: io.Phase.REMEDIATING,
    rio.ProgressPhase.VERIFYING: io.Phase.VERIFYING,
    rio.ProgressPhase.AWAITING_APPROVAL: io.Phase.AWAITING_APPROVAL,
    rio.ProgressPhase.ESCALATED: io.Phase.ESCALATED,
}


def _why(what: str, by: str, reason: str) -> str:
    """``what by who: reason``, leaving out the parts that are empty."""
    text = f"{what} by {by}" if by else what
    return f"{text}: {reason}" if reason else text


def progress_phase(phase: rio.ProgressPhase) -> io.Phase:
    """The resource phase a remediation's progress phase stands for."""
    return _PROGRESS_PHASES[phase]


_ENDED_WITHOUT_REMEDIATION = {
    io.EpisodeStatus.OPEN: "recorded",
    io.EpisodeStatus.QUEUED: "resolved_while_queued",
    io.EpisodeStatus.RUNNING: "lost",
    io.EpisodeStatus.MERGED: "merged",
    io.EpisodeStatus.SKIPPED: "skipped",
    io.EpisodeStatus.SUPPRESSED: "suppressed",
    io.EpisodeStatus.DONE: "refused",
}


def ended_as(record: io.EpisodeRecord) -> str:
    """The outcome label of a closing episode: its remediation's, or why none ran."""
    if record.outcome is not None:
        return record.outcome.value
    return _ENDED_WITHOUT_REMEDIATION[record.status]


class Admission(StrEnum):
    """What a new episode with a plan does, given what the resource is doing (``admit``)."""

    START = "start"
    """Nothing is running: its remediation starts now (``refusal`` may still escalate it)."""
    QUEUED = "queued"
    MERGED = "merged"
    SKIPPED = "skipped"


class Ledger:
    """Everything a resource workflow knows, while a run lasts."""

    def __init__(self, state: io.ResourceState, options: io.ResourceOptions) -> None:
        """Unfreeze ``state``."""
        self.resource = state.resource
        self.options = options
        self.phase = state.phase
        self.episodes: dict[resources.EpisodeId, io.EpisodeRecord] = {
            record.episode: record for record in state.episodes
        }
        self.queue: deque[resources.EpisodeId] = deque(state.queue)
        self.running = state.running
        self.cooldowns = {cooldown.plan: cooldown.until for cooldown in state.cooldowns}
        self.budget = list(state.budget)
        self.silenced_until = state.silenced_until
        self.silence_reason = state.silence_reason
        self.silenced_by = state.silenced_by
        self.paused = state.paused
        self.pause_reason = state.pause_reason
        self.paused_by = state.paused_by
        self.paused_at = state.paused_at
        self.scaler = state.scaler
        self.outcomes: deque[io.OutcomeRecord] = deque(state.outcomes, maxlen=options.outcomes_kept)
        self.seen: deque[str] = deque(state.seen, maxlen=options.dedupe_window)
        self._seen_set = set(self.seen)
        self.transitions_total = state.transitions_total
        self.runs = state.runs
        self.last_change = state.last_change

    def snapshot(self) -> io.ResourceState:
        """Freeze the ledger into the state payload."""
        return io.ResourceState(
            resource=self.resource,
            phase=self.phase,
            episodes=tuple(self.episodes.values()),
            queue=tuple(self.queue),
            running=self.running,
            cooldowns=tuple(
                io.Cooldown(plan=plan, until=until)
                for plan, until in sorted(self.cooldowns.items())
            ),
            budget=tuple(self.budget),
            silenced_until=self.silenced_until,
            silence_reason=self.silence_reason,
            paused=self.paused,
            pause_reason=self.pause_reason,
            scaler=self.scaler,
            outcomes=tuple(self.outcomes),
            seen=tuple(self.seen),
            transitions_total=self.transitions_total,
            runs=self.runs,
            last_change=self.last_change,
            silenced_by=self.silenced_by,
            paused_by=self.paused_by,
            paused_at=self.paused_at,
        )

    def first_time(self, transition_id: str) -> bool:
        """Remember ``transition_id``; ``False`` when it is already in the dedupe window."""
        if transition_id in self._seen_set:
            return False
        if len(self.seen) == self.seen.maxlen:
            self._seen_set.discard(self.seen[0])
        self.seen.append(transition_id)
        self._seen_set.add(transition_id)
        return True

    def silenced(self, now: datetime) -> bool:
        """Whether automation is silenced at ``now``."""
        return self.silenced_until is not None and now < self.silenced_until

    def suppression(self, now: datetime) -> str:
        """Why automation is off now, or ``""`` when it is on."""
        if self.paused:
            return _why("automation paused", self.paused_by, self.pause_reason)
        if self.silenced(now) and self.silenced_until is not None:
            until = self.silenced_until.isoformat()
            return _why(f"silenced until {until}", self.silenced_by, self.silence_reason)
        return ""

    def refusal(self, plan: spec.Plan, now: datetime) -> str:
        """Why ``plan`` may not remediate now (cooldown, budget), or ``""`` when it may."""
        return self._refused(plan, now)[1]

    def refusal_reason(self, plan: spec.Plan, now: datetime) -> telemetry.Suppression | None:
        """``COOLDOWN`` or ``BUDGET`` when ``plan`` may not remediate now, else ``None``."""
        return self._refused(plan, now)[0]

    def _refused(self, plan: spec.Plan, now: datetime) -> tuple[telemetry.Suppression | None, str]:
        until = self.cooldowns.get(plan.name)
        if until is not None and now < until:
            return (
                telemetry.Suppression.COOLDOWN,
                (
                    f"plan {plan.name} is cooling down until {until.isoformat()} "
                    f"(`homeostat resource reset {self.resource} --cooldown` ends it)"
                ),
            )
        if plan.budget is not None:
            used = [use for use in self.budget if use.plan == plan.name and now - use.at < use.per]
            if len(used) >= plan.budget.runs:
                return (
                    telemetry.Suppression.BUDGET,
                    (
                        f"plan {plan.name} used its budget of {plan.budget.runs} runs "
                        f"per {plan.budget.per} (`homeostat resource reset {self.resource} "
                        "--budget` forgets them)"
                    ),
                )
        return None, ""

    def suppression_reason(self) -> telemetry.Suppression:
        """Why automation is off (``suppression`` said it is): paused, or silenced."""
        return telemetry.Suppression.PAUSE if self.paused else telemetry.Suppression.SILENCE

    def admit(self, record: io.EpisodeRecord, plan: spec.Plan, now: datetime) -> Admission:
        """Open a new episode with ``plan``, by the plan's concurrency if one is running.

        The record is added (with the plan's ``on_resolve``), queued, merged into the
        running remediation or skipped; ``START`` means the caller starts it now. Pure, so
        the resource workflow and ``homeostat rules backtest`` decide the same way.
        """
        record = replace(record, on_resolve=plan.on_resolve)
        running = self.running
        if running is None:
            self.add(record, now)
            return Admission.START
        if plan.concurrency is spec.Concurrency.QUEUE:
            self.add(replace(record, status=io.EpisodeStatus.QUEUED), now)
            self.queue.append(record.episode)
            return Admission.QUEUED
        if plan.concurrency is spec.Concurrency.MERGE:
            self.add(
                replace(record, status=io.EpisodeStatus.MERGED, merged_into=running.episode), now
            )
            self.running = replace(running, merged=(*running.merged, record.episode))
            return Admission.MERGED
        note = f"skipped: {running.episode} was being remediated"
        self.add(replace(record, status=io.EpisodeStatus.SKIPPED, note=note), now)
        return Admission.SKIPPED

    def spend(self, plan: spec.Plan, now: datetime) -> None:
        """Count a remediation of ``plan`` starting at ``now`` against its budget."""
        if plan.budget is not None:
            self.budget.append(
                io.BudgetUse(plan=plan.name, at=now, per=plan.budget.per, limit=plan.budget.runs)
            )

    def close(self, episode: resources.EpisodeId, now: datetime, note: str = "") -> None:
        """Forget an open episode, keeping its outcome among the last ones."""
        record = self.episodes.pop(episode, None)
        if record is None:
            return
        if episode in self.queue:
            self.queue.remove(episode)
        telemetry.episode_ended(record.fired.rule, ended_as(record), now - record.fired.started_at)
        self.outcomes.append(
            io.OutcomeRecord(
                episode=episode,
                rule=record.fired.rule,
                plan=record.fired.remediation or "",
                status=record.status,
                outcome=record.outcome,
                closed_at=now,
                note=note or record.note,
            )
        )

    def add(self, record: io.EpisodeRecord, now: datetime) -> None:
        """Open an episode; the oldest is closed when there are too many."""
        telemetry.episode_started(record.fired.rule)
        self.episodes[record.episode] = record
        while len(self.episodes) > self.options.max_open_episodes:
            oldest = next(
                (
                    key
                    for key, item in self.episodes.items()
                    if item.status is not io.EpisodeStatus.RUNNING
                ),
                None,
            )
            if oldest is None:
                break
            self.close(oldest, now, note="closed: too many open episodes")

    def update(self, record: io.EpisodeRecord) -> None:
        """Replace an open episode's record."""
        if record.episode in self.episodes:
            self.episodes[record.episode] = record

    def expire(self, now: datetime) -> None:
        """Drop cooldowns, budget uses and silences that are over."""
        self.cooldowns = {plan: until for plan, until in self.cooldowns.items() if until > now}
        self.budget = [use for use in self.budget if now - use.at < use.per]
        if self.silenced_until is not None and self.silenced_until <= now:
            self.silenced_until = None
            self.silence_reason = ""
            self.silenced_by = ""

    def compute_phase(self, now: datetime) -> io.Phase:  # noqa: PLR0911 - a precedence list
        """Where the resource stands now."""
        if self.paused:
            return io.Phase.PAUSED
        if self.silenced(now):
            return io.Phase.SILENCED
        if self.running is not None:
            return self.running.phase
        unresolved = [record for record in self.episodes.values() if not record.resolved]
        if any(record.outcome is rio.Outcome.ESCALATED for record in unresolved):
            return io.Phase.ESCALATED
        if unresolved:
            return io.Phase.FIRING
        if any(until > now for until in self.cooldowns.values()):
            return io.Phase.COOLING_DOWN
        return io.Phase.HEALTHY

    def focus(self) -> io.EpisodeRecord | None:
        """The episode the resource is mostly about now: the running one, else the newest."""
        if self.running is not None and self.running.episode in self.episodes:
            return self.episodes[self.running.episode]
        unresolved = [record for record in self.episodes.values() if not record.resolved]
        return unresolved[-1] if unresolved else None

    def next_wakeup(self, now: datetime, *, watch_running: bool = True) -> datetime | None:
        """The earliest moment something changes by itself (an expiry, a lost child, idleness).

        ``watch_running`` includes the moment the running remediation counts as lost.
        """
        moments = [*self.cooldowns.values(), *(use.at + use.per for use in self.budget)]
        if self.silenced_until is not None:
            moments.append(self.silenced_until)
        if self.running is not None and watch_running:
            moments.append(self.running.lost_after)
        if self.last_change is not None and self.forgettable(now, ignore_idle=True):
            moments.append(self.last_change + self.options.idle_timeout)
        future = [moment for moment in moments if moment > now]
        return min(future, default=None)

    def forgettable(self, now: datetime, *, ignore_idle: bool = False) -> bool:
        """Whether the run may end: nothing open, nothing pending, every deadline passed.

        A new run started from an empty state by the next transition then behaves exactly
        as this one would have, so completing loses nothing that matters.
        """
        busy = (
            self.episodes
            or self.queue
            or self.running is not None
            or self.paused
            or self.silenced(now)
            or any(until > now for until in self.cooldowns.values())
            or any(now - use.at < use.per for use in self.budget)
        )
        if busy:
            return False
        if ignore_idle:
            return True
        idle_since = self.last_change or now
        return now - idle_since >= self.options.idle_timeout

    def finish_scaler(self, history: scaling.ScalerHistory | None) -> None:
        """Adopt the scaler history a remediation returned."""
        if history is not None:
            self.scaler = history

    def set_running_progress(self, progress: rio.Progress) -> None:
        """Record the running remediation's phase and, at an approval, who may answer it.

        A new approval step has no answer yet, so ``decided`` starts false again; an
        approval step that ends adds whose answer it took to ``answers``.
        """
        running = self.running
        if running is None or running.episode != progress.episode:
            return
        phase = progress_phase(progress.phase)
        if phase is io.Phase.AWAITING_APPROVAL:
            self.running = replace(
                running,
                phase=phase,
                approvers=progress.approvers,
                approval_step=progress.step,
                approval_deadline=progress.approval_deadline,
                decided=False,
            )
        else:
            ended = running.phase is io.Phase.AWAITING_APPROVAL
            self.running = replace(
                running,
                phase=phase,
                approvers=(),
                approval_step="",
                approval_deadline=None,
                decided=False,
                answers=(*running.answers, progress.answered_by) if ended else running.answers,
            )

    def start_cooldown(self, plan: str, cooldown: timedelta, now: datetime) -> None:
        """No remediation of ``plan`` until ``now + cooldown``."""
        if cooldown > timedelta(0):
            self.cooldowns[plan] = max(self.cooldowns.get(plan, now), now + cooldown)
