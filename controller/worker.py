"""The Temporal worker: every workflow and activity of Homeostat on one task queue.

A composition root: it reads settings and builds the activities' clients, so workflow
and activity modules never do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from temporalio import client as temporal_client
from temporalio import worker as temporal_worker

from controller import settings as settings_module
from controller import workflows


def registered_workflows() -> Sequence[type]:
    """The workflow classes this worker runs."""
    return list(getattr(workflows, "WORKFLOWS", []))


def registered_activities(settings: settings_module.Settings) -> Sequence[Callable[..., Any]]:
    """The activity callables this worker runs, with their clients built from ``settings``."""
    del settings
    return []


def build(
    client: temporal_client.Client, settings: settings_module.Settings
) -> temporal_worker.Worker:
    """A worker for Homeostat's task queue; run it with ``async with`` or ``run()``."""
    return temporal_worker.Worker(
        client,
        task_queue=settings.temporal.task_queue,
        workflows=registered_workflows(),
        activities=registered_activities(settings),
        max_cached_workflows=settings.temporal.max_cached_workflows,
    )
