"""`homeostat demo`: scenario 10 on this machine, started and stopped by itself."""

import re
import subprocess
import sys

import pytest
import scenario_support as support

from controller.activities import processes

RESOLVED = (
    r"resolved (the episode's condition cleared|DemoServiceDown resolved on service/demo-web)"
)


@pytest.mark.timeout(240)
def test_demo_heals_the_service_prints_the_history_and_leaves_nothing_running(tmp_path):
    """From a clean folder the demo exits 0, prints the episode's alert, playbook, verification and resolve, and no process of it survives."""
    folder = tmp_path / "demo"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "controller", "demo"),
            *("--dir", str(folder), "--ui-port", str(support.free_port())),
        ],
        cwd=support.REPO,
        capture_output=True,
        text=True,
        timeout=220,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    history = " ".join(
        out[out.index("homeostat history DemoServiceDown/service/demo-web/") :].split()
    )
    for shown in (
        "opened DemoServiceDown fired on service/demo-web: plan demo-restart",
        "step succeeded restart (playbook)",
        "demo_restart.yml ok on 1 hosts, 1 changed",
        "verification succeeded up_again (verify)",
        'holds: up{job="homeostat-demo", service="demo-web"} == 1',
    ):
        assert shown in history, history
    # Resolved while the remediation ran (it is told) or after it ended (the resource is).
    assert re.search(RESOLVED, history), history
    assert "killed demo-web" in out
    assert "answers again" in out
    assert "the episode in the Temporal Web UI: http://127.0.0.1:" in out
    assert out.rstrip().endswith("stopped; nothing is left running")
    assert processes.carriers(str(folder)) == [], "a process of the demo is still running"


def test_demo_without_prometheus_says_how_to_install_it(tmp_path):
    """Without the prometheus binary on PATH the demo exits 2 naming the Debian packages, and starts nothing."""
    folder = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "controller", "demo", "--dir", str(folder)],
        cwd=support.REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": str(tmp_path), "HOME": str(tmp_path)},
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "prometheus is not installed: install the Debian packages" in done.stderr
    assert "Traceback" not in done.stderr
    assert processes.carriers(str(folder)) == []
