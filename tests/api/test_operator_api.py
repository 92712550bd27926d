"""The operator API end to end on the Temporal dev server: authentication, approvals with identity, steering verbs, and the CLI through it."""

import asyncio
import getpass
import json
import os
import time
from datetime import UTC, datetime, timedelta

import homeostat
import httpx
import pytest
from operator_support import ALICE, MALLORY, cli, start_episode, state, write_plan
from temporalio.client import WorkflowHistory

from controller.domain import resources
from controller.workflows import remediation_io, resource_io

DROP_PLAN = """
steps:
  - id: approval
    approve: {message: "Drop the lagging replica?", deadline: 10m, approvers: [alice, dba]}
  - {id: drop, command: ["true"]}
"""
RESOURCE = "database/orders"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _decision_signals(temporal, episode: str) -> list[str]:
    """The `decision` signals the episode's remediation workflow received, by whom."""
    handle = temporal.get_workflow_handle(resources.remediation_workflow_id(episode))
    history: WorkflowHistory = await handle.fetch_history()
    return [
        event.workflow_execution_signaled_event_attributes.signal_name
        for event in history.events
        if event.HasField("workflow_execution_signaled_event_attributes")
    ]


async def _timeline_as_the_cli_prints_it(http, api_url: str, episode: str, tmp_path) -> None:
    """GET /v1/episodes/{id} needs a token and serves `homeostat history --json`'s JSON, approval included."""
    url = f"{api_url}/v1/episodes/{episode}"
    assert (await http.get(url)).status_code == 401
    served = await http.get(url, headers=_bearer(MALLORY))
    assert served.status_code == 200, served.text
    code, out, err = await cli(
        "history", episode, "--json", "--config", str(tmp_path / "homeostat.yaml")
    )
    assert code == 0, err
    assert served.json() == json.loads(out)
    env = {**os.environ, "HOMEOSTAT_API_URL": api_url, "HOMEOSTAT_API_TOKEN": ALICE}
    code, through_api, err = await cli("history", episode, "--json", env=env)
    assert code == 0, err
    assert json.loads(through_api) == json.loads(out)
    approvals = [
        entry["details"]
        for entry in served.json()["entries"]
        if (entry.get("details") or {}).get("type") == "approval" and entry["details"]["by"]
    ]
    assert approvals
    assert {(a["by"], a["channel"], a["approved"]) for a in approvals} == {("alice", "api", True)}


@pytest.mark.timeout(180)
async def test_approvals_need_a_token_and_an_approver_and_the_cli_goes_through_the_api(
    tmp_path, temporal_dev_server
):
    """No token or a wrong one: 401 and nothing changes; mallory: 403 and the step still waits; the CLI as the OS user is refused; alice approves through `homeostat --api`; a second answer: 409."""
    write_plan(tmp_path, "drop-replica", DROP_PLAN)
    config = homeostat.make_settings(
        tmp_path,
        temporal_dev_server.address,
        api={"tokens": {"alice": ALICE, "mallory": MALLORY}, "groups": {"dba": ["bob"]}},
    )
    temporal = await homeostat.client(temporal_dev_server.address)
    async with homeostat.running(config) as endpoints, httpx.AsyncClient(timeout=30) as http:
        episode = await start_episode(
            temporal, config.temporal.task_queue, "drop-replica", RESOURCE
        )

        async def waiting():
            current = await state(temporal, RESOURCE)
            return current if current.phase is resource_io.Phase.AWAITING_APPROVAL else None

        await homeostat.eventually(waiting, timeout=60)
        approve_url = f"{endpoints.api_url}/v1/episodes/{episode}/approve"
        body = {"comment": "lag is gone", "resource": RESOURCE}

        for headers in ({}, _bearer("wrong-token-0123456789"), {"Authorization": ALICE}):
            refused = await http.post(approve_url, json=body, headers=headers)
            assert refused.status_code == 401, refused.text
            assert refused.headers["www-authenticate"] == "Bearer"
        refused = await http.post(
            f"{endpoints.api_url}/v1/resources/{RESOURCE}/pause", json={}, headers={}
        )
        assert refused.status_code == 401
        forbidden = await http.post(approve_url, json=body, headers=_bearer(MALLORY))
        assert forbidden.status_code == 403, forbidden.text
        assert "mallory is not an approver" in forbidden.json()["detail"]

        code, out, err = await cli(
            "resource", "approve", RESOURCE, episode, "--config", str(tmp_path / "homeostat.yaml")
        )
        assert code == 1, (out, err)
        assert f"refused: {getpass.getuser()} is not an approver of approval" in err
        assert "approved" not in out

        still = await state(temporal, RESOURCE)
        assert still.phase is resource_io.Phase.AWAITING_APPROVAL
        assert not still.paused
        assert await _decision_signals(temporal, episode) == []

        env = {**os.environ, "HOMEOSTAT_API_URL": endpoints.api_url, "HOMEOSTAT_API_TOKEN": ALICE}
        code, out, err = await cli("resource", "approve", RESOURCE, episode, "-m", "ok", env=env)
        assert code == 0, err
        assert out.strip() == f"approved episode {episode} by alice (api)"

        handle = temporal.get_workflow_handle(
            resources.remediation_workflow_id(episode),
            result_type=remediation_io.RemediationResult,
        )
        result = await asyncio.wait_for(handle.result(), 60)
        assert result.outcome is remediation_io.Outcome.SUCCEEDED
        assert result.steps[0].output == {"by": "alice", "comment": "ok", "channel": "api"}
        assert await _decision_signals(temporal, episode) == ["decision"]

        again = await http.post(
            f"{endpoints.api_url}/v1/episodes/{episode}/deny", json={}, headers=_bearer(ALICE)
        )
        assert again.status_code in {404, 409}, again.text
        await _timeline_as_the_cli_prints_it(http, endpoints.api_url, episode, tmp_path)

        metrics = (await http.get(f"{endpoints.api_url}/metrics")).text
        assert 'homeostat_unauthenticated_requests_total{route="operator"} 5.0' in metrics
        assert (
            'homeostat_operator_actions_total{action="approve",channel="api",outcome="forbidden"} 1.0'
            in metrics
        )


async def _unsteerable(http, api_url: str, headers: dict[str, str], temporal) -> None:
    """A resource that never fired: 404; a workflow no worker runs: 503 after api.timeout; a bad key: 422."""
    missing = await http.post(f"{api_url}/v1/resources/service/never-fired/pause", headers=headers)
    assert missing.status_code == 404
    await start_episode(temporal, "no-worker-polls-this", "cool", "service/orphan")
    began = time.monotonic()
    orphan = await http.post(f"{api_url}/v1/resources/service/orphan/pause", headers=headers)
    assert orphan.status_code == 503, orphan.text
    assert "is a worker running?" in orphan.json()["detail"]
    assert time.monotonic() - began < 10
    await temporal.get_workflow_handle("resource/service/orphan").terminate("test over")
    bad_key = await http.post(f"{api_url}/v1/resources/NOT A KEY/pause", headers=headers)
    assert bad_key.status_code == 422


async def _listed_and_shown(http, api_url: str, headers: dict[str, str], resource: str) -> None:
    """GET /v1/resources lists it (filtered by phase), GET /v1/resources/{id} shows it; both need a token."""
    assert (await http.get(f"{api_url}/v1/resources")).status_code == 401
    listed = await http.get(f"{api_url}/v1/resources", params={"kind": "service"}, headers=headers)
    assert listed.status_code == 200, listed.text
    found = {item["resource"]: item for item in listed.json()["resources"]}
    assert found[resource]["phase"] == "healthy"
    paused = await http.get(f"{api_url}/v1/resources", params={"phase": "paused"}, headers=headers)
    assert resource not in {item["resource"] for item in paused.json()["resources"]}
    bad = await http.get(f"{api_url}/v1/resources", params={"phase": "asleep"}, headers=headers)
    assert bad.status_code == 422
    shown = await http.get(f"{api_url}/v1/resources/{resource}", headers=headers)
    assert shown.status_code == 200, shown.text
    assert shown.json()["resource"] == resource
    missing = await http.get(f"{api_url}/v1/resources/service/never-fired", headers=headers)
    assert missing.status_code == 404
    env = {**os.environ, "HOMEOSTAT_API_URL": api_url, "HOMEOSTAT_API_TOKEN": ALICE}
    code, out, err = await cli("resource", "list", "--kind", "service", "--json", env=env)
    assert code == 0, err
    assert resource in {item["resource"] for item in json.loads(out)["resources"]}
    code, out, err = await cli("resource", "show", "service/never-fired", env=env)
    assert code == 1
    assert "service/never-fired" in err


@pytest.mark.timeout(180)
async def test_every_steering_verb_through_the_api_records_the_token_name(
    tmp_path, temporal_dev_server
):
    """Silence, unsilence, pause, resume and reset answer the new state, record alice, and refuse what the workflow refuses; without a worker, 503 after api.timeout."""
    write_plan(
        tmp_path,
        "cool",
        'cooldown: 1h\nbudget: {runs: 2, per: 1d}\nsteps:\n  - {id: fix, command: ["true"]}\n',
    )
    config = homeostat.make_settings(
        tmp_path, temporal_dev_server.address, api={"tokens": {"alice": ALICE}, "timeout": "2s"}
    )
    temporal = await homeostat.client(temporal_dev_server.address)
    resource = "service/steered"
    async with homeostat.running(config) as endpoints, httpx.AsyncClient(timeout=30) as http:
        await start_episode(temporal, config.temporal.task_queue, "cool", resource)

        async def cooling():
            current = await state(temporal, resource)
            return current if current.cooldowns and not current.episodes else None

        await homeostat.eventually(cooling, timeout=60)
        base = f"{endpoints.api_url}/v1/resources/{resource}"
        headers = _bearer(ALICE)

        silenced = await http.post(
            f"{base}/silence", json={"duration": "2h", "reason": "maintenance"}, headers=headers
        )
        assert silenced.status_code == 200, silenced.text
        answer = silenced.json()
        assert answer["phase"] == "silenced"
        assert answer["by"] == "alice"
        assert answer["channel"] == "api"
        until = datetime.fromisoformat(answer["silenced_until"])
        assert timedelta(minutes=119) < until - datetime.now(UTC) <= timedelta(hours=2)
        recorded = await state(temporal, resource)
        assert (recorded.silence_reason, recorded.silenced_by) == ("maintenance", "alice")

        past = await http.post(
            f"{base}/silence", json={"until": "2020-01-01T00:00:00Z"}, headers=headers
        )
        assert past.status_code == 409, past.text
        both = await http.post(
            f"{base}/silence",
            json={"until": "2030-01-01T00:00:00Z", "duration": "1h"},
            headers=headers,
        )
        assert both.status_code == 422

        unsilenced = await http.post(f"{base}/unsilence", headers=headers)
        assert unsilenced.status_code == 200, unsilenced.text
        assert unsilenced.json()["silenced_until"] is None

        paused = await http.post(f"{base}/pause", json={"reason": "migration"}, headers=headers)
        assert paused.json()["phase"] == "paused"
        assert paused.json()["pause_reason"] == "migration by alice"
        resumed = await http.post(f"{base}/resume", json={}, headers=headers)
        assert resumed.json()["paused"] is False
        assert resumed.json()["phase"] == "cooling_down"

        reset = await http.post(f"{base}/reset", json={"budget": False}, headers=headers)
        assert reset.status_code == 200, reset.text
        assert reset.json()["cooldowns"] == []
        assert reset.json()["budget_used"] == 1
        assert reset.json()["phase"] == "healthy"

        await _unsteerable(http, endpoints.api_url, headers, temporal)
        await _listed_and_shown(http, endpoints.api_url, headers, resource)

        code, out, err = await cli(
            "resource", "reset", resource, "--budget", "--config", str(tmp_path / "homeostat.yaml")
        )
        assert code == 0, err
        assert out.strip() == f"{resource}: budget reset by {getpass.getuser()} (cli)"
        assert (await state(temporal, resource)).budget == ()


@pytest.mark.timeout(120)
async def test_openapi_declares_how_every_v1_route_authenticates_and_its_examples_are_real_events(
    tmp_path, temporal_dev_server
):
    """Every /v1 route has a security requirement (operator token, webhook token, Slack signature); the webhook examples in /docs are accepted as sent; live rule state is served."""
    write_plan(tmp_path, "noop", 'steps:\n  - {id: fix, command: ["true"]}\n')
    (tmp_path / "rules" / "live.yaml").write_text(LIVE_RULES)
    config = homeostat.make_settings(
        tmp_path,
        temporal_dev_server.address,
        api={"tokens": {"alice": ALICE}},
        webhooks={"bearer_token": "events-token-0123456789"},
        alertmanager={"bearer_token": "am-token-0123456789"},
    )
    async with homeostat.running(config) as endpoints, httpx.AsyncClient(timeout=30) as http:
        document = (await http.get(f"{endpoints.api_url}/openapi.json")).json()
        schemes = document["components"]["securitySchemes"]
        assert schemes["operatorToken"] == {
            "type": "http",
            "scheme": "bearer",
            "description": schemes["operatorToken"]["description"],
        }
        assert schemes["slackSignature"]["name"] == "X-Slack-Signature"
        v1 = {
            (path, method): operation
            for path, operations in document["paths"].items()
            if path.startswith("/v1/")
            for method, operation in operations.items()
        }
        assert ("/v1/episodes/{episode}/approve", "post") in v1
        assert ("/v1/resources/{resource}/reset", "post") in v1
        for (path, method), operation in v1.items():
            assert operation.get("security"), (path, method)
            for requirement in operation["security"]:
                assert set(requirement) <= set(schemes), (path, requirement)
        assert v1[("/v1/resources/{resource}/pause", "post")]["security"] == [{"operatorToken": []}]
        assert {"eventsBearer": []} in v1[("/v1/events/{stream}", "post")]["security"]
        silence_body = v1[("/v1/resources/{resource}/silence", "post")]["requestBody"]
        assert "duration" in silence_body["content"]["application/json"]["schema"]["properties"]

        for path, url, token in (
            ("/v1/events/{stream}", "/v1/events/nothing", "events-token-0123456789"),
            ("/v1/alertmanager", "/v1/alertmanager", "am-token-0123456789"),
        ):
            example = v1[(path, "post")]["requestBody"]["content"]["application/json"]["example"]
            sent = await http.post(
                f"{endpoints.api_url}{url}", json=example, headers=_bearer(token)
            )
            assert sent.status_code == 200, (path, sent.text)
            assert sent.json()["accepted"] >= 1
            refused = await http.post(
                f"{endpoints.api_url}{url}", json=example, headers=_bearer(ALICE)
            )
            assert refused.status_code == 401, path
        await _live_rule_state(http, endpoints.api_url)


LIVE_RULES = """\
groups:
  - name: live
    rules:
      - name: HotDisk
        source: webhook
        stream: disks
        match: "true"
        when: body.used_percent > 90
        for: 1h
        resource: host/{{ labels.host }}
"""


async def _live_rule_state(http, api_url: str) -> None:
    """A disk event makes HotDisk pending for an hour: /v1/alerts lists it with the time left, /v1/rules its evaluation; both need a token."""
    event = {"kind": "disk_full", "host": "web-7", "used_percent": 97}
    sent = await http.post(
        f"{api_url}/v1/events/disks", json=event, headers=_bearer("events-token-0123456789")
    )
    assert sent.status_code == 200, sent.text
    assert (await http.get(f"{api_url}/v1/alerts")).status_code == 401
    assert (await http.get(f"{api_url}/v1/rules")).status_code == 401
    alerts = (await http.get(f"{api_url}/v1/alerts", headers=_bearer(ALICE))).json()
    [alert] = [a for a in alerts["alerts"] if a["rule"] == "HotDisk"]
    assert (alert["resource"], alert["state"]) == ("host/web-7", "pending")
    assert alert["hold"] == 3600
    assert 3500 < alert["time_left"] <= 3600
    assert alerts["pending"] >= 1
    rules = (await http.get(f"{api_url}/v1/rules", headers=_bearer(ALICE))).json()
    [rule] = [r for r in rules["rules"] if r["name"] == "HotDisk"]
    assert rule["group"] == "live"
    assert rule["evaluations"] >= 1
    assert rule["pending"] == 1
    assert rule["health"] in {"ok", "unknown"}
