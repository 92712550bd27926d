"""Fixtures of the scenario tests: their own Temporal dev server, and the SaaS contract servers.

The scenarios share one Temporal dev server of their own (not the suite's): resource
workflows are long-lived, and one left idle by another test module on a task queue nobody
serves any more would swallow a scenario's transitions for the same resource. Within the
scenarios, each test uses resources of its own. The fakes live in ``tests/fakes/`` as
top-level modules; this folder puts them on the path.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fakes"))

from fake_jira import FakeJira
from fake_pagerduty import FakePagerDuty
from harness import processes
from scenario_support import JIRA_TOKEN, JIRA_USER, ROUTING_KEY

from controller import embedded
from controller.domain import contract


@pytest_asyncio.fixture(scope="session")
async def scenario_temporal(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[embedded.EmbeddedTemporal]:
    """A headless Temporal dev server for the scenarios alone, search attributes registered."""
    server = embedded.EmbeddedTemporal(
        db_file=tmp_path_factory.mktemp("scenario-temporal") / "temporal.db",
        port=processes.free_port(),
        ui=False,
        search_attributes=contract.SEARCH_ATTRIBUTES,
    )
    await server.start()
    yield server
    await server.stop()


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
