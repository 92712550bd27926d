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
