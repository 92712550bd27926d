"""Paging through the pagerduty package against a local Events API v2 (TLS) fake."""

from __future__ import annotations

import pytest
from activity_support import (
    OTHER_ROUTING_KEY,
    ROUTING_KEY,
    call_in_worker,
    context,
    decoded_history,
)
from fake_http import Fault
from temporalio.exceptions import ApplicationError

from controller.activities import config as config_module
from controller.activities import paging
from controller.domain import transitions
from controller.workflows import activity_io

EPISODE = "cpu-high/service/web/20260101T000000.000000Z"


@pytest.fixture
def made():
    """Paging activities made by a test, closed at its end."""
    found: list[paging.PagingActivities] = []
    yield found
    for each in found:
        each.close()


def activities(fake, *, routing_key: str = ROUTING_KEY, made=None) -> paging.PagingActivities:
    settings = config_module.PagerDutyConfig(
        events_url=fake.url,
        routing_key=routing_key,
        routing_keys={"db-team": OTHER_ROUTING_KEY},
        ca_file=fake.ca_file,
    )
    links = config_module.LinksConfig(temporal_ui_url="http://temporal.example:8233")
    acts = paging.PagingActivities(settings=settings, links=links)
    if made is not None:
        made.append(acts)
    return acts


def trigger(**more) -> activity_io.PageTriggerInput:
    ctx = context("page", episode=EPISODE)
    return activity_io.PageTriggerInput(
        context=ctx,
        dedup_key=activity_io.page_dedup_key(ctx.episode),
        summary="CPU above 90% for 5 minutes on web",
        severity=transitions.Severity.CRITICAL,
        source="service/web",
        component="cpu-high",
        details={"labels": {"instance": "web-1"}},
        links=(activity_io.Link(href="https://grafana.example/d/web", text="Dashboard"),),
        **more,
    )


def resolve() -> activity_io.PageResolveInput:
    ctx = context("resolve", episode=EPISODE)
    return activity_io.PageResolveInput(
        context=ctx, dedup_key=activity_io.page_dedup_key(ctx.episode)
    )


def test_trigger_sends_every_field_and_links_back(pagerduty, made, activity_env):
    """The event carries summary, source, severity, component, group, class, details and links."""
    out = activity_env().run(activities(pagerduty, made=made).page_trigger, trigger())
    assert out.dedup_key == f"homeostat/{EPISODE}"
    [incident] = pagerduty.incidents
    event = incident.events[0]
    payload = event["payload"]
    assert payload["summary"] == "CPU above 90% for 5 minutes on web"
    assert (payload["source"], payload["severity"]) == ("service/web", "critical")
    assert (payload["component"], payload["group"], payload["class"]) == (
        "cpu-high",
        "service",
        "rule",
    )
    assert payload["custom_details"]["labels"] == {"instance": "web-1"}
    assert payload["custom_details"]["episode"] == EPISODE
    hrefs = [link["href"] for link in event["links"]]
    assert hrefs[0] == "https://grafana.example/d/web"
    assert hrefs[1].startswith(
        "http://temporal.example:8233/namespaces/default/workflows/episode%2F"
    )


def test_named_routing_uses_that_key(pagerduty, made, activity_env):
    """A page step's routing name picks the configured key of that name."""
    activity_env().run(activities(pagerduty, made=made).page_trigger, trigger(routing="db-team"))
    assert pagerduty.incidents[0].routing_key == OTHER_ROUTING_KEY


async def test_one_incident_under_retries_and_lost_responses(pagerduty, made, homeostat_client):
    """500, 429 and a response lost after delivery are retried by Temporal: still one incident."""
    pagerduty.fail(Fault(status=500), Fault(status=429), Fault(drop_after=True))
    acts = activities(pagerduty, made=made)
    out, handle = await call_in_worker(
        homeostat_client,
        [acts.page_trigger, acts.page_resolve],
        activity=activity_io.PAGE_TRIGGER,
        arg=trigger(),
        max_attempts=6,
    )
    assert out["dedup_key"] == f"homeostat/{EPISODE}"
    assert len(pagerduty.requests) == 4
    assert len(pagerduty.incidents) == 1
    assert len(pagerduty.incidents[0].events) == 2  # the lost one and its retry, deduplicated
    history = decoded_history(await handle.fetch_history())
    assert "CPU above 90% for 5 minutes on web" in history  # the payloads are read decoded
    assert ROUTING_KEY not in history

    resolved, _ = await call_in_worker(
        homeostat_client,
        [acts.page_trigger, acts.page_resolve],
        activity=activity_io.PAGE_RESOLVE,
        arg=resolve(),
    )
    assert resolved["status"] == "resolved"
    assert pagerduty.incidents[0].status == "resolved"
    assert len(pagerduty.incidents) == 1


async def test_rejected_routing_key_is_not_retried(pagerduty, made, homeostat_client):
    """A 400 for an unknown routing key fails at once, non-retryable, and names no key."""
    acts = activities(pagerduty, routing_key="NOT-A-KEY-0000000000000000000000", made=made)
    error, _ = await call_in_worker(
        homeostat_client, [acts.page_trigger], activity=activity_io.PAGE_TRIGGER, arg=trigger()
    )
    cause = error.cause.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == activity_io.PERMANENT_ERROR
    assert "HTTP 400" in cause.message
    assert "Invalid routing key" in cause.message
    assert "NOT-A-KEY" not in cause.message
    assert len(pagerduty.requests) == 1
    assert pagerduty.incidents == []


def test_server_errors_are_transient(pagerduty, made, activity_env):
    """A 503 answer is a retryable error, left to Temporal (the client does not retry it)."""
    pagerduty.fail(Fault(status=503))
    with pytest.raises(ApplicationError) as caught:
        activity_env().run(activities(pagerduty, made=made).page_trigger, trigger())
    assert caught.value.type == activity_io.TRANSIENT_ERROR
    assert not caught.value.non_retryable
    assert len(pagerduty.requests) == 1


def test_unknown_routing_and_no_configuration_are_permanent(pagerduty, made, activity_env):
    """Paging without configuration, or with a routing name nobody configured, cannot work."""
    with pytest.raises(ApplicationError) as unknown:
        activity_env().run(activities(pagerduty, made=made).page_trigger, trigger(routing="nobody"))
    assert unknown.value.non_retryable
    assert "db-team" in str(unknown.value)
    unconfigured = paging.PagingActivities(settings=None, links=config_module.LinksConfig())
    with pytest.raises(ApplicationError) as missing:
        activity_env().run(unconfigured.page_trigger, trigger())
    assert missing.value.non_retryable
