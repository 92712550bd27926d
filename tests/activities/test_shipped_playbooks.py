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


def test_shipped_playbooks_run_locally_without_facts():
    """Every play connects locally and skips fact gathering, as the examples promise."""
    for path in SHIPPED:
        for play in yaml.safe_load(path.read_text()):
            assert play.get("connection") == "local", path
            assert play.get("gather_facts") is False, path
