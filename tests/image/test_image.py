"""The container image: built from the Containerfile with podman, run as production runs it.

No registry is reachable here: the base image is made with mmdebstrap from the machine's
own Debian mirror (once; podman keeps it), and pip inside the build trusts the host's CA
through a build secret. The test runs only where containers can run: it probes with a real
`podman run` and skips with that probe's error otherwise.
"""

import asyncio
import json
import os
import re
import shutil
import subprocess
import textwrap
import time
import uuid
from pathlib import Path

import httpx
import pytest
from harness import processes
from temporalio.client import Client

from controller.domain import contract, resources
from controller.workflows import converter, resource_io

pytestmark = [pytest.mark.image, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
BASE = "localhost/debian-python:bookworm"
IMAGE = "localhost/homeostat:test"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
TOKEN = "image-test-token"


def _mirror() -> tuple[str, str]:
    """The Debian mirror and suite the machine's own apt sources name."""
    for path in [Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")]:
        if not path.exists():
            continue
        text = path.read_text()
        uri = re.search(r"^URIs:\s*(\S+)", text, re.MULTILINE)
        suite = re.search(r"^Suites:\s*(\S+)", text, re.MULTILINE)
        if uri and suite:
            return uri.group(1), suite.group(1)
        line = re.search(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)", text, re.MULTILINE)
        if line:
            return line.group(1), line.group(2)
    pytest.fail("no Debian mirror in /etc/apt/sources.list(.d): cannot build the base image")


@pytest.fixture(scope="module")
def podman(tmp_path_factory):
    """A podman command line for this machine: runc, and open-files limits it can set."""
    missing = [tool for tool in ("podman", "mmdebstrap") if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} missing: `make test` installs them (scripts/system-deps.sh)"
        )
    conf = tmp_path_factory.mktemp("podman") / "containers.conf"
    conf.write_text(
        textwrap.dedent(
            """\
            [containers]
            default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
            [engine]
            runtime = "runc"
            """
        )
    )
    env = {**os.environ, "CONTAINERS_CONF": str(conf)}

    def run(*args, check=True, timeout=600, **kwargs):
        return subprocess.run(
            ["podman", *args],
            env=env,
            check=check,
            timeout=timeout,
            capture_output=True,
            text=True,
            **kwargs,
        )

    return run


@pytest.fixture(scope="module")
def base_image(podman):
    """The base image (Debian with python3), built with mmdebstrap when missing."""
    if podman("image", "exists", BASE, check=False).returncode != 0:
        mirror, suite = _mirror()
        started = time.monotonic()
        build = subprocess.Popen(
            [
                "mmdebstrap",
                "--variant=minbase",
                "--include=python3,python3-venv,ca-certificates",
                '--aptopt=Acquire::Check-Valid-Until "false"',
                '--customize-hook=rm -f "$1"/etc/apt/sources.list "$1"/etc/apt/sources.list.d/*',
                suite,
                "-",
                mirror,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        imported = podman("import", "-", BASE, stdin=build.stdout, check=False)
        _, errors = build.communicate(timeout=600)
        assert build.returncode == 0, errors.decode()[-2000:]
        assert imported.returncode == 0, imported.stderr
        print(f"base image built in {time.monotonic() - started:.0f} s")  # noqa: T201 - a figure for the log
    probe = podman("run", "--rm", BASE, "true", check=False, timeout=120)
    if probe.returncode != 0:
        pytest.skip(f"containers cannot run here: podman run failed: {probe.stderr.strip()[-500:]}")
    return BASE


@pytest.fixture(scope="module")
def image(podman, base_image):
    """The project image, built from the Containerfile (layers cached between runs)."""
    started = time.monotonic()
    args = ["build", "--build-arg", f"BASE={base_image}", "-t", IMAGE, "-f", "Containerfile"]
    if HOST_CA.exists():
        args += ["--secret", f"id=hostca,src={HOST_CA}"]
    built = podman(*args, ".", cwd=REPO, check=False, timeout=900)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    # The image this build replaced is left untagged: drop it (the build stage stays cached).
    podman(
        "image",
        "prune",
        "-f",
        "--filter",
        "label=org.opencontainers.image.title=homeostat",
        check=False,
    )
    size = json.loads(podman("image", "inspect", IMAGE).stdout)[0]["Size"]
    print(f"image built in {time.monotonic() - started:.0f} s, {size / 1e6:.0f} MB")  # noqa: T201
    return IMAGE


def test_the_image_has_no_compiler_and_runs_as_a_non_root_user(podman, image):
    """The final stage carries no C compiler, runs as uid 10001, and ships ansible-runner and ansible-playbook."""
    inspected = json.loads(podman("image", "inspect", image).stdout)[0]
    assert inspected["Config"]["User"] == "10001:10001"
    checked = podman(
        "run",
        "--rm",
        "--read-only",
        "--entrypoint",
        "sh",
        image,
        "-c",
        "id -u; command -v gcc cc clang || echo no-compiler; ansible-runner --version; ansible-playbook --version | head -1",
    )
    lines = checked.stdout.splitlines()
    assert lines[0] == "10001"
    assert "no-compiler" in lines
    assert any(line.startswith("ansible-playbook [core") for line in lines), checked.stdout


async def test_the_image_serves_readyz_and_turns_an_event_into_an_episode(
    podman, image, tmp_path, temporal_dev_server
):
    """Run read-only, non-root, with no capabilities and mounted playbooks: /readyz answers and one event becomes an episode whose playbook ran."""
    for folder in ("rules", "remediations", "playbooks"):
        (tmp_path / folder).mkdir()
    (tmp_path / "rules" / "image.yaml").write_text(
        textwrap.dedent(
            """\
            groups:
              - name: image
                rules:
                  - name: ImageDiskFull
                    source: webhook
                    stream: image
                    match: labels.kind == 'disk_full'
                    when: body.used_percent > 90
                    resource: host/{{ labels.host }}
                    remediation: image-cleanup
            """
        )
    )
    (tmp_path / "remediations" / "image-cleanup.yaml").write_text(
        textwrap.dedent(
            """\
            steps:
              - id: cleanup
                playbook:
                  path: demo_cleanup.yml
                  hosts: [localhost]
                  vars: {scratch: /tmp/scratch, reason: from the image}
            """
        )
    )
    shutil.copy(REPO / "playbooks" / "demo_cleanup.yml", tmp_path / "playbooks")
    for path in tmp_path.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    tmp_path.chmod(0o755)
    port = processes.free_port()
    name = f"homeostat-test-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    podman(
        "run",
        "-d",
        "--name",
        name,
        "--init",
        "--read-only",
        "--user",
        "10001",
        "--cap-drop=ALL",
        "--network=host",
        "-v",
        f"{tmp_path / 'rules'}:/etc/homeostat/rules:ro",
        "-v",
        f"{tmp_path / 'remediations'}:/etc/homeostat/remediations:ro",
        "-v",
        f"{tmp_path / 'playbooks'}:/etc/homeostat/playbooks:ro",
        "-e",
        f"HOMEOSTAT_TEMPORAL__ADDRESS={temporal_dev_server.address}",
        "-e",
        f"HOMEOSTAT_TEMPORAL__TASK_QUEUE=image-{uuid.uuid4().hex[:8]}",
        "-e",
        "HOMEOSTAT_HTTP__HOST=127.0.0.1",
        "-e",
        f"HOMEOSTAT_HTTP__PORT={port}",
        "-e",
        f"HOMEOSTAT_WEBHOOKS__BEARER_TOKEN={TOKEN}",
        image,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            deadline = time.monotonic() + 120
            ready = None
            while time.monotonic() < deadline:
                try:
                    ready = await http.get(f"{url}/readyz")
                except httpx.TransportError:
                    ready = None
                if ready is not None and ready.status_code == 200:
                    break
                running = podman("inspect", "-f", "{{.State.Running}}", name, check=False)
                if running.stdout.strip() != "true":
                    break  # it exited: its logs say why
                await asyncio.sleep(0.5)
            logs = podman("logs", name, check=False)
            assert ready is not None, logs.stdout[-3000:] + logs.stderr[-3000:]
            assert ready.status_code == 200, logs.stdout[-3000:] + logs.stderr[-3000:]
            print(f"container ready in {time.monotonic() - started:.1f} s")  # noqa: T201
            host = f"img-{uuid.uuid4().hex[:6]}"
            answer = await http.post(
                f"{url}/v1/events/image",
                json={"kind": "disk_full", "host": host, "used_percent": 97},
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            assert answer.status_code == 200, answer.text
        temporal = await homeostat_client(temporal_dev_server.address)
        workflow = resources.resource_workflow_id(resources.ResourceKey(f"host/{host}"))

        async def remediated():
            state = await temporal.get_workflow_handle(workflow).query(
                contract.QUERY_STATE, result_type=resource_io.ResourceState
            )
            record = state.episodes[0] if state.episodes else None
            return record if record is not None and record.status.value == "done" else None

        record = await _eventually(remediated, timeout=120)
        assert record.outcome is not None
        assert record.outcome.value == "succeeded", record.note
    finally:
        stopping = time.monotonic()
        podman("stop", "-t", "20", name, check=False)
        stopped_in = time.monotonic() - stopping
        podman("rm", "-f", name, check=False)
    assert stopped_in < 15, f"the container took {stopped_in:.0f} s to stop on SIGTERM"


async def homeostat_client(address):
    return await Client.connect(address, data_converter=converter.DATA_CONVERTER)


async def _eventually(check, *, timeout):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = await check()
        except Exception as exc:  # noqa: BLE001 - not started yet
            last = exc
        else:
            if value:
                return value
        await asyncio.sleep(0.5)
    raise AssertionError(f"not true within {timeout} s (last error: {last!r})")
