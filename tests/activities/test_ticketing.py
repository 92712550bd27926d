"""Ticketing against a local Jira REST fake, Cloud (v3) and Data Center (v2)."""

from __future__ import annotations

import pytest
from activity_support import call_in_worker, context
from fake_http import Fault
from fake_jira import FakeJira
from temporalio.exceptions import ApplicationError

from controller.activities import config as config_module
from controller.activities import jira, ticketing
from controller.workflows import activity_io

EPISODE = "disk-full/host/db-1/20260101T000000.000000Z"
LABEL = activity_io.ticket_label(EPISODE)
TOKEN = "jira-api-token-0001"


@pytest.fixture(params=["cloud", "datacenter"])
async def jira_pair(request, tmp_path):
    """A Jira fake of one flavor, and ticket activities pointed at it."""
    cloud = request.param == "cloud"
    user = "sre@example.com" if cloud else ""
    fake = FakeJira(cloud=cloud, user=user, token=TOKEN).start(tmp_path)
    client = jira.Client(
        config_module.JiraConfig(
            url=fake.url,
            flavor=config_module.JiraFlavor.CLOUD if cloud else config_module.JiraFlavor.DATACENTER,
            user=user,
            token=TOKEN,
            project="OPS",
        )
    )
    acts = ticketing.TicketingActivities(
        system=client,
        default_project="OPS",
        links=config_module.LinksConfig(temporal_ui_url="http://temporal.example:8233"),
    )
    yield fake, acts
    await client.aclose()
    fake.stop()


def create(**more) -> activity_io.TicketCreateInput:
    fields = {
        "context": context("ticket", episode=EPISODE),
        "episode_label": LABEL,
        "project": "OPS",
        "summary": "Disk full on db-1",
        "description": "The disk of db-1 is 95% full.\n\nRunbook: clean the WAL archive.",
        "labels": ("homeostat",),
        **more,
    }
    return activity_io.TicketCreateInput(**fields)


def everything(acts):
    return [acts.ticket_create, acts.ticket_comment, acts.ticket_resolve]


async def test_create_finds_before_it_creates(jira_pair, activity_env):
    """A second create of the same episode finds the first ticket instead of opening another."""
    fake, acts = jira_pair
    first = await activity_env().run(acts.ticket_create, create())
    second = await activity_env().run(acts.ticket_create, create(summary="changed"))
    assert first.created
    assert not second.created
    assert second.key == first.key == "OPS-1"
    assert first.url == f"{fake.url}/browse/OPS-1"
    [issue] = fake.issues.values()
    assert issue["fields"]["labels"] == [LABEL, "homeostat"]
    description = issue["fields"]["description"]
    if fake.cloud:
        texts = [part["content"][0]["text"] for part in description["content"]]
        assert texts[:2] == ["The disk of db-1 is 95% full.", "Runbook: clean the WAL archive."]
        assert texts[2] == "Episode timeline (Temporal)"
    else:
        assert description.startswith("The disk of db-1 is 95% full.")
        assert "Episode timeline (Temporal): http://temporal.example:8233/" in description


async def test_one_ticket_under_retries_and_lost_responses(jira_pair, homeostat_client):
    """A failed search and a create whose answer was lost are retried: still one ticket."""
    fake, acts = jira_pair
    fake.fail(Fault(status=503, match="search"), Fault(drop_after=True, match="POST /rest/api"))
    out, _ = await call_in_worker(
        homeostat_client, everything(acts), activity=activity_io.TICKET_CREATE, arg=create()
    )
    assert len(fake.tickets_labelled(LABEL)) == 1
    assert out["key"] == "OPS-1"
    assert out["created"] is False  # the retry found what the lost attempt had made
    assert TOKEN not in str([r.body for r in fake.requests])


async def test_comment_once_under_retries(jira_pair, homeostat_client, activity_env):
    """A comment whose answer was lost is not added twice by the retry."""
    fake, acts = jira_pair
    made = await activity_env().run(acts.ticket_create, create())
    fake.fail(Fault(drop_after=True, match="POST /rest/api"))
    comment = activity_io.TicketCommentInput(
        context=context("restart-result", episode=EPISODE), key=made.key, body="restart: ok on db-1"
    )
    out, _ = await call_in_worker(
        homeostat_client, everything(acts), activity=activity_io.TICKET_COMMENT, arg=comment
    )
    [stored] = fake.issues[made.key]["comments"]
    assert out["comment_id"] == stored["id"]
    assert "restart: ok on db-1" in str(stored["body"])


async def test_resolve_comments_and_closes_once(jira_pair, activity_env):
    """Resolve comments and moves the ticket to Done by name; a second resolve changes nothing."""
    fake, acts = jira_pair
    made = await activity_env().run(acts.ticket_create, create())
    resolve = activity_io.TicketResolveInput(
        context=context("resolve", episode=EPISODE), key=made.key, comment="Resolved: disk at 40%."
    )
    out = await activity_env().run(acts.ticket_resolve, resolve)
    again = await activity_env().run(acts.ticket_resolve, resolve)
    issue = fake.issues[made.key]
    assert out.status == again.status == "Done"
    assert issue["fields"]["status"]["name"] == "Done"
    assert len(issue["comments"]) == 1


async def test_unknown_transition_names_the_available_ones(jira_pair, activity_env):
    """A transition name the workflow does not offer fails permanently, listing what exists."""
    _, acts = jira_pair
    made = await activity_env().run(acts.ticket_create, create())
    resolve = activity_io.TicketResolveInput(
        context=context("resolve", episode=EPISODE), key=made.key, transition="Closed"
    )
    with pytest.raises(ApplicationError) as caught:
        await activity_env().run(acts.ticket_resolve, resolve)
    assert caught.value.non_retryable
    assert "available: Done, Start Progress" in str(caught.value)


async def test_rejected_fields_and_credentials_are_permanent(jira_pair, activity_env, tmp_path):
    """Jira's own reason for a 400 reaches the error; a wrong token is a 401, not retried."""
    fake, acts = jira_pair
    with pytest.raises(ApplicationError) as bad_priority:
        await activity_env().run(acts.ticket_create, create(priority="Urgent!!"))
    assert bad_priority.value.non_retryable
    assert "Priority name 'Urgent!!' is not valid" in str(bad_priority.value)
    wrong = jira.Client(
        config_module.JiraConfig(
            url=fake.url,
            flavor=config_module.JiraFlavor.CLOUD
            if fake.cloud
            else config_module.JiraFlavor.DATACENTER,
            user=fake.user,
            token="wrong",
        )
    )
    try:
        with pytest.raises(ApplicationError) as unauthorized:
            await activity_env().run(
                ticketing.TicketingActivities(system=wrong).ticket_create, create()
            )
    finally:
        await wrong.aclose()
    assert unauthorized.value.non_retryable
    assert "HTTP 401" in str(unauthorized.value)
    assert "wrong" not in str(unauthorized.value)
