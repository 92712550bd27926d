import re

import httpx
import pytest
import yaml
from harness import processes

from controller import assembly, connection, service, settings
from controller.observability import metrics as metrics_module

OPEN = {
    "/healthz",
    "/readyz",
    "/metrics",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
    "/openapi.json",
}
SAMPLES = {
    "stream": "deploys",
    "resource": "host/db-1",
    "episode": "DiskFull/host/db-1/20260101T000000.000000Z",
    "target": "host/db-1",
}
RULES = """\
groups:
  - name: jobs
    rules:
      - name: JobFailed
        source: webhook
        match: labels.kind == 'job'
        resource: job/{{ labels.job }}
"""


def _routes(routes):
    """Every (path, methods) served, through included routers."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _routes(included.routes)
        else:
            yield route.path, getattr(route, "methods", None) or set()


def _filled(path: str) -> str:
    return re.sub(r"\{(\w+)(?::path)?\}", lambda found: SAMPLES[found.group(1)], path)


@pytest.fixture
def configured(tmp_path):
    (tmp_path / "rules").mkdir()
    (tmp_path / "remediations").mkdir()
    (tmp_path / "rules" / "jobs.yaml").write_text(RULES)
    values = {
        "temporal": {"address": f"127.0.0.1:{processes.free_port()}"},
        "rules": {
            "rules_dir": str(tmp_path / "rules"),
            "remediations_dir": str(tmp_path / "remediations"),
            "playbooks_dir": str(tmp_path / "playbooks"),
        },
        "alertmanager": {"bearer_token": "alertmanager-token"},
        "webhooks": {"bearer_token": "events-token", "gitlab_token": "gitlab-token"},
        "api": {"tokens": {"alice": "alices-token-0123456789"}},
        "slack": {"signing_secret": "slack-signing-secret", "approvers": ["U1"]},
    }
    (tmp_path / "homeostat.yaml").write_text(yaml.safe_dump(values))
    return settings.load(tmp_path / "homeostat.yaml")


async def test_every_route_but_health_metrics_and_docs_refuses_a_request_without_credentials(
    configured,
):
    """Every /v1 route of `homeostat up`, with every method it takes, answers 401 to a request without credentials, before Temporal is asked anything; only health, metrics and the API docs are open."""
    metrics = metrics_module.create()
    client = await connection.connect(configured.temporal, configured.temporal.address, lazy=True)
    ingest = assembly.build_ingest(configured, client, metrics)
    app = service._build_app(client, metrics, ingest)
    checked = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://homeostat") as http:
        for path, methods in _routes(app.routes):
            if path in OPEN:
                continue
            for method in sorted(methods - {"HEAD"}):
                answer = await http.request(
                    method, _filled(path), content=b"{}", headers={"X-Gitlab-Event": "Push Hook"}
                )
                assert answer.status_code == 401, (method, path, answer.text)
                checked.append(f"{method} {path}")
    await ingest.dispatcher.close()
    assert "GET /v1/resources" in checked
    assert "POST /v1/alertmanager" in checked
    assert "POST /v1/slack/interactions" in checked
    assert len(checked) >= 18, checked
