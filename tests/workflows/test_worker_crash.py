"""SIGKILL the worker in the middle of an episode: a new worker finishes it, no step runs twice."""

import asyncio
import json
import sys
import uuid
from pathlib import Path

import pytest
from fakes import fired, remediation_result, send

from controller.workflows import remediation_io as rio

CRASH_PLAN = """
steps:
  - {id: first, command: [fast]}
  - id: second
    command: [slow]
    heartbeat: 2s
    timeout: 2m
    retry: {max_attempts: 5, initial_interval: 1s}
  - {id: third, command: [fast]}
"""


async def _start_worker(address, task_queue, plans, log):
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).with_name("crash_worker.py")),
        address,
        task_queue,
        str(plans),
        str(log),
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
    assert line.strip() == b"ready"
    return process


def _events(log: Path) -> list[dict]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


async def _stop(process) -> None:
    if process.returncode is None:
        process.kill()
    await process.wait()


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_sigkill_mid_episode_runs_no_completed_step_twice(
    dev_client, temporal_dev_server, tmp_path
):
    """Kill -9 the worker while step two runs; the next worker retries step two only and finishes."""
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "crash.yaml").write_text(CRASH_PLAN)
    log = tmp_path / "calls.jsonl"
    task_queue = f"crash-{uuid.uuid4()}"
    episode = fired("service/crash", plan="crash")

    first = await _start_worker(temporal_dev_server.address, task_queue, plans, log)
    try:
        await send(dev_client, episode, task_queue=task_queue)
        for _ in range(600):
            if any(e["step"] == "second" for e in _events(log)):
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail(f"step two never started: {_events(log)}")
    finally:
        await _stop(first)  # SIGKILL: no graceful shutdown, no last heartbeat
    assert first.returncode == -9

    second = await _start_worker(temporal_dev_server.address, task_queue, plans, log)
    try:
        result = await remediation_result(dev_client, episode, timeout=120)
    finally:
        await _stop(second)

    events = _events(log)
    assert result.outcome is rio.Outcome.SUCCEEDED
    assert [e["step"] for e in events if e["event"] == "done"] == ["first", "second", "third"]
    starts = [(e["step"], e["attempt"], e["pid"]) for e in events if e["event"] == "start"]
    assert [step for step, _, _ in starts] == ["first", "second", "second", "third"]
    assert starts[1][2] == first.pid
    assert starts[2][2] == second.pid
    assert starts[2][1] == 2
