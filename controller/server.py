"""The HTTP API: health, readiness, metrics, and the routers the ingest layer adds.

``/healthz`` answers while the process runs; ``/readyz`` answers 200 only when every
readiness check passes (Temporal reachable, rules loaded) and names each check's state,
so a load balancer and a person read the same answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence

import fastapi
import prometheus_client
import structlog
from fastapi import responses

from controller import __version__
from controller.observability import metrics as metrics_module

log = structlog.get_logger(__name__)

ReadinessCheck = Callable[[], Awaitable[str | None]]
"""Returns ``None`` when ready, or a short reason why not."""

_CHECK_TIMEOUT_SECONDS = 3.0


def create_app(
    *,
    metrics: metrics_module.Metrics,
    readiness: Mapping[str, ReadinessCheck],
    routers: Sequence[fastapi.APIRouter] = (),
) -> fastapi.FastAPI:
    """Build the FastAPI application.

    Args:
        metrics: the process's metrics; ``/metrics`` exposes their registry.
        readiness: named checks that ``/readyz`` runs concurrently.
        routers: further routes (webhooks), mounted as they are.
    """
    app = fastapi.FastAPI(
        title="Homeostat",
        version=__version__,
        description="Event-driven autoscaling and self-healing controller.",
    )

    @app.get("/healthz", tags=["health"], summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="Temporal is reachable and rules are loaded")
    async def readyz() -> responses.JSONResponse:
        names = list(readiness)
        results = await asyncio.gather(*(_run_check(readiness[name]) for name in names))
        checks = {name: (reason or "ok") for name, reason in zip(names, results, strict=True)}
        ready = all(reason is None for reason in results)
        return responses.JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status_code=200 if ready else 503,
        )

    @app.get("/metrics", tags=["health"], summary="Prometheus exposition")
    async def metrics_endpoint() -> responses.Response:
        body = prometheus_client.generate_latest(metrics.registry)
        return responses.Response(body, media_type=prometheus_client.CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router)
    return app


async def _run_check(check: ReadinessCheck) -> str | None:
    try:
        return await asyncio.wait_for(check(), timeout=_CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return "timed out"
    except Exception as exc:  # noqa: BLE001 - any failure of a check means not ready
        log.warning("readiness_check_failed", error=str(exc))
        return f"failed: {exc}"
