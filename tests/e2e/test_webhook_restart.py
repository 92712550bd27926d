"""A webhook-fired episode survives a SIGKILL of `homeostat up`: after the restart the all-clear resolves that same episode.

Webhook events in ``webhooks.mode: direct`` have no topic to re-read after a restart; the
engine takes the open episodes back from the resource workflows' memos (Temporal
visibility) before it evaluates any webhook event.
"""

import json
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta

import homeostat
import httpx
import pytest
from harness import processes

from controller import embedded
from controller.domain import contract, resources
from controller.operations import links, views
from controller.workflows import resource_io

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

TOKEN = "restart-token"


def _rules(suffix: str) -> str:
    return f"""\
groups:
  - name: jobs
    rules:
      - name: JobFailed{suffix}
        source: webhook
        match: labels.kind == 'job'
        when: body.status == 'failed'
        resource: job/{{{{ labels.job }}}}
      - name: PodCrashing{suffix}
        source: webhook
        match: labels.kind == 'pod'
        when: body.status == 'crashing'
        group_by: [namespace]
        resource: app/{{{{ labels.app }}}}
"""


async def _send(api: str, event: dict) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.post(
            f"{api}/v1/events", json=event, headers={"Authorization": f"Bearer {TOKEN}"}
        )


async def _post(api: str, event: dict) -> list[str]:
    answer = await _send(api, event)
    assert answer.status_code == 200, answer.text
    return answer.json()["transitions"]


async def _listed(temporal, resource: str) -> list[str]:
    """The open episodes Temporal visibility lists for ``resource`` (what a restart reads)."""
    view = await views.show_resource(
        temporal, resources.ResourceKey(resource), links=links.Links(), now=datetime.now(UTC)
    )
    return [episode.episode for episode in view.episodes]


async def _closed(temporal, resource: str, episode: str) -> bool:
    state: resource_io.ResourceState = await homeostat.resource_state(temporal, resource)
    return not state.episodes and [o.episode for o in state.outcomes] == [episode]


def _readyz(api: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{api}/readyz", timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    except OSError:
        return 0, {}


async def test_the_all_clear_after_a_restart_resolves_the_episode_fired_before_it(
    tmp_path, temporal_dev_server
):
    """Episodes fired by webhook events (one rule with group_by) and open in their workflows when ingest is SIGKILLed: after the restart a repeated failure starts nothing new and the all-clear answers `resolved` for the same episodes, which close."""
    suffix = uuid.uuid4().hex[:6]
    job, app = f"backup-{suffix}", f"shop-{suffix}"
    folder = homeostat.write_rules(tmp_path, _rules(suffix))
    config = homeostat.make_settings(
        folder, temporal_dev_server.address, webhooks={"bearer_token": TOKEN}
    )
    api = f"http://127.0.0.1:{config.http.port}"
    temporal = await homeostat.client(temporal_dev_server.address)
    process = homeostat.Process(tmp_path / "homeostat.yaml", tmp_path / "homeostat.log")
    start = datetime.now(UTC)

    def event(offset: int, **fields: str) -> dict:
        return {"timestamp": (start + timedelta(seconds=offset)).isoformat(), **fields}

    try:
        process.start(api)
        fired = await _post(api, event(0, kind="job", job=job, status="failed"))
        fired += await _post(
            api, event(0, kind="pod", app=app, namespace="prod", status="crashing")
        )
        assert len(fired) == 2, fired
        assert all(transition.endswith("#fired") for transition in fired)

        job_episode = (
            await homeostat.eventually(lambda: _listed(temporal, f"job/{job}"), timeout=60)
        )[0]
        app_episode = (
            await homeostat.eventually(lambda: _listed(temporal, f"app/{app}"), timeout=60)
        )[0]
        assert {f"{job_episode}#fired", f"{app_episode}#fired"} == set(fired)

        process.kill()
        process.start(api)

        # Still failing: the episodes continue; nothing new starts (no second page).
        assert await _post(api, event(5, kind="job", job=job, status="failed")) == []
        assert (
            await _post(api, event(5, kind="pod", app=app, namespace="prod", status="crashing"))
            == []
        )
        # The all-clear resolves the episodes fired before the restart.
        assert await _post(api, event(10, kind="job", job=job, status="ok")) == [
            f"{job_episode}#resolved"
        ]
        assert await _post(
            api, event(10, kind="pod", app=app, namespace="prod", status="running")
        ) == [f"{app_episode}#resolved"]

        assert await homeostat.eventually(
            lambda: _closed(temporal, f"job/{job}", job_episode), timeout=60
        )
        assert await homeostat.eventually(
            lambda: _closed(temporal, f"app/{app}", app_episode), timeout=60
        )
    finally:
        process.stop()


async def test_a_restart_while_temporal_is_down_holds_webhook_events_until_it_answers(tmp_path):
    """Homeostat killed and started again while Temporal is down: /readyz says webhook events wait for the open episodes, the all-clear is answered 503 (nothing evaluated), and once Temporal is back the sender's retry resolves the episode fired before."""
    server = embedded.EmbeddedTemporal(
        db_file=tmp_path / "t.db",
        port=processes.free_port(),
        ui=False,
        search_attributes=contract.SEARCH_ATTRIBUTES,
    )
    await server.start()
    suffix = uuid.uuid4().hex[:6]
    job = f"nightly-{suffix}"
    folder = homeostat.write_rules(tmp_path, _rules(suffix))
    config = homeostat.make_settings(
        folder,
        server.address,
        webhooks={"bearer_token": TOKEN},
        dispatch={"webhook_deadline": "1s"},
    )
    api = f"http://127.0.0.1:{config.http.port}"
    process = homeostat.Process(tmp_path / "homeostat.yaml", tmp_path / "homeostat.log")
    start = datetime.now(UTC)
    failed = {"timestamp": start.isoformat(), "kind": "job", "job": job, "status": "failed"}
    cleared = {**failed, "timestamp": (start + timedelta(seconds=5)).isoformat(), "status": "ok"}
    try:
        process.start(api)
        temporal = await homeostat.client(server.address)
        [fired] = await _post(api, failed)
        episode = (await homeostat.eventually(lambda: _listed(temporal, f"job/{job}"), timeout=60))[
            0
        ]
        assert fired == f"{episode}#fired"
        process.kill()
        await server.stop()

        with pytest.raises(AssertionError, match="not ready"):
            process.start(api, timeout=3)
        deadline = time.monotonic() + 60
        while "episodes" not in (checks := _readyz(api)[1].get("checks", {})):
            assert time.monotonic() < deadline, checks
            time.sleep(0.2)
        assert "wait until the open episodes are read from Temporal" in checks["episodes"]
        held = await _send(api, cleared)
        assert held.status_code == 503, held.text

        await server.start()
        deadline = time.monotonic() + 90
        while _readyz(api)[0] != 200:
            assert time.monotonic() < deadline, _readyz(api)
            time.sleep(0.5)
        assert await _post(api, cleared) == [f"{episode}#resolved"]
        assert await homeostat.eventually(
            lambda: _closed(temporal, f"job/{job}", episode), timeout=60
        )
    finally:
        process.stop()
        await server.stop()
