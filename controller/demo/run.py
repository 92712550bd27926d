"""The demo's script: start everything, break the service, watch Homeostat heal it, stop everything.

A composition root like ``service``: it builds its own settings (every port free, every file
in the demo's folder, the rules, plans and playbooks of the checkout) and runs Homeostat in
this process with an embedded Temporal server. What it prints is the scenario as a user
watches it: what happened, and what it waits for next. Whatever happens, everything it
started is stopped before it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO

import httpx
from temporalio import client as temporal_client
from temporalio import service as temporal_service

from controller import errors, service
from controller import settings as settings_module
from controller.demo import stack, standin
from controller.domain import contract, resources, transitions
from controller.operations import histories, links
from controller.operations import timeline_model as tm
from controller.plans import loader as plans_loader
from controller.plans import spec, templates
from controller.workflows import remediation_io, resource_io

SERVICE = "demo-web"
"""The stand-in service the demo breaks."""
RESOURCE = resources.ResourceKey(f"service/{SERVICE}")
_POLL = 0.5


class DemoError(errors.HomeostatError):
    """The scenario did not go as it should; the message says what was awaited."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """How the demo runs.

    Attributes:
        workdir: every file the demo writes goes here (Temporal's database, run folders,
            the stand-in service, Prometheus and Alertmanager).
        rules_dir: the rule files (the checkout's ``rules/``).
        remediations_dir: the plans.
        playbooks_dir: the playbooks.
        ui_port: the Temporal Web UI's port when free (another one otherwise).
        timeout: how long the scenario may take from the kill to the resolve.
        keep: at the end, keep Temporal and its Web UI running until Ctrl-C.
    """

    workdir: Path
    rules_dir: Path
    remediations_dir: Path
    playbooks_dir: Path
    ui_port: int = 8233
    timeout: timedelta = timedelta(minutes=3)
    keep: bool = False


class Progress:
    """Prints one line per event, with the seconds since the demo started."""

    def __init__(self, out: TextIO) -> None:
        """Write to ``out``."""
        self._out = out
        self._started = time.monotonic()

    def say(self, text: str) -> None:
        """Print what happened."""
        self._out.write(f"[{time.monotonic() - self._started:6.1f}s] {text}\n")
        self._out.flush()

    def wait(self, text: str) -> None:
        """Print what is awaited next."""
        self.say(f"... {text}")

    def raw(self, text: str) -> None:
        """Print ``text`` as it is."""
        self._out.write(text)
        self._out.flush()


def free_port(preferred: int = 0) -> int:
    """``preferred`` if nothing listens there, else a free loopback port."""
    if preferred and _free(preferred):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def demo_settings(
    options: Options, *, http_port: int, prometheus_url: str, token: str
) -> settings_module.Settings:
    """The demo's own settings; ``HOMEOSTAT_*`` variables do not apply to it."""
    return settings_module.Settings.model_validate(
        {
            "temporal": {
                "state_dir": str(options.workdir / "temporal"),
                "embedded_port": free_port(),
                "ui_port": free_port(options.ui_port),
            },
            "http": {"port": http_port},
            "alertmanager": {"bearer_token": token},
            "prometheus": {"url": prometheus_url},
            "rules": {
                "rules_dir": str(options.rules_dir),
                "remediations_dir": str(options.remediations_dir),
                "playbooks_dir": str(options.playbooks_dir),
            },
            "activities": {"state_dir": str(options.workdir / "runs")},
        }
    )


async def run(options: Options, *, out: TextIO, show: Callable[[tm.Timeline], None]) -> int:
    """Run the demo; the exit status (0 when Homeostat healed the service and closed the episode).

    ``show`` prints the episode's timeline (``homeostat history``) while Temporal still runs.

    Raises:
        errors.DependencyError: Prometheus or Alertmanager is not installed, or a part did
            not start.
        errors.ConfigError: the rules, plans or playbooks folder is missing.
    """
    for folder in (options.rules_dir, options.remediations_dir, options.playbooks_dir):
        if not folder.is_dir():
            raise errors.ConfigError(
                f"{folder} does not exist: run `homeostat demo` in the Homeostat checkout "
                "(it uses the shipped rules/, remediations/ and playbooks/)"
            )
    stack.find_binary(stack.PROMETHEUS_BINARIES)
    stack.find_binary(stack.ALERTMANAGER_BINARIES)
    progress = Progress(out)
    progress.say(
        f"Homeostat demo: self-healing from an Alertmanager alert (docs/scenarios.md). "
        f"Files in {options.workdir}"
    )
    async with contextlib.AsyncExitStack() as stack_of_parts:
        stop = asyncio.Event()
        unit = standin.Unit(name=SERVICE, directory=options.workdir / "services", port=free_port())
        stack_of_parts.callback(standin.stop, unit)
        pid = await _start_service(unit)
        progress.say(f"started the stand-in service {SERVICE} (pid {pid}) on {unit.address}")

        http_port = free_port()
        token = secrets.token_urlsafe(24)
        alertmanager = stack.alertmanager(
            workdir=options.workdir / "alertmanager",
            port=free_port(),
            webhook_url=f"http://127.0.0.1:{http_port}/v1/alertmanager",
            token=token,
        )
        prometheus = stack.prometheus(
            workdir=options.workdir / "prometheus",
            port=free_port(),
            services=[unit],
            alertmanager=alertmanager.address,
        )
        config = demo_settings(
            options, http_port=http_port, prometheus_url=prometheus.url, token=token
        )
        progress.wait("starting Homeostat and its embedded Temporal server")
        endpoints = await _start_homeostat(config, stop, stack_of_parts)
        progress.say(f"Homeostat is up: API {endpoints.api_url}")
        if endpoints.temporal_ui_url:
            progress.say(f"Temporal Web UI: {endpoints.temporal_ui_url} (watch it live)")
        for part in (alertmanager, prometheus):
            await part.start()
            stack_of_parts.push_async_callback(part.stop)
            progress.say(f"started {part.name} on {part.url}")
        client = await service.connect(config.temporal, endpoints.temporal_address)
        watcher = _Watcher(
            client=client,
            progress=progress,
            unit=unit,
            stop=stop,
            remediations_dir=options.remediations_dir,
        )
        progress.wait(f"waiting for Prometheus to scrape {SERVICE}")
        await watcher.until(
            lambda: _scraped_up(prometheus.url), "Prometheus to scrape the service", 60
        )
        progress.say(f"Prometheus sees {SERVICE} up")
        os.kill(pid, signal.SIGKILL)
        progress.say(f"killed {SERVICE} (pid {pid}) with SIGKILL; nobody touches anything now")
        progress.wait(
            "waiting: Prometheus sees it down, fires DemoServiceDown after 3 s, "
            "Alertmanager notifies Homeostat"
        )
        outcome = await watcher.follow(options.timeout)
        web = links.Links(
            ui_url=endpoints.temporal_ui_url or "", namespace=config.temporal.namespace
        )
        progress.say(f"homeostat history {outcome.episode}:")
        progress.raw("\n")
        show(await histories.timeline_of(client, outcome.episode, links=web))
        progress.raw("\n")
        if endpoints.temporal_ui_url:
            progress.say(f"the episode in the Temporal Web UI: {web.episode(outcome.episode)}")
        if options.keep:
            progress.say("Temporal and its Web UI keep running; press Ctrl-C to stop everything")
            await stop.wait()
        progress.wait("stopping Prometheus, Alertmanager, the service, Homeostat and Temporal")
    progress.say("stopped; nothing is left running")
    return 0 if outcome.outcome is remediation_io.Outcome.SUCCEEDED else 1


async def _start_service(unit: standin.Unit) -> int:
    """Start the stand-in through its own command, as the playbook will: its process id."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "controller.demo.standin",
        "start",
        "--dir",
        str(unit.directory),
        "--port",
        str(unit.port),
        "--",
        unit.name,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    pid = standin.running_pid(unit)
    if process.returncode != 0 or pid is None:
        raise errors.DependencyError(f"the stand-in service did not start: {output.decode()}")
    return pid


async def _start_homeostat(
    config: settings_module.Settings, stop: asyncio.Event, parts: contextlib.AsyncExitStack
) -> service.Endpoints:
    """Run Homeostat in this process until ``stop``; its endpoints once it is ready."""
    ready: asyncio.Future[service.Endpoints] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(service.run(config, stop=stop, on_ready=ready.set_result))

    async def finish() -> None:
        stop.set()
        with contextlib.suppress(errors.HomeostatError):
            await task

    parts.push_async_callback(finish)
    waiting: set[asyncio.Future[Any]] = {task, ready}
    done, _ = await asyncio.wait(waiting, timeout=120, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()  # raises why it stopped
        raise DemoError("Homeostat stopped before it was ready")
    if ready not in done:
        raise DemoError("Homeostat did not get ready within 120 s")
    return ready.result()


async def _scraped_up(prometheus_url: str) -> bool:
    async with httpx.AsyncClient(timeout=2) as http:
        answer = await http.get(
            f"{prometheus_url}/api/v1/query", params={"query": f'up{{job="{stack.JOB}"}}'}
        )
    result = answer.json().get("data", {}).get("result", [])
    return bool(result) and result[0]["value"][1] == "1"


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """How the episode ended."""

    episode: resources.EpisodeId
    outcome: remediation_io.Outcome | None


class _Watcher:
    """Follows the resource's workflow and the service, and says what changes."""

    def __init__(
        self,
        *,
        client: temporal_client.Client,
        progress: Progress,
        unit: standin.Unit,
        stop: asyncio.Event,
        remediations_dir: Path,
    ) -> None:
        self._remediations_dir = remediations_dir
        self._client = client
        self._progress = progress
        self._unit = unit
        self._stop = stop
        self._said: set[str] = set()

    async def until(self, check: Callable[[], Awaitable[bool]], what: str, seconds: float) -> None:
        """Poll ``check`` until it is true.

        Raises:
            DemoError: not within ``seconds``, or the demo was interrupted.
        """
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self._stop.is_set():
                raise DemoError(f"interrupted while waiting for {what}")
            with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                if await check():
                    return
            await asyncio.sleep(_POLL)
        raise DemoError(f"gave up waiting for {what} after {seconds:.0f} s")

    def _once(self, key: str, text: str, *, waiting: str = "") -> None:
        if key in self._said:
            return
        self._said.add(key)
        self._progress.say(text)
        if waiting:
            self._progress.wait(waiting)

    async def follow(self, within: timedelta) -> Outcome:
        """Say what the resource's workflow does until its episode is closed.

        Raises:
            DemoError: the episode did not close ``within``.
        """
        found: list[Outcome] = []
        first_pid = standin.running_pid(self._unit)

        async def closed() -> bool:
            state = await self._state()
            if state is None:
                return False
            for record in state.episodes:
                await self._describe(record)
            # Before the outcome: a quick heal can close the episode between two looks.
            pid = standin.running_pid(self._unit)
            if pid is not None and pid != first_pid:
                self._once(
                    "back",
                    f"{SERVICE} answers again (pid {pid}), started by the playbook",
                )
            for done in state.outcomes:
                self._once(
                    f"closed:{done.episode}",
                    f"the alert resolved; episode closed, outcome {_value(done.outcome)}",
                )
                found.append(Outcome(episode=done.episode, outcome=done.outcome))
                return True
            return False

        await self.until(closed, "the episode to be healed and closed", within.total_seconds())
        return found[0]

    async def _state(self) -> resource_io.ResourceState | None:
        handle = self._client.get_workflow_handle(resources.resource_workflow_id(RESOURCE))
        try:
            state: resource_io.ResourceState = await handle.query(
                contract.QUERY_STATE, result_type=resource_io.ResourceState
            )
        except (temporal_service.RPCError, temporal_client.WorkflowQueryFailedError):
            return None
        return state

    async def _describe(self, record: resource_io.EpisodeRecord) -> None:
        episode = record.episode
        self._once(
            f"open:{episode}",
            f"Alertmanager notified Homeostat: episode {episode} opened "
            f"(rule {record.fired.rule}, plan {record.fired.remediation})",
            waiting="waiting for the remediation: playbook, then verification",
        )
        if record.status is resource_io.EpisodeStatus.RUNNING:
            progress = await self._phase(episode)
            steps = self._steps(record.fired)
            if progress is not None and progress.done < len(steps):
                self._once(
                    f"{episode}:step:{progress.done}",
                    f"remediation step {progress.done + 1} of {len(steps)}: {steps[progress.done]}",
                )
        if record.status is resource_io.EpisodeStatus.DONE:
            self._once(
                f"done:{episode}",
                f"remediation {_value(record.outcome)}: {record.note}",
                waiting="waiting for Prometheus to resolve the alert, which ends the episode",
            )

    def _steps(self, fired: transitions.Transition) -> list[str]:
        """The plan's top-level steps, described for people (the alert's labels filled in)."""
        try:
            plan = plans_loader.find_plan(self._remediations_dir, fired.remediation or "")
        except errors.RuleFileError:
            return []
        if plan is None:
            return []
        scope = templates.Scope(labels=fired.labels, annotations=fired.annotations)
        return [_describe_step(step, scope) for step in plan.steps]

    async def _phase(self, episode: resources.EpisodeId) -> remediation_io.Progress | None:
        handle = self._client.get_workflow_handle(resources.remediation_workflow_id(episode))
        try:
            found: remediation_io.Progress = await handle.query(
                contract.QUERY_PROGRESS, result_type=remediation_io.Progress
            )
        except (temporal_service.RPCError, temporal_client.WorkflowQueryFailedError):
            return None
        return found


def _describe_step(step: spec.Step, scope: templates.Scope) -> str:
    match step:
        case spec.PlaybookStep():
            return f"{step.id}, playbook {step.playbook}"
        case spec.VerifyStep():
            condition = templates.render(step.promql or step.cel, scope, strict=False)
            return f"{step.id}, verify {condition}"
    return f"{step.id} ({step.kind})"


def _value(outcome: remediation_io.Outcome | None) -> str:
    return outcome.value if outcome is not None else "none"
