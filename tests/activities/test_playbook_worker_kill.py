"""A worker SIGKILLed in the middle of a play: the retry runs only the hosts not done yet."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from datetime import timedelta

from activity_support import PLAYBOOKS, WorkerProcess, context
from call_workflow import CallActivity, CallInput
from temporalio.client import Client

from controller import activities
from controller.activities import ansible, processes
from controller.workflows import activity_io
from controller.workflows.converter import DATA_CONVERTER


async def heartbeat(handle) -> ansible.PlaybookProgress | None:
    """The pending playbook activity's last heartbeat, as the server has it."""
    description = await handle.describe()
    pending = description.raw_description.pending_activities
    if not pending or not pending[0].heartbeat_details.payloads:
        return None
    details = await DATA_CONVERTER.decode(pending[0].heartbeat_details.payloads)
    return ansible._PROGRESS.validate_python(details[0])


async def until(predicate, *, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await predicate()
        if found:
            return found
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def test_killed_worker_resumes_with_the_remaining_hosts(temporal_dev_server, hosts, tmp_path):
    """A worker SIGKILLed mid-play: the next one runs only the hosts not recorded as done, and the killed play does not go on."""
    client = await Client.connect(temporal_dev_server.address, data_converter=DATA_CONVERTER)
    queue = f"playbooks-{uuid.uuid4().hex[:8]}"
    config = activities.ActivitiesConfig(
        remediations_dir=tmp_path,
        playbooks_dir=PLAYBOOKS,
        state_dir=hosts.state,
        ansible=activities.AnsibleConfig(
            inventory=hosts.inventory,
            python_interpreter=sys.executable,
            batch_size=1,
            parallel_runs=1,
        ),
    )
    first = WorkerProcess(
        address=temporal_dev_server.address,
        task_queue=queue,
        config=config,
        log_path=tmp_path / "worker-1.log",
    )
    second = WorkerProcess(
        address=temporal_dev_server.address,
        task_queue=queue,
        config=config,
        log_path=tmp_path / "worker-2.log",
    )
    names = ("h1", "h2", "h3")
    # h2 and h3 wait after their visit until released: the kill lands in h2, after h1 is done.
    held = tmp_path / "hold"
    held.mkdir()
    for host in names[1:]:
        (held / host).touch()
    request = activity_io.RunPlaybookInput(
        context=context("deploy"),
        playbook="visit.yml",
        hosts=names,
        extra_vars=hosts.extra_vars(pause=0.5, hold_dir=str(held)),
    )
    try:
        first.start()
        handle = await client.start_workflow(
            CallActivity.run,
            CallInput(
                activity=activity_io.RUN_PLAYBOOK,
                arg=request,
                max_attempts=4,
                start_to_close=timedelta(minutes=2),
                heartbeat_timeout=timedelta(seconds=6),
            ),
            id=f"kill-{queue}",
            task_queue=queue,
        )

        async def mid_play():
            progress = await heartbeat(handle)
            if progress is None or tuple(progress.ok_hosts) != names[:1]:
                return None
            return progress if hosts.visits("h2") and not hosts.ended("h2") else None

        try:
            at_kill = await until(mid_play, timeout=60, what="a heartbeat with some hosts done")
        except AssertionError:
            visits = {h: hosts.visits(h) for h in names}
            log = first.log_path.read_text()[-3000:]
            raise AssertionError(f"visits={visits}\n{log}") from None
        first.kill()
        for host in names[1:]:  # a held step of the killed play may end now; nothing follows it
            (held / host).unlink()
        run_dir = next((hosts.state / "runs").iterdir())

        async def orphans_gone():
            return not processes.carriers(str(run_dir))

        await until(orphans_gone, timeout=15, what="the killed worker's play to end")
        second.start()
        result = await asyncio.wait_for(handle.result(), timeout=90)
    finally:
        first.stop()
        second.stop()
    out = activity_io.RunPlaybookOutput(
        **{**result, "hosts": tuple(activity_io.HostResult(**h) for h in result["hosts"])}
    )
    assert out.ok
    assert [r.host for r in out.hosts] == list(names)
    done = set(at_kill.ok_hosts)
    for host in names:
        if host in done:
            assert hosts.visits(host) == 1, f"{host} was done before the kill and ran again"
        else:
            assert hosts.visits(host) >= 1
            assert hosts.ended(host), f"{host} was not finished by the retry"
    assert any(hosts.visits(h) == 2 for h in names if h not in done), "the kill was mid-play"
