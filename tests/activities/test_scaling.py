"""The scale actuators: a command, an HTTP API and a playbook, each read and set."""

from __future__ import annotations

import httpx
import pytest
from activity_support import context
from fake_api import FakeApi
from temporalio.exceptions import ApplicationError

from controller.activities import commands, redaction, rest, scaling
from controller.activities import config as config_module
from controller.plans import spec
from controller.workflows import activity_io

TOKEN = "scale-api-token-01"


@pytest.fixture
def scaler(hosts, tmp_path):
    redactor = redaction.Redactor([TOKEN])
    runner = commands.CommandRunner(
        settings=config_module.CommandsConfig(workdir=tmp_path),
        state_dir=tmp_path / "state",
        redactor=redactor,
    )
    requests = rest.Requests(
        credentials={"infra": config_module.HttpCredential(bearer_token=TOKEN)}, redactor=redactor
    )
    with httpx.Client() as client:
        yield scaling.ScaleActivities(
            playbooks=hosts.activities(), runner=runner, requests=requests, client=client
        )


def read_and_set(env_factory, scaler, target, replicas, *, reread=True):
    before = env_factory().run(
        scaler.scale_read, activity_io.ScaleReadInput(context=context("scale"), target=target)
    )
    after = env_factory().run(
        scaler.scale,
        activity_io.ScaleInput(
            context=context("scale"), target=target, replicas=replicas, previous=before.replicas
        ),
    )
    if not reread:
        return before.replicas, after.replicas
    again = env_factory().run(
        scaler.scale_read, activity_io.ScaleReadInput(context=context("scale"), target=target)
    )
    return before.replicas, after.replicas, again.replicas


def test_command_actuator(scaler, activity_env, tmp_path):
    """read_argv prints the count; argv gets the new one as HOMEOSTAT_VAR_REPLICAS."""
    state = tmp_path / "replicas"
    state.write_text("3\n")
    target = spec.ScaleTarget(
        name="web",
        actuator=spec.Actuator.COMMAND,
        read_argv=("cat", str(state)),
        argv=("sh", "-c", 'printf "%s\\n" "$HOMEOSTAT_VAR_REPLICAS" > "$HOMEOSTAT_VAR_STATE"'),
        variables={"state": str(state)},
    )
    assert read_and_set(activity_env, scaler, target, 5) == (3, 5, 5)


def test_http_actuator(scaler, activity_env, tmp_path):
    """GET reads {"replicas": n}; PUT sets it; the credential comes from configuration."""
    api = FakeApi(token=TOKEN, replicas=2).start(tmp_path)
    try:
        target = spec.ScaleTarget(
            name="web", actuator=spec.Actuator.HTTP, url=f"{api.url}/replicas", credentials="infra"
        )
        assert read_and_set(activity_env, scaler, target, 4) == (2, 4, 4)
        assert api.replicas == 4
    finally:
        api.stop()


def test_playbook_actuator(scaler, activity_env, tmp_path):
    """The playbook sets the count from homeostat_replicas and reports it with set_stats."""
    state = tmp_path / "replicas"
    state.write_text("1\n")
    target = spec.ScaleTarget(
        name="web",
        actuator=spec.Actuator.PLAYBOOK,
        playbook="replicas.yml",
        variables={"state_file": str(state)},
    )
    assert read_and_set(activity_env, scaler, target, 6, reread=False) == (1, 6)
    assert state.read_text().strip() == "6"


def test_unreadable_counts_and_failing_actuators(scaler, activity_env, tmp_path):
    """A read that prints no number is permanent; a failing set command is retryable."""
    target = spec.ScaleTarget(
        name="web", actuator=spec.Actuator.COMMAND, read_argv=("echo", "many"), argv=("false",)
    )
    with pytest.raises(ApplicationError) as unreadable:
        activity_env().run(
            scaler.scale_read, activity_io.ScaleReadInput(context=context("s"), target=target)
        )
    assert unreadable.value.non_retryable
    assert "no replica count" in str(unreadable.value)
    with pytest.raises(ApplicationError) as failing:
        activity_env().run(
            scaler.scale, activity_io.ScaleInput(context=context("s"), target=target, replicas=2)
        )
    assert failing.value.type == activity_io.TRANSIENT_ERROR
