"""The activities factory and the error boundary: every name registered, every error mapped."""

from __future__ import annotations

import inspect
from pathlib import Path

import httpx
import pytest
from temporalio import activity

from controller import activities, errors
from controller.activities import failures
from controller.workflows import activity_io


def config(tmp_path: Path) -> activities.ActivitiesConfig:
    return activities.ActivitiesConfig(
        remediations_dir=tmp_path,
        playbooks_dir=tmp_path,
        state_dir=tmp_path,
        pagerduty=activities.PagerDutyConfig(routing_key="pd-routing-key-0001"),
        jira=activities.JiraConfig(url="https://jira.example", token="jira-token-0001"),
        cmdb=activities.CmdbConfig(url="https://cmdb.example", token="cmdb-token-0001"),
        credentials={"x": activities.HttpCredential(bearer_token="bearer-0001")},
    )


def test_build_registers_every_activity_name_once(tmp_path):
    """The worker gets exactly the names the workflows call; long sync ones are thread-safe to cancel."""
    built = activities.build(config(tmp_path))
    definitions = {activity._Definition.must_from_callable(fn).name: fn for fn in built}
    assert sorted(definitions) == sorted(activity_io.ALL)
    assert len(built) == len(activity_io.ALL)
    for name in (activity_io.RUN_PLAYBOOK, activity_io.RUN_COMMAND, activity_io.SCALE):
        definition = activity._Definition.must_from_callable(definitions[name])
        assert not inspect.iscoroutinefunction(definitions[name])
        assert definition.no_thread_cancel_exception


def test_configuration_never_shows_its_secrets(tmp_path):
    """Secrets are left out of the configuration's repr (which can reach logs)."""
    shown = repr(config(tmp_path))
    for secret in ("pd-routing-key-0001", "jira-token-0001", "cmdb-token-0001", "bearer-0001"):
        assert secret not in shown
    assert set(config(tmp_path).secrets()) >= {
        "pd-routing-key-0001",
        "jira-token-0001",
        "bearer-0001",
    }


def _all_subclasses(kind: type) -> list[type]:
    found = []
    for sub in kind.__subclasses__():
        found += [sub, *_all_subclasses(sub)]
    return found


@pytest.mark.parametrize("kind", _all_subclasses(httpx.HTTPError), ids=lambda k: k.__name__)
def test_every_httpx_error_is_mapped(kind):
    """Every httpx exception becomes a transient or permanent remediation error; an invalid request we built is permanent."""
    if kind is httpx.HTTPStatusError:
        request = httpx.Request("GET", "http://x")
        exc = kind("x", request=request, response=httpx.Response(503, request=request))
    else:
        exc = kind("boom")
    mapped = failures.http_failure(exc, "thing")
    assert isinstance(mapped, errors.TransientError | errors.PermanentError)
    permanent = (httpx.UnsupportedProtocol, httpx.TooManyRedirects, httpx.LocalProtocolError)
    assert isinstance(mapped, errors.PermanentError) == issubclass(kind, permanent)


@pytest.mark.parametrize(
    ("status", "transient"),
    [(400, False), (401, False), (404, False), (408, True), (429, True), (500, True), (503, True)],
)
def test_statuses_map_to_retry_intent(status, transient):
    """429, 408 and 5xx may pass; other 4xx cannot."""
    assert isinstance(failures.status_error(status, "x"), errors.TransientError) == transient


def test_remediation_errors_reach_temporal_typed():
    """PermanentError is non-retryable with its type; TransientError is retryable."""
    permanent = failures.to_application_error(errors.PermanentError("no"))
    transient = failures.to_application_error(errors.TransientError("later"))
    assert (permanent.type, permanent.non_retryable) == (activity_io.PERMANENT_ERROR, True)
    assert (transient.type, transient.non_retryable) == (activity_io.TRANSIENT_ERROR, False)
