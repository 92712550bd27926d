import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from temporalio import service as temporal_service
from temporalio.client import Client

from controller import assembly, dispatch
from controller.domain import resources, transitions
from controller.workflows import converter

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
FAST = dispatch.Backoff(initial=timedelta(milliseconds=10), maximum=timedelta(milliseconds=50))


def _fired(resource: str, n: int, *, label: str = "") -> transitions.Transition:
    key = resources.ResourceKey(resource)
    start = T0 + timedelta(minutes=n)
    return transitions.Transition(
        kind=transitions.TransitionKind.FIRED,
        rule="r",
        resource=key,
        episode=transitions.episode_id(rule="r", resource=key, started_at=start),
        started_at=start,
        at=start,
        labels={"big": label} if label else {},
    )


async def _delivered(client: Client, resource: str) -> list[str]:
    """Ids of the transitions the resource's workflow was signalled, from its history."""
    handle = client.get_workflow_handle(f"resource/{resource}")
    history = await handle.fetch_history()
    found = []
    for event in history.events:
        if event.HasField("workflow_execution_signaled_event_attributes"):
            payloads = event.workflow_execution_signaled_event_attributes.input.payloads
            [batch] = converter.DATA_CONVERTER.payload_converter.from_payloads(
                payloads, [transitions.TransitionBatch]
            )
            found += [t.transition_id for t in batch.transitions]
    return found


@pytest.mark.timeout(60)
async def test_a_transition_over_the_grpc_limit_is_refused_for_good_and_frees_its_slot(
    temporal_dev_server,
):
    """A 5 MB transition refused with RESOURCE_EXHAUSTED is reported at once instead of retried forever, and with one call slot the next resource's transition still goes out."""
    client = await Client.connect(
        temporal_dev_server.address, data_converter=converter.DATA_CONVERTER
    )
    queue = f"limits-{uuid.uuid4().hex[:6]}"
    dispatcher = dispatch.Dispatcher(
        assembly.temporal_sender(client, queue), max_in_flight=1, backoff=FAST
    )
    huge = _fired(f"host/huge-{queue}", 0, label="x" * 5_000_000)
    normal = _fired(f"host/normal-{queue}", 0)
    with pytest.raises(dispatch.DispatchRejectedError) as refused:
        await asyncio.wait_for(dispatcher.dispatch([huge]), 20)
    assert refused.value.refused == (huge,)
    await asyncio.wait_for(dispatcher.dispatch([normal]), 20)
    assert dispatcher.oldest_pending() is None


@pytest.mark.timeout(60)
async def test_a_batch_refused_for_its_size_is_split_so_the_others_go_out(temporal_dev_server):
    """When one resource's batch holds a transition too large for Temporal, the others of the batch are still delivered and only that one is refused."""
    client = await Client.connect(
        temporal_dev_server.address, data_converter=converter.DATA_CONVERTER
    )
    queue = f"limits-{uuid.uuid4().hex[:6]}"
    resource = f"host/mixed-{queue}"
    dispatcher = dispatch.Dispatcher(
        assembly.temporal_sender(client, queue),
        backoff=FAST,
        max_batch_bytes=64 * 1024 * 1024,  # as if the estimate let them through together
    )
    batch = [_fired(resource, 0), _fired(resource, 1, label="y" * 2_500_000), _fired(resource, 2)]
    with pytest.raises(dispatch.DispatchRejectedError) as refused:
        await asyncio.wait_for(dispatcher.dispatch(batch), 30)
    assert refused.value.refused == (batch[1],)
    assert await _delivered(client, resource) == [batch[0].transition_id, batch[2].transition_id]


def test_size_refusals_are_permanent_and_rate_limits_are_not():
    """RESOURCE_EXHAUSTED about message size is permanent; RESOURCE_EXHAUSTED for a rate limit and UNAVAILABLE stay transient."""
    exhausted = temporal_service.RPCStatusCode.RESOURCE_EXHAUSTED
    size = dispatch._Failure(
        status=exhausted, message="grpc: received message after decompression larger than max"
    )
    rate = dispatch._Failure(status=exhausted, message="namespace rate limit exceeded")
    blob = dispatch._Failure(
        status=temporal_service.RPCStatusCode.INVALID_ARGUMENT,
        message="Blob data size exceeds limit.",
    )
    down = dispatch._Failure(status=temporal_service.RPCStatusCode.UNAVAILABLE, message="down")
    assert [f.transient for f in (size, rate, blob, down)] == [False, True, False, True]
