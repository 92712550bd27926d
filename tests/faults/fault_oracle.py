"""The oracle: what the fault run sent, against what Temporal, the fakes and the host show.

For every resource the driver fired (the event was acknowledged) there must be exactly one
episode (one remediation workflow), whose playbook left its marker, whose page is one
PagerDuty incident and whose ticket is one Jira issue; and, once the driver cleared it,
the incident resolved, the ticket done and the resource workflow without an open episode.

A playbook run again after it completed is a duplicate, unless the worker was killed or
Temporal was down between the start of the first completed run and a few seconds after
its end: activities run at least once, and a worker killed after the playbook ended but
before Temporal recorded it, or a heartbeat timeout that ran on while Temporal was down,
is exactly such a case.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fault_cluster
import fault_driver
from temporalio.client import Client

from controller.domain import contract, resources
from controller.workflows import remediation_io, resource_io

_CLOSE_WITHIN = 60.0
"""Seconds the resource workflow gets to record a resolve whose effects are visible."""
_REPORT_MARGIN = 10.0
"""Seconds a worker may take, on a loaded machine, to report a finished activity."""


@dataclass
class Verdict:
    """What the oracle found."""

    episodes_checked: int = 0
    losses: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    excused_reruns: list[str] = field(default_factory=list)
    phantoms: list[str] = field(default_factory=list)
    settled_after: float = 0.0


def _summary_resource(summary: str) -> str:
    return summary.removeprefix("fault ").strip()


class Evidence:
    """Reads the fakes and the marker folder."""

    def __init__(self, *, pagerduty: Any, jira: Any, markers: Path) -> None:
        self.pagerduty = pagerduty
        self.jira = jira
        self.markers = markers

    def incidents(self, resource: str) -> list[Any]:
        with self.pagerduty.lock:
            return [
                incident
                for incident in self.pagerduty.incidents
                if incident.events
                and incident.events[0].get("payload", {}).get("source") == resource
            ]

    def tickets(self, resource: str) -> list[dict[str, Any]]:
        with self.jira.lock:
            return [
                issue
                for issue in self.jira.issues.values()
                if _summary_resource(issue["fields"]["summary"]) == resource
            ]

    def ticket_exists(self, resource: str) -> bool:
        return bool(self.tickets(resource))

    def settled(self, resource: str) -> bool:
        incidents = self.incidents(resource)
        tickets = self.tickets(resource)
        return (
            bool(incidents)
            and all(i.status == "resolved" for i in incidents)
            and bool(tickets)
            and all(t["fields"]["status"]["name"] == "Done" for t in tickets)
        )

    def runs(self) -> dict[str, list[tuple[str, float]]]:
        """Playbook marker lines by episode id: (``start`` or ``end``, epoch seconds)."""
        found: dict[str, list[tuple[str, float]]] = {}
        for path in self.markers.iterdir():
            episode = path.name.replace("_", "/")
            lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
            found[episode] = [(what, float(when)) for what, when in lines]
        return found


async def wait_settled(
    evidence: Evidence, run: fault_driver.Run, *, timeout: float, stall: float = 80.0
) -> float:
    """Wait until every fired resource's page is resolved and ticket done; seconds waited.

    Gives up at ``timeout``, or once nothing settled for ``stall`` seconds (longer than any
    retry a kill can cause: a missed heartbeat, a one-minute activity timeout).
    """
    began = time.monotonic()
    deadline = began + timeout
    settled, progress_at = -1, began
    while time.monotonic() < deadline and time.monotonic() - progress_at < stall:
        fired = [s.resource for s in run.sent.values() if s.fired_at is not None]
        now_settled = sum(1 for resource in fired if evidence.settled(resource))
        if now_settled == len(fired):
            break
        if now_settled != settled:
            settled, progress_at = now_settled, time.monotonic()
        await asyncio.sleep(1.0)
    return round(time.monotonic() - began, 1)


def _resource_of_episode(episode: str) -> str:
    """``Rule/kind/name/stamp`` -> ``kind/name``."""
    parts = episode.split("/")
    return "/".join(parts[1:-1])


async def judge(*, run: fault_driver.Run, evidence: Evidence, temporal: Client) -> Verdict:
    """Compare what was sent with what exists."""
    verdict = Verdict()
    query = (
        f"WorkflowType = '{contract.REMEDIATION_WORKFLOW}' "
        f"AND TaskQueue = '{fault_cluster.TASK_QUEUE}'"
    )
    episodes: dict[str, list[str]] = {}
    async for execution in temporal.list_workflows(query):
        episode = execution.id.removeprefix("episode/")
        episodes.setdefault(_resource_of_episode(episode), []).append(episode)
        await _judge_outcome(verdict, execution.id, temporal)
    runs = evidence.runs()
    # Each kill of the worker or of Temporal as the span (epoch seconds) it was down.
    kills = [
        (run.began + at, run.began + at + (back if back is not None else 1e9), target)
        for target, at, back in run.recoveries
        if target in {"worker", "temporal"}
    ]
    fired = {s.resource: s for s in run.sent.values() if s.fired_at is not None}
    verdict.episodes_checked = len(fired)
    for resource in sorted(set(episodes) - set(fired)):
        verdict.phantoms.append(f"{resource}: episode(s) {episodes[resource]} never fired")
    for resource, sent in sorted(fired.items()):
        found = episodes.get(resource, [])
        if not found:
            verdict.losses.append(f"{resource}: no episode (fired at {sent.fired_at}s)")
            continue
        if len(found) > 1:
            verdict.duplicates.append(f"{resource}: {len(found)} episodes {sorted(found)}")
        for episode in found:
            _judge_runs(verdict, episode, runs.get(episode, []), kills)
        _judge_sinks(verdict, resource, sent, evidence)
        if sent.cleared_at is not None:
            await _judge_resolved(verdict, resource, temporal)
    return verdict


async def _judge_outcome(verdict: Verdict, workflow_id: str, temporal: Client) -> None:
    """Nothing in this suite fails for real: a plan that did not succeed lost its steps."""
    handle = temporal.get_workflow_handle(workflow_id, result_type=remediation_io.RemediationResult)
    try:
        result = await asyncio.wait_for(handle.result(), 10)
    except Exception as exc:  # noqa: BLE001 - still running, or failed: the finding
        verdict.losses.append(f"{workflow_id}: no result ({type(exc).__name__}: {exc})")
        return
    if result.outcome is not remediation_io.Outcome.SUCCEEDED:
        verdict.losses.append(f"{workflow_id}: {result.outcome.value}: {result.message}")


def _judge_runs(
    verdict: Verdict,
    episode: str,
    lines: list[tuple[str, float]],
    kills: list[tuple[float, float, str]],
) -> None:
    runs = _runs(lines)
    completed = [run for run in runs if run[1] is not None]
    if not completed:
        verdict.losses.append(f"{episode}: the playbook step never completed ({len(runs)} starts)")
        return
    # Every completed run that another run followed needs a fault of its own between its
    # start and the moment its completion should have reached Temporal (soon after its
    # end): the worker killed, or Temporal down (its heartbeat timer runs on when it is
    # back, and the late completion of a timed-out attempt is refused).
    unexcused, excuses = 0, []
    for started, ended in completed:
        assert ended is not None
        if not any(later > ended for later, _ in runs):
            continue
        found = [
            target for down, up, target in kills if down <= ended + _REPORT_MARGIN and up >= started
        ]
        if found:
            excuses.append("/".join(sorted(set(found))))
        else:
            unexcused += 1
    text = f"{episode}: playbook completed {len(completed)} times"
    if unexcused:
        verdict.duplicates.append(
            f"{text}; {unexcused} re-run(s) after a completed run with no fault inside it"
        )
    elif len(completed) > 1:
        verdict.excused_reruns.append(f"{text} (faults inside: {', '.join(excuses)})")


def _runs(lines: list[tuple[str, float]]) -> list[tuple[float, float | None]]:
    """(start, end or ``None``) of each run, in order, from the marker lines."""
    runs: list[tuple[float, float | None]] = []
    for what, when in sorted(lines, key=lambda line: line[1]):
        if what == "start":
            runs.append((when, None))
        elif runs and runs[-1][1] is None:
            runs[-1] = (runs[-1][0], when)
    return runs


def _judge_sinks(
    verdict: Verdict, resource: str, sent: fault_driver.Sent, evidence: Evidence
) -> None:
    incidents = evidence.incidents(resource)
    tickets = evidence.tickets(resource)
    if not incidents:
        verdict.losses.append(f"{resource}: never paged")
    elif len(incidents) > 1:
        verdict.duplicates.append(f"{resource}: {len(incidents)} PagerDuty incidents")
    if not tickets:
        verdict.losses.append(f"{resource}: no ticket")
    elif len(tickets) > 1:
        verdict.duplicates.append(f"{resource}: {len(tickets)} Jira tickets")
    if sent.cleared_at is None:
        return
    if any(incident.status != "resolved" for incident in incidents):
        verdict.losses.append(f"{resource}: page not resolved (cleared at {sent.cleared_at}s)")
    if any(ticket["fields"]["status"]["name"] != "Done" for ticket in tickets):
        verdict.losses.append(f"{resource}: ticket not done (cleared at {sent.cleared_at}s)")


async def _judge_resolved(
    verdict: Verdict, resource: str, temporal: Client, *, timeout: float = _CLOSE_WITHIN
) -> None:
    """The resource workflow must close the episode once the all-clear was sent.

    The page and the ticket may already be resolved while the workflow has not recorded it
    yet (a worker killed inside ``on_resolve`` delays it by the activity's timeout): wait.
    """
    handle = temporal.get_workflow_handle(
        resources.resource_workflow_id(resources.ResourceKey(resource))
    )
    deadline = time.monotonic() + timeout
    while True:
        try:
            state = await handle.query(contract.QUERY_STATE, result_type=resource_io.ResourceState)
            problem = (
                f"episode still open {timeout:.0f} s after its page and ticket were resolved: "
                f"{[record.episode for record in state.episodes]}"
                if state.episodes
                else ""
            )
        except Exception as exc:  # noqa: BLE001 - reported as the finding it is
            problem = f"resource workflow not queryable: {exc}"
        if not problem:
            return
        if time.monotonic() > deadline:
            verdict.losses.append(f"{resource}: {problem}")
            return
        await asyncio.sleep(1.0)
