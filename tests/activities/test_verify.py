"""Verification (CEL over an HTTP answer, PromQL against a real Prometheus) and query_metric."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from activity_support import context
from fake_api import FakeApi
from temporalio.exceptions import ApplicationError

from controller.activities import redaction, rest, verify
from controller.ingest import promql
from controller.plans import spec, templates
from controller.workflows import activity_io

FAST = timedelta(milliseconds=100)


@pytest.fixture
async def api(tmp_path):
    fake = FakeApi(token="t0ken-000000", ready_after=3).start(tmp_path)
    yield fake
    fake.stop()


@pytest.fixture
async def checker():
    async with httpx.AsyncClient() as client:
        yield lambda prometheus=None: verify.VerifyActivities(
            prometheus=prometheus,
            requests=rest.Requests(credentials={}, redactor=redaction.Redactor()),
            client=client,
        )


def cel(
    expression: str, *, http=None, within=timedelta(seconds=5), **more
) -> activity_io.VerifyCelInput:
    return activity_io.VerifyCelInput(
        context=context("verify"),
        expression=expression,
        http=http,
        within=within,
        interval=FAST,
        **more,
    )


async def test_cel_polls_the_endpoint_until_it_holds(api, checker, activity_env):
    """The condition over the HTTP answer holds on the third poll; the heartbeat counts polls."""
    beats: list = []
    env = activity_env()
    env.on_heartbeat = lambda *details: beats.append(details[0])
    out = await env.run(
        checker().verify_cel,
        cel(
            "response.status == 200 && response.json.ready",
            http=spec.HttpRequest(url=f"{api.url}/ready"),
        ),
    )
    assert out.ok
    assert out.checks == 3
    assert beats == [1, 2, 3]


async def test_cel_that_never_holds_reports_what_it_saw(checker, activity_env):
    """A condition still false at the deadline is ok=False with the last observation."""
    out = await activity_env().run(
        checker().verify_cel,
        cel(
            "vars.healthy == 'yes'",
            variables={"vars": {"healthy": "no"}},
            within=timedelta(milliseconds=350),
        ),
    )
    assert not out.ok
    assert out.checks >= 3
    assert out.observed == "False"


async def test_cel_that_cannot_compile_is_permanent(checker, activity_env):
    """A syntax error can never hold: non-retryable."""
    with pytest.raises(ApplicationError) as caught:
        await activity_env().run(checker().verify_cel, cel("response.status ==="))
    assert caught.value.non_retryable


async def test_promql_against_prometheus(prometheus_factory, checker, activity_env):
    """A non-empty result holds, an empty one does not, a bad query is permanent; metrics read."""
    server = prometheus_factory(config={"global": {"scrape_interval": "1s"}, "scrape_configs": []})
    acts = checker(promql.Client(server.url))
    holds = await activity_env().run(
        acts.verify_promql,
        activity_io.VerifyPromqlInput(
            context=context("v"), query="vector(1) > 0", within=timedelta(seconds=5), interval=FAST
        ),
    )
    assert holds.ok
    assert holds.checks == 1
    assert "= 1" in holds.observed
    empty = await activity_env().run(
        acts.verify_promql,
        activity_io.VerifyPromqlInput(
            context=context("v"),
            query="vector(1) > 5",
            within=timedelta(milliseconds=300),
            interval=FAST,
        ),
    )
    assert not empty.ok
    assert empty.observed == "no series"
    with pytest.raises(ApplicationError) as bad:
        await activity_env().run(
            acts.verify_promql,
            activity_io.VerifyPromqlInput(
                context=context("v"), query="up{", within=timedelta(seconds=1)
            ),
        )
    assert bad.value.non_retryable
    metric = await activity_env().run(
        acts.query_metric, activity_io.QueryMetricInput(context=context("m"), query="vector(0.75)")
    )
    assert (metric.value, metric.series) == (0.75, 1)
    nothing = await activity_env().run(
        acts.query_metric,
        activity_io.QueryMetricInput(context=context("m"), query="absent(vector(1))"),
    )
    assert (nothing.value, nothing.series) == (None, 0)


async def test_prometheus_down_is_transient_for_metrics(checker, activity_env):
    """An unreachable Prometheus makes query_metric retryable, and verify keep polling."""
    from harness import processes  # noqa: PLC0415

    acts = checker(promql.Client(f"http://127.0.0.1:{processes.free_port()}"))
    with pytest.raises(ApplicationError) as caught:
        await activity_env().run(
            acts.query_metric, activity_io.QueryMetricInput(context=context("m"), query="up")
        )
    assert caught.value.type == activity_io.TRANSIENT_ERROR
    out = await activity_env().run(
        acts.verify_promql,
        activity_io.VerifyPromqlInput(
            context=context("v"), query="up", within=timedelta(milliseconds=250), interval=FAST
        ),
    )
    assert not out.ok
    assert out.observed.startswith("not checked:")


async def test_hostile_label_cannot_make_verification_pass(
    prometheus_factory, checker, activity_env
):
    """Against a real Prometheus the escaped query finds no series, so verification fails."""
    server = prometheus_factory(config={"global": {"scrape_interval": "1s"}, "scrape_configs": []})
    acts = checker(promql.Client(server.url))
    scope = templates.Scope(labels={"instance": "x'} or vector(1) or up{a='"})
    query = templates.render_promql('up{instance="{{ labels.instance }}"} == 1', scope)
    out = await activity_env().run(
        acts.verify_promql,
        activity_io.VerifyPromqlInput(
            context=context("v"),
            query=query,
            within=timedelta(milliseconds=300),
            interval=timedelta(milliseconds=100),
        ),
    )
    assert not out.ok
    assert out.observed == "no series"
    injected = templates.render(
        "up{instance='{{ labels.instance }}'} == 1", scope, escape=templates.promql_string
    )
    passes = await activity_env().run(
        acts.verify_promql,
        activity_io.VerifyPromqlInput(
            context=context("v"), query=injected, within=timedelta(seconds=5)
        ),
    )
    assert passes.ok, "the single-quoted form is what lint and render_promql refuse"
