"""`homeostat rules status` asks a running Homeostat what its rules engine holds; events no rule could use are counted per stream and reason."""

import asyncio
import json
import sys
from pathlib import Path

import homeostat
import httpx
import pytest

OPERATOR = "0perator-t0ken-for-rule-status"
WEBHOOK = "webhook-token"
RULES = """\
groups:
  - name: disks
    rules:
      - name: DiskFilling
        source: webhook
        stream: disks
        match: labels.kind == 'disk'
        when: body.used > 90
        for: 10m
        stale_after: 1h
        resource: host/{{ labels.host }}
"""


async def _status(config: Path, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "controller",
        "rules",
        "status",
        *args,
        "--config",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    return process.returncode or 0, out.decode(), err.decode()


@pytest.mark.timeout(180)
async def test_rules_status_shows_a_pending_condition_and_events_it_could_not_use(
    tmp_path, temporal_dev_server
):
    """A disk at 97% for a `for: 10m` rule is pending with about ten minutes left; events missing the field or with a string count against the rule and in /metrics by stream and reason; a wrong token exits 1."""
    homeostat.write_rules(tmp_path, RULES)
    config = homeostat.make_settings(
        tmp_path,
        temporal_dev_server.address,
        webhooks={"bearer_token": WEBHOOK},
        api={"tokens": {"ops": OPERATOR}},
    )
    path = tmp_path / "homeostat.yaml"
    async with homeostat.running(config) as endpoints, httpx.AsyncClient(timeout=30) as http:
        url = f"{endpoints.api_url}/v1/events/disks"
        headers = {"Authorization": f"Bearer {WEBHOOK}"}
        for body in (
            {"kind": "disk", "host": "db-1", "used": 97},
            {"kind": "disk", "host": "db-2"},
            {"kind": "disk", "host": "db-3", "used": "full"},
            {"kind": "cpu", "host": "db-4", "used": 99},
        ):
            answer = await http.post(url, json=body, headers=headers)
            assert answer.status_code == 200, answer.text

        code, out, err = await _status(
            path, "--api", endpoints.api_url, "--token", OPERATOR, "--json"
        )
        assert code == 0, err
        found = json.loads(out)
        [pending] = found["alerts"]["alerts"]
        assert (pending["rule"], pending["resource"], pending["state"]) == (
            "DiskFilling",
            "host/db-1",
            "pending",
        )
        assert pending["hold"] == 600
        assert 500 < pending["time_left"] <= 600
        [rule] = found["rules"]["rules"]
        assert (rule["name"], rule["errors"], rule["health"]) == ("DiskFilling", 2, "ok")
        assert rule["error"] == "body.used is not a number"

        code, out, err = await _status(path, "--token", OPERATOR)
        assert code == 0, err
        assert "1 firing" not in out
        assert "0 firing, 1 pending" in out
        assert "host/db-1" in out

        code, _, err = await _status(path, "--token", "wrong")
        assert code == 1
        assert "did not accept the token" in err

        metrics = (await http.get(f"{endpoints.api_url}/metrics")).text
        for reason in ("missing_field", "wrong_type", "no_rule"):
            assert (
                f'homeostat_events_ignored_total{{reason="{reason}",stream="disks"}} 1.0' in metrics
            )
