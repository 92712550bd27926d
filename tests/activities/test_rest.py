"""The http_call activity: credentials from configuration, answers as data, retryable statuses."""

from __future__ import annotations

import httpx
import pytest
from activity_support import context
from fake_api import FakeApi
from temporalio.exceptions import ApplicationError

from controller.activities import config as config_module
from controller.activities import redaction, rest
from controller.plans import spec
from controller.workflows import activity_io

TOKEN = "api-token-0000000001"


@pytest.fixture
async def api(tmp_path):
    fake = FakeApi(token=TOKEN).start(tmp_path)
    yield fake
    fake.stop()


@pytest.fixture
async def activities():
    credentials = {
        "metal": config_module.HttpCredential(bearer_token=TOKEN),
        "godaddy": config_module.HttpCredential(headers={"Authorization": "sso-key K:S"}),
        "vcenter": config_module.HttpCredential(username="admin", password="vc-password-1"),
    }
    requests = rest.Requests(
        credentials=credentials, redactor=redaction.Redactor([TOKEN, "vc-password-1"])
    )
    async with httpx.AsyncClient() as client:
        yield rest.HttpActivities(requests=requests, client=client)


def call(url: str, **more) -> activity_io.HttpCallInput:
    return activity_io.HttpCallInput(
        context=context("http"), request=spec.HttpRequest(url=url, **more)
    )


async def test_credentials_are_attached_and_kept_out_of_answers(api, activities, activity_env):
    """The named credential reaches the API; the answer echoing it has it masked."""
    out = await activity_env().run(
        activities.http_call,
        call(
            f"{api.url}/echo",
            method="post",
            params={"q": "1"},
            json_body={"n": 1},
            credentials="metal",
        ),
    )
    assert out.ok
    assert out.status == 200
    received = api.requests[-1]
    assert received.headers["authorization"] == f"Bearer {TOKEN}"
    assert (received.method, received.query, received.body) == ("POST", {"q": "1"}, {"n": 1})
    assert TOKEN not in str(out.json_body)
    await activity_env().run(activities.http_call, call(f"{api.url}/echo", credentials="vcenter"))
    assert api.requests[-1].headers["authorization"].startswith("Basic ")
    await activity_env().run(activities.http_call, call(f"{api.url}/echo", credentials="godaddy"))
    assert api.requests[-1].headers["authorization"] == "sso-key K:S"


async def test_secret_looking_fields_are_masked(api, activities, activity_env):
    """Fields named like secrets, and known secret values, are masked in the answer."""
    out = await activity_env().run(activities.http_call, call(f"{api.url}/leaky"))
    assert out.json_body == {"access_token": "***", "note": "uses ***"}


async def test_statuses(api, activities, activity_env):
    """404 is an answer (ok=False); an expected 404 is ok; 503 and 429 are retryable errors."""
    missing = await activity_env().run(activities.http_call, call(f"{api.url}/status/404"))
    assert not missing.ok
    assert missing.status == 404
    expected = await activity_env().run(
        activities.http_call, call(f"{api.url}/status/404", expect_status=(404,))
    )
    assert expected.ok
    for code in (503, 429):
        with pytest.raises(ApplicationError) as caught:
            await activity_env().run(activities.http_call, call(f"{api.url}/status/{code}"))
        assert caught.value.type == activity_io.TRANSIENT_ERROR
        assert f"HTTP {code}" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "credentials", "expected"),
    [
        ("ftp://example.com/x", "", "is not http or https"),
        ("http://127.0.0.1:9/x", "nobody", "unknown credential 'nobody'"),
    ],
)
async def test_requests_that_cannot_work_are_permanent(
    activities, activity_env, url, credentials, expected
):
    """A URL that is not HTTP, or a credential nobody configured, fails without retries."""
    with pytest.raises(ApplicationError) as caught:
        await activity_env().run(activities.http_call, call(url, credentials=credentials))
    assert caught.value.non_retryable
    assert expected in str(caught.value)


async def test_unreachable_endpoint_is_transient(activities, activity_env):
    """Nobody listening is a retryable connection error."""
    from harness import processes  # noqa: PLC0415

    with pytest.raises(ApplicationError) as caught:
        await activity_env().run(
            activities.http_call, call(f"http://127.0.0.1:{processes.free_port()}/x")
        )
    assert caught.value.type == activity_io.TRANSIENT_ERROR


def test_text_bodies_are_tails():
    """A non-JSON body is returned as its last bytes, masked."""
    requests = rest.Requests(credentials={}, redactor=redaction.Redactor(["s3cret-val"]))
    body = ("x" * 20000 + " s3cret-val end").encode()
    answer = requests.answer(spec.HttpRequest(url="http://h/"), httpx.Response(200, content=body))
    assert answer.json_body is None
    assert answer.text.endswith("*** end")
    assert len(answer.text) <= activity_io.OUTPUT_TAIL_BYTES


@pytest.mark.parametrize("value", ["web\r\nX-Injected: 1", "web\nx", "web\rx", "web\x00x"])
async def test_cr_lf_or_nul_in_a_header_value_is_permanent(api, activities, activity_env, value):
    """A header value holding CR, LF or NUL (say, from a label) fails permanently with a clear message and never reaches the API."""
    with pytest.raises(ApplicationError) as caught:
        await activity_env().run(
            activities.http_call, call(f"{api.url}/echo", headers={"X-Service": value})
        )
    assert caught.value.non_retryable
    assert caught.value.type == activity_io.PERMANENT_ERROR
    assert "X-Service" in str(caught.value)
    assert "CR, LF or NUL" in str(caught.value)
    assert api.requests == []
