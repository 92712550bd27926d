import socket
from pathlib import Path

import pytest
from harness import processes

from controller import embedded, errors


async def test_starts_serves_the_ui_and_stops_without_a_trace(tmp_path):
    """The dev server serves its Web UI, keeps its SQLite file, and is gone after stop."""
    server = embedded.EmbeddedTemporal(
        db_file=tmp_path / "state" / "temporal.db",
        port=processes.free_port(),
        ui_port=processes.free_port(),
    )
    await server.start()
    pid = server.pid
    try:
        assert server.ui_url is not None
        assert processes.http_ok(server.ui_url)
        assert (tmp_path / "state" / "temporal.db").exists()
    finally:
        await server.stop()
    assert pid is not None
    assert not _alive(pid)
    assert not processes.listening(server.port)


async def test_a_taken_port_is_reported_with_its_setting(tmp_path):
    """When the gRPC port is in use, the error names temporal.embedded_port."""
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        server = embedded.EmbeddedTemporal(db_file=tmp_path / "t.db", port=port, ui=False)
        with pytest.raises(errors.EmbeddedServerError, match=r"temporal\.embedded_port"):
            await server.start()


async def test_a_server_that_exits_at_start_reports_its_output(tmp_path):
    """A binary that dies at start yields an error carrying its output, not a hang."""
    fake = tmp_path / "temporal"
    fake.write_text("#!/bin/sh\necho 'boom: bad flag' >&2\nexit 3\n")
    fake.chmod(0o755)
    server = embedded.EmbeddedTemporal(
        db_file=tmp_path / "t.db", port=processes.free_port(), ui=False, binary=str(fake)
    )
    with pytest.raises(errors.EmbeddedServerError, match="boom: bad flag"):
        await server.start()


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


async def test_the_server_gets_no_secrets_from_the_environment(tmp_path, monkeypatch):
    """The dev server child sees PATH and HOME but none of Homeostat's secrets or other variables."""
    monkeypatch.setenv("HOMEOSTAT_TICKETING__TOKEN", "jira-secret-token")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-key")
    monkeypatch.setenv("TEMPORAL_ADDRESS", "elsewhere:7233")
    seen = tmp_path / "env.txt"
    fake = tmp_path / "temporal"
    fake.write_text(f"#!/bin/sh\nenv > {seen}\nexit 3\n")
    fake.chmod(0o755)
    server = embedded.EmbeddedTemporal(
        db_file=tmp_path / "t.db", port=processes.free_port(), ui=False, binary=str(fake)
    )
    with pytest.raises(errors.EmbeddedServerError):
        await server.start()
    names = {line.split("=", 1)[0] for line in seen.read_text().splitlines() if "=" in line}
    assert "PATH" in names
    assert "HOME" in names
    assert not {"HOMEOSTAT_TICKETING__TOKEN", "AWS_SECRET_ACCESS_KEY", "TEMPORAL_ADDRESS"} & names
    assert "secret" not in seen.read_text()
