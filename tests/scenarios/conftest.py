"""Fixtures of the scenario tests: the SaaS contract servers (PagerDuty, Jira, CMDB).

The fakes live in ``tests/fakes/`` as top-level modules; this folder puts them on the path.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fakes"))

from fake_jira import FakeJira
from fake_pagerduty import FakePagerDuty
from scenario_support import JIRA_TOKEN, JIRA_USER, ROUTING_KEY


@pytest.fixture
def pagerduty(tmp_path: Path):
    """PagerDuty's Events API v2, over TLS with a CA made for this test."""
    fake = FakePagerDuty(routing_keys={ROUTING_KEY}).start(tmp_path)
    yield fake
    fake.stop()


@pytest.fixture
def jira(tmp_path: Path):
    """Jira Cloud's REST API v3."""
    fake = FakeJira(cloud=True, user=JIRA_USER, token=JIRA_TOKEN).start(tmp_path)
    yield fake
    fake.stop()
