"""An operator follows an episode with the CLI: list, show, approve, history, silence, against a running Homeostat.

The episode runs a real playbook (ansible-runner, localhost), scales a target through a
command actuator, verifies, and pages through the PagerDuty client against the local
Events API fake; every CLI call is a child process, as an operator runs it.
"""

import asyncio
import getpass
import json
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import homeostat
import httpx
import pytest

from controller.domain import resources
from controller.operations import links, views

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fakes"))

from fake_pagerduty import FakePagerDuty

ROUTING_KEY = "R0UT1NGKEY00000000000000000000E2"
TOKEN = "ops-e2e"
RULES = """\
groups:
  - name: ops
    rules:
      - name: DiskFull
        source: webhook
        stream: ops
        match: labels.kind == 'disk'
        when: body.used > 90
        stale_after: 1h
        resource: host/{{ labels.host }}
        severity: critical
        remediation: heal
        annotations:
          summary: "{{ labels.host }} disk at {{ body.used }}%"
"""
PLAN = """\
description: Clean the disk after an approval, add capacity, check, and tell a human
steps:
  - id: ask
    approve: {{message: "Clean {{{{ labels.host }}}}?", deadline: 10m}}
  - id: clean
    playbook:
      path: heal.yml
      hosts: [localhost]
      vars: {{scratch: "{scratch}", target: "{{{{ labels.host }}}}"}}
  - id: grow
    scale:
      target:
        name: workers
        actuator: command
        read_argv: [cat, "{replicas}"]
        argv: [sh, -c, 'echo "$HOMEOSTAT_VAR_REPLICAS" > "{replicas}"']
      by: 2
  - id: check
    verify: {{cel: "steps.clean.ok", within: 10s, interval: 1s}}
  - id: tell
    page: "{{{{ labels.host }}}} was cleaned"
"""
PLAYBOOK = """\
- name: Clean
  hosts: all
  connection: local
  gather_facts: false
  tasks:
    - name: Leave a marker
      ansible.builtin.copy:
        dest: "{{ scratch }}/cleaned-{{ target }}"
        content: "cleaned\\n"
        mode: "0644"
"""


async def _cli(config: Path, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "controller",
        *args,
        "--config",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    return process.returncode or 0, out.decode(), err.decode()


async def _json(config: Path, *args: str):
    code, out, err = await _cli(config, *args, "--json")
    assert code == 0, out + err
    return json.loads(out)


def _folder(tmp_path: Path) -> None:
    homeostat.write_rules(tmp_path, RULES)
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "heal.yml").write_text(PLAYBOOK)
    (tmp_path / "scratch").mkdir()
    (tmp_path / "replicas").write_text("3\n")
    (tmp_path / "remediations" / "heal.yaml").write_text(
        PLAN.format(scratch=tmp_path / "scratch", replicas=tmp_path / "replicas")
    )


async def _view(temporal, resource: str):
    """The resource's view, read in-process (fast polling; the CLI is checked on the result)."""
    return await views.show_resource(
        temporal, resources.ResourceKey(resource), links=links.Links(), now=datetime.now(UTC)
    )


async def _check_waiting_episode(path: Path, temporal, resource: str, host: str) -> dict:
    """List and show find the episode awaiting approval, with its Web UI link; returns it."""

    async def waiting():
        return (await _view(temporal, resource)).phase.value == "awaiting_approval"

    await homeostat.eventually(waiting, timeout=90, interval=0.5)
    listing = await _json(path, "resource", "list", "--phase", "awaiting_approval")
    [listed] = [r for r in listing["resources"] if r["resource"] == resource]
    assert (listed["open_episodes"], listed["last_rule"]) == (1, "DiskFull")
    assert listed["since"] is not None
    view = await _json(path, "resource", "show", resource)
    [episode] = view["episodes"]
    assert episode["status"] == "running"
    assert view["running"]["plan"] == "heal"
    stamp = episode["episode"].rsplit("/", 1)[1]
    assert episode["workflow_url"] == (
        "http://ui.example:8233/namespaces/default/workflows/"
        f"episode%2FDiskFull%2Fhost%2F{host}%2F{stamp}"
    )
    code, out, err = await _cli(path, "resource", "show", resource)
    assert code == 0, err
    assert "awaiting_approval" in out
    assert f"homeostat history {episode['episode']}" in out
    return episode


async def _check_history(path: Path, episode: str, host: str, pagerduty) -> None:
    """The episode's history shows the transition, the approval and each step with its data."""
    timeline = await _json(path, "history", episode)
    assert timeline["status"] == "succeeded"
    by_step = {e["step"]: e for e in timeline["entries"] if e["step"]}
    opened = timeline["entries"][0]
    assert (opened["kind"], opened["details"]["rule"]) == ("opened", "DiskFull")
    assert opened["details"]["labels"]["host"] == host
    assert opened["details"]["revision"].startswith("sha256:")
    [answer] = [e for e in timeline["entries"] if e["kind"] == "approval"]
    assert (answer["details"]["by"], answer["details"]["approved"]) == (getpass.getuser(), True)
    assert answer["details"]["channel"] == "cli"
    clean = by_step["clean"]["details"]
    assert clean["type"] == "playbook"
    assert [(r["host"], r["ok"], r["changed"]) for r in clean["results"]] == [
        ("localhost", True, True)
    ]
    grow = by_step["grow"]["details"]
    assert (grow["type"], grow["current"], grow["desired"], grow["after"]) == ("scale", 3, 5, 5)
    assert by_step["check"]["kind"] == "verification"
    tell = by_step["tell"]["details"]
    assert tell["dedup_key"] == f"homeostat/{episode}"
    assert [i.dedup_key for i in pagerduty.incidents] == [tell["dedup_key"]]
    code, out, err = await _cli(path, "history", episode)
    assert code == 0, err
    assert "localhost: ok, changed" in out
    assert "target workers, 3 replicas, decided 5, now 5" in out
    assert f"by {getpass.getuser()} via cli" in out


async def _check_replay(path: Path, resource: str, episode: str) -> None:
    """Replaying the live workflows, by id and by a visibility query, finds no divergence."""
    code, out, err = await _cli(path, "replay", f"resource/{resource}", f"episode/{episode}")
    assert code == 0, out + err
    assert out.startswith(f"OK    resource/{resource} (ResourceWorkflow, ")
    assert f"OK    episode/{episode} (RemediationWorkflow, " in out
    code, out, err = await _cli(
        path, "replay", "--since", "1h", "--query", f"HomeostatResource = '{resource}'", "--json"
    )
    assert code == 0, out + err
    replayed = [json.loads(line) for line in out.splitlines()]
    assert {item["workflow_type"] for item in replayed} == {
        "ResourceWorkflow",
        "RemediationWorkflow",
    }
    assert all(item["ok"] for item in replayed)


@pytest.mark.timeout(240)
async def test_an_operator_follows_an_episode_from_list_to_history(tmp_path, temporal_dev_server):
    """List and show find the episode waiting for approval; after the CLI approval (by the OS user), history shows every step with its data and replay finds the live histories deterministic; a silence suppresses the next episode and says who set it."""
    _folder(tmp_path)
    pagerduty = FakePagerDuty(routing_keys={ROUTING_KEY}).start(tmp_path)
    host = f"db-{uuid.uuid4().hex[:6]}"
    resource = f"host/{host}"
    homeostat.make_settings(
        tmp_path,
        temporal_dev_server.address,
        webhooks={"bearer_token": TOKEN},
        paging={
            "routing_key": ROUTING_KEY,
            "events_url": pagerduty.url,
            "ca_file": str(pagerduty.ca_file),
        },
        temporal={"web_ui_url": "http://ui.example:8233"},
        activities={"state_dir": str(tmp_path / "runs")},
    )
    path = tmp_path / "homeostat.yaml"
    config = homeostat.settings.load(path)
    temporal = await homeostat.client(temporal_dev_server.address)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        async with homeostat.running(config) as endpoints, httpx.AsyncClient(timeout=30) as http:

            async def event(used: int) -> None:
                answer = await http.post(
                    f"{endpoints.api_url}/v1/events/ops",
                    headers=headers,
                    json={"kind": "disk", "host": host, "used": used},
                )
                assert answer.status_code == 200, answer.text

            await event(97)
            episode = await _check_waiting_episode(path, temporal, resource, host)
            code, out, err = await _cli(path, "resource", "approve", resource, episode["episode"])
            assert code == 0, out + err

            async def finished():
                view = await _view(temporal, resource)
                return view.episodes[0].outcome

            assert (await homeostat.eventually(finished, timeout=120)).value == "succeeded"
            await _check_history(path, episode["episode"], host, pagerduty)

            code, out, err = await _cli(
                path, "resource", "silence", resource, "1h", "-m", "disk swap"
            )
            assert code == 0, out + err
            await event(10)
            await event(98)

            async def suppressed():
                view = await _view(temporal, resource)
                return any(e.status.value == "suppressed" for e in view.episodes)

            await homeostat.eventually(suppressed, timeout=60)
            shown = await _json(path, "resource", "show", resource)
            assert shown["phase"] == "silenced"
            assert shown["silence"]["by"] == getpass.getuser()
            assert shown["silence"]["reason"] == "disk swap"
            await _check_replay(path, resource, episode["episode"])
            whole = await _json(path, "history", resource)
            lines = {line["handling"]: line for line in whole["episodes"]}
            assert lines["remediated"]["outcome"] == "succeeded"
            assert "silenced until" in lines["suppressed"]["reason"]
            assert f"by {getpass.getuser()}: disk swap" in lines["suppressed"]["reason"]
    finally:
        pagerduty.stop()
    assert (tmp_path / "scratch" / f"cleaned-{host}").read_text() == "cleaned\n"
    assert (tmp_path / "replicas").read_text().strip() == "5"
