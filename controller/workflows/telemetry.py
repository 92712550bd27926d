"""What the workflows measure: episodes, steps, suppressions, approvals, pages, tickets, hosts.

Recorded through ``workflow.metric_meter()``, Temporal's replay-safe meter: nothing is
recorded while a workflow replays its history (after a worker restart or a cache
eviction), so each fact counts once. The worker routes these names to Homeostat's
``/metrics`` (``observability.temporal_metrics``); label values come from closed sets or
rule names, never a resource. Outside a workflow (unit tests of the ledger) nothing is
recorded.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

from temporalio import workflow

EPISODES_STARTED = "homeostat_episodes_started"
EPISODES_ENDED = "homeostat_episodes_ended"
EPISODE_SECONDS = "homeostat_episode_duration_seconds"
STEPS = "homeostat_steps"
STEP_SECONDS = "homeostat_step_duration_seconds"
SUPPRESSIONS = "homeostat_suppressions"
APPROVALS_REQUESTED = "homeostat_approvals_requested"
APPROVALS_DECIDED = "homeostat_approvals_decided"
PAGES = "homeostat_pages"
TICKETS = "homeostat_tickets"
PLAYBOOK_HOSTS = "homeostat_playbook_hosts"

NAMES = (
    EPISODES_STARTED,
    EPISODES_ENDED,
    EPISODE_SECONDS,
    STEPS,
    STEP_SECONDS,
    SUPPRESSIONS,
    APPROVALS_REQUESTED,
    APPROVALS_DECIDED,
    PAGES,
    TICKETS,
    PLAYBOOK_HOSTS,
)
"""Every metric name recorded here (the worker's registry declares each one)."""


class Suppression(StrEnum):
    """Why an episode was not remediated."""

    COOLDOWN = "cooldown"
    BUDGET = "budget"
    SILENCE = "silence"
    PAUSE = "pause"
    CONCURRENCY = "concurrency"


def _count(name: str, attributes: dict[str, str], value: int = 1) -> None:
    if workflow.in_workflow():
        workflow.metric_meter().create_counter(name).add(value, attributes)


def _duration(name: str, seconds: timedelta, attributes: dict[str, str]) -> None:
    if workflow.in_workflow():
        workflow.metric_meter().create_histogram_timedelta(name).record(
            max(seconds, timedelta(0)), attributes
        )


def episode_started(rule: str) -> None:
    """A resource workflow opened an episode of ``rule``."""
    _count(EPISODES_STARTED, {"rule": rule})


def episode_ended(rule: str, outcome: str, duration: timedelta) -> None:
    """An episode closed with ``outcome``, ``duration`` after its condition fired."""
    _count(EPISODES_ENDED, {"rule": rule, "outcome": outcome})
    _duration(EPISODE_SECONDS, duration, {"rule": rule, "outcome": outcome})


def step_finished(kind: str, outcome: str, duration: timedelta) -> None:
    """A remediation step of ``kind`` ended with ``outcome``."""
    _count(STEPS, {"kind": kind, "outcome": outcome})
    _duration(STEP_SECONDS, duration, {"kind": kind, "outcome": outcome})


def suppressed(reason: Suppression) -> None:
    """An episode was not remediated, for ``reason``."""
    _count(SUPPRESSIONS, {"reason": reason.value})


def approval_requested() -> None:
    """An approval step started waiting for an answer."""
    _count(APPROVALS_REQUESTED, {})


def approval_decided(decision: str, channel: str) -> None:
    """An approval step got ``decision`` (approved, denied, timed_out) through ``channel``."""
    _count(APPROVALS_DECIDED, {"decision": decision, "channel": channel or "unknown"})


def page_sent(action: str) -> None:
    """A PagerDuty event went out (trigger, resolve)."""
    _count(PAGES, {"action": action})


def ticket_handled(action: str) -> None:
    """A ticket was opened, updated, commented on or resolved."""
    _count(TICKETS, {"action": action})


def playbook_hosts(status: str, count: int) -> None:
    """``count`` hosts finished a playbook step with ``status``."""
    if count:
        _count(PLAYBOOK_HOSTS, {"status": status}, count)
