"""Inventory: a CMDB REST API (auth, pagination, caching) and static files, and playbooks on it."""

from __future__ import annotations

import sys
from datetime import timedelta

import pytest
from activity_support import PLAYBOOKS, context
from fake_cmdb import FakeCmdb
from fake_http import Fault
from temporalio.exceptions import ApplicationError

from controller.activities import ansible, cmdb, inventory
from controller.activities import config as config_module
from controller.workflows import activity_io

TOKEN = "cmdb-token-00000001"


def cmdb_hosts() -> list[dict]:
    found = []
    for i in range(1, 8):
        role = "web" if i <= 4 else "db"
        found.append(
            {
                "name": f"{role}-{i}",
                "ip": "127.0.0.1",
                "user": "deploy",
                "role": role,
                "groups": ["prod" if i % 2 else "staging"],
                "vars": {"env": "prod" if i % 2 else "staging", "ansible_connection": "local"},
            }
        )
    found.append({"name": "bad name with spaces", "role": "web"})
    return found


@pytest.fixture
def cmdb_fake(tmp_path):
    fake = FakeCmdb(token=TOKEN, hosts=cmdb_hosts()).start(tmp_path)
    yield fake
    fake.stop()


def client(fake, *, token=TOKEN, ttl=timedelta(minutes=1), stale=timedelta(minutes=30)):
    return cmdb.Client(
        config_module.CmdbConfig(
            url=fake.url, token=token, page_size=3, cache_ttl=ttl, max_stale=stale
        )
    )


def fetch(acts, group, selector=None):
    return acts.fetch_inventory(
        activity_io.FetchInventoryInput(
            context=context("hosts"), group=group, selector=selector or {}
        )
    ).hosts


def test_cmdb_groups_selectors_pages_and_cache(cmdb_fake):
    """Roles are groups, selectors match fields and vars, every page is read once, then cached."""
    reader = client(cmdb_fake)
    acts = inventory.InventoryActivities(hosts=inventory.Inventory(cmdb_client=reader, static=None))
    try:
        assert fetch(acts, "web") == ("web-1", "web-2", "web-3", "web-4")
        assert fetch(acts, "web", {"env": "prod"}) == ("web-1", "web-3")
        assert fetch(acts, "prod", {"role": "db"}) == ("db-5", "db-7")
        assert fetch(acts, "all") == ("db-5", "db-6", "db-7", "web-1", "web-2", "web-3", "web-4")
        assert fetch(acts, "nobody") == ()
        assert cmdb_fake.page_requests() == 3  # 8 records, 3 per page, fetched once
        assert all(r.headers["authorization"] == f"Token {TOKEN}" for r in cmdb_fake.requests)
    finally:
        reader.close()


def test_cmdb_outage_uses_the_stale_copy_within_bounds(cmdb_fake):
    """A CMDB outage serves the last answer while it is young enough; after that it is retryable."""
    reader = client(cmdb_fake, ttl=timedelta(0))
    hosts = inventory.Inventory(cmdb_client=reader, static=None)
    try:
        assert len(hosts.group("all", {})) == 7
        cmdb_fake.fail(Fault(status=503))
        assert len(hosts.group("all", {})) == 7
        expired = client(cmdb_fake, ttl=timedelta(0), stale=timedelta(0))
        cmdb_fake.fail(Fault(status=503))
        with pytest.raises(Exception, match="HTTP 503") as caught:
            inventory.Inventory(cmdb_client=expired, static=None).group("all", {})
        assert type(caught.value).__name__ == "TransientError"
        expired.close()
    finally:
        reader.close()


def test_cmdb_refusing_the_token_is_permanent(cmdb_fake):
    """A 403 for a wrong token is reported as permanent, without the token."""
    reader = client(cmdb_fake, token="wrong-token-0001")
    acts = inventory.InventoryActivities(hosts=inventory.Inventory(cmdb_client=reader, static=None))
    try:
        with pytest.raises(ApplicationError) as caught:
            fetch(acts, "web")
    finally:
        reader.close()
    assert caught.value.non_retryable
    assert "HTTP 403" in str(caught.value)
    assert "wrong-token" not in str(caught.value)


def test_static_inventory_groups(hosts):
    """A static file is read with ansible-inventory: groups, children and all."""
    acts = inventory.InventoryActivities(
        hosts=inventory.Inventory(cmdb_client=None, static=hosts.inventory)
    )
    assert fetch(acts, "web") == ("h1", "h2")
    assert fetch(acts, "all") == ("dead1", "h1", "h2", "h3", "h4", "h5", "h6")
    assert fetch(acts, "nobody") == ()
    assert fetch(acts, "all", {"ansible_connection": "ssh"}) == ("dead1",)


def test_playbook_runs_on_the_cmdb_inventory(cmdb_fake, hosts, activity_env, tmp_path):
    """Hosts and variables from the CMDB reach the play; a template in a CMDB value stays text."""
    cmdb_fake.hosts[0]["vars"]["note"] = "{{ 6 * 7 }}"
    reader = client(cmdb_fake)
    try:
        acts = ansible.PlaybookActivities(
            playbooks_dir=PLAYBOOKS,
            state_dir=tmp_path / "state",
            settings=config_module.AnsibleConfig(python_interpreter=sys.executable),
            hosts=inventory.Inventory(cmdb_client=reader, static=None),
        )
        out = activity_env().run(
            acts.run_playbook,
            activity_io.RunPlaybookInput(
                context=context("cmdb"),
                playbook="visit.yml",
                hosts=("web-1", "web-2"),
                extra_vars=hosts.extra_vars(),
            ),
        )
    finally:
        reader.close()
    assert out.ok
    assert hosts.visits("web-1") == hosts.visits("web-2") == 1
    assert (hosts.markers / "web-1").read_text().strip() == "{{ 6 * 7 }}"
