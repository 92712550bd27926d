"""``homeostat up``: Temporal (embedded or external), the worker, ingest and the HTTP API.

The composition root of the running service. It starts the parts in dependency order,
waits for SIGINT or SIGTERM, and stops them in reverse order, the embedded Temporal
server last, so nothing is left running when the command returns.

An external Temporal that does not answer at start does not stop the service: HTTP and
ingest start on a client that connects on first use (webhooks answer 503 until Temporal
takes their transitions, Kafka waits with its partitions paused), ``/readyz`` says not
ready and why, and the worker starts once Temporal answers (``_TemporalLink``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
import uvicorn
from temporalio import client as temporal_client
from temporalio import runtime as temporal_runtime
from temporalio import service as temporal_service
from temporalio import worker as temporal_worker
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.api.workflowservice import v1 as workflowservice

from controller import assembly, connection, embedded, errors, server, serving
from controller import settings as settings_module
from controller import worker as worker_module
from controller.api import openapi
from controller.domain import contract
from controller.observability import metrics as metrics_module
from controller.observability import temporal_metrics, visibility
from controller.workflows import resource_io

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoints:
    """Where a running Homeostat can be reached."""

    api_url: str
    temporal_address: str
    temporal_ui_url: str | None


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the service owns SIGINT and SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


connect = connection.connect
"""``connection.connect``, kept here for the callers that know it by this name."""
tls_config = connection.tls_config
"""``connection.tls_config``, kept here for the callers that know it by this name."""


async def ensure_search_attributes(client: temporal_client.Client, namespace: str) -> None:
    """Register Homeostat's search attributes on an external Temporal, if missing."""
    kinds = {"Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD}
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=namespace,
                search_attributes={
                    name: kinds[kind] for name, kind in contract.SEARCH_ATTRIBUTES.items()
                },
            )
        )
    except temporal_service.RPCError as exc:
        if exc.status != temporal_service.RPCStatusCode.ALREADY_EXISTS:
            log.warning("search_attributes_not_registered", error=exc.message)


@contextlib.asynccontextmanager
async def temporal_server(
    settings: settings_module.TemporalSettings,
) -> AsyncIterator[tuple[str, str | None]]:
    """Yield (address, Web UI URL) of Temporal: the configured one, or an embedded dev server."""
    if settings.address is not None:
        yield settings.address, None
        return
    dev = embedded.EmbeddedTemporal(
        db_file=settings.state_dir / "temporal.db",
        host=settings.embedded_host,
        port=settings.embedded_port,
        ui_port=settings.ui_port,
        ui=settings.ui,
        search_attributes=contract.SEARCH_ATTRIBUTES,
    )
    async with dev:
        yield dev.address, dev.ui_url


class _TemporalLink:
    """Waits for Temporal to answer, then registers search attributes and runs the worker.

    Until Temporal answers, ``problem`` says why not (``/readyz``); the attempts go on
    with a growing pause, so Temporal may come up long after Homeostat.
    """

    def __init__(
        self,
        *,
        settings: settings_module.Settings,
        address: str,
        runtime: temporal_runtime.Runtime | None,
        build_worker: Callable[[temporal_client.Client], temporal_worker.Worker] | None,
    ) -> None:
        self._settings = settings
        self._address = address
        self._runtime = runtime
        self._build_worker = build_worker
        self.problem: str | None = f"connecting to Temporal at {address}"
        self.worker: temporal_worker.Worker | None = None

    async def run(self) -> None:
        """Connect (retrying until Temporal answers), then run the worker if there is one."""
        temporal = self._settings.temporal
        pause = _RECONNECT_FIRST
        while True:
            try:
                client = await connect(temporal, self._address, runtime=self._runtime)
            except errors.DependencyError as exc:
                self.problem = f"{exc} (retrying every {pause.total_seconds():.0f} s or less)"
                log.warning("temporal_unreachable", address=self._address, error=str(exc))
                await asyncio.sleep(pause.total_seconds())
                pause = min(pause * 2, _RECONNECT_MAX)
                continue
            break
        if temporal.address is not None:
            await ensure_search_attributes(client, temporal.namespace)
        self.problem = None
        log.info("temporal_connected", address=self._address)
        if self._build_worker is not None:
            self.worker = self._build_worker(client)
            await self.worker.run()

    async def shutdown(self) -> None:
        """Shut the worker down gracefully, if it runs."""
        if self.worker is not None and self.worker.is_running:
            await self.worker.shutdown()


_RECONNECT_FIRST = timedelta(milliseconds=500)
_RECONNECT_MAX = timedelta(seconds=10)


_YOUNG_COLLECTION = 10_000
"""Allocations between two collections of the youngest generation (Python's default: 700)."""


def freeze_heap() -> None:
    """Leave what start-up built out of every later garbage collection (``gc.freeze``).

    Ingest allocates per event and keeps a batch of observations alive while it is
    evaluated, so the collector's full collections come every few tens of thousands of
    events; each scans every tracked object, about 100,000 of them after start-up
    (modules, rules, clients), some 50 ms. Frozen, start-up objects are skipped and a full
    collection takes a few milliseconds. Start-up garbage is collected first.

    The youngest generation is collected every ``_YOUNG_COLLECTION`` allocations instead of
    Python's 700: a Kafka batch allocates a few objects per message and keeps them alive
    until it is evaluated, so at 700 the collector scans (and promotes) the same batch
    over and over; measured on the Kafka path, decode and evaluation cost about a sixth
    less. Cycles are still collected, a little later.
    """
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(_YOUNG_COLLECTION, middle, oldest)


def _install_stop_handlers(stop: asyncio.Event) -> Callable[[], None]:
    loop = asyncio.get_running_loop()

    def request_stop(signum: signal.Signals) -> None:
        log.info("stop_requested", signal=signum.name)
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, request_stop, signum)

    def remove() -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)

    return remove


async def run(
    settings: settings_module.Settings,
    *,
    on_ready: Callable[[Endpoints], Any] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run Homeostat until SIGINT/SIGTERM (or until ``stop`` is set).

    Raises:
        errors.HomeostatError: a part could not start; everything started is stopped first.
    """
    if settings.service.role is not settings_module.Role.ALL and settings.temporal.address is None:
        raise errors.ConfigError(
            f"service.role: a {settings.service.role.value} process shares a Temporal with "
            "the others; set temporal.address (only role 'all' runs an embedded server)"
        )
    stop_event = stop if stop is not None else asyncio.Event()
    remove_handlers = _install_stop_handlers(stop_event)
    try:
        metrics = metrics_module.create()
        runtime = temporal_metrics.build_runtime(
            metrics.by_name(), sdk_metrics_address=settings.metrics.sdk_address
        )
        async with temporal_server(settings.temporal) as (address, ui_url):
            client = await connect(settings.temporal, address, runtime=runtime, lazy=True)
            endpoints = Endpoints(api_url="", temporal_address=address, temporal_ui_url=ui_url)
            await _serve(
                settings=settings,
                metrics=metrics,
                client=client,
                endpoints=endpoints,
                stop=stop_event,
                on_ready=on_ready,
                runtime=runtime,
            )
    finally:
        remove_handlers()
    log.info("homeostat_stopped")


def _build_app(
    client: temporal_client.Client,
    metrics: metrics_module.Metrics,
    ingest: assembly.Ingest | None,
    link: _TemporalLink | None = None,
) -> Any:
    async def temporal_reachable() -> str | None:
        if link is not None and link.problem is not None:
            return link.problem
        await client.workflow_service.get_system_info(
            workflowservice.GetSystemInfoRequest(), timeout=timedelta(seconds=2)
        )
        return None

    readiness: dict[str, server.ReadinessCheck] = {"temporal": temporal_reachable}
    if ingest is None:
        return server.create_app(metrics=metrics, readiness=readiness)

    async def rules_loaded() -> str | None:
        rules = len(ingest.engine.rule_set.rules)
        if ingest.rules_problem is not None:
            return ingest.rules_problem
        return None if rules else "no rules loaded"

    readiness["rules"] = rules_loaded
    readiness["dispatch"] = ingest.dispatch_problem
    if ingest.seeder is not None or ingest.rebuild_seeder is not None:
        readiness["episodes"] = ingest.seed_problem
    app = server.create_app(
        metrics=metrics,
        readiness=readiness,
        routers=[
            ingest.router,
            *assembly.operator_routers(ingest.settings, client, metrics, ingest),
        ],
    )
    openapi.install(app)
    return app


async def _serve(
    *,
    settings: settings_module.Settings,
    metrics: metrics_module.Metrics,
    client: temporal_client.Client,
    endpoints: Endpoints,
    stop: asyncio.Event,
    on_ready: Callable[[Endpoints], Any] | None,
    runtime: temporal_runtime.Runtime | None = None,
) -> None:
    role = settings.service.role
    runs_ingest = role in {settings_module.Role.ALL, settings_module.Role.INGEST}
    runs_worker = role in {settings_module.Role.ALL, settings_module.Role.WORKER}
    ingest = assembly.build_ingest(settings, client, metrics) if runs_ingest else None
    plans_in_force = ingest.plans if ingest is not None else None

    def build_worker(connected: temporal_client.Client) -> temporal_worker.Worker:
        return worker_module.build(connected, settings, plans_in_force=plans_in_force)

    link = _TemporalLink(
        settings=settings,
        address=endpoints.temporal_address,
        runtime=runtime,
        build_worker=build_worker if runs_worker else None,
    )
    http = _Uvicorn(http_config(settings, _build_app(client, metrics, ingest, link), metrics))
    tasks = {asyncio.create_task(http.serve(), name="http server")}
    # The link runs the worker: its end ends the service. Without a worker it only connects.
    connector = asyncio.create_task(link.run(), name="temporal worker")
    if runs_worker:
        tasks.add(connector)
    refresher = None
    if runs_worker:
        gauges = visibility.VisibilityGauges(
            client,
            metrics,
            phases=[phase.value for phase in resource_io.Phase],
            open_episodes_limit=settings.metrics.open_episodes,
        )
        refresher = asyncio.create_task(gauges.run(settings.metrics.visibility_interval))
    try:
        # uvicorn exposes no event for "listening"; poll its flag until it is set.
        while not http.started and not any(task.done() for task in tasks):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if http.started:
            freeze_heap()
            if ingest is not None:
                await ingest.start()
            ready = dataclasses.replace(
                endpoints, api_url=settings.http.public_url or _bound_url(http)
            )
            log.info(
                "homeostat_ready",
                role=role.value,
                api=ready.api_url,
                temporal=ready.temporal_address,
                temporal_ui=ready.temporal_ui_url,
            )
            if on_ready is not None:
                on_ready(ready)
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait({stopper, *tasks}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
    finally:
        await _stop(
            ingest=ingest, http=http, link=link, refresher=refresher, tasks={*tasks, connector}
        )
    _raise_failures(tasks)
    if not http.started:
        raise errors.DependencyError(
            f"http.port: cannot serve on {settings.http.host}:{settings.http.port}"
        )


def http_config(
    settings: settings_module.Settings, app: Any, metrics: metrics_module.Metrics
) -> uvicorn.Config:
    """The HTTP server of ``app``, with the connection bounds and timeouts of ``settings.http``."""
    limits = serving.ConnectionLimits(
        max_connections=settings.http.max_connections,
        header_timeout=settings.http.header_timeout,
        body_timeout=settings.http.body_timeout,
    )
    return uvicorn.Config(
        app,
        host=settings.http.host,
        port=settings.http.port,
        http=serving.protocol(limits, metrics.http_connections_closed),
        timeout_keep_alive=max(1, round(settings.http.keep_alive_timeout.total_seconds())),
        log_config=None,
        access_log=False,
    )


async def _stop(
    *,
    ingest: assembly.Ingest | None,
    http: uvicorn.Server,
    link: _TemporalLink,
    refresher: asyncio.Task[None] | None,
    tasks: set[asyncio.Task[Any]],
) -> None:
    """Stop ingest first, then HTTP and the worker; wait for every task to end."""
    if refresher is not None:
        refresher.cancel()
    try:
        if ingest is not None:
            await ingest.stop()
    except Exception as exc:  # the worker must still shut down gracefully
        log.exception("ingest_stop_failed", error=str(exc))
    http.should_exit = True
    await link.shutdown()
    running = link.worker is not None and link.worker.is_running
    for task in tasks:
        if task.get_name() == "temporal worker" and not task.done() and not running:
            task.cancel()  # still waiting for Temporal: nothing to shut down gracefully
    await asyncio.gather(*([refresher] if refresher else []), *tasks, return_exceptions=True)


def _raise_failures(tasks: set[asyncio.Task[Any]]) -> None:
    for task in tasks:
        failure = None if task.cancelled() else task.exception()
        if failure is not None:
            raise errors.DependencyError(f"the {task.get_name()} stopped: {failure}") from failure


def _bound_url(http: uvicorn.Server) -> str:
    """The URL of the socket uvicorn actually bound (port 0 picks a free one)."""
    for listener in http.servers:
        for sock in listener.sockets:
            host, port = sock.getsockname()[:2]
            return f"http://{host}:{port}"
    return "http://unknown"
