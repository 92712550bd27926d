"""What the operator API tests share: a plan with an approval, an episode started by hand."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

from temporalio.client import Client

from controller import assembly
from controller.domain import contract, resources, transitions
from controller.workflows import resource_io

ALICE = "alice-token-0123456789"
MALLORY = "mallory-token-0123456789"


def write_plan(folder: Path, name: str, text: str) -> None:
    """Write ``remediations/NAME.yaml`` and a rules folder with one harmless rule."""
    (folder / "remediations").mkdir(parents=True, exist_ok=True)
    (folder / "rules").mkdir(exist_ok=True)
    (folder / "playbooks").mkdir(exist_ok=True)
    (folder / "remediations" / f"{name}.yaml").write_text(textwrap.dedent(text))
    (folder / "rules" / "rules.yaml").write_text(
        textwrap.dedent(
            """\
            groups:
              - name: idle
                rules:
                  - name: Never
                    source: webhook
                    stream: nothing
                    match: "true"
                    when: body.value > 100
                    resource: service/{{ labels.service }}
            """
        )
    )


async def start_episode(temporal: Client, task_queue: str, plan: str, resource: str) -> str:
    """Hand a fired transition for ``plan`` to the resource's workflow, as `homeostat run` does."""
    key = resources.ResourceKey(resource)
    now = datetime.now(UTC)
    fired = transitions.Transition(
        kind=transitions.TransitionKind.FIRED,
        rule=contract.MANUAL_RULE,
        resource=key,
        episode=transitions.episode_id(rule=contract.MANUAL_RULE, resource=key, started_at=now),
        started_at=now,
        at=now,
        severity=transitions.Severity.WARNING,
        remediation=plan,
        annotations={"summary": "replica lag above 5 minutes"},
    )
    await assembly.temporal_sender(temporal, task_queue)(key, [fired])
    return fired.episode


async def state(temporal: Client, resource: str) -> resource_io.ResourceState:
    """The resource workflow's state, by query."""
    handle = temporal.get_workflow_handle(
        resources.resource_workflow_id(resources.ResourceKey(resource))
    )
    return await handle.query(contract.QUERY_STATE, result_type=resource_io.ResourceState)


async def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run `homeostat ARGS` as an operator would: exit status, standard output and error."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "controller",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
