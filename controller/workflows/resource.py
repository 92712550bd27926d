"""ResourceWorkflow: one long-lived workflow per resource that serializes its remediations.

It receives transitions (signal-with-start by the dispatcher), decides per new episode
(record only when silenced or paused; escalate when the plan is cooling down or over its
budget; otherwise start the episode's RemediationWorkflow, one at a time, queueing,
merging or skipping a second one as the plan says), and runs the plan's on-resolve actions.

Signal handlers only validate, dedupe and enqueue; the main loop does the work. The run
continues as new after ``continue_as_new_after`` signals or when Temporal suggests it,
once every handler finished, carrying its state and any transition not yet handled. A run
with nothing left to remember (no episode, no cooldown or budget window, no silence) ends
after ``idle_timeout``; the next transition starts a fresh run, which is equivalent.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import replace
from datetime import datetime, timedelta

from temporalio import exceptions, workflow
from temporalio.workflow import ChildWorkflowHandle, ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from temporalio.common import WorkflowIDReusePolicy

    from controller.domain import approvals, contract, resources, transitions
    from controller.plans import spec
    from controller.workflows import ledger as ledger_module
    from controller.workflows import remediation_io as rio
    from controller.workflows import resource_effects as effects
    from controller.workflows import resource_io as io
    from controller.workflows import resource_memo, telemetry


MANUAL_ENDS_PATCH = "homeostat-manual-episode-ends"
"""Patch id: a hand-run episode that will not run is closed at once (histories before kept it)."""
_SETTLED = frozenset({io.EpisodeStatus.OPEN, io.EpisodeStatus.SUPPRESSED, io.EpisodeStatus.SKIPPED})


_REMEDIATED_BEFORE = "already remediated by an earlier run (its remediation workflow exists)"
_EARLY_PROGRESS_KEPT = 8
"""Progress reports kept for a remediation not yet known to be running (see ``_start``)."""

_CONFIRMED_ANSWERS = "approval-answers-confirmed"
"""Patch: approve/deny updates wait for the step to take the answer (histories before it
answered as soon as the answer was sent)."""
_CONFIRM_WITHIN = timedelta(minutes=1)
"""A remediation reports the end of its approval step at once; past this, answer anyway."""

EARLY_PROGRESS_PATCH = "homeostat-early-progress"
"""Patch id: progress a remediation reports before its start resolved here is kept (histories
before dropped it: the resource never showed the approval its first step awaited)."""

_PATCHES_FIRST = "homeostat-patches-first"
"""Patch: the patches a run asks for after a local activity are decided in its first
activation instead (histories before asked each where it is used). A local activity's
result can be recorded in one workflow task while the code that goes on from it runs in
the next (the worker answers a query that came with the task, and the server hands it a
new task); replay goes on from the result in the earlier task, where a patch first asked
for there is not known yet and reads as not applied: a divergence."""
_DECIDED_FIRST = (
    effects.EAGER_EPISODES_PATCH,
    resource_memo.MEMO_PATCH,
    MANUAL_ENDS_PATCH,
    EARLY_PROGRESS_PATCH,
)
"""The patches ``_PATCHES_FIRST`` decides first. ``load_plan``'s own is asked before its
local activity, the approval one after a signal: both stay where they are used."""


@workflow.defn(name=contract.RESOURCE_WORKFLOW)
class ResourceWorkflow:
    """The durable memory of one resource."""

    @workflow.init
    def __init__(self, start: io.ResourceWorkflowInput) -> None:
        """Restore the carried state; handlers may run before ``run`` starts."""
        state = start.state or io.ResourceState(resource=start.resource)
        self._ledger = ledger_module.Ledger(state, start.options)
        if start.state is not None:
            self._ledger.runs = state.runs + 1
        self._options = start.options
        self._inbox: deque[transitions.Transition] = deque(start.pending)
        self._results: deque[rio.RemediationResult] = deque()
        self._signals = 0
        self._poked = False
        self._starting: str | None = None
        """The episode whose remediation is being started (its start not yet resolved)."""
        self._early: list[rio.Progress] = []
        """What that remediation reported before its start resolved, in order."""
        self._watchers: set[asyncio.Task[None]] = set()
        self._alarm: asyncio.Task[None] | None = None
        self._alarm_at: datetime | None = None
        self._memo = effects.published_memo()
        self._eager = False
        """Start episodes with ``start_episode``; runs recorded before start children."""

    @workflow.run
    async def run(self, start: io.ResourceWorkflowInput) -> io.ResourceState:
        """Handle transitions until it is time to continue as new, or to end."""
        book = self._ledger
        if book.last_change is None:
            book.last_change = workflow.now()
        if workflow.patched(_PATCHES_FIRST):
            for patch in _DECIDED_FIRST:
                workflow.patched(patch)
            self._eager = True
        while True:
            await self._wait_for_work()
            while self._results or self._inbox:
                while self._results:
                    await self._finished(self._results.popleft())
                if self._inbox:
                    await self._handle(self._inbox.popleft())
            await self._start_next()
            now = workflow.now()
            book.expire(now)
            self._check_lost(now)
            self._memo = effects.publish(self._ledger, self._memo)
            if self._continue_as_new_due() or book.forgettable(now):
                ended = await self._end_run(start)
                if ended is not None:
                    return ended

    async def _end_run(self, start: io.ResourceWorkflowInput) -> io.ResourceState | None:
        """Continue as new or complete, once nothing is left to handle; ``None`` to go on."""
        book = self._ledger
        await workflow.wait_condition(workflow.all_handlers_finished)
        if self._continue_as_new_due() and not await self._hand_over_running():
            return None  # the remediation already ended: take its result in this run
        if self._results or self._inbox:
            return None  # arrived meanwhile: handle it first
        if self._continue_as_new_due():
            workflow.continue_as_new(
                io.ResourceWorkflowInput(
                    resource=start.resource,
                    options=self._options,
                    state=book.snapshot(),
                    pending=tuple(self._inbox),
                ),
                # The next run starts with this memo (it is not carried over by itself), so
                # lists and views keep their details, and `since`, across the new run.
                memo=effects.memo_fields(self._memo),
            )
        if book.forgettable(workflow.now()):
            return book.snapshot()
        return None

    async def _hand_over_running(self) -> bool:
        """Ask the running remediation to send its result by signal; ``False`` if it ended.

        Within a run the result arrives as the child's completion; the next run does not
        see that, so before continuing as new the child is told to signal the result to
        the resource workflow's id. A child that has already ended cannot be told; its
        completion reaches this run, which takes it before continuing as new.
        """
        running = self._ledger.running
        if running is None or running.reports:
            return True
        handle = workflow.get_external_workflow_handle(running.workflow_id)
        try:
            await handle.signal(contract.SIGNAL_REPORT_RESULT, rio.ReportResult())
        except exceptions.FailureError:
            await workflow.wait_condition(lambda: bool(self._results) or not self._watchers)
            return False
        self._ledger.running = replace(running, reports=True)
        return True

    async def _wait_for_work(self) -> None:
        now = workflow.now()
        # A remediation started by this run is watched through its handle; only one
        # inherited through continue-as-new needs the lost-child timer.
        self._arm(self._ledger.next_wakeup(now, watch_running=not self._watchers), now)
        await workflow.wait_condition(
            lambda: bool(self._results or self._inbox or self._poked) or self._continue_as_new_due()
        )
        self._poked = False

    def _arm(self, wakeup: datetime | None, now: datetime) -> None:
        """Keep one timer, for the earliest deadline; a later one is armed when it fires.

        Each timer is two history events. Re-arming on every transition (the idle
        deadline moves with each one) would add them per signal; this adds them per
        deadline actually reached.
        """
        if wakeup is None or (self._alarm_at is not None and self._alarm_at <= wakeup):
            return
        if self._alarm is not None:
            self._alarm.cancel()
        self._alarm_at = wakeup
        self._alarm = asyncio.create_task(self._ring(wakeup - now))

    async def _ring(self, delay: timedelta) -> None:
        await workflow.sleep(delay)
        self._alarm_at = None
        self._alarm = None
        self._poked = True

    def _continue_as_new_due(self) -> bool:
        return (
            self._signals >= self._options.continue_as_new_after
            or workflow.info().is_continue_as_new_suggested()
        )

    # Signals: validate, dedupe, enqueue. Never await here.

    @workflow.signal(name=contract.SIGNAL_TRANSITION)
    def transition(self, transition: transitions.Transition) -> None:
        """A transition from the dispatcher."""
        self._signals += 1
        self._accept(transition)

    @workflow.signal(name=contract.SIGNAL_TRANSITIONS)
    def transition_batch(self, batch: transitions.TransitionBatch) -> None:
        """Several transitions from the dispatcher, oldest first."""
        self._signals += 1
        for transition in batch.transitions:
            self._accept(transition)

    def _accept(self, transition: transitions.Transition) -> None:
        if transition.resource != self._ledger.resource:
            workflow.logger.warning(
                "transition for %s sent to %s: dropped", transition.resource, self._ledger.resource
            )
            return
        if self._ledger.first_time(transition.transition_id):
            self._inbox.append(transition)

    @workflow.signal(name=contract.SIGNAL_REMEDIATION_PROGRESS)
    def remediation_progress(self, progress: rio.Progress) -> None:
        """The running remediation's phase changed."""
        self._signals += 1
        running = self._ledger.running
        lost = running is None or running.episode != progress.episode
        if progress.episode == self._starting or (self._eager and lost):
            # Its start has not resolved here yet: the first report can share an activation
            # with the start (the SDK runs signal handlers first), and a start retried after
            # the workflow task that made it failed finds it running, reports made.
            self._early.append(progress)
            del self._early[:-_EARLY_PROGRESS_KEPT]
        else:
            self._ledger.set_running_progress(progress)
        self._poked = True

    @workflow.signal(name=contract.SIGNAL_REMEDIATION_FINISHED)
    def remediation_finished(self, finished: rio.Finished) -> None:
        """A remediation ended."""
        self._signals += 1
        self._results.append(finished.result)

    # The work.

    async def _handle(self, transition: transitions.Transition) -> None:
        book = self._ledger
        now = workflow.now()
        book.transitions_total += 1
        book.last_change = now
        if transition.kind is transitions.TransitionKind.FIRED:
            await self._fired(transition)
            self._settle_manual(transition.episode)
        else:
            await self._resolved(transition)

    async def _fired(self, fired: transitions.Transition) -> None:
        book = self._ledger
        now = workflow.now()
        if fired.episode in book.episodes:
            return
        record = io.EpisodeRecord(fired=fired, status=io.EpisodeStatus.OPEN)
        why_not = book.suppression(now)
        if why_not:
            book.add(replace(record, status=io.EpisodeStatus.SUPPRESSED, note=why_not), now)
            telemetry.suppressed(book.suppression_reason())
            return
        if not fired.remediation:
            book.add(replace(record, note="the rule names no remediation plan"), now)
            return
        plan, problem = await effects.load_plan(
            fired.remediation, attempt_timeout=self._options.load_plan_timeout
        )
        if plan is None:
            book.add(replace(record, note=problem), now)
            return
        admission = book.admit(record, plan, now)
        if admission is ledger_module.Admission.START:
            await self._start(book.episodes[fired.episode], plan)
        elif admission is ledger_module.Admission.SKIPPED:
            telemetry.suppressed(telemetry.Suppression.CONCURRENCY)

    async def _start(self, record: io.EpisodeRecord, plan: spec.Plan) -> None:
        book = self._ledger
        now = workflow.now()
        refusal = book.refusal(plan, now)
        reason = book.refusal_reason(plan, now)
        if reason is not None:
            telemetry.suppressed(reason)
        mode = rio.Mode.ESCALATE if refusal else rio.Mode.REMEDIATE
        if mode is rio.Mode.ESCALATE and not plan.escalation:
            book.update(replace(record, status=io.EpisodeStatus.DONE, note=refusal))
            return
        child_id = resources.remediation_workflow_id(record.episode)
        eager = self._eager
        request = rio.RemediationInput(
            episode=record.episode,
            resource=book.resource,
            fired=record.fired,
            plan=plan,
            mode=mode,
            reason=refusal,
            report_to=workflow.info().workflow_id,
            scaler=book.scaler,
            report_result=eager,
        )
        self._starting = record.episode
        handle = None
        if eager:
            started = await effects.start_episode(request)
            if isinstance(started, str) or started.outcome is rio.StartOutcome.EXISTS:
                self._starting, self._early = None, []
                note = started if isinstance(started, str) else _REMEDIATED_BEFORE
                book.update(replace(record, status=io.EpisodeStatus.DONE, note=note))
                return
        else:
            try:
                handle = await workflow.start_child_workflow(
                    contract.REMEDIATION_WORKFLOW,
                    request,
                    id=child_id,
                    result_type=rio.RemediationResult,
                    parent_close_policy=ParentClosePolicy.ABANDON,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    search_attributes=effects.episode_attributes(book.resource, record.fired),
                )
            except exceptions.WorkflowAlreadyStartedError:
                self._starting, self._early = None, []
                book.update(replace(record, status=io.EpisodeStatus.DONE, note=_REMEDIATED_BEFORE))
                return
        if mode is rio.Mode.REMEDIATE:
            book.spend(plan, now)
        lost_after = (
            now
            + plan.timeout
            + sum((rung.after for rung in plan.escalation), timedelta(0))
            + self._options.lost_child_margin
        )
        book.running = io.Running(
            episode=record.episode,
            workflow_id=child_id,
            mode=mode,
            plan=plan.name,
            phase=io.Phase.ESCALATED if mode is rio.Mode.ESCALATE else io.Phase.REMEDIATING,
            started_at=now,
            lost_after=lost_after,
            cooldown=plan.cooldown,
            reports=handle is None,
        )
        book.update(replace(record, status=io.EpisodeStatus.RUNNING, note=refusal))
        early = [progress for progress in self._early if progress.episode == record.episode]
        self._starting, self._early = None, []
        if early and workflow.patched(EARLY_PROGRESS_PATCH):
            for progress in early:
                book.set_running_progress(progress)
        if handle is not None:
            watcher = asyncio.create_task(self._watch(handle))
            self._watchers.add(watcher)
            watcher.add_done_callback(self._watchers.discard)

    async def _watch(self, handle: ChildWorkflowHandle[object, rio.RemediationResult]) -> None:
        """Deliver the child's result within this run, should its own signal not arrive."""
        try:
            result = await handle
        except exceptions.ChildWorkflowError as exc:
            episode = self._ledger.running.episode if self._ledger.running else None
            if episode is not None and handle.id == resources.remediation_workflow_id(episode):
                self._results.append(
                    rio.RemediationResult(
                        episode=episode, outcome=rio.Outcome.FAILED, message=str(exc.cause or exc)
                    )
                )
            return
        self._results.append(result)

    async def _finished(self, result: rio.RemediationResult) -> None:
        book = self._ledger
        running = book.running
        if running is None or running.episode != result.episode:
            return  # the other copy of a result already handled
        now = workflow.now()
        book.running = None
        book.last_change = now
        if running.mode is rio.Mode.REMEDIATE:
            book.start_cooldown(running.plan, running.cooldown, now)
        book.finish_scaler(result.scaler)
        for merged in running.merged:
            if merged in book.episodes:
                book.update(replace(book.episodes[merged], outcome=result.outcome))
                if book.episodes[merged].resolved:
                    book.close(merged, now)
                else:
                    self._settle_manual(merged, ended=True)
        record = book.episodes.get(result.episode)
        if record is None:
            return
        record = replace(
            record,
            status=io.EpisodeStatus.DONE,
            outcome=result.outcome,
            page_dedup_key=result.page_dedup_key or record.page_dedup_key,
            ticket_key=result.ticket_key or record.ticket_key,
            note=result.message,
        )
        book.update(record)
        if record.resolved:
            await effects.on_resolve(
                self._ledger.resource, record, attempt_timeout=self._options.on_resolve_timeout
            )
            book.close(record.episode, now)
        elif record.fired.rule == contract.MANUAL_RULE:
            book.close(record.episode, now)

    async def _resolved(self, resolved: transitions.Transition) -> None:
        book = self._ledger
        now = workflow.now()
        record = book.episodes.get(resolved.episode)
        if record is None:
            return
        record = replace(record, resolved=True)
        book.update(record)
        if record.status is io.EpisodeStatus.RUNNING:
            handle = workflow.get_external_workflow_handle(
                resources.remediation_workflow_id(record.episode)
            )
            try:
                await handle.signal(
                    contract.SIGNAL_EPISODE_RESOLVED, rio.EpisodeResolved(at=resolved.at)
                )
            except exceptions.FailureError as exc:
                workflow.logger.warning("could not tell %s: %s", record.episode, exc)
            return
        if record.status is io.EpisodeStatus.DONE:
            await effects.on_resolve(
                self._ledger.resource, record, attempt_timeout=self._options.on_resolve_timeout
            )
        note = (
            "resolved before its remediation started"
            if record.status is io.EpisodeStatus.QUEUED
            else ""
        )
        book.close(record.episode, now, note=note)

    async def _start_next(self) -> None:
        book = self._ledger
        while book.running is None and book.queue:
            episode = book.queue.popleft()
            record = book.episodes.get(episode)
            if record is None or record.resolved:
                continue
            now = workflow.now()
            why_not = book.suppression(now)
            if why_not:
                book.update(replace(record, status=io.EpisodeStatus.SUPPRESSED, note=why_not))
                telemetry.suppressed(book.suppression_reason())
                self._settle_manual(episode)
                continue
            plan, problem = await effects.load_plan(
                record.fired.remediation or "", attempt_timeout=self._options.load_plan_timeout
            )
            if plan is None:
                book.update(replace(record, status=io.EpisodeStatus.OPEN, note=problem))
            else:
                await self._start(record, plan)
            self._settle_manual(episode)

    def _settle_manual(self, episode: resources.EpisodeId, *, ended: bool = False) -> None:
        """Close a hand-run episode (``homeostat run``) that nothing more will happen to.

        No ``resolved`` transition ever follows a hand-run episode, so one that was not
        remediated (suppressed, skipped, refused, no plan) or whose merged remediation
        ``ended`` would otherwise stay open, and the resource firing, for ever.
        """
        book = self._ledger
        record = book.episodes.get(episode)
        if record is None or record.fired.rule != contract.MANUAL_RULE:
            return
        refused = record.status is io.EpisodeStatus.DONE and book.running is None
        if not (ended or refused or record.status in _SETTLED):
            return
        if workflow.patched(MANUAL_ENDS_PATCH):
            book.close(episode, workflow.now())

    def _check_lost(self, now: datetime) -> None:
        running = self._ledger.running
        if running is not None and not self._watchers and now >= running.lost_after:
            self._results.append(
                rio.RemediationResult(
                    episode=running.episode,
                    outcome=rio.Outcome.FAILED,
                    message=f"{running.workflow_id} did not report back in time",
                )
            )
            self._poked = True

    # Queries and updates.

    @workflow.query(name=contract.QUERY_STATE)
    def state(self) -> io.ResourceState:
        """Everything the workflow knows now."""
        return self._ledger.snapshot()

    @workflow.update(name=contract.UPDATE_APPROVE)
    async def approve(self, request: io.DecisionRequest) -> io.DecisionAck:
        """Approve the approval step the episode's remediation waits at."""
        return await self._decide(request, approved=True)

    @workflow.update(name=contract.UPDATE_DENY)
    async def deny(self, request: io.DecisionRequest) -> io.DecisionAck:
        """Deny the approval step the episode's remediation waits at."""
        return await self._decide(request, approved=False)

    @approve.validator
    def _approvable(self, request: io.DecisionRequest) -> None:
        running = self._ledger.running
        if running is None or running.episode != request.episode:
            raise ValueError(f"episode {request.episode} is not being remediated")
        if running.phase is not io.Phase.AWAITING_APPROVAL:
            raise ValueError(f"episode {request.episode} is not awaiting approval")
        if running.decided:
            raise ValueError(f"the approval step {running.approval_step} was already answered")
        if not request.by:
            raise ValueError("a decision needs the identity of who decides")
        if not approvals.may_decide(running.approvers, by=request.by, groups=request.groups):
            raise exceptions.ApplicationError(
                f"{request.by} is not an approver of {running.approval_step} "
                f"(approvers: {', '.join(running.approvers)})",
                type=contract.NOT_AN_APPROVER,
                non_retryable=True,
            )

    @deny.validator
    def _deniable(self, request: io.DecisionRequest) -> None:
        self._approvable(request)

    async def _decide(self, request: io.DecisionRequest, *, approved: bool) -> io.DecisionAck:
        running = self._ledger.running
        closed_before = len(running.answers) if running is not None else 0
        if running is not None and running.episode == request.episode:
            self._ledger.running = replace(running, decided=True)
        child_id = resources.remediation_workflow_id(request.episode)
        await workflow.get_external_workflow_handle(child_id).signal(
            contract.SIGNAL_DECISION,
            rio.Decision(
                approved=approved,
                by=request.by,
                comment=request.comment,
                channel=request.channel,
                groups=request.groups,
            ),
        )
        if workflow.patched(_CONFIRMED_ANSWERS):
            await self._confirm(request, closed_before)
        return io.DecisionAck(episode=request.episode, workflow_id=child_id)

    async def _confirm(self, request: io.DecisionRequest, closed_before: int) -> None:
        """Wait until the approval step ends; refuse the update unless it took this answer.

        The step may time out (or the episode resolve) while the answer travels; the
        remediation then ignores it, and the caller must hear that it did not count.
        """

        def step_over() -> bool:
            running = self._ledger.running
            return (
                running is None
                or running.episode != request.episode
                or len(running.answers) > closed_before
            )

        try:
            await workflow.wait_condition(step_over, timeout=_CONFIRM_WITHIN)
        except TimeoutError:
            workflow.logger.warning("no word from %s on %s's answer", request.episode, request.by)
            return
        running = self._ledger.running
        if running is None or running.episode != request.episode:
            return  # the remediation ended first: its record says whose answer counted
        taken = running.answers[closed_before]
        if taken != request.by:
            why = f"it took {taken}'s answer" if taken else "it timed out or was cancelled"
            raise exceptions.ApplicationError(
                f"the approval step {request.episode} waited at ended before this answer "
                f"arrived ({why}); nothing was decided by {request.by}",
                type=contract.APPROVAL_CLOSED,
                non_retryable=True,
            )

    @workflow.update(name=contract.UPDATE_SILENCE)
    def silence(self, request: io.SilenceRequest) -> io.ResourceState:
        """Record episodes only, without remediating or escalating, until ``until``."""
        book = self._ledger
        book.silenced_until = request.until
        book.silence_reason = request.reason
        book.silenced_by = request.by
        return self._changed()

    @silence.validator
    def _silenceable(self, request: io.SilenceRequest) -> None:
        if request.until <= workflow.now():
            raise ValueError("silence 'until' must be in the future")

    @workflow.update(name=contract.UPDATE_UNSILENCE)
    def unsilence(self, request: io.OperatorRequest) -> io.ResourceState:
        """End a silence now."""
        del request
        self._ledger.silenced_until = None
        self._ledger.silence_reason = ""
        self._ledger.silenced_by = ""
        return self._changed()

    @workflow.update(name=contract.UPDATE_PAUSE)
    def pause(self, request: io.OperatorRequest) -> io.ResourceState:
        """Pause automation for the resource until resumed."""
        book = self._ledger
        if not book.paused:
            book.paused_at = workflow.now()
        book.paused = True
        book.pause_reason = request.reason
        book.paused_by = request.by
        return self._changed()

    @workflow.update(name=contract.UPDATE_RESUME)
    def resume(self, request: io.OperatorRequest) -> io.ResourceState:
        """Resume automation."""
        del request
        self._ledger.paused = False
        self._ledger.pause_reason = ""
        self._ledger.paused_by = ""
        self._ledger.paused_at = None
        return self._changed()

    @workflow.update(name=contract.UPDATE_RESET)
    def reset(self, request: io.ResetRequest) -> io.ResourceState:
        """End cooldowns and/or forget budget use now; who and why stay in the history."""
        if request.cooldown:
            self._ledger.cooldowns.clear()
        if request.budget:
            self._ledger.budget.clear()
        return self._changed()

    @reset.validator
    def _resettable(self, request: io.ResetRequest) -> None:
        if not (request.cooldown or request.budget):
            raise ValueError("reset what? ask for the cooldown, the budget or both")

    def _changed(self) -> io.ResourceState:
        self._ledger.last_change = workflow.now()
        self._ledger.phase = self._ledger.compute_phase(workflow.now())
        self._poked = True
        return self._ledger.snapshot()
