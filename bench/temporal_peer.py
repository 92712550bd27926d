"""Temporal's own figures to measure Homeostat against: a workflow whose only work is one activity.

Imports only the standard library and temporalio, so the worker's sandbox loads it as it
loads any workflow module. Used by ``latency.py`` (start -> first activity) and
``temporal_side.py`` (the dev server's own workflow throughput).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

WORKFLOW = "BenchOneActivity"
ACTIVITY = "bench_first_activity"


@activity.defn(name=ACTIVITY)
async def first_activity(label: str) -> str:
    """Do nothing but answer: the cheapest activity there is."""
    return label


@workflow.defn(name=WORKFLOW)
class OneActivity:
    """Start, run one activity, complete: the shortest path to a first action."""

    @workflow.run
    async def run(self, label: str) -> str:
        """Run the one activity and return its answer."""
        return await workflow.execute_activity(
            ACTIVITY, label, start_to_close_timeout=timedelta(seconds=30)
        )
