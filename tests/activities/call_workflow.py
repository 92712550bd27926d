"""A test workflow that calls one activity by name, with a retry policy.

How the activity tests drive real activities through a real Temporal server: retries,
heartbeats, worker kills.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

PERMANENT_ERROR = "PermanentError"


@dataclass(frozen=True, slots=True, kw_only=True)
class CallInput:
    """Which activity to call with what, and how to retry it."""

    activity: str
    arg: Any
    max_attempts: int = 3
    start_to_close: timedelta = timedelta(seconds=60)
    heartbeat_timeout: timedelta | None = None
    initial_interval: timedelta = timedelta(milliseconds=200)


@workflow.defn(name="test-call-activity")
class CallActivity:
    """Calls the activity and returns its result as plain data."""

    @workflow.run
    async def run(self, request: CallInput) -> Any:
        return await workflow.execute_activity(
            request.activity,
            request.arg,
            start_to_close_timeout=request.start_to_close,
            heartbeat_timeout=request.heartbeat_timeout,
            retry_policy=RetryPolicy(
                initial_interval=request.initial_interval,
                backoff_coefficient=1.0,
                maximum_attempts=request.max_attempts,
                non_retryable_error_types=[PERMANENT_ERROR],
            ),
        )
