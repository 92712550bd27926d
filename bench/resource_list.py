"""`homeostat resource list` over N resources with no worker running (issue 10: 1,000 in under 2 s).

Starts a Temporal dev server (its SQLite file on /dev/shm), runs a worker while N resource
workflows each receive one `fired` transition through the dispatcher's hand-off
(signal-with-start), waits until visibility lists all N as firing (each workflow has
upserted its search attributes and memo), stops the worker, then times:

- `views.list_resources` in this process (what `GET /v1/resources` runs), best of 3;
- `homeostat resource list --json` as a child process, as an operator runs it (its
  interpreter start-up and imports included), best of 3.

    python bench/resource_list.py                    # 1,000 resources, writes bench/results/
    python bench/resource_list.py --resources 10000 --no-record
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker

from controller import assembly, embedded, workflows
from controller.domain import contract, resources, transitions
from controller.operations import links, views
from controller.workflows import converter, resource_io

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
TASK_QUEUE = "bench-resource-list"


def _free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _fired(index: int, now: datetime) -> transitions.Transition:
    key = resources.ResourceKey(f"bench/node-{index:05d}")
    rule = f"rule-{index % 20}"
    return transitions.Transition(
        kind=transitions.TransitionKind.FIRED,
        rule=rule,
        resource=key,
        episode=transitions.episode_id(rule=rule, resource=key, started_at=now),
        started_at=now,
        at=now,
        labels={"node": str(index)},
    )


async def _populate(client: Client, count: int) -> float:
    """N resources, each with one open episode; seconds until visibility lists them all."""
    began = time.perf_counter()
    send = assembly.temporal_sender(client, TASK_QUEUE)
    now = datetime.now(UTC)
    gate = asyncio.Semaphore(32)

    async def one(index: int) -> None:
        transition = _fired(index, now)
        async with gate:
            await send(transition.resource, [transition])

    async with Worker(
        client,
        task_queue=TASK_QUEUE,
        workflows=workflows.WORKFLOWS,
        activities=[],
        max_cached_workflows=count + 100,
    ):
        await asyncio.gather(*(one(index) for index in range(count)))
        query = (
            f"WorkflowType = '{contract.RESOURCE_WORKFLOW}' AND HomeostatPhase = 'firing' "
            "AND HomeostatResourceKind = 'bench'"
        )
        # Visibility has no change feed to wait on: poll it.
        while (await client.count_workflows(query)).count < count:
            await asyncio.sleep(1)
    return time.perf_counter() - began


async def _in_process(client: Client, count: int) -> list[float]:
    times = []
    for _ in range(3):
        began = time.perf_counter()
        listing = await views.list_resources(
            client,
            selection=views.ResourceFilter(kind="bench"),
            links=links.Links(),
            now=datetime.now(UTC),
        )
        times.append(time.perf_counter() - began)
        assert listing.count == count, listing.count
        assert all(item.open_episodes == 1 and item.details for item in listing.resources)
    return times


def _cli(address: str, workdir: Path, count: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds (user + system) of each run of the command."""
    config = workdir / "homeostat.yaml"
    config.write_text(f"temporal: {{address: '{address}'}}\n")
    times = []
    cpu = []
    for _ in range(3):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        began = time.perf_counter()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "controller",
                "resource",
                "list",
                "--kind",
                "bench",
                "--json",
                "--config",
                str(config),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        times.append(time.perf_counter() - began)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        assert json.loads(done.stdout)["count"] == count
    return times, cpu


def _workdir() -> Path:
    shm = Path("/dev/shm")  # noqa: S108 - a tmpfs on Linux; disk fsyncs would set the pace
    return Path(tempfile.mkdtemp(dir=shm if shm.is_dir() else None))


async def main(count: int) -> dict[str, object]:
    """Populate, stop the worker, time the listing; the figures."""
    workdir = _workdir()
    server = embedded.EmbeddedTemporal(
        db_file=workdir / "temporal.db",
        port=_free_port(),
        ui=False,
        search_attributes=contract.SEARCH_ATTRIBUTES,
    )
    await server.start()
    try:
        converter.warm_up()
        client = await Client.connect(server.address, data_converter=converter.DATA_CONVERTER)
        populate = await _populate(client, count)
        in_process = await _in_process(client, count)
        cli, cli_cpu = await asyncio.to_thread(_cli, server.address, workdir, count)
        del client
    finally:
        await server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "recorded": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "resources": count,
        "worker_running_during_list": False,
        "populate_seconds": round(populate, 1),
        "list_in_process_seconds": [round(value, 3) for value in in_process],
        "list_cli_seconds": [round(value, 3) for value in cli],
        "best_in_process_seconds": round(min(in_process), 3),
        "best_cli_seconds": round(min(cli), 3),
        "list_cli_cpu_seconds": [round(value, 3) for value in cli_cpu],
        "load_average_1m": round(os.getloadavg()[0], 1),
        "phase_filter": resource_io.Phase.FIRING.value,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=1_000)
    parser.add_argument("--no-record", action="store_true")
    arguments = parser.parse_args()
    result = asyncio.run(main(arguments.resources))
    print(json.dumps(result, indent=2))
    if not arguments.no_record:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"resource_list_{arguments.resources}.json"
        path.write_text(json.dumps(result, indent=2) + "\n")
