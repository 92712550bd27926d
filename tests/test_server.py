import httpx
from prometheus_client import parser

from controller import server
from controller.observability import metrics


async def _ok() -> None:
    return None


async def _down() -> str:
    return "temporal unreachable"


def _client(readiness) -> httpx.AsyncClient:
    app = server.create_app(metrics=metrics.create(), readiness=readiness)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_healthz_answers_while_the_process_runs():
    """/healthz is 200 even when a dependency is down."""
    async with _client({"temporal": _down}) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200


async def test_readyz_is_503_and_names_the_failing_check():
    """/readyz is 503 with the reason of each failing check."""
    async with _client({"temporal": _down, "rules": _ok}) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "not ready",
        "checks": {"temporal": "temporal unreachable", "rules": "ok"},
    }


async def test_readyz_is_200_when_every_check_passes():
    """/readyz is 200 when Temporal answers and rules are loaded."""
    async with _client({"temporal": _ok, "rules": _ok}) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"


async def test_readyz_reports_a_check_that_raises():
    """A check that raises makes the service not ready instead of crashing the endpoint."""

    async def broken() -> None:
        raise ConnectionError("refused")

    async with _client({"temporal": broken}) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert "refused" in response.json()["checks"]["temporal"]


async def test_metrics_are_prometheus_exposition():
    """/metrics serves the text format with Homeostat's build info."""
    async with _client({}) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name for f in parser.text_string_to_metric_families(response.text)}
    assert "homeostat_build_info" in families


async def test_openapi_document_lists_the_endpoints():
    """/openapi.json describes the health endpoints."""
    async with _client({}) as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert {"/healthz", "/readyz", "/metrics"} <= set(response.json()["paths"])
