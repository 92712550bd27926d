"""Hand transitions to their resource workflows, and say when it is safe to acknowledge.

One signal-with-start per call: it starts the resource's workflow when none runs, and
signals it either way. Transitions for one resource travel in order through one lane; a
lane sends everything that queued up while its previous call was in flight as one batch,
so a burst for one resource costs one call, not one per transition. A bounded number of
calls run at once, and ``submit`` waits when too many transitions are pending: that is
the back-pressure the sources feel (a webhook answers later, Kafka stops polling).

A transition is handed off when the call that carried it returned; only then does its
``Handoff`` complete, and only then may a source acknowledge upstream. While Temporal is
unreachable, calls are retried with exponential backoff, forever unless the caller set a
deadline (an Alertmanager webhook does: Alertmanager retries a 5xx itself).

A call Temporal refuses for good is not retried: any status but the transient ones, and
``RESOURCE_EXHAUSTED`` when it is about size (a gRPC message over 4 MB; the same status
also means "rate limited", which is transient). A batch refused for its size is split and
each transition sent on its own, so one oversized transition never takes the others with
it. So no call holds a ``max_in_flight`` slot forever, and ``oldest_pending`` tells
``/readyz`` when hand-offs stall. A batch is also kept under ``max_batch_bytes`` (an
estimate, worst case for JSON escaping) before it is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

import structlog
from temporalio import client as temporal_client
from temporalio import service as temporal_service

from controller import errors
from controller.domain import contract, resources, transitions

log = structlog.get_logger(__name__)

_TRANSIENT = frozenset(
    {
        temporal_service.RPCStatusCode.UNAVAILABLE,
        temporal_service.RPCStatusCode.DEADLINE_EXCEEDED,
        temporal_service.RPCStatusCode.RESOURCE_EXHAUSTED,
        temporal_service.RPCStatusCode.ABORTED,
        temporal_service.RPCStatusCode.INTERNAL,
        temporal_service.RPCStatusCode.UNKNOWN,
        temporal_service.RPCStatusCode.CANCELLED,
    }
)


class DispatchError(errors.HomeostatError):
    """A transition could not be handed to Temporal."""


class DispatchTimeoutError(DispatchError):
    """Temporal did not accept the transition before the caller's deadline."""


class DispatchRejectedError(DispatchError):
    """Temporal rejected the call; retrying it cannot help.

    Attributes:
        refused: the transitions refused (``Dispatcher.dispatch`` fills it).
    """

    def __init__(self, message: str, *, refused: Sequence[transitions.Transition] = ()) -> None:
        """Say what was refused, and why."""
        super().__init__(message)
        self.refused = tuple(refused)


class Metrics(Protocol):
    """The counters the dispatcher reports to (``observability.metrics.Metrics`` fits)."""

    @property
    def dispatch_calls(self) -> Any:
        """Counter of calls by outcome."""

    @property
    def dispatch_seconds(self) -> Any:
        """Histogram of call durations."""


class Sender(Protocol):
    """One signal-with-start of a batch of transitions for one resource."""

    async def __call__(
        self, resource: resources.ResourceKey, batch: Sequence[transitions.Transition]
    ) -> None:
        """Deliver ``batch`` (all for ``resource``, in order) or raise."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Exponential backoff between retries of one call."""

    initial: timedelta = timedelta(milliseconds=200)
    maximum: timedelta = timedelta(seconds=10)
    multiplier: float = 2.0

    def delays(self) -> Iterable[float]:
        """Seconds to wait before each retry, growing to ``maximum``."""
        delay = self.initial.total_seconds()
        while True:
            yield delay
            delay = min(delay * self.multiplier, self.maximum.total_seconds())


_TOO_LARGE = ("larger than max", "too large", "exceeds limit", "size exceeds")
"""Words of Temporal's and gRPC's size refusals (checked lower-case)."""
_OVERHEAD_BYTES = 1024
"""A transition's encoded size besides its labels, annotations and groups, generously."""
_ESCAPED = 6
"""Bytes one character can take in JSON (``\u0000``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Failure:
    status: temporal_service.RPCStatusCode | None
    message: str
    permanent: bool = False

    @property
    def too_large(self) -> bool:
        """Whether the call was refused for its size."""
        text = self.message.lower()
        return any(words in text for words in _TOO_LARGE)

    @property
    def transient(self) -> bool:
        """Whether a retry may succeed."""
        if self.permanent:
            return False
        if self.status is None:
            return True
        if self.status is temporal_service.RPCStatusCode.RESOURCE_EXHAUSTED and self.too_large:
            return False
        return self.status in _TRANSIENT


@dataclass(frozen=True, slots=True)
class _Item:
    transition: transitions.Transition
    handed_off: asyncio.Future[None]
    submitted: float
    """``time.monotonic()`` at submit."""


@dataclass(slots=True)
class _Lane:
    pending: list[_Item] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


def _complete_when_done(
    futures: Sequence[asyncio.Future[None]], settled: asyncio.Future[None]
) -> None:
    """Complete ``settled`` once every one of ``futures`` is done, whatever their outcome."""
    remaining = len(futures)

    def one_done(_: asyncio.Future[None]) -> None:
        nonlocal remaining
        remaining -= 1
        if remaining == 0 and not settled.done():
            settled.set_result(None)

    if not futures and not settled.done():
        settled.set_result(None)
    for future in futures:
        future.add_done_callback(one_done)


def estimated_bytes(transition: transitions.Transition) -> int:
    """An upper bound of ``transition``'s size in a Temporal payload (JSON, worst case)."""
    characters = sum(len(name) + len(value) for name, value in transition.labels.items())
    characters += sum(len(name) + len(text) for name, text in transition.annotations.items())
    characters += sum(
        len(name) + len(text) + 2 for group in transition.groups for name, text in group
    )
    return _OVERHEAD_BYTES + _ESCAPED * characters


class TemporalSender:
    """Signal-with-start of ``ResourceWorkflow`` with the batch as the signal argument."""

    def __init__(
        self,
        client: temporal_client.Client,
        *,
        task_queue: str,
        start_input: Callable[[resources.ResourceKey], Any],
        signal_arg: Callable[[Sequence[transitions.Transition]], Any],
        rpc_timeout: timedelta = timedelta(seconds=5),
    ) -> None:
        """Send with ``client`` to ``task_queue``.

        Args:
            client: a Temporal client built with Homeostat's data converter.
            task_queue: the worker's task queue.
            start_input: the workflow's start argument for a resource not yet running.
            signal_arg: the signal argument that carries a batch.
            rpc_timeout: timeout of one call.
        """
        self._client = client
        self._task_queue = task_queue
        self._start_input = start_input
        self._signal_arg = signal_arg
        self._rpc_timeout = rpc_timeout

    async def __call__(
        self, resource: resources.ResourceKey, batch: Sequence[transitions.Transition]
    ) -> None:
        """Start-or-signal the resource's workflow with ``batch``."""
        await self._client.start_workflow(
            contract.RESOURCE_WORKFLOW,
            self._start_input(resource),
            id=resources.resource_workflow_id(resource),
            task_queue=self._task_queue,
            start_signal=contract.SIGNAL_TRANSITIONS,
            start_signal_args=[self._signal_arg(batch)],
            rpc_timeout=self._rpc_timeout,
        )


class Dispatcher:
    """Ordered, coalescing, bounded hand-off of transitions to Temporal."""

    def __init__(
        self,
        sender: Sender,
        *,
        metrics: Metrics | None = None,
        max_in_flight: int = 32,
        max_pending: int = 10_000,
        max_batch: int = 100,
        max_batch_bytes: int = 1024 * 1024,
        backoff: Backoff | None = None,
    ) -> None:
        """Dispatch through ``sender``.

        Args:
            sender: performs one call for one resource.
            metrics: where to count calls and their durations.
            max_in_flight: calls running at once.
            max_pending: transitions queued before ``submit`` waits (back-pressure).
            max_batch: transitions per call at most.
            max_batch_bytes: estimated bytes per call at most (a single transition goes
                alone whatever its size); Temporal refuses payloads over about 2 MB.
            backoff: delays between retries of a failed call.
        """
        self._send = sender
        self._metrics = metrics
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._room = asyncio.Semaphore(max_pending)
        self._max_batch = max_batch
        self._max_batch_bytes = max_batch_bytes
        self._backoff = backoff or Backoff()
        self._lanes: dict[resources.ResourceKey, _Lane] = {}
        self._closed = False

    @property
    def pending(self) -> int:
        """Transitions submitted and not yet handed off."""
        return sum(len(lane.pending) for lane in self._lanes.values())

    def oldest_pending(self) -> timedelta | None:
        """How long the oldest transition not yet handed off has waited; ``None`` if none."""
        oldest = min(
            (lane.pending[0].submitted for lane in self._lanes.values() if lane.pending),
            default=None,
        )
        return None if oldest is None else timedelta(seconds=time.monotonic() - oldest)

    async def submit(self, transition: transitions.Transition) -> asyncio.Future[None]:
        """Queue ``transition``; the returned future completes once Temporal accepted it.

        Waits while ``max_pending`` transitions are queued.
        """
        if self._closed:
            raise DispatchError("the dispatcher is closed")
        await self._room.acquire()
        handed_off: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        handed_off.add_done_callback(lambda _: self._room.release())
        lane = self._lanes.setdefault(transition.resource, _Lane())
        lane.pending.append(_Item(transition, handed_off, time.monotonic()))
        if lane.task is None or lane.task.done():
            lane.task = asyncio.create_task(self._drain(transition.resource, lane))
        return handed_off

    async def dispatch(
        self,
        batch: Iterable[transitions.Transition],
        *,
        deadline: timedelta | None = None,
        settled: asyncio.Future[None] | None = None,
    ) -> None:
        """Hand off every transition of ``batch`` and return once all were accepted.

        Args:
            batch: the transitions, in order.
            deadline: how long to wait; the transitions stay queued after it.
            settled: completed once every transition of ``batch`` was accepted or refused
                for good, even after this call gave up waiting (``deadline``).

        Raises:
            DispatchTimeoutError: not all were accepted within ``deadline``; they stay
                queued and will still be delivered, so a retry by the source is a no-op.
            DispatchRejectedError: Temporal rejected some for good; ``refused`` lists
                them, once every other one was accepted.
        """
        sent = list(batch)
        futures: list[asyncio.Future[None]] = []
        try:
            for transition in sent:
                futures.append(await self.submit(transition))  # noqa: PERF401 - kept if one fails
        finally:
            if settled is not None:
                _complete_when_done(futures, settled)
        if not futures:
            return
        gathered = asyncio.gather(*futures, return_exceptions=True)
        try:
            if deadline is None:
                outcomes = await gathered
            else:
                waited = deadline.total_seconds()
                outcomes = await asyncio.wait_for(asyncio.shield(gathered), waited)
        except TimeoutError:
            raise DispatchTimeoutError(
                f"Temporal did not accept {len(futures)} transition(s) within "
                f"{deadline.total_seconds() if deadline else 0:.0f} s"
            ) from None
        failed = [
            (transition, outcome)
            for transition, outcome in zip(sent, outcomes, strict=True)
            if isinstance(outcome, BaseException)
        ]
        if failed:
            raise DispatchRejectedError(
                str(failed[0][1]), refused=[transition for transition, _ in failed]
            )

    async def _drain(self, resource: resources.ResourceKey, lane: _Lane) -> None:
        while lane.pending:
            batch = self._next_batch(lane.pending)
            async with self._in_flight:
                outcomes = await self._deliver_all(resource, [item.transition for item in batch])
            del lane.pending[: len(batch)]
            for item, outcome in zip(batch, outcomes, strict=True):
                if item.handed_off.done():
                    continue
                if outcome is None:
                    item.handed_off.set_result(None)
                else:
                    item.handed_off.set_exception(outcome)
        if self._lanes.get(resource) is lane and not lane.pending:
            del self._lanes[resource]

    def _next_batch(self, pending: list[_Item]) -> list[_Item]:
        """The oldest pending items that fit one call (at least one)."""
        size = 0
        count = 0
        for item in pending[: self._max_batch]:
            size += estimated_bytes(item.transition)
            if count and size > self._max_batch_bytes:
                break
            count += 1
        return pending[:count]

    async def _deliver_all(
        self, resource: resources.ResourceKey, batch: list[transitions.Transition]
    ) -> list[DispatchError | None]:
        """Deliver ``batch``; one outcome per transition (split when refused for its size)."""
        failure = await self._deliver(resource, batch)
        if failure is None:
            return [None] * len(batch)
        if len(batch) > 1 and failure.too_large:
            log.warning("dispatch_split", resource=resource, transitions=len(batch))
            outcomes: list[DispatchError | None] = []
            for transition in batch:
                alone = await self._deliver(resource, [transition])
                outcomes.append(None if alone is None else self._rejected(resource, alone))
            return outcomes
        return [self._rejected(resource, failure)] * len(batch)

    @staticmethod
    def _rejected(resource: resources.ResourceKey, failure: _Failure) -> DispatchRejectedError:
        return DispatchRejectedError(f"Temporal rejected {resource}: {failure.message}")

    async def _deliver(
        self, resource: resources.ResourceKey, batch: list[transitions.Transition]
    ) -> _Failure | None:
        """Deliver ``batch`` in one call, retrying transient failures; the permanent one."""
        delays = iter(self._backoff.delays())
        while True:
            started = time.perf_counter()
            failure = await self._attempt(resource, batch)
            if failure is None:
                self._count("ok", started)
                return None
            if not failure.transient:
                self._count("rejected", started)
                log.error(
                    "dispatch_rejected",
                    resource=resource,
                    status=failure.status.name if failure.status is not None else None,
                    error=failure.message,
                    transitions=len(batch),
                )
                return failure
            self._count("retried", started)
            log.warning(
                "dispatch_retry",
                resource=resource,
                error=failure.message,
                status=failure.status.name if failure.status is not None else None,
            )
            await asyncio.sleep(next(delays))

    async def _attempt(
        self, resource: resources.ResourceKey, batch: list[transitions.Transition]
    ) -> _Failure | None:
        try:
            await self._send(resource, batch)
        except temporal_service.RPCError as exc:
            return _Failure(status=exc.status, message=exc.message)
        except RuntimeError as exc:  # the client's own "connection failed" errors
            return _Failure(status=None, message=str(exc))
        except Exception as exc:  # noqa: BLE001 - e.g. a payload that cannot be encoded
            return _Failure(status=None, message=f"{type(exc).__name__}: {exc}", permanent=True)
        return None

    def _count(self, outcome: str, started: float) -> None:
        if self._metrics is None:
            return
        self._metrics.dispatch_calls.labels(outcome=outcome).inc()
        self._metrics.dispatch_seconds.observe(time.perf_counter() - started)

    async def close(self, *, drain: timedelta = timedelta(seconds=10)) -> None:
        """Stop taking transitions and wait up to ``drain`` for queued ones to go out."""
        self._closed = True
        tasks = [lane.task for lane in self._lanes.values() if lane.task is not None]
        if tasks:
            _, still = await asyncio.wait(tasks, timeout=drain.total_seconds())
            for task in still:
                task.cancel()
            for task in still:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
