"""Temporal unreachable when `homeostat up` starts: it starts anyway, says why it is not ready, and catches up."""

import json
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime

import homeostat
import httpx
import pytest
from harness import processes

from controller import embedded
from controller.domain import contract

TOKEN = "events-token"
RULES = """\
groups:
  - name: jobs
    rules:
      - name: JobFailed
        source: webhook
        match: labels.kind == 'job'
        when: body.status == 'failed'
        resource: job/{{ labels.job }}
"""


def _readyz(api: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{api}/readyz", timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    except OSError:
        return 0, {}


@pytest.mark.timeout(240)
async def test_homeostat_up_waits_for_a_temporal_that_is_not_there_yet(tmp_path):
    """With Temporal unreachable, `homeostat up` keeps running and /readyz names the unreachable address; once Temporal starts, /readyz turns ready and a webhook event becomes an episode."""
    port = processes.free_port()
    address = f"127.0.0.1:{port}"
    folder = homeostat.write_rules(tmp_path, RULES)
    config = homeostat.make_settings(folder, address, webhooks={"bearer_token": TOKEN})
    api = f"http://127.0.0.1:{config.http.port}"
    process = homeostat.Process(tmp_path / "homeostat.yaml", tmp_path / "homeostat.log")
    server = embedded.EmbeddedTemporal(
        db_file=tmp_path / "t.db", port=port, ui=False, search_attributes=contract.SEARCH_ATTRIBUTES
    )
    try:
        with pytest.raises(AssertionError, match="not ready"):
            process.start(api, timeout=3)  # /readyz never answers 200 without Temporal
        deadline = time.monotonic() + 60
        while (answer := _readyz(api))[0] == 0:  # until HTTP serves
            assert process.process is not None
            assert process.process.poll() is None, "homeostat exited"
            assert time.monotonic() < deadline, "homeostat does not serve HTTP"
            time.sleep(0.2)
        status, body = answer
        assert status == 503, body
        assert address in body["checks"]["temporal"]
        assert process.process is not None
        assert process.process.poll() is None, "homeostat exited"
        await server.start()
        deadline = time.monotonic() + 90
        while _readyz(api)[0] != 200:
            assert process.process.poll() is None, "homeostat exited"
            assert time.monotonic() < deadline, _readyz(api)
            time.sleep(0.5)
        async with httpx.AsyncClient(timeout=30) as http:
            answer = await http.post(
                f"{api}/v1/events",
                json={
                    "kind": "job",
                    "job": "late",
                    "status": "failed",
                    "timestamp": datetime.now(UTC).isoformat(),
                },
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
        assert answer.status_code == 200, answer.text
        temporal = await homeostat.client(address)
        state = await homeostat.eventually(
            lambda: homeostat.resource_state(temporal, "job/late"), timeout=60
        )
        assert len(state.episodes) == 1
    finally:
        process.stop()
        await server.stop()
