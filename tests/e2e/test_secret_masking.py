"""Credentials reflected by a remote API never reach a workflow history, in any form they were sent."""

import base64
import json
import sys
from pathlib import Path
from urllib.parse import quote, quote_plus

import homeostat
import httpx
import pytest
from temporalio.client import Client

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fakes"))

from fake_api import FakeApi

from controller.workflows import remediation_io, resource_io

TOKEN = "events-token"
USER = "admin"
PASSWORD = "vc-Pa55/word+1"  # '/' and '+' change under URL encoding
QUERY_KEY = "qk/9+sig=value=="
BEARER = "metal-bearer-token-0001"

RULES = """\
groups:
  - name: reflect
    rules:
      - name: Reflected
        source: webhook
        stream: reflect
        match: labels.kind == 'reflect'
        resource: service/{{ labels.service }}
        severity: warning
        remediation: reflect
"""

PLAN = """\
description: Call an API that reflects the credentials it received
steps:
  - id: basic
    http: {{url: "{url}/reflect", credentials: vcenter}}
  - id: query
    http: {{url: "{url}/reflect", credentials: signed, params: {{page: "1"}}}}
  - id: bearer
    http: {{url: "{url}/reflect", credentials: metal}}
"""


def _forms() -> dict[str, str]:
    pair = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    return {
        "password": PASSWORD,
        "basic base64": pair,
        "basic base64 unpadded": pair.rstrip("="),
        "query value": QUERY_KEY,
        "query value url-encoded": quote(QUERY_KEY, safe=""),
        "query value form-encoded": quote_plus(QUERY_KEY),
        "bearer": BEARER,
    }


def _decoded(value) -> list[str]:
    """Every string of a history's JSON, with payload data decoded from base64."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "data" and isinstance(item, str):
                found.append(base64.b64decode(item).decode("utf-8", "replace"))
            else:
                found += _decoded(item)
    elif isinstance(value, list):
        for item in value:
            found += _decoded(item)
    elif isinstance(value, str):
        found.append(value)
    return found


async def _histories(temporal: Client, task_queue: str) -> dict[str, str]:
    texts = {}
    async for execution in temporal.list_workflows(f"TaskQueue = '{task_queue}'"):
        history = await temporal.get_workflow_handle(execution.id).fetch_history()
        texts[execution.id] = "\n".join(_decoded(history.to_json_dict()))
    return texts


@pytest.fixture
def api(tmp_path):
    fake = FakeApi(token=BEARER).start(tmp_path)
    yield fake
    fake.stop()


@pytest.mark.timeout(120)
async def test_reflected_credentials_are_masked_in_every_history(
    tmp_path, temporal_dev_server, api
):
    """Basic auth (its base64), query-parameter and bearer credentials echoed by an API show as *** in the step outputs, and no history holds them."""
    folder = homeostat.write_rules(tmp_path, RULES)
    (folder / "remediations" / "reflect.yaml").write_text(PLAN.format(url=api.url))
    config = homeostat.make_settings(
        folder,
        temporal_dev_server.address,
        webhooks={"bearer_token": TOKEN},
        activities={
            "state_dir": str(tmp_path / "runs"),
            "credentials": {
                "vcenter": {"username": USER, "password": PASSWORD},
                "signed": {"params": {"key": QUERY_KEY}},
                "metal": {"bearer_token": BEARER},
            },
        },
    )
    temporal = await homeostat.client(temporal_dev_server.address)
    async with homeostat.running(config) as endpoints, httpx.AsyncClient(timeout=30) as http:
        answer = await http.post(
            f"{endpoints.api_url}/v1/events/reflect",
            json={"kind": "reflect", "service": "web"},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert answer.status_code == 200, answer.text

        async def done():
            state = await homeostat.resource_state(temporal, "service/web")
            record = state.episodes[0] if state.episodes else None
            done = record is not None and record.status is resource_io.EpisodeStatus.DONE
            return record if done else None

        record = await homeostat.eventually(done, timeout=90, interval=0.5)
        assert record.outcome is remediation_io.Outcome.SUCCEEDED, record.note
        histories = await _histories(temporal, config.temporal.task_queue)

    sent = [request for request in api.requests if request.path == "/reflect"]
    assert len(sent) == 3
    assert sent[1].query == {"page": "1", "key": QUERY_KEY}
    assert sent[0].headers["authorization"] == "Basic " + _forms()["basic base64"]
    assert len(histories) >= 2
    everything = "\n".join(histories.values())
    assert "as basic ***" in everything  # the reflection happened, and was masked
    leaked = {
        (workflow_id, form)
        for workflow_id, text in histories.items()
        for form, secret in _forms().items()
        if secret in text
    }
    assert leaked == set()
    assert json.dumps(PASSWORD)[1:-1] not in everything
