"""Test stand-ins for the activities, registered under the real activity names.

The real activities (ansible-runner, PagerDuty, Jira, Prometheus ...) belong to another
issue and have their own tests; workflow tests check what the workflows decide and in
which order they call activities, so these record every call and answer as told. They
take and return exactly the ``activity_io`` dataclasses, so a contract change breaks them.
"""

from __future__ import annotations

import asyncio
import contextlib
import textwrap
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from controller import workflows
from controller.activities import episodes
from controller.domain import contract, resources, transitions
from controller.plans import loader, spec
from controller.workflows import activity_io as aio
from controller.workflows import converter
from controller.workflows import remediation_io as remio
from controller.workflows import resource_io as rio

BASE = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Call:
    """One activity call: its name, its input, the attempt number and its start-to-close timeout."""

    name: str
    arg: Any
    attempt: int
    timeout: timedelta | None = None


@dataclass
class FakeActivities:
    """Records calls; ``plans`` answers load_plan; the other fields script the answers."""

    plans: dict[str, spec.Plan] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    command_exit: dict[str, int] = field(default_factory=dict)
    """Exit code of every command run about a resource, by resource; 0 otherwise."""
    verify_ok: bool = True
    replicas: int = 2
    metric: float | None = 0.5
    inventory: tuple[str, ...] = ("h1", "h2", "h3")
    failing_hosts: set[str] = field(default_factory=set)
    command_delay: float = 0.0
    command_gate: int = 0
    """When set, each command waits (up to a minute) until this many have run at once."""
    commands_in_flight: int = 0
    peak_commands: int = 0
    """The most commands that were running at the same moment."""
    ticket_error: str = ""
    """When set, opening a ticket fails for good with this message (Jira not configured)."""

    def named(self, name: str, resource: str | None = None) -> list[Call]:
        """Calls of one activity (about one resource), in order."""
        return [
            call
            for call in self.calls
            if call.name == name
            and (
                resource is None
                or getattr(call.arg, "context", None) is None
                or call.arg.context.resource == resource
            )
        ]

    def steps(self, name: str, resource: str | None = None) -> list[str]:
        """The step paths of the calls of one activity (about one resource), in order."""
        return [call.arg.context.step for call in self.named(name, resource)]

    def about(self, resource: str) -> list[Call]:
        """Every call about one resource (load_plan calls carry no resource)."""
        return [
            call
            for call in self.calls
            if getattr(call.arg, "context", None) is not None
            and call.arg.context.resource == resource
        ]

    def _record(self, name: str, arg: Any) -> None:
        info = activity.info()
        self.calls.append(
            Call(name=name, arg=arg, attempt=info.attempt, timeout=info.start_to_close_timeout)
        )

    def activities(self) -> list[Callable[..., Any]]:
        """Every activity, to register on a worker."""
        return [
            self.load_plan,
            episodes.start_episode,
            self.fetch_inventory,
            self.run_playbook,
            self.scale_read,
            self.scale,
            self.query_metric,
            self.run_command,
            self.http_call,
            self.page_trigger,
            self.page_resolve,
            self.ticket_create,
            self.ticket_comment,
            self.ticket_resolve,
            self.verify_promql,
            self.verify_cel,
        ]

    @activity.defn(name=aio.LOAD_PLAN)
    async def load_plan(self, request: aio.LoadPlanInput) -> aio.LoadPlanOutput:
        self._record(aio.LOAD_PLAN, request)
        plan = self.plans.get(request.name)
        return aio.LoadPlanOutput(
            plan=plan, problem="" if plan else "no such plan", name=request.name
        )

    @activity.defn(name=aio.FETCH_INVENTORY)
    async def fetch_inventory(self, request: aio.FetchInventoryInput) -> aio.FetchInventoryOutput:
        self._record(aio.FETCH_INVENTORY, request)
        return aio.FetchInventoryOutput(hosts=self.inventory)

    @activity.defn(name=aio.RUN_PLAYBOOK)
    async def run_playbook(self, request: aio.RunPlaybookInput) -> aio.RunPlaybookOutput:
        self._record(aio.RUN_PLAYBOOK, request)
        hosts = request.limit or request.hosts or ("localhost",)
        results = tuple(
            aio.HostResult(host=host, ok=host not in self.failing_hosts, changed=True)
            for host in hosts
        )
        return aio.RunPlaybookOutput(ok=all(r.ok for r in results), hosts=results)

    @activity.defn(name=aio.SCALE_READ)
    async def scale_read(self, request: aio.ScaleReadInput) -> aio.ScaleReadOutput:
        self._record(aio.SCALE_READ, request)
        return aio.ScaleReadOutput(replicas=self.replicas)

    @activity.defn(name=aio.SCALE)
    async def scale(self, request: aio.ScaleInput) -> aio.ScaleOutput:
        self._record(aio.SCALE, request)
        self.replicas = request.replicas
        return aio.ScaleOutput(replicas=request.replicas)

    @activity.defn(name=aio.QUERY_METRIC)
    async def query_metric(self, request: aio.QueryMetricInput) -> aio.QueryMetricOutput:
        self._record(aio.QUERY_METRIC, request)
        return aio.QueryMetricOutput(value=self.metric, series=int(self.metric is not None))

    @activity.defn(name=aio.RUN_COMMAND)
    async def run_command(self, request: aio.RunCommandInput) -> aio.RunCommandOutput:
        self._record(aio.RUN_COMMAND, request)
        self.commands_in_flight += 1
        self.peak_commands = max(self.peak_commands, self.commands_in_flight)
        try:
            deadline = asyncio.get_running_loop().time() + 60
            while (
                self.peak_commands < self.command_gate
                and asyncio.get_running_loop().time() < deadline
            ):
                await asyncio.sleep(0.05)
            if self.command_delay:
                await asyncio.sleep(self.command_delay)
        finally:
            self.commands_in_flight -= 1
        code = self.command_exit.get(request.context.resource, 0)
        if code < 0:
            raise ApplicationError(
                "command not found", type=aio.PERMANENT_ERROR, non_retryable=True
            )
        return aio.RunCommandOutput(ok=code in request.ok_exit_codes, exit_code=code, stdout="ok")

    @activity.defn(name=aio.HTTP_CALL)
    async def http_call(self, request: aio.HttpCallInput) -> aio.HttpCallOutput:
        self._record(aio.HTTP_CALL, request)
        return aio.HttpCallOutput(ok=True, status=200, json_body={"ok": True})

    @activity.defn(name=aio.PAGE_TRIGGER)
    async def page_trigger(self, request: aio.PageTriggerInput) -> aio.PageOutput:
        self._record(aio.PAGE_TRIGGER, request)
        return aio.PageOutput(dedup_key=request.dedup_key, status="success")

    @activity.defn(name=aio.PAGE_RESOLVE)
    async def page_resolve(self, request: aio.PageResolveInput) -> aio.PageOutput:
        self._record(aio.PAGE_RESOLVE, request)
        return aio.PageOutput(dedup_key=request.dedup_key, status="success")

    @activity.defn(name=aio.TICKET_CREATE)
    async def ticket_create(self, request: aio.TicketCreateInput) -> aio.TicketOutput:
        self._record(aio.TICKET_CREATE, request)
        if self.ticket_error:
            raise ApplicationError(self.ticket_error, type=aio.PERMANENT_ERROR, non_retryable=True)
        return aio.TicketOutput(key="OPS-1", url="https://jira.example/OPS-1")

    @activity.defn(name=aio.TICKET_COMMENT)
    async def ticket_comment(self, request: aio.TicketCommentInput) -> aio.TicketCommentOutput:
        self._record(aio.TICKET_COMMENT, request)
        return aio.TicketCommentOutput(comment_id="1")

    @activity.defn(name=aio.TICKET_RESOLVE)
    async def ticket_resolve(self, request: aio.TicketResolveInput) -> aio.TicketResolveOutput:
        self._record(aio.TICKET_RESOLVE, request)
        return aio.TicketResolveOutput(key=request.key, status="Done")

    @activity.defn(name=aio.VERIFY_PROMQL)
    async def verify_promql(self, request: aio.VerifyPromqlInput) -> aio.VerifyOutput:
        self._record(aio.VERIFY_PROMQL, request)
        return aio.VerifyOutput(ok=self.verify_ok, checks=1, observed="1" if self.verify_ok else "")

    @activity.defn(name=aio.VERIFY_CEL)
    async def verify_cel(self, request: aio.VerifyCelInput) -> aio.VerifyOutput:
        self._record(aio.VERIFY_CEL, request)
        return aio.VerifyOutput(ok=self.verify_ok, checks=1)


def make_plan(text: str, name: str = "fix") -> spec.Plan:
    """A plan from YAML, through the real loader."""
    plan, problems = loader.check_text(textwrap.dedent(text), file=f"{name}.yaml", name=name)
    if problems or plan is None:
        raise AssertionError(problems)
    return plan


def with_converter(client: Client) -> Client:
    """The same connection, with Homeostat's data converter."""
    config = client.config()
    config["data_converter"] = converter.DATA_CONVERTER
    return Client(**config)


_started: set[str] = set()


@contextlib.asynccontextmanager
async def worker(
    client: Client,
    fakes: FakeActivities,
    *,
    task_queue: str | None = None,
    terminate: bool = True,
    **options: Any,
) -> AsyncIterator[Worker]:
    """A worker for the real workflows and the fake activities, on its own task queue.

    On exit it terminates the workflows the test started (unless ``terminate`` is false),
    so none is left open without a worker.
    """
    running = Worker(
        client,
        task_queue=task_queue or f"test-{uuid.uuid4()}",
        workflows=workflows.WORKFLOWS,
        activities=fakes.activities(),
        **options,
    )
    async with running:
        try:
            yield running
        finally:
            if terminate:
                await terminate_started(client)
            _started.clear()


async def terminate_started(
    client: Client, *episodes: transitions.Transition, remediations_only: bool = False
) -> None:
    """Terminate every workflow ``send`` started (or whose episode it sent), if still open.

    With ``episodes``, only their resource and remediation workflows (with
    ``remediations_only``, only the remediation workflows). Each is first let
    finish its workflow task in flight: the time-skipping server never releases the time
    lock of a task whose workflow was terminated while it ran.
    """
    chosen = {
        workflow_id
        for episode in episodes
        for workflow_id in (
            resources.resource_workflow_id(episode.resource),
            resources.remediation_workflow_id(episode.episode),
        )
        if not remediations_only
        or workflow_id == resources.remediation_workflow_id(episode.episode)
    }
    for workflow_id in sorted(chosen or _started):
        handle = client.get_workflow_handle(workflow_id)
        try:
            for _ in range(100):
                description = await handle.describe()
                if description.status != WorkflowExecutionStatus.RUNNING:
                    break
                if not description.raw_description.HasField("pending_workflow_task"):
                    await handle.terminate("test over")
                    break
                await asyncio.sleep(0.05)
        except RPCError:
            pass
    if chosen:
        _started.difference_update(chosen)
    else:
        _started.clear()


def fired(
    resource: str,
    *,
    rule: str = "cpu-high",
    plan: str | None = "fix",
    at: timedelta = timedelta(0),
    labels: Mapping[str, str] | None = None,
    severity: transitions.Severity = transitions.Severity.CRITICAL,
) -> transitions.Transition:
    """A ``fired`` transition of a new episode that started ``at`` after ``BASE``."""
    key = resources.ResourceKey(resource)
    started = BASE + at
    return transitions.Transition(
        kind=transitions.TransitionKind.FIRED,
        rule=rule,
        resource=key,
        episode=transitions.episode_id(rule=rule, resource=key, started_at=started),
        started_at=started,
        at=started,
        severity=severity,
        remediation=plan,
        labels=dict(labels or {"instance": "web-1"}),
        annotations={"summary": "CPU above 90% for 5 minutes"},
    )


def resolved(fired_transition: transitions.Transition) -> transitions.Transition:
    """The ``resolved`` transition of a fired episode."""
    return transitions.Transition(
        kind=transitions.TransitionKind.RESOLVED,
        rule=fired_transition.rule,
        resource=fired_transition.resource,
        episode=fired_transition.episode,
        started_at=fired_transition.started_at,
        at=fired_transition.started_at + timedelta(minutes=1),
        severity=fired_transition.severity,
        remediation=fired_transition.remediation,
        labels=dict(fired_transition.labels),
    )


async def send(
    client: Client,
    transition: transitions.Transition,
    *,
    task_queue: str,
    options: rio.ResourceOptions | None = None,
) -> WorkflowHandle[Any, Any]:
    """Signal-with-start, as the dispatcher does it."""
    _started.add(resources.resource_workflow_id(transition.resource))
    _started.add(resources.remediation_workflow_id(transition.episode))
    return await client.start_workflow(
        contract.RESOURCE_WORKFLOW,
        rio.ResourceWorkflowInput(
            resource=transition.resource, options=options or rio.ResourceOptions()
        ),
        id=resources.resource_workflow_id(transition.resource),
        task_queue=task_queue,
        start_signal=contract.SIGNAL_TRANSITION,
        start_signal_args=[transition],
    )


async def send_batch(
    client: Client,
    batch: list[transitions.Transition],
    *,
    task_queue: str,
    options: rio.ResourceOptions | None = None,
) -> WorkflowHandle[Any, Any]:
    """Signal-with-start with several transitions for one resource, as the dispatcher batches them."""
    resource = batch[0].resource
    _started.add(resources.resource_workflow_id(resource))
    _started.update(resources.remediation_workflow_id(item.episode) for item in batch)
    return await client.start_workflow(
        contract.RESOURCE_WORKFLOW,
        rio.ResourceWorkflowInput(resource=resource, options=options or rio.ResourceOptions()),
        id=resources.resource_workflow_id(resource),
        task_queue=task_queue,
        start_signal=contract.SIGNAL_TRANSITIONS,
        start_signal_args=[transitions.TransitionBatch(transitions=tuple(batch))],
    )


async def state(client: Client, resource: str) -> rio.ResourceState:
    """The resource workflow's state, by query."""
    handle = client.get_workflow_handle(
        resources.resource_workflow_id(resources.ResourceKey(resource))
    )
    answer: rio.ResourceState = await handle.query(
        contract.QUERY_STATE, result_type=rio.ResourceState
    )
    return answer


async def until(
    client: Client,
    resource: str,
    check: Callable[[rio.ResourceState], bool],
    *,
    timeout: float = 30.0,
) -> rio.ResourceState:
    """Query the state until ``check`` holds; fail with the last state after ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        current = await state(client, resource)
        if check(current):
            return current
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not reached; last state: {current}")
        await asyncio.sleep(0.05)


async def remediation_result(
    client: Client,
    transition: transitions.Transition,
    env: WorkflowEnvironment | None = None,
    *,
    timeout: float = 60.0,
) -> remio.RemediationResult:
    """The result of the episode's remediation workflow, once it exists and ended.

    With a time-skipping ``env``, time skips while waiting (as for handles from
    ``start_workflow``; handles from ``get_workflow_handle`` do not do it by themselves).
    """
    handle = client.get_workflow_handle(
        resources.remediation_workflow_id(transition.episode),
        result_type=remio.RemediationResult,
    )
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            await handle.describe()
            break
        except RPCError as exc:
            if exc.status is not RPCStatusCode.NOT_FOUND:
                raise
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.05)
    while True:
        try:
            async with env.time_skipping_unlocked() if env else contextlib.nullcontext():
                result: remio.RemediationResult = await handle.result()
        except RuntimeError as exc:  # the Java test server ends some long polls early
            if (
                "No completion event" not in str(exc)
                or asyncio.get_running_loop().time() > deadline
            ):
                raise
            continue
        return result


def outcome_of(current: rio.ResourceState, episode: str) -> rio.OutcomeRecord | None:
    """The closed episode's outcome record, if it is closed."""
    return next((item for item in current.outcomes if item.episode == episode), None)
