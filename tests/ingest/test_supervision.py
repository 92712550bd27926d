"""The reload task cannot die: failures are reported, counted, shown in /readyz and retried."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from controller import assembly, service, settings
from controller.ingest import supervision
from controller.observability import metrics as metrics_module
from controller.plans import bundle, watcher

GOOD = "groups:\n  - name: g\n    rules:\n      - {name: A, expr: up == 0, resource: 'service/x'}\n"


class PanicException(BaseException):
    """What a Rust panic looks like from Python (pyo3_runtime.PanicException)."""


async def _until(predicate, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_supervise_restarts_a_loop_after_a_panic_and_stops_on_cancel():
    """A loop failing with a BaseException is reported and started again; cancel ends it."""
    starts: list[int] = []
    crashes: list[BaseException] = []

    async def loop() -> None:
        starts.append(1)
        if len(starts) == 1:
            raise PanicException("boom")
        await asyncio.Event().wait()

    task = asyncio.create_task(
        supervision.supervise(loop, on_crash=crashes.append, pause=timedelta(milliseconds=10))
    )
    await _until(lambda: len(starts) == 2)
    assert [type(crash) for crash in crashes] == [PanicException]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_watcher_retries_a_change_whose_check_crashed(tmp_path: Path, monkeypatch):
    """A check that raises is reported, and the same change loads at the next poll."""
    (tmp_path / "r.yaml").write_text(GOOD)
    sources = bundle.Sources(rules=(tmp_path,))
    watch = watcher.Watcher(sources, current=bundle.load(sources))
    real = bundle.check
    calls: list[int] = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise PanicException("native panic")
        return real(*args, **kwargs)

    monkeypatch.setattr(bundle, "check", flaky)
    (tmp_path / "r.yaml").write_text(GOOD.replace("A,", "B,"))
    reloaded: list[str] = []
    crashes: list[BaseException] = []
    task = asyncio.create_task(
        watch.run(
            interval=timedelta(milliseconds=10),
            on_reload=lambda loaded: reloaded.extend(loaded.rule_set.rules),
            on_problems=lambda _problems: None,
            on_crash=crashes.append,
        )
    )
    try:
        await _until(lambda: reloaded == ["B"])
    finally:
        task.cancel()
    assert [str(crash) for crash in crashes] == ["native panic"]


class _Temporal:
    class workflow_service:  # noqa: N801 - mirrors the client attribute
        @staticmethod
        async def get_system_info(*_args, **_kwargs):
            return None


async def test_readyz_says_not_ready_while_the_watcher_fails_and_ready_when_it_recovers(
    tmp_path: Path, monkeypatch
):
    """A crashing reload makes /readyz 503 with the reason, counted in metrics; recovery clears it."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(GOOD)
    config = settings.Settings(
        rules=settings.RulesSettings(
            rules_dir=tmp_path / "rules",
            remediations_dir=tmp_path / "remediations",
            reload_interval=timedelta(milliseconds=20),
        )
    )
    metrics = metrics_module.create()
    ingest = assembly.build_ingest(config, _Temporal(), metrics)  # type: ignore[arg-type]
    failing = True
    real = watcher.Watcher.check

    def check(self):
        if failing:
            raise PanicException("Formatting argument out of range")
        return real(self)

    monkeypatch.setattr(watcher.Watcher, "check", check)
    app = service._build_app(_Temporal(), metrics, ingest)  # type: ignore[arg-type]
    await ingest.start()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as http:
            await _until(lambda: ingest.rules_problem is not None)
            answer = await http.get("/readyz")
            assert answer.status_code == 503
            assert (
                "PanicException: Formatting argument out of range"
                in (answer.json()["checks"]["rules"])
            )
            assert metrics.registry.get_sample_value(
                "homeostat_rule_reloads_total", {"outcome": "crash"}
            )
            failing = False
            await _until(lambda: ingest.rules_problem is None)
            assert (await http.get("/readyz")).status_code == 200
    finally:
        await ingest.stop()
