"""CLI commands end cleanly: the Temporal client is gone before the interpreter shuts down, and expected failures print a message, not a traceback."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

COMMANDS = Path(__file__).resolve().parents[1] / "controller" / "commands"
CONNECTING = {"connect"}
# Modules that may build a Temporal client, each dropping it before exit: session.run for
# every read command and `run`; steering's _call collects after its asyncio.run.
ALLOWED = {"session.py", "steering.py"}


def _connects(path: Path) -> list[int]:
    return [
        node.lineno
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in CONNECTING
    ]


def test_commands_reach_temporal_only_through_the_session():
    """No command module connects to Temporal by itself, outside the modules that drop the client before exit."""
    offenders = {
        path.name: lines
        for path in sorted(COMMANDS.glob("*.py"))
        if path.name not in ALLOWED and (lines := _connects(path))
    }
    assert offenders == {}
    assert _connects(COMMANDS / "session.py")


@pytest.mark.timeout(180)
def test_repeated_cli_calls_against_a_running_server_never_abort(tmp_path, temporal_dev_server):
    """Ten `resource show` of an unknown resource and two `resource list`: each exits 1 or 0 with a message, never 134 (SIGABRT at shutdown)."""
    config = tmp_path / "homeostat.yaml"
    config.write_text(f"temporal: {{address: '{temporal_dev_server.address}'}}\n")
    runs = [["resource", "show", "service/nothing"]] * 10 + [["resource", "list"]] * 2
    codes = []
    for args in runs:
        done = subprocess.run(
            [sys.executable, "-m", "controller", *args, "--config", str(config)],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        codes.append(done.returncode)
        assert "Fatal Python error" not in done.stderr
        assert "Traceback" not in done.stderr
    assert codes == [1] * 10 + [0] * 2
