"""One Homeostat run that exercises every metric: the scenario the metric and dashboard tests read.

A webhook rule fires for a resource; its plan asks for approval (approved through the
CLI's channel), runs a command and a real playbook, pages (PagerDuty fake) and opens a
ticket (Jira fake); the resolve event closes the episode, resolving page and ticket. A
second episode of the same resource then meets the plan's cooldown (a suppression) and a
third, for another resource, waits for an approval that never comes (an open episode and a
pending approval). A Prometheus rule is polled against the real Prometheus that scrapes
this Homeostat, and a Kafka rule reads a topic, so ingest metrics have values too.
"""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fakes"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

import homeostat
from temporalio.client import Client

from controller.domain import contract, resources
from controller.workflows import resource_io

REPO = Path(__file__).resolve().parents[2]
TOKEN = "observed"
ROUTING_KEY = "R0UTINGKEY0000000000000000000000"
JIRA_TOKEN = "jira-token"
RESOURCE = "service/checkout-api-7f9c"
"""A resource name no metric label may carry."""
WAITING = "service/inventory-db-3"
"""The resource whose episode waits for an approval until the scenario ends."""

RULES = """
groups:
  - name: observed-events
    rules:
      - name: ObservedLatency
        source: webhook
        stream: observed
        match: labels.kind == 'latency'
        when: body.p99 > 500
        stale_after: 10m
        resource: service/{{ labels.service }}
        severity: critical
        remediation: observed-fix
  - name: observed-prometheus
    interval: 1s
    rules:
      - name: ObservedScrape
        source: prometheus
        expr: up{job="homeostat"} == 1
        resource: service/{{ labels.job }}
        severity: info
  - name: observed-kafka
    rules:
      - name: ObservedKafka
        source: kafka
        stream: observed-events
        match: labels.kind == 'error'
        resource: service/{{ labels.service }}
        severity: warning
"""

PLAN = """
description: The observed scenario's plan
cooldown: 1h
concurrency: skip
steps:
  - id: ask
    approve:
      message: "Fix {{ resource }}?"
      deadline: 10m
      on_timeout: abort
  - id: note
    command:
      argv: ["true"]
  - id: cleanup
    playbook:
      path: demo_cleanup.yml
      hosts: [localhost]
      vars:
        scratch: "SCRATCH"
        reason: observed
  - id: page
    page: "{{ rule }} on {{ resource }}"
  - id: ticket
    ticket: {project: OPS, summary: "{{ rule }} on {{ resource }}"}
on_resolve:
  resolve_page: true
  ticket: resolve
"""


@dataclass
class Observed:
    """What the scenario leaves running for the tests to read."""

    api_url: str
    sdk_metrics_url: str
    prometheus_url: str
    temporal: Client
    namespace: str
    closed_episode: str
    waiting_episode: str


def write_files(folder: Path) -> None:
    """The scenario's rules and plan, beside the shipped playbooks."""
    (folder / "rules").mkdir(parents=True)
    (folder / "remediations").mkdir()
    (folder / "rules" / "observed.yaml").write_text(textwrap.dedent(RULES))
    plan = textwrap.dedent(PLAN).replace("SCRATCH", str(folder / "scratch"))
    (folder / "remediations" / "observed-fix.yaml").write_text(plan)


def event(service: str, p99: int) -> bytes:
    """A latency event of ``service``."""
    return json.dumps({"kind": "latency", "service": service, "p99": p99}).encode()


async def post(http: httpx.AsyncClient, api_url: str, body: bytes) -> None:
    """Send one event to the scenario's webhook stream."""
    answer = await http.post(
        f"{api_url}/v1/events/observed",
        content=body,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    assert answer.status_code == 200, answer.text


async def state(temporal: Client, resource: str) -> resource_io.ResourceState:
    """The resource workflow's state."""
    return await homeostat.resource_state(temporal, resource)


async def approve(temporal: Client, resource: str, episode: str) -> None:
    """Approve the episode's approval step as `homeostat resource approve` does."""
    handle = temporal.get_workflow_handle(
        resources.resource_workflow_id(resources.ResourceKey(resource))
    )
    await handle.execute_update(
        contract.UPDATE_APPROVE,
        resource_io.DecisionRequest(
            episode=resources.EpisodeId(episode), by="alice", comment="go", channel="cli"
        ),
        result_type=resource_io.DecisionAck,
    )


async def awaiting_approval(temporal: Client, resource: str) -> str | None:
    """The episode of ``resource`` that waits for an approval, if any."""
    found = await state(temporal, resource)
    if found.running is not None and found.running.phase is resource_io.Phase.AWAITING_APPROVAL:
        return found.running.episode
    return None


async def play(api_url: str, temporal: Client) -> tuple[str, str]:
    """Run the scenario; the closed episode's id and the waiting one's."""
    async with httpx.AsyncClient(timeout=30) as http:
        await post(http, api_url, event("checkout-api-7f9c", 900))
        episode = await homeostat.eventually(
            lambda: awaiting_approval(temporal, RESOURCE), timeout=60
        )
        await approve(temporal, RESOURCE, episode)

        async def done() -> Any:
            found = await state(temporal, RESOURCE)
            record = found.episodes[0] if found.episodes else None
            return record if record and record.status is resource_io.EpisodeStatus.DONE else None

        record = await homeostat.eventually(done, timeout=120, interval=0.5)
        assert record.outcome is not None
        assert record.outcome.value == "succeeded", record.note
        await post(http, api_url, event("checkout-api-7f9c", 100))

        async def closed() -> Any:
            found = await state(temporal, RESOURCE)
            return found if not found.episodes and found.outcomes else None

        await homeostat.eventually(closed, timeout=60)
        # The plan cools down for an hour: the next episode is refused (a suppression).
        await post(http, api_url, event("checkout-api-7f9c", 950))

        async def refused() -> Any:
            found = await state(temporal, RESOURCE)
            return found if found.episodes and found.episodes[0].status.value == "done" else None

        await homeostat.eventually(refused, timeout=60)
        await post(http, api_url, event("inventory-db-3", 990))
        waiting = await homeostat.eventually(
            lambda: awaiting_approval(temporal, WAITING), timeout=60
        )
    return resources.remediation_workflow_id(episode), resources.remediation_workflow_id(waiting)


async def settle(seconds: float) -> None:
    """Let scrapes and visibility refreshes happen."""
    await asyncio.sleep(seconds)
