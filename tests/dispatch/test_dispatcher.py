import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from harness import processes, recorder_workflow
from temporalio import service as temporal_service
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from controller import dispatch, embedded
from controller.domain import resources, transitions
from controller.observability import metrics as metrics_module

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def _transition(
    resource: str, n: int, kind=transitions.TransitionKind.FIRED
) -> transitions.Transition:
    key = resources.ResourceKey(resource)
    start = T0 + timedelta(minutes=n)
    return transitions.Transition(
        kind=kind,
        rule="high-cpu",
        resource=key,
        episode=transitions.episode_id(rule="high-cpu", resource=key, started_at=start),
        started_at=start,
        at=start,
    )


class FakeSender:
    """Records calls; can be told to fail or to be slow."""

    def __init__(self, *, failures: list[temporal_service.RPCStatusCode] | None = None, delay=0.0):
        self.calls: list[tuple[str, list[str]]] = []
        self.failures = list(failures or [])
        self.delay = delay

    async def __call__(self, resource, batch):
        await asyncio.sleep(self.delay)
        if self.failures:
            raise temporal_service.RPCError("boom", self.failures.pop(0), b"")
        self.calls.append((resource, [t.transition_id for t in batch]))


FAST = dispatch.Backoff(initial=timedelta(milliseconds=10), maximum=timedelta(milliseconds=50))


async def test_a_burst_for_one_resource_is_coalesced_and_kept_in_order():
    """Fifty transitions for one resource arrive in order in a handful of calls, not fifty."""
    sender = FakeSender(delay=0.02)
    dispatcher = dispatch.Dispatcher(sender, backoff=FAST)
    burst = [_transition("service/web", n) for n in range(50)]
    await dispatcher.dispatch(burst)
    delivered = [tid for _, ids in sender.calls for tid in ids]
    assert delivered == [t.transition_id for t in burst]
    assert len(sender.calls) <= 3


async def test_resources_are_dispatched_concurrently_within_the_bound():
    """Calls for different resources overlap, never more than max_in_flight at once."""
    running = 0
    peak = 0

    async def sender(resource, batch):
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1

    dispatcher = dispatch.Dispatcher(sender, max_in_flight=4, backoff=FAST)
    await dispatcher.dispatch(_transition(f"service/s{n}", 0) for n in range(20))
    assert peak == 4


async def test_submit_waits_when_too_much_is_pending():
    """With max_pending reached, a source's submit blocks until a hand-off frees room."""
    gate = asyncio.Event()

    async def sender(resource, batch):
        await gate.wait()

    dispatcher = dispatch.Dispatcher(sender, max_pending=2, backoff=FAST)
    await dispatcher.submit(_transition("service/a", 0))
    await dispatcher.submit(_transition("service/b", 0))
    third = asyncio.create_task(dispatcher.submit(_transition("service/c", 0)))
    await asyncio.sleep(0.05)
    assert not third.done()
    gate.set()
    handed_off = await asyncio.wait_for(third, 1)
    await asyncio.wait_for(handed_off, 1)


async def test_transient_failures_are_retried_until_accepted():
    """UNAVAILABLE from Temporal is retried with backoff, and counted."""
    metrics = metrics_module.create()
    sender = FakeSender(failures=[temporal_service.RPCStatusCode.UNAVAILABLE] * 3)
    dispatcher = dispatch.Dispatcher(sender, metrics=metrics, backoff=FAST)
    await dispatcher.dispatch([_transition("service/web", 1)])
    assert len(sender.calls) == 1
    assert (
        metrics.registry.get_sample_value("homeostat_dispatch_calls_total", {"outcome": "retried"})
        == 3
    )
    assert (
        metrics.registry.get_sample_value("homeostat_dispatch_calls_total", {"outcome": "ok"}) == 1
    )


async def test_a_rejected_call_is_reported_not_retried():
    """INVALID_ARGUMENT is permanent: the caller learns of it and no retry happens."""
    sender = FakeSender(failures=[temporal_service.RPCStatusCode.INVALID_ARGUMENT])
    dispatcher = dispatch.Dispatcher(sender, backoff=FAST)
    with pytest.raises(dispatch.DispatchRejectedError, match="service/web"):
        await dispatcher.dispatch([_transition("service/web", 1)])
    assert sender.calls == []


async def test_a_deadline_fails_the_caller_but_keeps_the_transition_queued():
    """A webhook's deadline passes while Temporal is down; the transition still goes out later."""
    sender = FakeSender(failures=[temporal_service.RPCStatusCode.UNAVAILABLE] * 5)
    dispatcher = dispatch.Dispatcher(
        sender,
        backoff=dispatch.Backoff(
            initial=timedelta(milliseconds=30), maximum=timedelta(milliseconds=30)
        ),
    )
    with pytest.raises(dispatch.DispatchTimeoutError):
        await dispatcher.dispatch(
            [_transition("service/web", 1)], deadline=timedelta(milliseconds=50)
        )
    for _ in range(50):
        if sender.calls:
            break
        await asyncio.sleep(0.02)
    assert [ids for _, ids in sender.calls] == [[_transition("service/web", 1).transition_id]]


async def _start_worker(client: Client, queue: str) -> Worker:
    return Worker(client, task_queue=queue, workflows=[recorder_workflow.RecorderWorkflow])


def _sender(client: Client, queue: str) -> dispatch.TemporalSender:
    return dispatch.TemporalSender(
        client,
        task_queue=queue,
        start_input=str,
        signal_arg=lambda batch: transitions.TransitionBatch(transitions=tuple(batch)),
    )


async def test_signal_with_start_starts_one_workflow_per_resource(temporal_dev_server):
    """Against the real dev server: one workflow per resource receives its transitions in order."""
    client = await Client.connect(
        temporal_dev_server.address, data_converter=pydantic_data_converter
    )
    queue = f"dispatch-{uuid.uuid4()}"
    resource = f"service/web-{uuid.uuid4().hex[:6]}"
    dispatcher = dispatch.Dispatcher(_sender(client, queue), backoff=FAST)
    sent = [_transition(resource, n) for n in range(3)]
    async with await _start_worker(client, queue):
        await dispatcher.dispatch(sent[:2])
        await dispatcher.dispatch(sent[2:])
        handle = client.get_workflow_handle(
            resources.resource_workflow_id(resources.ResourceKey(resource))
        )
        received = await handle.query("received")
        runs = [wf async for wf in client.list_workflows(f"WorkflowId = '{handle.id}'")]
        await handle.terminate()
    assert received == [t.transition_id for t in sent]
    assert len(runs) == 1


@pytest.mark.timeout(90)
async def test_transitions_wait_out_a_temporal_outage(tmp_path):
    """Transitions submitted while Temporal is down are delivered once it is back."""
    port = processes.free_port()
    server = embedded.EmbeddedTemporal(db_file=tmp_path / "t.db", port=port, ui=False)
    await server.start()
    try:
        client = await Client.connect(server.address, data_converter=pydantic_data_converter)
    finally:
        await server.stop()
    queue = f"dispatch-{uuid.uuid4()}"
    dispatcher = dispatch.Dispatcher(
        _sender(client, queue),
        backoff=dispatch.Backoff(initial=timedelta(milliseconds=100), maximum=timedelta(seconds=1)),
    )
    sent = [_transition("service/outage", n) for n in range(3)]
    delivery = asyncio.create_task(dispatcher.dispatch(sent))
    await asyncio.sleep(5)
    assert not delivery.done()
    await server.start()
    try:
        async with await _start_worker(client, queue):
            await asyncio.wait_for(delivery, 60)
            handle = client.get_workflow_handle("resource/service/outage")
            assert await handle.query("received") == [t.transition_id for t in sent]
            await handle.terminate()
    finally:
        await server.stop()
