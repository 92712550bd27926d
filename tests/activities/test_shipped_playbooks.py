"""The example playbooks shipped in playbooks/ parse, and say they run locally."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from controller.activities import processes

SHIPPED = sorted((Path(__file__).resolve().parents[2] / "playbooks").glob("*.yml"))


def test_shipped_playbooks_pass_the_syntax_check():
    """ansible-playbook --syntax-check accepts every shipped playbook."""
    assert SHIPPED
    done = subprocess.run(
        [processes.executable("ansible-playbook"), "--syntax-check", *map(str, SHIPPED)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin", "ANSIBLE_NOCOLOR": "1", "HOME": str(Path.home())},
    )
    assert done.returncode == 0, done.stdout + done.stderr


FLEET = {"rolling_deploy.yml", "apt_update.yml", "fleet_deploy.yml"}
"""Playbooks for a fleet of hosts: the inventory says how each host is reached."""


def test_shipped_playbooks_run_locally_without_facts():
    """Every play skips fact gathering; it connects locally unless it is meant for a fleet."""
    for path in SHIPPED:
        for play in yaml.safe_load(path.read_text()):
            expected = None if path.name in FLEET else "local"
            assert play.get("connection") == expected, path
            assert play.get("gather_facts") is False, path
