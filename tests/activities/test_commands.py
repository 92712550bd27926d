"""The run_command activity: no shell, values as environment, output tails, deadlines, cancel."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from datetime import timedelta

import pytest
from activity_support import context
from temporalio.exceptions import ApplicationError, CancelledError

from controller.activities import commands, processes, redaction
from controller.activities import config as config_module
from controller.workflows import activity_io

SECRET = "cloud-secret-value-0001"


@pytest.fixture
def activities(tmp_path):
    settings = config_module.CommandsConfig(
        workdir=tmp_path, secret_env={"CLOUD_TOKEN": SECRET}, grace=timedelta(seconds=1)
    )
    runner = commands.CommandRunner(
        settings=settings, state_dir=tmp_path / "state", redactor=redaction.Redactor([SECRET])
    )
    return commands.CommandActivities(runner=runner)


def command(*argv: str, step: str = "cmd", **more) -> activity_io.RunCommandInput:
    return activity_io.RunCommandInput(context=context(step), argv=argv, **more)


def test_values_arrive_as_environment_never_as_shell_text(activities, activity_env, tmp_path):
    """A variable holding shell syntax is passed as data; nothing it spells is executed."""
    evil = "web; touch pwned; $(touch pwned2)"
    out = activity_env().run(
        activities.run_command,
        command("printenv", "HOMEOSTAT_VAR_SERVICE_NAME", variables={"service-name": evil}),
    )
    assert out.ok
    assert out.stdout.strip() == evil
    assert not (tmp_path / "pwned").exists()
    assert not (tmp_path / "pwned2").exists()
    everything = activity_env().run(
        activities.run_command,
        command("printenv", "HOMEOSTAT_VARS", step="vars", variables={"a": "1", "b": "x y"}),
    )
    assert json.loads(everything.stdout) == {"a": "1", "b": "x y"}


def test_exit_codes_decide_ok(activities, activity_env):
    """A non-zero exit is an answer with ok=False, unless the step counts it as success."""
    failed = activity_env().run(activities.run_command, command("sh", "-c", "exit 3"))
    assert not failed.ok
    assert failed.exit_code == 3
    accepted = activity_env().run(
        activities.run_command, command("sh", "-c", "exit 3", step="b", ok_exit_codes=(0, 3))
    )
    assert accepted.ok


def test_output_is_a_masked_tail(activities, activity_env):
    """Long output keeps its last 8 KiB; configured and key=value secrets are masked."""
    script = (
        'i=0; while [ $i -lt 3000 ]; do echo "line $i"; i=$((i+1)); done; '
        'echo "token is $CLOUD_TOKEN"; echo "password=hunter2"; echo last'
    )
    out = activity_env().run(activities.run_command, command("sh", "-c", script))
    assert len(out.stdout.encode()) <= activity_io.OUTPUT_TAIL_BYTES
    assert out.stdout.endswith("last\n")
    assert SECRET not in out.stdout
    assert "token is ***" in out.stdout
    assert "hunter2" not in out.stdout
    assert out.log_ref


def test_deadline_stops_the_command_and_its_children(activities, activity_env):
    """A command running past the activity's time limit is stopped and reported as retryable."""
    env = activity_env()
    env.info = dataclasses.replace(env.info, start_to_close_timeout=timedelta(seconds=3))
    started = time.monotonic()
    with pytest.raises(ApplicationError) as caught:
        env.run(activities.run_command, command("sh", "-c", "sleep 60 & sleep 60; wait"))
    assert time.monotonic() - started < 8
    assert caught.value.type == activity_io.TRANSIENT_ERROR
    assert "timed out" in str(caught.value)
    assert processes.carriers(commands.RUN_MARKER + "=") == []


def test_cancellation_stops_the_command_promptly(activities, activity_env):
    """Cancelling the activity stops the command (and its background children) within seconds."""
    env = activity_env()
    timer = threading.Timer(1.0, env.cancel)
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(CancelledError):
            env.run(activities.run_command, command("sh", "-c", "sleep 60 & sleep 60; wait"))
    finally:
        timer.cancel()
    assert time.monotonic() - started < 5
    assert processes.carriers(commands.RUN_MARKER + "=") == []


@pytest.mark.parametrize(
    ("argv", "cwd", "expected"),
    [
        (("no-such-program-here",), "", "not found on PATH"),
        (("./missing.sh",), "", "not found or not executable"),
        (("true",), "no-such-dir", "does not exist"),
    ],
)
def test_commands_that_cannot_start_fail_permanently(activities, activity_env, argv, cwd, expected):
    """A missing program or working directory is not retried."""
    with pytest.raises(ApplicationError) as caught:
        activity_env().run(activities.run_command, command(*argv, cwd=cwd))
    assert caught.value.non_retryable
    assert expected in str(caught.value)


@pytest.mark.parametrize(
    ("variables", "env", "argv"),
    [
        ({"host": "web\x001"}, {}, ("true",)),
        ({}, {"TARGET": "a\x00b"}, ("true",)),
        ({}, {}, ("printf", "a\x00b")),
    ],
)
def test_a_nul_byte_from_a_label_fails_permanently_and_says_so(
    activities, activity_env, variables, env, argv
):
    """A NUL byte in a variable, environment value or argument is a permanent error naming the NUL, not an unclassified retry."""
    with pytest.raises(ApplicationError) as caught:
        activity_env().run(activities.run_command, command(*argv, variables=variables, env=env))
    assert caught.value.non_retryable
    assert caught.value.type == activity_io.PERMANENT_ERROR
    assert "NUL" in str(caught.value)
