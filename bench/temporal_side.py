"""The Temporal side: sustained episodes/s through one and two workers, against the dev server.

Homeostat: ``--episodes`` resources each get one ``fired`` transition (signal-with-start, as
the dispatcher sends it, at most ``--in-flight`` calls at once); each episode runs a
one-step plan (a ``true`` command) through the real worker (``homeostat up`` with
``service.role: worker``), in one worker process and then in two. The rate is episodes
completed per second from the first call to the last episode's completion.

The peer, on the same dev server in the same run: the same number of workflows that run
one activity (``temporal_peer.py``), started the same way through one and two plain
worker processes: the dev server's own workflow throughput.

Where the limit is: the CPU time of every process (dev server, workers, the driver) over
each run, per episode, from ``/proc``; and with ``--profile DIR`` a py-spy flame graph of
the first worker.

    python bench/temporal_side.py               # 600 episodes per run
    python bench/temporal_side.py --quick       # 150
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from temporalio.client import Client
from temporalio.worker import Worker

sys.path.insert(0, str(Path(__file__).parent))

import record
import temporal_peer
from latency import SHM, connect, free_port, profiled

from controller import embedded
from controller.domain import contract, resources, transitions
from controller.workflows import converter, resource_io

ROOT = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")
PLAN = """\
description: one step, for the throughput benchmark
steps:
  - {id: act, command: ["true"]}
"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its waited-for children so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(value) for value in fields[11:15]) / TICKS


def write_config(workdir: Path, temporal: str, queue: str, index: int) -> Path:
    """Settings of one worker process of Homeostat's."""
    folder = workdir / f"worker-{index}"
    for name in ("rules", "remediations", "playbooks", "state"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    (folder / "remediations" / "one-step.yaml").write_text(PLAN)
    config = {
        "temporal": {"address": temporal, "task_queue": queue},
        "service": {"role": "worker"},
        "http": {"port": free_port()},
        "rules": {
            "rules_dir": str(folder / "rules"),
            "remediations_dir": str(folder / "remediations"),
            "playbooks_dir": str(folder / "playbooks"),
        },
        "activities": {"state_dir": str(folder / "state")},
        "logging": {"level": "warning"},
    }
    path = folder / "homeostat.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def fired(resource: str) -> transitions.Transition:
    """A ``fired`` transition of a new episode of ``resource``, naming the one-step plan."""
    key = resources.ResourceKey(resource)
    at = datetime.now(UTC)
    return transitions.Transition(
        kind=transitions.TransitionKind.FIRED,
        rule="throughput",
        resource=key,
        episode=transitions.episode_id(rule="throughput", resource=key, started_at=at),
        started_at=at,
        at=at,
        severity=transitions.Severity.WARNING,
        remediation="one-step",
        labels={"service": resource},
    )


async def bounded(count: int, in_flight: int, call: Callable[[int], Awaitable[object]]) -> None:
    """``call(i)`` for every i below ``count``, at most ``in_flight`` at once."""
    gate = asyncio.Semaphore(in_flight)

    async def one(index: int) -> None:
        async with gate:
            await call(index)

    await asyncio.gather(*(one(index) for index in range(count)))


async def until_completed(client: Client, query: str, count: int, timeout: float) -> None:
    """Until ``count`` workflows matching ``query`` completed."""
    deadline = time.monotonic() + timeout
    while (done := (await client.count_workflows(query)).count) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {done} of {count} completed in {timeout:.0f} s ({query})")
        await asyncio.sleep(0.5)


class Processes:
    """Worker processes started for one run, stopped together."""

    def __init__(self) -> None:
        """None yet."""
        self.items: list[subprocess.Popen[bytes]] = []

    def start(self, command: list[str], log: Path) -> subprocess.Popen[bytes]:
        """Start ``command`` with its output to ``log``."""
        with log.open("wb") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        self.items.append(process)
        return process

    def stop(self) -> None:
        """Interrupt every process, and wait for it (kill it after a minute)."""
        for process in self.items:
            process.send_signal(signal.SIGINT)
        for process in self.items:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        self.items.clear()


async def homeostat_run(
    client: Client,
    server_pid: int,
    workdir: Path,
    *,
    workers: int,
    episodes: int,
    in_flight: int,
    profile: Path | None,
) -> dict[str, float]:
    """Episodes/s through ``workers`` Homeostat worker processes; CPU per episode by process."""
    queue = f"throughput-{uuid.uuid4().hex[:6]}"
    processes = Processes()
    try:
        started = []
        for index in range(workers):
            config = write_config(workdir, client.service_client.config.target_host, queue, index)
            command = [sys.executable, "-m", "controller", "up", "--config", str(config)]
            name = f"temporal-side-homeostat-{workers}w-{index}"
            process = processes.start(
                profiled(command, profile if index == 0 else None, name),
                workdir / f"{name}.log",
            )
            started.append(process)
        await asyncio.sleep(3)
        for process in started:
            if process.poll() is not None:
                raise SystemExit(
                    (workdir / f"temporal-side-homeostat-{workers}w-0.log").read_text()
                )
        run = uuid.uuid4().hex[:6]
        names = [f"tp-{run}-{index:05d}" for index in range(episodes)]

        async def send(index: int) -> None:
            transition = fired(f"bench/{names[index]}")
            await client.start_workflow(
                contract.RESOURCE_WORKFLOW,
                resource_io.ResourceWorkflowInput(resource=transition.resource),
                id=resources.resource_workflow_id(transition.resource),
                task_queue=queue,
                start_signal=contract.SIGNAL_TRANSITIONS,
                start_signal_args=[transitions.TransitionBatch(transitions=(transition,))],
            )

        query = (
            f"WorkflowType = '{contract.REMEDIATION_WORKFLOW}' AND ExecutionStatus = 'Completed'"
            " AND HomeostatResourceKind = 'bench'"
            f" AND WorkflowId STARTS_WITH 'episode/throughput/bench/tp-{run}'"
        )
        return await _timed(
            client,
            server_pid,
            [process.pid for process in started],
            lambda: bounded(episodes, in_flight, send),
            query,
            episodes,
        )
    finally:
        processes.stop()


async def peer_run(
    client: Client, server_pid: int, workdir: Path, *, workers: int, episodes: int, in_flight: int
) -> dict[str, float]:
    """Workflows/s of one activity each through ``workers`` plain worker processes."""
    queue = f"throughput-peer-{uuid.uuid4().hex[:6]}"
    processes = Processes()
    try:
        started = [
            processes.start(
                [
                    sys.executable,
                    __file__,
                    "--child-peer",
                    client.service_client.config.target_host,
                    queue,
                ],
                workdir / f"peer-{workers}w-{index}.log",
            )
            for index in range(workers)
        ]
        await asyncio.sleep(3)
        run = uuid.uuid4().hex[:6]

        async def start(index: int) -> None:
            workflow_id = f"tp-peer-{run}-{index:05d}"
            await client.start_workflow(
                temporal_peer.WORKFLOW, workflow_id, id=workflow_id, task_queue=queue
            )

        query = (
            f"WorkflowType = '{temporal_peer.WORKFLOW}' AND ExecutionStatus = 'Completed'"
            f" AND WorkflowId STARTS_WITH 'tp-peer-{run}'"
        )
        return await _timed(
            client,
            server_pid,
            [process.pid for process in started],
            lambda: bounded(episodes, in_flight, start),
            query,
            episodes,
        )
    finally:
        processes.stop()


async def _timed(  # noqa: PLR0917 - one call site, each argument a different thing
    client: Client,
    server_pid: int,
    worker_pids: list[int],
    send: Callable[[], Awaitable[None]],
    query: str,
    count: int,
) -> dict[str, float]:
    """Run ``send``, wait for ``count`` completions; rate and CPU seconds per item by process."""
    cpu_before = {
        "server": cpu_seconds(server_pid),
        "workers": sum(cpu_seconds(pid) for pid in worker_pids),
        "driver": time.process_time(),
    }
    began = time.perf_counter()
    await send()
    sent = time.perf_counter() - began
    await until_completed(client, query, count, timeout=max(600, count))
    seconds = time.perf_counter() - began
    cpu = {
        "server": cpu_seconds(server_pid) - cpu_before["server"],
        "workers": sum(cpu_seconds(pid) for pid in worker_pids) - cpu_before["workers"],
        "driver": time.process_time() - cpu_before["driver"],
    }
    return {
        "count": count,
        "seconds": seconds,
        "sent_seconds": sent,
        "per_second": count / seconds,
        **{f"{name}_cpu_ms_per_item": value / count * 1000 for name, value in cpu.items()},
        **{f"{name}_cpu_share": value / seconds for name, value in cpu.items()},
    }


async def peer_worker(address: str, queue: str) -> None:
    """A plain worker process for the peer's workflow (SDK defaults)."""
    client = await connect(address)
    async with Worker(
        client,
        task_queue=queue,
        workflows=[temporal_peer.OneActivity],
        activities=[temporal_peer.first_activity],
    ):
        await asyncio.Event().wait()


async def measure(episodes: int, in_flight: int, db_dir: Path, profile: Path | None) -> dict:
    """Both sides through one worker and through two, interleaved, on one dev server."""
    workdir = Path(tempfile.mkdtemp(prefix="temporal-side-"))
    server = embedded.EmbeddedTemporal(
        db_file=db_dir / f"temporal-side-{uuid.uuid4().hex[:6]}.db",
        port=free_port(),
        ui=False,
        search_attributes=contract.SEARCH_ATTRIBUTES,
    )
    await server.start()
    try:
        client = await connect(server.address, data_converter=converter.DATA_CONVERTER)
        pid = server.pid or 0
        found: dict[str, Any] = {}
        for workers in (1, 2):
            found[f"temporal_{workers}w"] = await peer_run(
                client, pid, workdir, workers=workers, episodes=episodes, in_flight=in_flight
            )
            print(f"temporal, {workers} worker(s): {found[f'temporal_{workers}w']}", flush=True)
            found[f"homeostat_{workers}w"] = await homeostat_run(
                client,
                pid,
                workdir,
                workers=workers,
                episodes=episodes,
                in_flight=in_flight,
                profile=profile if workers == 1 else None,
            )
            print(f"homeostat, {workers} worker(s): {found[f'homeostat_{workers}w']}", flush=True)
        return found
    finally:
        await server.stop()
        for leftover in db_dir.glob(f"{Path(server.db_file).stem}.*"):
            leftover.unlink()
        shutil.rmtree(workdir, ignore_errors=True)


def result_of(found: dict[str, Any], episodes: int) -> record.Result:
    """Episodes/s beside the dev server's own workflows/s, with where the CPU went."""
    result = record.Result(name="temporal_side", title="Temporal side: sustained episodes/s")
    result.raw = found
    for workers in (1, 2):
        ours, theirs = found[f"homeostat_{workers}w"], found[f"temporal_{workers}w"]
        result.rows.append(
            record.Row(
                figure=f"episodes/s (one-step plan), {workers} worker process(es)",
                ours=round(ours["per_second"], 1),
                unit="/s",
                against=f"dev server's own one-activity workflows/s, {workers} worker(s)",
                theirs=round(theirs["per_second"], 1),
                ratio=round(ours["per_second"] / theirs["per_second"], 2),
                note=(
                    "CPU ms per episode: dev server "
                    f"{ours['server_cpu_ms_per_item']:.1f}, workers "
                    f"{ours['workers_cpu_ms_per_item']:.1f}, driver "
                    f"{ours['driver_cpu_ms_per_item']:.1f} (peer per workflow: server "
                    f"{theirs['server_cpu_ms_per_item']:.1f}, workers "
                    f"{theirs['workers_cpu_ms_per_item']:.1f}); CPU in use during the run: "
                    f"server {ours['server_cpu_share']:.2f} cores, workers "
                    f"{ours['workers_cpu_share']:.2f} cores of 2"
                ),
            )
        )
    result.notes.append(
        f"{episodes} episodes per run, each a new resource (its resource workflow, its "
        "episode's workflow, the plan loaded by a local activity, one command activity); the "
        "peer runs as many one-activity workflows. Calls are sent at most "
        "in flight as configured; the dev server keeps its SQLite file on a tmpfs."
    )
    return result


def main() -> None:
    """Measure and record, or run a peer worker (``--child-peer``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=600)
    parser.add_argument("--in-flight", type=int, default=32)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--profile", type=Path, help="folder for a py-spy flame graph")
    parser.add_argument("--db-dir", type=Path, default=SHM if SHM.is_dir() else None)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--child-peer", nargs=2, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child_peer:
        asyncio.run(peer_worker(*options.child_peer))
        return
    compileall.compile_dir(ROOT / "controller", quiet=1)
    episodes = 150 if options.quick else options.episodes
    db_dir = options.db_dir or Path(tempfile.mkdtemp())
    found = asyncio.run(measure(episodes, options.in_flight, db_dir, options.profile))
    result = result_of(found, episodes)
    for row in result.rows:
        print(f"{row.figure}: {row.ours} vs {row.theirs} ({row.ratio}); {row.note}")
    if not options.no_write:
        print(record.write(result))


if __name__ == "__main__":
    main()
