"""Alert -> first remediation action, against Temporal's own start -> first activity.

Homeostat's path: a webhook event (``POST /v1/events``) for a new resource, a rule with no
``for``, the dispatcher's signal-with-start, the resource workflow (which decides, loads
the plan and starts the episode's workflow, eagerly, in one task), the episode's
remediation workflow, whose plan's first step is a command. The clock starts just before
the POST and stops at the ``ActivityTaskStarted`` event of that command in the episode's
history (the server's clock, on the same machine).

Temporal's own path, on the same dev server: ``start_workflow`` of a workflow that runs one
activity (``temporal_peer.py``), from just before the call to that activity's
``ActivityTaskStarted`` event.

The dev server keeps its SQLite file on a tmpfs (``/dev/shm``), as the test suite's volume
tests do: on this shared VM a disk's fsync latency varies more than anything measured here,
and it would weigh on the side that writes more often. ``--db-dir`` puts it elsewhere.

Each side has its own worker process (``homeostat up`` for Homeostat, a plain worker with
the SDK's default sandbox for the peer). Samples alternate between the two, one at a time,
each waiting for the previous one to finish, so both see the same load.

    python bench/latency.py                 # 100 samples each, writes bench/results/latency.json
    python bench/latency.py --samples 30 --no-write
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC
from pathlib import Path
from typing import Any

import httpx
import yaml
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.worker import Worker

sys.path.insert(0, str(Path(__file__).parent))

import record
import temporal_peer

from controller import embedded
from controller.domain import contract
from controller.workflows import converter

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "latency-bench-token"  # noqa: S105 - a made-up token for a loopback-only run
WARM_UP = 5
SHM = Path("/dev/shm")  # noqa: S108 - a tmpfs on Linux, as the test suite's volume tests use

RULES = """\
groups:
  - name: latency
    rules:
      - name: LatencyProbe
        source: webhook
        match: labels.kind == 'latency'
        resource: service/{{ labels.service }}
        remediation: first-action
"""

PLAN = """\
description: The shortest plan there is, for the latency benchmark
steps:
  - id: act
    command: [sh, -c, "echo done >> {marks}"]
"""


def free_port() -> int:
    """A TCP port free on the loopback interface now."""
    import socket  # noqa: PLC0415

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(workdir: Path, temporal: str, port: int, marks: Path) -> Path:
    """Rules, the plan and the settings of the Homeostat under test."""
    (workdir / "rules").mkdir()
    (workdir / "remediations").mkdir()
    (workdir / "playbooks").mkdir()
    (workdir / "rules" / "latency.yaml").write_text(RULES)
    (workdir / "remediations" / "first-action.yaml").write_text(PLAN.format(marks=marks))
    config = {
        "temporal": {"address": temporal, "task_queue": "latency-homeostat"},
        "http": {"port": port},
        "rules": {
            "rules_dir": str(workdir / "rules"),
            "remediations_dir": str(workdir / "remediations"),
            "playbooks_dir": str(workdir / "playbooks"),
        },
        "webhooks": {"bearer_token": TOKEN},
        "activities": {"state_dir": str(workdir / "state")},
        "logging": {"level": "warning"},
    }
    path = workdir / "homeostat.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


async def connect(address: str, **options: Any) -> Client:
    """A client of the dev server, once its frontend says it is healthy (slow under load)."""
    deadline = time.monotonic() + 120
    while True:
        try:
            return await Client.connect(address, **options)
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1)


async def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until ``url`` answers 200; fail with the log when the process ends first."""
    deadline = time.monotonic() + 120
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"process ended:\n{log.read_text()[-3000:]}")
            try:
                if (await http.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit(f"not ready in time:\n{log.read_text()[-3000:]}")


def _times(history: object) -> dict[str, float]:
    """The server's time of the first event of each type in ``history``, in seconds."""
    found: dict[str, float] = {}
    for event in history.events:  # type: ignore[attr-defined]
        name = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
        found.setdefault(name, event.event_time.ToDatetime(tzinfo=UTC).timestamp())
    return found


async def stages_of(client: Client, workflow_ids: list[str], began: float) -> dict[str, float]:
    """Milliseconds from ``began`` to each stage of the path through ``workflow_ids``.

    One workflow (the peer): started, its first task scheduled, started and completed,
    the first activity started. Two (resource, then episode): the resource workflow's
    first task, the episode's workflow started (by that task's local activity, eagerly;
    a child's start in histories from before), the episode's first task, the first
    activity started.
    """
    histories = [await client.get_workflow_handle(i).fetch_history() for i in workflow_ids]
    times = [_times(history) for history in histories]
    stages: dict[str, float] = {}
    for prefix, found in zip(("", "episode ") if len(times) == 2 else ("",), times, strict=True):
        for name in (
            "WORKFLOW_EXECUTION_STARTED",
            "WORKFLOW_TASK_SCHEDULED",
            "WORKFLOW_TASK_STARTED",
            "WORKFLOW_TASK_COMPLETED",
            "START_CHILD_WORKFLOW_EXECUTION_INITIATED",
            "ACTIVITY_TASK_STARTED",
        ):
            if name in found:
                stages[prefix + name.lower()] = (found[name] - began) * 1000
    if "ACTIVITY_TASK_STARTED".lower() not in {k.removeprefix("episode ") for k in stages}:
        raise SystemExit(f"{workflow_ids[-1]}: no activity started")
    return stages


async def episode_of(client: Client, resource: str) -> str:
    """The remediation workflow id of the one episode of ``resource``."""
    query = f"WorkflowType = '{contract.REMEDIATION_WORKFLOW}' AND HomeostatResource = '{resource}'"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = [item.id async for item in client.list_workflows(query)]
        if found:
            return found[0]
        await asyncio.sleep(0.5)
    raise SystemExit(f"no remediation workflow for {resource}")


async def wait_marks(marks: Path, count: int) -> None:
    """Until the plan's command wrote its ``count``-th line (polls a local file only)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if marks.exists() and marks.read_bytes().count(b"\n") >= count:
            return
        await asyncio.sleep(0.005)
    raise SystemExit(f"the plan's command did not run ({count})")


async def sample_homeostat(
    http: httpx.AsyncClient, url: str, service: str, marks: Path, count: int
) -> float:
    """Post one event for a new resource; the wall-clock time just before the POST."""
    body = json.dumps({"kind": "latency", "service": service}).encode()
    began = time.time()
    answer = await http.post(
        url,
        content=body,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    answer.raise_for_status()
    await wait_marks(marks, count)
    return began


async def sample_peer(client: Client, queue: str, workflow_id: str) -> float:
    """Start the peer's one-activity workflow and wait for it; the time just before the start."""
    began = time.time()
    handle = await client.start_workflow(
        temporal_peer.WORKFLOW, workflow_id, id=workflow_id, task_queue=queue
    )
    await handle.result()
    return began


async def peer_worker(address: str, queue: str) -> None:
    """The peer's worker process: Temporal's defaults, one workflow and one activity."""
    client = await connect(address)
    async with Worker(
        client,
        task_queue=queue,
        workflows=[temporal_peer.OneActivity],
        activities=[temporal_peer.first_activity],
    ):
        print("ready", flush=True)
        await asyncio.Event().wait()


def profiled(command: list[str], profile: Path | None, name: str) -> list[str]:
    """``command``, under py-spy writing a flame graph to ``profile/name.svg`` when asked."""
    if profile is None:
        return command
    spy = str(Path(sys.executable).parent / "py-spy")
    raw = os.environ.get("BENCH_PROFILE_FORMAT") == "raw"
    out = profile / f"{name}.{'txt' if raw else 'svg'}"
    return [
        spy,
        "record",
        "--rate",
        "250",
        "--format",
        "raw" if raw else "flamegraph",
        "--output",
        str(out),
        "--",
        *command,
    ]


def start_processes(
    workdir: Path, temporal: str, port: int, queue: str, profile: Path | None
) -> tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]:
    """``homeostat up`` and the peer's worker, each in its own process."""
    config = write_config(workdir, temporal, port, workdir / "marks")
    with (workdir / "homeostat.log").open("wb") as out:
        homeostat = subprocess.Popen(
            profiled(
                [sys.executable, "-m", "controller", "up", "--config", str(config)],
                profile,
                "latency-homeostat",
            ),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    with (workdir / "peer.log").open("wb") as out:
        peer = subprocess.Popen(
            profiled(
                [sys.executable, __file__, "--child-peer", temporal, queue],
                profile,
                "latency-temporal-peer",
            ),
            stdout=subprocess.PIPE,
            stderr=out,
            cwd=ROOT,
        )
    return homeostat, peer


async def wait_peer(peer: subprocess.Popen[bytes], log: Path) -> None:
    """Until the peer's worker printed ``ready`` (py-spy may print before it)."""
    assert peer.stdout is not None
    while line := await asyncio.to_thread(peer.stdout.readline):
        if line.strip() == b"ready":
            return
    raise SystemExit(f"peer worker did not start:\n{log.read_text()[-3000:]}")


async def take_samples(
    client: Client, api: str, queue: str, marks: Path, samples: int
) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """Alternate one Homeostat sample and one peer sample; who goes first alternates too."""
    run = uuid.uuid4().hex[:6]
    ours: list[tuple[str, float]] = []
    theirs: list[tuple[str, float]] = []
    async with httpx.AsyncClient() as http:
        for index in range(WARM_UP + samples):
            service = f"lat-{run}-{index:03d}"
            peer_id = f"latency-peer-{run}-{index:03d}"
            if index % 2:
                theirs.append((peer_id, await sample_peer(client, queue, peer_id)))
            began = await sample_homeostat(http, f"{api}/v1/events", service, marks, index + 1)
            ours.append((service, began))
            if not index % 2:
                theirs.append((peer_id, await sample_peer(client, queue, peer_id)))
    return ours[WARM_UP:], theirs[WARM_UP:]


async def measure(
    samples: int, workdir: Path, db_dir: Path, profile: Path | None
) -> dict[str, Any]:
    """Start the dev server, Homeostat and the peer's worker; take the samples interleaved."""
    server = embedded.EmbeddedTemporal(
        db_file=db_dir / f"latency-{uuid.uuid4().hex[:6]}.db",
        port=free_port(),
        ui=False,
        search_attributes=contract.SEARCH_ATTRIBUTES,
    )
    await server.start()
    processes: tuple[subprocess.Popen[bytes], ...] = ()
    try:
        port = free_port()
        queue = f"latency-peer-{uuid.uuid4().hex[:6]}"
        processes = start_processes(workdir, server.address, port, queue, profile)
        api = f"http://127.0.0.1:{port}"
        await wait_ready(f"{api}/readyz", processes[0], workdir / "homeostat.log")
        await wait_peer(processes[1], workdir / "peer.log")
        client = await connect(server.address, data_converter=converter.DATA_CONVERTER)
        ours, theirs = await take_samples(client, api, queue, workdir / "marks", samples)
        ours_stages = []
        for service, began in ours:
            episode = await episode_of(client, f"service/{service}")
            ids = [f"resource/service/{service}", episode]
            ours_stages.append(await stages_of(client, ids, began))
        theirs_stages = [
            await stages_of(client, [workflow_id], began) for workflow_id, began in theirs
        ]
        return {
            "homeostat_ms": [item["episode activity_task_started"] for item in ours_stages],
            "temporal_ms": [item["activity_task_started"] for item in theirs_stages],
            "homeostat_stages": ours_stages,
            "temporal_stages": theirs_stages,
        }
    finally:
        for process in processes:
            process.send_signal(signal.SIGINT)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        await server.stop()
        for leftover in db_dir.glob(f"{Path(server.db_file).stem}.*"):
            leftover.unlink()


def stage_medians(samples: list[dict[str, float]]) -> dict[str, float]:
    """The median time from the start to each stage, in path order."""
    keys = sorted(samples[0], key=lambda key: statistics.median(s[key] for s in samples))
    return {key: round(statistics.median(s[key] for s in samples), 1) for key in keys}


def result_of(found: dict[str, Any]) -> record.Result:
    """Rows: p50 and p99 of both sides, with the ratios the issue sets as targets."""
    ours = record.summary(found["homeostat_ms"])
    theirs = record.summary(found["temporal_ms"])
    result = record.Result(
        name="latency",
        title="Alert received -> first remediation action started",
        raw={
            "homeostat": ours,
            "temporal": theirs,
            "homeostat_stage_medians_ms": stage_medians(found["homeostat_stages"]),
            "temporal_stage_medians_ms": stage_medians(found["temporal_stages"]),
            "samples": {"homeostat_ms": found["homeostat_ms"], "temporal_ms": found["temporal_ms"]},
        },
    )
    for quantile, limit in (("p50", 2.5), ("p99", 2.0)):
        ratio = ours[quantile] / theirs[quantile]
        result.rows.append(
            record.Row(
                figure=f"{quantile} webhook event -> first plan step started",
                ours=round(ours[quantile], 1),
                unit="ms",
                against=f"Temporal start_workflow -> first activity started, {quantile}",
                theirs=round(theirs[quantile], 1),
                ratio=round(ratio, 2),
                target=f"<= {limit}",
                met=ratio <= limit,
            )
        )
    result.notes.append(
        f"{ours['n']} samples each, interleaved one at a time on the same dev server "
        f"(after {WARM_UP} discarded warm-up samples each). Each Homeostat sample is a new "
        "resource: its resource workflow and its episode's workflow both start for it."
    )
    return result


def main() -> None:
    """Measure and record, or run the peer's worker (``--child-peer``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--profile", type=Path, help="folder for py-spy flame graphs")
    parser.add_argument(
        "--db-dir",
        type=Path,
        default=SHM if SHM.is_dir() else None,
        help="where the dev server keeps its SQLite file (default: /dev/shm, a tmpfs)",
    )
    parser.add_argument("--child-peer", nargs=2, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child_peer:
        asyncio.run(peer_worker(*options.child_peer))
        return
    # As an installed package has: bytecode compiled once, not on every import (the
    # workflow sandbox imports each workflow's module anew for every workflow it runs).
    compileall.compile_dir(ROOT / "controller", quiet=1)
    workdir = Path(tempfile.mkdtemp(prefix="latency-"))
    try:
        found = asyncio.run(
            measure(options.samples, workdir, options.db_dir or workdir, options.profile)
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result = result_of(found)
    for row in result.rows:
        print(
            f"{row.figure}: {row.ours} ms vs {row.theirs} ms -> {row.ratio}x "
            f"(target {row.target}: {'met' if row.met else 'MISSED'})"
        )
    for side in ("homeostat", "temporal"):
        print(side, json.dumps(result.raw[f"{side}_stage_medians_ms"], indent=1))
    if not options.no_write:
        print(record.write(result))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
