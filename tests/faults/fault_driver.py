"""The fault driver: live episodes, and SIGKILLs and broker stalls at seeded random moments.

A run sends a planned workload (hot readings on Kafka that fire a ``for: 2s`` rule on the
engine's clock, failed-job events on the webhook; each later cleared once its ticket
exists) while it executes a fault schedule drawn from a seed:

- ``kill-ingest`` / ``kill-worker``: SIGKILL that Homeostat process; its supervisor starts
  it again at once (and again, while a start fails because Temporal is down);
- ``kill-temporal``: SIGKILL the dev server; it comes back on the same file and port after
  an outage of a few seconds;
- ``pause-broker``: SIGSTOP the broker for a few seconds, then SIGCONT;
- ``ingest-in-outage``: Temporal is killed; a probe resource's hot reading fires on the
  engine's clock while Temporal is down; a second reading for it arrives (it produces no
  transition); ingest (and, one time in two, the worker) is killed before Temporal is
  back; then Temporal and the killed processes restart, in either order (Homeostat first:
  it starts without Temporal and must wait for it). Item 4 of issue 9: the episode must
  still exist, once.

Every fault waits (bounded) until its target runs, so a kill hits a working process. What
was sent, when each fault happened, and each process's starts are kept for the oracle and
the report.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import fault_cluster
import httpx
from kafka import KafkaProducer

KILLS = frozenset({"kill-ingest", "kill-worker", "kill-temporal"})


@dataclass
class Fault:
    """One fault as executed: when (seconds since the run began), what, and for how long."""

    kind: str
    at: float = 0.0
    seconds: float = 0.0
    """Outage or stall length (Temporal down, broker stopped)."""
    kills: int = 0
    probe: str = ""
    """The resource an ``ingest-in-outage`` fault watches."""
    worker_too: bool = False
    """An ``ingest-in-outage`` that kills the worker inside the outage as well."""
    homeostat_first: bool = False
    """An ``ingest-in-outage`` whose killed processes start again before Temporal does."""


@dataclass
class Sent:
    """What the driver sent for one resource."""

    resource: str
    via: str
    """``kafka`` or ``webhook``."""
    fired_at: float | None = None
    """When the firing event was acknowledged (broker ack, or HTTP 200)."""
    cleared_at: float | None = None
    attempts: int = 0


@dataclass
class Schedule:
    """The seeded plan of a run."""

    seed: int
    faults: list[Fault]
    gaps: list[float]
    kafka_resources: list[str]
    webhook_resources: list[str]
    fire_offsets: dict[str, float]


def schedule(
    seed: int, *, kills: int, kafka_resources: int, webhook_resources: int, span: float
) -> Schedule:
    """Draw a fault schedule with at least ``kills`` SIGKILLs, and when each resource fires.

    About one fault in five is an ``ingest-in-outage`` (two kills), one in six a broker
    stall; the rest are single kills spread over ingest, worker and Temporal.
    """
    rng = random.Random(seed)
    faults: list[Fault] = []
    total = 0
    while total < kills:
        roll = rng.random()
        if roll < 0.18 or (total == 0 and kills >= 4):
            worker_too = rng.random() < 0.5
            fault = Fault(
                kind="ingest-in-outage",
                kills=3 if worker_too else 2,
                probe=f"host/probe-{len(faults)}",
                worker_too=worker_too,
                homeostat_first=rng.random() < 0.5,
            )
        elif roll < 0.33:
            fault = Fault(kind="pause-broker", seconds=round(rng.uniform(2, 7), 1))
        else:
            kind = rng.choice(sorted(KILLS))
            seconds = round(rng.uniform(1, 5), 1) if kind == "kill-temporal" else 0.0
            fault = Fault(kind=kind, seconds=seconds, kills=1)
        faults.append(fault)
        total += fault.kills
    gaps = [round(rng.uniform(1.0, 4.0), 1) for _ in faults]
    hosts = [f"host/h{n}" for n in range(kafka_resources)]
    jobs = [f"job/j{n}" for n in range(webhook_resources)]
    offsets = {name: round(rng.uniform(0, span), 1) for name in hosts + jobs}
    return Schedule(
        seed=seed,
        faults=faults,
        gaps=gaps,
        kafka_resources=hosts,
        webhook_resources=jobs,
        fire_offsets=offsets,
    )


@dataclass
class Run:
    """Everything a run did, for the oracle and the report."""

    schedule: Schedule
    sent: dict[str, Sent] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    kill_times: list[tuple[float, str]] = field(default_factory=list)
    recoveries: list[tuple[str, float, float | None]] = field(default_factory=list)
    """Per kill: target, when, and seconds until it ran again (``None``: it never did)."""
    began: float = field(default_factory=time.time)
    """Wall-clock start (epoch seconds): marker files use the wall clock."""
    notes: list[str] = field(default_factory=list)

    @property
    def kills(self) -> int:
        return sum(fault.kills for fault in self.faults)


class Driver:
    """Runs a schedule against a cluster (see ``fault_cluster``)."""

    def __init__(
        self,
        *,
        plan: Schedule,
        temporal: fault_cluster.Temporal,
        broker: fault_cluster.Broker,
        ingest: fault_cluster.Homeostat,
        worker: fault_cluster.Homeostat,
        ticket_exists: Callable[[str], bool],
        clear_within: float = 120.0,
    ) -> None:
        self.plan = plan
        self.temporal = temporal
        self.broker = broker
        self.ingest = ingest
        self.worker = worker
        self._ticket_exists = ticket_exists
        self._clear_within = clear_within
        self.run = Run(schedule=plan)
        self._held: set[str] = set()
        """Processes the fault schedule keeps down on purpose (not restarted)."""
        self._producer: KafkaProducer | None = None
        self._t0 = time.monotonic()
        self._watches: list[asyncio.Task[None]] = []
        self._allowed = asyncio.Event()
        """Cleared while a probe needs the streams quiet (nothing else in flight)."""
        self._allowed.set()
        self._sending = 0

    def now(self) -> float:
        return round(time.monotonic() - self._t0, 2)

    async def execute(self) -> Run:
        """Start everything, run the workload and the faults, and return what happened."""
        self._producer = await asyncio.to_thread(
            KafkaProducer,
            bootstrap_servers=self.broker.bootstrap,
            linger_ms=5,
            request_timeout_ms=4000,
            retries=0,
            max_block_ms=4000,
        )
        self._t0 = time.monotonic()
        self.run.began = time.time()
        supervisor = asyncio.create_task(self._supervise())
        try:
            await self._wait_ready(self.ingest, 120)
            await self._wait_ready(self.worker, 120)
            lifecycles = [
                asyncio.create_task(self._lifecycle(resource, via="kafka"))
                for resource in self.plan.kafka_resources
            ] + [
                asyncio.create_task(self._lifecycle(resource, via="webhook"))
                for resource in self.plan.webhook_resources
            ]
            await self._faults()
            await asyncio.gather(*lifecycles)
            await asyncio.gather(*self._watches)
        finally:
            supervisor.cancel()
            for watch in self._watches:
                watch.cancel()
            await asyncio.to_thread(self._producer.close, 5)
        return self.run

    # The workload -------------------------------------------------------------------

    async def _lifecycle(self, resource: str, *, via: str) -> None:
        """Fire at the resource's offset; clear once its ticket exists (or after a while)."""
        sent = self.run.sent.setdefault(resource, Sent(resource=resource, via=via))
        await asyncio.sleep(self.plan.fire_offsets.get(resource, 0.0))
        await self._send(sent, hot=True)
        deadline = time.monotonic() + self._clear_within
        while not self._ticket_exists(resource) and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        if not self._ticket_exists(resource):
            self.run.notes.append(f"{resource}: no ticket within {self._clear_within:.0f} s")
        await self._send(sent, hot=False)

    async def _send(self, sent: Sent, *, hot: bool, quiet: bool = True) -> None:
        """Send the firing (``hot``) or clearing event until it is acknowledged.

        Unless ``quiet`` is false (a probe's own events), each attempt waits while a probe
        keeps the streams quiet.
        """
        at = ""
        name = sent.resource.split("/", 1)[1]
        while True:
            if quiet:
                await self._allowed.wait()
            self._sending += 1
            try:
                at = at or datetime.now(UTC).isoformat()
                ok = await self._attempt(sent, name=name, at=at, hot=hot)
            finally:
                self._sending -= 1
            if ok:
                break
            await asyncio.sleep(1.0)
        if hot:
            sent.fired_at = self.now()
        else:
            sent.cleared_at = self.now()

    async def _attempt(self, sent: Sent, *, name: str, at: str, hot: bool) -> bool:
        sent.attempts += 1
        if sent.via == "kafka":
            event = {"timestamp": at, "kind": "temp", "host": name}
            event["celsius"] = 95 if hot else 20
            ok = await self._produce(name, event)
        else:
            event = {"timestamp": at, "kind": "job", "job": name}
            event["status"] = "failed" if hot else "ok"
            ok = await self._post(event)
        return ok

    async def _produce(self, key: str, event: dict[str, Any]) -> bool:
        producer = self._producer
        assert producer is not None

        def send() -> bool:
            try:
                future = producer.send(
                    fault_cluster.TOPIC, key=key.encode(), value=json.dumps(event).encode()
                )
                future.get(timeout=5)
            except Exception:  # noqa: BLE001 - a stalled broker: try again
                return False
            return True

        return await asyncio.to_thread(send)

    async def _post(self, event: dict[str, Any]) -> bool:
        url = f"{self.ingest.api}/v1/events/{fault_cluster.WEBHOOK_STREAM}"
        headers = {"Authorization": f"Bearer {fault_cluster.EVENTS_TOKEN}"}
        try:
            async with httpx.AsyncClient(timeout=10) as http:
                answer = await http.post(url, json=event, headers=headers)
        except httpx.HTTPError:
            return False
        return answer.status_code == 200

    # The faults ---------------------------------------------------------------------

    async def _faults(self) -> None:
        for fault, gap in zip(self.plan.faults, self.plan.gaps, strict=True):
            await asyncio.sleep(gap)
            await self._ready_for(fault)
            fault.at = self.now()
            await self._do(fault)
            self.run.faults.append(fault)

    async def _ready_for(self, fault: Fault) -> None:
        """Wait (bounded) until the fault's targets run, so it hits a working system."""
        if fault.kind in {"kill-ingest", "ingest-in-outage"}:
            await self._wait_ready(self.ingest, 60)
        if fault.kind == "kill-worker":
            await self._wait_ready(self.worker, 60)
        if fault.kind in {"kill-temporal", "ingest-in-outage"}:
            await self._wait_until(lambda: self.temporal.up, 60)

    async def _do(self, fault: Fault) -> None:
        if fault.kind == "kill-ingest":
            self._kill(self.ingest)
        elif fault.kind == "kill-worker":
            self._kill(self.worker)
        elif fault.kind == "kill-temporal":
            await self._kill_temporal()
            await asyncio.sleep(fault.seconds)
            await self.temporal.start()
        elif fault.kind == "pause-broker":
            self.broker.pause()
            try:
                await asyncio.sleep(fault.seconds)
            finally:
                self.broker.resume()
        elif fault.kind == "ingest-in-outage":
            await self._ingest_in_outage(fault)

    async def _ingest_in_outage(self, fault: Fault) -> None:
        """Issue 9 item 4: a clock-fired episode, then ingest dies before Temporal returns.

        The other senders hold off meanwhile: a batch still waiting for Temporal would hold
        the engine's clock back, and the probe's condition would not fire on the clock.
        """
        self._allowed.clear()
        try:
            await self._wait_until(lambda: self._sending == 0, 30)
            await asyncio.sleep(3.0)  # what was sent is handed off while Temporal is up
            await self._outage_with_kill(fault)
        finally:
            self._allowed.set()

    async def _outage_with_kill(self, fault: Fault) -> None:
        probe = self.run.sent.setdefault(fault.probe, Sent(resource=fault.probe, via="kafka"))
        began = time.monotonic()
        await self._kill_temporal()
        await self._send(probe, hot=True, quiet=False)
        # ``for: 2s`` passes on the engine's clock, the tick fires: the transition waits
        # for Temporal. Then a second reading for the same host (no transition of its own).
        await asyncio.sleep(4.0)
        name = fault.probe.split("/", 1)[1]
        again = {"timestamp": datetime.now(UTC).isoformat(), "kind": "temp", "host": name}
        again["celsius"] = 96
        while not await self._produce(name, again):
            await asyncio.sleep(1.0)
        await asyncio.sleep(2.0)  # before item 4 was fixed, its offset was committed here
        self._held.add("ingest")
        self._kill(self.ingest)
        if fault.worker_too:
            self._held.add("worker")
            self._kill(self.worker)
        if fault.homeostat_first:
            # Homeostat starts while Temporal is still down: it must wait for it, rebuild
            # and re-send what is open once Temporal answers.
            self._restart_held()
            await self._wait_until(self.ingest.healthy, 60)
            await asyncio.sleep(2.0)
            await self.temporal.start()
        else:
            await self.temporal.start()
            self._restart_held()
        fault.seconds = round(time.monotonic() - began, 1)
        # The probe is cleared like any other resource once its ticket exists.
        self._watches.append(asyncio.create_task(self._clear_later(probe)))

    def _restart_held(self) -> None:
        for process in (self.ingest, self.worker):
            if process.role in self._held:
                self._held.discard(process.role)
                process.start()

    async def _clear_later(self, sent: Sent) -> None:
        deadline = time.monotonic() + self._clear_within
        while not self._ticket_exists(sent.resource) and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        await self._send(sent, hot=False)

    async def _kill_temporal(self) -> None:
        await self.temporal.kill()
        self._killed("temporal", lambda: self.temporal.up)

    def _kill(self, process: fault_cluster.Homeostat) -> None:
        process.kill()
        self._killed(process.role, process.ready)
        if process.role not in self._held:
            process.start()

    def _killed(self, target: str, running: Callable[[], bool]) -> None:
        at = self.now()
        self.run.kill_times.append((at, target))
        self._watches.append(asyncio.create_task(self._recovery(target, at, running)))

    async def _recovery(self, target: str, at: float, running: Callable[[], bool]) -> None:
        """Note how long ``target`` took to run again after the kill at ``at``."""
        back = await self._wait_until(running, 300)
        self.run.recoveries.append((target, at, round(self.now() - at, 1) if back else None))

    # Keeping processes up -------------------------------------------------------------

    async def _supervise(self) -> None:
        """Start again any Homeostat process that ended by itself (a start that failed)."""
        while True:
            for process in (self.ingest, self.worker):
                if process.role in self._held:
                    continue
                code = process.note_exit()
                if code is not None:
                    self.run.notes.append(
                        f"{self.now():.1f}s {process.role} exited with {code} (temporal "
                        f"{'up' if self.temporal.up else 'down'}); started again"
                    )
                    await asyncio.sleep(1.0)
                    process.start()
            await asyncio.sleep(0.5)

    async def _wait_ready(self, process: fault_cluster.Homeostat, timeout: float) -> None:
        await self._wait_until(process.ready, timeout)

    @staticmethod
    async def _wait_until(check: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await asyncio.to_thread(check):
                return True
            await asyncio.sleep(0.3)
        return False
