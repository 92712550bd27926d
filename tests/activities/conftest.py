"""Fixtures of the activity tests: real playbooks on localhost aliases, and SaaS fakes.

The SaaS fakes live in ``tests/fakes/`` as top-level modules (``fake_pagerduty`` ...):
``tests/workflows/fakes.py`` already owns the import name ``fakes``.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.testing import ActivityEnvironment

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fakes"))

from activity_support import OTHER_ROUTING_KEY, ROUTING_KEY, Hosts, write_inventory
from fake_pagerduty import FakePagerDuty

from controller.workflows.converter import DATA_CONVERTER


@pytest.fixture
def hosts(tmp_path: Path) -> Hosts:
    """Hosts h1..h6 on localhost, and dead1 that nobody answers for."""
    found = Hosts(
        root=tmp_path,
        inventory=write_inventory(
            tmp_path / "inventory.yml",
            local=[f"h{i}" for i in range(1, 7)],
            unreachable=["dead1"],
        ),
        markers=tmp_path / "markers",
        flags=tmp_path / "flags",
        state=tmp_path / "state",
    )
    found.markers.mkdir()
    found.flags.mkdir()
    return found


@pytest.fixture
def activity_env() -> Callable[..., ActivityEnvironment]:
    """An activity environment factory: attempt, retry policy and heartbeat details set."""

    def make(
        *, attempt: int = 1, max_attempts: int = 3, details: list[Any] | None = None
    ) -> ActivityEnvironment:
        env = ActivityEnvironment()
        env.info = dataclasses.replace(
            env.info,
            attempt=attempt,
            retry_policy=RetryPolicy(maximum_attempts=max_attempts),
            heartbeat_details=details or [],
            start_to_close_timeout=timedelta(minutes=5),
            scheduled_time=datetime.now(UTC),
            current_attempt_scheduled_time=datetime.now(UTC),
        )
        return env

    return make


@pytest.fixture
def pagerduty(tmp_path: Path):
    """The PagerDuty Events API fake, over TLS with a CA made for this test."""
    fake = FakePagerDuty(routing_keys={ROUTING_KEY, OTHER_ROUTING_KEY}).start(tmp_path)
    yield fake
    fake.stop()


@pytest_asyncio.fixture(scope="session")
async def homeostat_client(temporal_dev_server) -> Client:
    """A client of the session's dev server speaking Homeostat's payloads."""
    return await Client.connect(temporal_dev_server.address, data_converter=DATA_CONVERTER)
