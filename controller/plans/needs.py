"""What a plan needs from the configuration to run: an inventory, paging, ticketing, Slack, PromQL.

A plan that pages where no PagerDuty routing key is set, lists an inventory group where no
inventory is configured, or asks in Slack without a bot token fails only when an episode
reaches that step, often in its escalation. ``of`` names each need and the steps behind it
so ``homeostat rules lint --config`` and start-up can say so before anything fires. Pure:
the composition roots decide what the settings provide.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum

from controller.plans import spec


class Need(StrEnum):
    """Something outside Homeostat a step relies on."""

    INVENTORY = "inventory"
    """An inventory (Ansible's or the CMDB) listing hosts of a group."""
    PAGING = "paging"
    """A PagerDuty routing key."""
    TICKETING = "ticketing"
    """A Jira server."""
    SLACK = "slack"
    """A Slack bot token, to post messages and ask approvers in a channel."""
    PROMETHEUS = "prometheus"
    """A Prometheus server, for PromQL verification and scaling metrics."""


def of(plan: spec.Plan) -> dict[Need, tuple[str, ...]]:
    """Each need of ``plan`` with the paths of the steps (and ladder rungs) that have it."""
    found: dict[Need, list[str]] = {}
    steps = list(_walk(plan.steps, ""))
    steps += [(f"escalation_{index}", rung.action) for index, rung in enumerate(plan.escalation, 1)]
    for path, step in steps:
        for need in _step_needs(step):
            found.setdefault(need, []).append(path)
    return {need: tuple(paths) for need, paths in found.items()}


def _walk(steps: tuple[spec.Step, ...], prefix: str) -> Iterator[tuple[str, spec.Step]]:
    for step in steps:
        yield f"{prefix}{step.id}", step
        if isinstance(step, spec.ForEachStep):
            yield from _walk(step.steps, f"{prefix}{step.id}/ITEM/")


def _step_needs(step: spec.Step) -> set[Need]:  # noqa: PLR0911 - one answer per step type
    match step:
        case spec.PageStep():
            return {Need.PAGING}
        case spec.TicketStep():
            return {Need.TICKETING}
        case spec.SlackStep():
            return {Need.SLACK}
        case spec.ForEachStep():
            return {Need.INVENTORY} if step.hosts else set()
        case spec.PlaybookStep():
            return {Need.INVENTORY} if step.groups else set()
        case spec.ApproveStep():
            return {Need.SLACK} if step.slack else set()
        case spec.VerifyStep():
            return {Need.PROMETHEUS} if step.promql else set()
        case spec.ScaleStep():
            return {Need.PROMETHEUS} if step.policy is not None else set()
    return set()
