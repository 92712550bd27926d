"""Verification and metrics: PromQL (instant, prometheus-api-client) and CEL conditions.

``verify_promql`` and ``verify_cel`` poll until their condition holds or ``within`` has
passed since the activity was first scheduled (so a retried attempt does not restart the
clock), heartbeating after every poll. A condition that could not be checked this time
(Prometheus or the HTTP endpoint unreachable, a CEL evaluation error such as a missing
field) counts as "not yet" and is kept as the observation; a query Prometheus rejects or
an expression that does not compile can never hold, and is a ``PermanentError``.

``query_metric`` asks once, for the scaling policy's metric.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import cel
import httpx
from temporalio import activity

from controller import errors
from controller.activities import failures, rest
from controller.ingest import promql
from controller.workflows import activity_io

_OBSERVED = 500


class VerifyActivities:
    """``verify_promql``, ``verify_cel`` and ``query_metric``."""

    def __init__(
        self,
        *,
        prometheus: promql.Client | None,
        requests: rest.Requests,
        client: httpx.AsyncClient,
    ) -> None:
        """Query ``prometheus`` (``None``: PromQL is not configured); HTTP via ``client``."""
        self._prometheus = prometheus
        self._requests = requests
        self._client = client

    @activity.defn(name=activity_io.QUERY_METRIC)
    async def query_metric(
        self, request: activity_io.QueryMetricInput
    ) -> activity_io.QueryMetricOutput:
        """The value of the query's first series (``None`` when it has none)."""
        with failures.reported():
            samples = await self._query(request.query)
            values = [s.value for s in samples if math.isfinite(s.value)]
            return activity_io.QueryMetricOutput(
                value=values[0] if values else None, series=len(samples)
            )

    @activity.defn(name=activity_io.VERIFY_PROMQL)
    async def verify_promql(
        self, request: activity_io.VerifyPromqlInput
    ) -> activity_io.VerifyOutput:
        """Poll the query until it returns a non-empty result, or time is up."""
        with failures.reported():

            async def check() -> tuple[bool, str]:
                try:
                    samples = await self._query(request.query)
                except errors.TransientError as exc:
                    return False, f"not checked: {exc}"
                if not samples:
                    return False, "no series"
                first = samples[0]
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(first.labels.items()))
                return True, f"{len(samples)} series; {{{labels}}} = {first.value:g}"

            return await _poll(check, within=request.within, interval=request.interval)

    @activity.defn(name=activity_io.VERIFY_CEL)
    async def verify_cel(self, request: activity_io.VerifyCelInput) -> activity_io.VerifyOutput:
        """Poll the CEL condition (after the HTTP request, if any) until it is true."""
        with failures.reported():
            try:
                program = cel.compile(request.expression)
            except ValueError as exc:
                raise errors.PermanentError(f"CEL expression does not compile: {exc}") from exc
            http = request.http
            if http is not None:
                self._requests.build(http)  # a bad URL or credential fails now, permanently

            async def check() -> tuple[bool, str]:
                variables: dict[str, Any] = dict(request.variables)
                if http is not None:
                    try:
                        answer = await rest.send(self._client, self._requests, http)
                    except errors.TransientError as exc:
                        return False, f"not checked: {exc}"
                    variables["response"] = {
                        "status": answer.status,
                        "json": answer.json_body,
                        "text": answer.text,
                    }
                try:
                    result = program.execute(variables)
                except (ValueError, TypeError, RuntimeError, KeyError) as exc:
                    return False, f"not checked: {exc}"
                if not isinstance(result, bool):
                    raise errors.PermanentError(
                        f"CEL condition gave {type(result).__name__}, not a boolean"
                    )
                status = variables.get("response", {}).get("status")
                return result, f"{result}" + (f" (HTTP {status})" if status is not None else "")

            return await _poll(check, within=request.within, interval=request.interval)

    async def _query(self, query: str) -> list[promql.Sample]:
        if self._prometheus is None:
            raise errors.PermanentError("Prometheus is not configured")
        client = self._prometheus
        try:
            return await asyncio.to_thread(client.instant, query, at=datetime.now(UTC))
        except promql.QueryError as exc:
            if exc.transient:
                raise errors.TransientError(str(exc)) from exc
            raise errors.PermanentError(str(exc)) from exc


async def _poll(
    check: Callable[[], Awaitable[tuple[bool, str]]],
    *,
    within: timedelta,
    interval: timedelta,
) -> activity_io.VerifyOutput:
    """Call ``check`` every ``interval`` until it holds or time is up; heartbeat each time.

    Time is up ``within`` after the activity was first scheduled (not this attempt).
    """
    deadline = activity.info().scheduled_time + within
    checks = 0
    observed = ""
    while True:
        holds, observed = await check()
        checks += 1
        activity.heartbeat(checks)
        if holds:
            return activity_io.VerifyOutput(ok=True, checks=checks, observed=observed[:_OBSERVED])
        left = (deadline - datetime.now(UTC)).total_seconds()
        if left <= 0:
            return activity_io.VerifyOutput(ok=False, checks=checks, observed=observed[:_OBSERVED])
        await asyncio.sleep(min(interval.total_seconds(), left))
