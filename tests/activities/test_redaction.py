"""Secrets are masked in every form they are sent: raw, basic auth's base64, URL-encoded, JSON-escaped."""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass
from urllib.parse import quote, quote_plus

import pytest
import structlog
from activity_support import decoded_history
from temporalio.exceptions import ApplicationError

from controller import activities
from controller.activities import masking, redaction
from controller.observability import logging as logging_setup
from controller.workflows import activity_io

PASSWORD = "pa55/w+rd=="


def _config(tmp_path) -> activities.ActivitiesConfig:
    return activities.ActivitiesConfig(
        remediations_dir=tmp_path,
        playbooks_dir=tmp_path,
        state_dir=tmp_path,
        jira=activities.JiraConfig(url="https://j", user="bot@example.com", token="jira-tok-001"),
        prometheus=activities.PrometheusConfig(
            url="http://p", headers={"Authorization": "Bearer prom-bearer-001"}
        ),
        credentials={
            "basic": activities.HttpCredential(username="admin", password=PASSWORD),
            "query": activities.HttpCredential(params={"api_key": "qk/9+x=="}),
        },
    )


def test_configured_credentials_include_the_forms_they_are_sent_in(tmp_path):
    """Basic auth pairs (HTTP steps and Jira) and bare tokens of scheme headers are secrets too."""
    secrets = set(_config(tmp_path).secrets())
    assert base64.b64encode(f"admin:{PASSWORD}".encode()).decode() in secrets
    assert base64.b64encode(b"bot@example.com:jira-tok-001").decode() in secrets
    assert "prom-bearer-001" in secrets
    assert "qk/9+x==" in secrets


@pytest.mark.parametrize(
    "form",
    [
        PASSWORD,
        quote(PASSWORD, safe=""),
        quote_plus(PASSWORD),
        quote(PASSWORD),
        json.dumps(PASSWORD)[1:-1],
    ],
    ids=["raw", "url-encoded", "form-encoded", "path-encoded", "json"],
)
def test_every_encoding_of_a_secret_is_masked(form):
    """A secret echoed URL-encoded (a query string) or JSON-escaped is masked like the raw value."""
    redactor = redaction.Redactor([PASSWORD])
    assert redactor.text(f"GET /x?key={form}&n=1 ok") == "GET /x?key=***&n=1 ok"


def test_unpadded_base64_of_a_basic_pair_is_masked(tmp_path):
    """The base64 of user:password is masked with or without its padding."""
    pair = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    redactor = redaction.Redactor(_config(tmp_path).secrets())
    assert pair.endswith("=")
    assert redactor.text(f"seen {pair} and {pair.rstrip('=')}.") == "seen *** and ***."


@dataclass(frozen=True, slots=True, kw_only=True)
class _Out:
    note: str
    status: str
    body: object


async def test_the_activity_boundary_masks_outputs_and_failures(tmp_path):
    """Whatever an activity returns or raises leaves the worker with every configured secret masked, causes included."""
    secret = "boundary-secret-0001"
    boundary = masking.Boundary(redaction.Redactor([secret]))
    out = boundary.output(_Out(note=f"x {secret}", status="ok", body={"list": [secret, 3]}))
    assert out == _Out(note="x ***", status="ok", body={"list": ["***", 3]})
    raised = ApplicationError(
        f"call failed: {secret}", type=activity_io.PERMANENT_ERROR, non_retryable=True
    )
    raised.__cause__ = ValueError(f"upstream said {quote(secret)}")
    failure = boundary.failure(raised)
    assert isinstance(failure, ApplicationError)
    assert (failure.type, failure.non_retryable) == (activity_io.PERMANENT_ERROR, True)
    assert failure.message == "call failed: ***"
    assert isinstance(failure.cause, ApplicationError)
    assert failure.cause.message == "upstream said ***"
    assert failure.cause.type == "ValueError"
    unexpected = boundary.failure(KeyError(secret))
    assert isinstance(unexpected, ApplicationError)
    assert secret not in str(unexpected)
    assert not unexpected.non_retryable


def test_logs_never_show_a_configured_secret():
    """A log line carrying a secret, in a field or an exception text, shows it masked."""
    stream = io.StringIO()
    secret = "log-secret-value-0001"
    logging_setup.configure(
        level="info", json=True, stream=stream, mask=redaction.Redactor([secret]).known
    )
    try:
        log = structlog.get_logger("test")
        log.warning("upstream_failed", detail=f"sent Bearer {secret}", url=f"/x?k={quote(secret)}")
        log.error("crashed", exc_info=RuntimeError(secret))
        import logging  # noqa: PLC0415

        logging.getLogger("temporalio.activity").warning("failed: %s", secret)
    finally:
        logging_setup.configure(level="info", json=True)
    text = stream.getvalue()
    assert text.count("***") >= 4
    assert secret not in text
    assert quote(secret) not in text


async def test_an_error_reflecting_the_routing_key_never_reaches_the_history(
    tmp_path, pagerduty, homeostat_client
):
    """PagerDuty answering 400 with the routing key in its errors fails the step permanently, with the key masked in the message and its causes."""
    from activity_support import ROUTING_KEY, call_in_worker, context  # noqa: PLC0415
    from fake_http import Fault  # noqa: PLC0415

    from controller.activities import paging  # noqa: PLC0415
    from controller.domain import transitions  # noqa: PLC0415

    settings = activities.PagerDutyConfig(
        events_url=pagerduty.url, routing_key=ROUTING_KEY, ca_file=pagerduty.ca_file
    )
    config = activities.ActivitiesConfig(
        remediations_dir=tmp_path, playbooks_dir=tmp_path, state_dir=tmp_path, pagerduty=settings
    )
    acts = paging.PagingActivities(settings=settings, links=activities.LinksConfig())
    pagerduty.fail(
        Fault(
            status=400,
            body={
                "status": "invalid event",
                "message": "Event object is invalid",
                "errors": [f"routing_key {ROUTING_KEY} unknown"],
            },
        )
    )
    ctx = context("page")
    request = activity_io.PageTriggerInput(
        context=ctx,
        dedup_key=activity_io.page_dedup_key(ctx.episode),
        summary="web down",
        severity=transitions.Severity.CRITICAL,
        source="service/web",
    )
    try:
        error, handle = await call_in_worker(
            homeostat_client,
            [acts.page_trigger],
            activity=activity_io.PAGE_TRIGGER,
            arg=request,
            interceptors=(activities.interceptor(config),),
        )
    finally:
        acts.close()
    cause = error.cause.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == activity_io.PERMANENT_ERROR
    assert "routing_key *** unknown" in cause.message
    history = decoded_history(await handle.fetch_history())
    assert "HTTP 400" in history
    assert ROUTING_KEY not in history


def test_the_worker_masks_at_its_boundary(tmp_path, monkeypatch):
    """The production worker is built with the masking interceptor."""
    from controller import settings as settings_module  # noqa: PLC0415
    from controller import worker  # noqa: PLC0415

    built: dict = {}
    monkeypatch.setattr(worker.temporal_worker, "Worker", lambda *_, **kwargs: built.update(kwargs))
    monkeypatch.chdir(tmp_path)
    worker.build(object(), settings_module.Settings.model_validate({}))
    assert any(isinstance(i, masking.Interceptor) for i in built["interceptors"])
