"""Hot reload of a running `homeostat up` meeting hostile and broken files, as an operator sees it."""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

import homeostat
import pytest

REPO = Path(__file__).resolve().parents[2]
GOOD = """\
groups:
  - name: demo
    rules:
      - name: DemoDiskFull
        source: webhook
        stream: demo
        match: labels.kind == 'disk_full'
        when: body.used_percent > 90
        resource: host/{{ labels.host }}
"""


def _write(path: Path, text: str) -> None:
    """Replace a file in one step, as `git pull` does, so no poll sees it half written."""
    partial = path.with_name(f".{path.name}.tmp")
    partial.write_text(text)
    partial.replace(path)


def _readyz(api: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{api}/readyz", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _wait_readyz(api: str, predicate, *, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    last: tuple[int, dict] = (0, {})
    while time.monotonic() < deadline:
        last = _readyz(api)
        if predicate(*last):
            return last[1]
        time.sleep(0.1)
    raise AssertionError(f"/readyz never matched; last answer {last}")


def _rules_reason(status: int, body: dict) -> str:
    return body.get("checks", {}).get("rules", "") if status == 503 else ""


@pytest.mark.timeout(150)
def test_hostile_edits_keep_the_last_good_rules_and_up_still_stops_cleanly(
    tmp_path: Path, temporal_dev_server
):
    """A `!!int` tag or a 70,000-deep CEL makes /readyz say which file:line; fixing it recovers; SIGTERM exits 0."""
    homeostat.write_rules(tmp_path, GOOD)
    shutil.copytree(REPO / "playbooks", tmp_path / "playbooks")
    config = homeostat.make_settings(
        tmp_path, temporal_dev_server.address, rules={"reload_interval": "200ms"}
    )
    api = f"http://127.0.0.1:{config.http.port}"
    process = homeostat.Process(tmp_path / "homeostat.yaml", tmp_path / "homeostat.log")
    evil = tmp_path / "rules" / "evil.yaml"
    try:
        process.start(api)
        _write(evil, 'groups: !!int "abc"\n')
        reason = _wait_readyz(api, lambda *answer: f"{evil}:1:9" in _rules_reason(*answer))
        assert "stay in force" in reason["checks"]["rules"]

        deep = "(" * 70_000 + "true" + ")" * 70_000
        evil_rules = GOOD.replace("name: demo", "name: evil").replace("DemoDiskFull", "Evil")
        _write(evil, evil_rules.replace("labels.kind == 'disk_full'", deep))
        _wait_readyz(api, lambda *answer: f"{evil}:7:" in _rules_reason(*answer))

        evil.unlink()
        _wait_readyz(api, lambda status, _: status == 200)
        with urllib.request.urlopen(f"{api}/metrics", timeout=5) as response:
            metrics = response.read().decode()
        assert 'homeostat_rule_reloads_total{outcome="error"} 2.0' in metrics
        assert "homeostat_rules_loaded 1.0" in metrics
    finally:
        process.stop()
    assert process.process is not None
    assert process.process.returncode == 0
    log = (tmp_path / "homeostat.log").read_text()
    assert "Traceback" not in log
    events = [json.loads(line).get("event") for line in log.splitlines() if line.startswith("{")]
    assert "rules_reload_failed" in events
    assert events[-1] == "homeostat_stopped"


PLAN = "description: wait a moment\nsteps:\n  - id: pause\n    wait: 1s\n"
TOKEN = "reload-test-token"


def _metric(api: str, line_start: str) -> str:
    with urllib.request.urlopen(f"{api}/metrics", timeout=5) as response:
        text = response.read().decode()
    return next((line for line in text.splitlines() if line.startswith(line_start)), "")


@pytest.mark.timeout(150)
async def test_a_plan_and_its_rule_load_together_and_a_broken_plan_waits_for_its_fix(
    tmp_path: Path, temporal_dev_server
):
    """A new plan and the rule naming it load without restart and the episode names the set's revision; a broken plan keeps the last good set and /readyz says where."""
    homeostat.write_rules(tmp_path, GOOD)
    shutil.copytree(REPO / "playbooks", tmp_path / "playbooks")
    config = homeostat.make_settings(
        tmp_path,
        temporal_dev_server.address,
        rules={"reload_interval": "200ms", "retry_interval": "1s"},
        webhooks={"bearer_token": TOKEN},
    )
    api = f"http://127.0.0.1:{config.http.port}"
    log_path = tmp_path / "homeostat.log"
    process = homeostat.Process(tmp_path / "homeostat.yaml", log_path)
    plan = tmp_path / "remediations" / "my-cleanup.yaml"
    try:
        process.start(api)
        # The rule is saved first: a poll in between sees a rule naming a plan not yet there.
        _write(
            tmp_path / "rules" / "rules.yaml",
            GOOD.replace(
                "when: body.used_percent > 90",
                "when: body.used_percent > 90\n        remediation: my-cleanup",
            ),
        )
        time.sleep(0.5)
        _write(plan, PLAN)
        _wait_readyz(api, lambda status, _: status == 200)
        revision = _last_reload_revision(log_path)
        assert revision is not None, "the rule naming the new plan never loaded"

        request = urllib.request.Request(
            f"{api}/v1/events/demo",
            data=json.dumps({"kind": "disk_full", "host": "reload-1", "used_percent": 95}).encode(),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
        temporal = await homeostat.client(temporal_dev_server.address)

        async def episode():
            state = await homeostat.resource_state(temporal, "host/reload-1")
            return state.episodes[0] if state.episodes else None

        record = await homeostat.eventually(episode, timeout=30)
        assert record.fired.revision == revision
        assert record.fired.remediation == "my-cleanup"

        _write(plan, PLAN.replace("wait: 1s", "wiat: 1s"))
        reason = _wait_readyz(
            api, lambda *answer: f"{plan}:4:5: unknown step type 'wiat'" in _rules_reason(*answer)
        )
        assert revision in reason["checks"]["rules"]
        assert _metric(api, "homeostat_rules_loaded ") == "homeostat_rules_loaded 1.0"
        _write(plan, PLAN)
        _wait_readyz(api, lambda status, _: status == 200)
    finally:
        process.stop()
    assert process.process is not None
    assert process.process.returncode == 0


def _last_reload_revision(log_path: Path) -> str | None:
    """The revision of the last successful hot reload, from the JSON log."""
    found = None
    for line in log_path.read_text().splitlines():
        if line.startswith("{"):
            event = json.loads(line)
            if event.get("event") == "rules_reloaded":
                found = event["revision"]
    return found
