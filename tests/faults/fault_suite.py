"""One fault run from start to verdict, and its report (text for the terminal, JSON for soak)."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fault_cluster
import fault_driver
import fault_oracle
from fake_jira import FakeJira
from fake_pagerduty import FakePagerDuty
from kafka.admin import KafkaAdminClient, NewTopic
from temporalio.client import Client

from controller.workflows import converter


@dataclass(frozen=True, kw_only=True)
class Sizes:
    """How big a run is."""

    kills: int
    kafka_resources: int
    webhook_resources: int
    span: float
    """Seconds over which resources fire."""
    settle_timeout: float


@dataclass
class Outcome:
    """A finished run: what happened and what the oracle said."""

    run: fault_driver.Run
    verdict: fault_oracle.Verdict
    seconds: float
    failed_starts: dict[str, int]

    @property
    def kills_survived(self) -> int:
        return sum(1 for _, _, back in self.run.recoveries if back is not None)

    def as_json(self) -> dict[str, Any]:
        recovered = [back for _, _, back in self.run.recoveries if back is not None]
        return {
            "seed": self.run.schedule.seed,
            "seconds": round(self.seconds, 1),
            "kills": self.run.kills,
            "kills_survived": self.kills_survived,
            "kills_by_target": _count(target for _, target in self.run.kill_times),
            "broker_stalls": sum(1 for f in self.run.faults if f.kind == "pause-broker"),
            "homeostat_kills_in_temporal_outage": sum(
                1 for f in self.run.faults if f.kind == "ingest-in-outage"
            ),
            "recovery_seconds": {
                "median": statistics.median(recovered) if recovered else None,
                "max": max(recovered, default=None),
            },
            "episodes_checked": self.verdict.episodes_checked,
            "losses": len(self.verdict.losses),
            "duplicates": len(self.verdict.duplicates),
            "phantoms": len(self.verdict.phantoms),
            "excused_reruns": len(self.verdict.excused_reruns),
            "failed_starts": self.failed_starts,
            "settled_after_seconds": self.verdict.settled_after,
            "faults": [asdict(fault) for fault in self.run.faults],
            "findings": {
                "losses": self.verdict.losses,
                "duplicates": self.verdict.duplicates,
                "phantoms": self.verdict.phantoms,
                "excused_reruns": self.verdict.excused_reruns,
            },
            "notes": self.run.notes,
        }

    def text(self) -> str:
        data = self.as_json()
        recovery = data["recovery_seconds"]
        lines = [
            (
                f"fault suite: seed {data['seed']} (FAULTS_SEED={data['seed']} reproduces "
                f"the schedule), {data['seconds']} s"
            ),
            (
                f"  kills survived   {data['kills_survived']} of {data['kills']} "
                f"{data['kills_by_target']}, {data['broker_stalls']} broker stalls, "
                f"{data['homeostat_kills_in_temporal_outage']} Homeostat kills inside a "
                "Temporal outage"
            ),
            (
                f"  recovery         median {recovery['median']} s, max {recovery['max']} s; "
                f"failed starts {data['failed_starts']}"
            ),
            f"  episodes checked {data['episodes_checked']}",
            f"  losses           {data['losses']}",
            f"  duplicates       {data['duplicates']}",
            f"  phantoms         {data['phantoms']}",
            (
                f"  excused re-runs  {data['excused_reruns']} (the worker killed or Temporal "
                "down inside the step)"
            ),
            "  faults           " + ", ".join(f"{f['at']}s {f['kind']}" for f in data["faults"]),
        ]
        for kind, one in (("losses", "lost"), ("duplicates", "duplicate"), ("phantoms", "phantom")):
            lines += [f"  {one}: {item}" for item in data["findings"][kind]]
        return "\n".join(lines)


def _count(items: Any) -> dict[str, int]:
    found: dict[str, int] = {}
    for item in items:
        found[item] = found.get(item, 0) + 1
    return dict(sorted(found.items()))


async def run(root: Path, *, seed: int, sizes: Sizes) -> Outcome:
    """Start the cluster in ``root``, run the schedule of ``seed``, judge, stop everything."""
    began = time.monotonic()
    folders = fault_cluster.Folders(root)
    folders.write_content()
    pagerduty = FakePagerDuty(routing_keys={fault_cluster.ROUTING_KEY}).start(root)
    jira = FakeJira(cloud=True, user=fault_cluster.JIRA_USER, token=fault_cluster.JIRA_TOKEN).start(
        root
    )
    broker = fault_cluster.Broker(folders.logs)
    temporal = fault_cluster.Temporal(folders.logs)
    ingest = worker = None
    try:
        broker.start()
        await temporal.start()
        await asyncio.to_thread(_create_topic, broker.bootstrap)
        config = fault_cluster.write_settings(
            folders,
            temporal=temporal.address,
            bootstrap=broker.bootstrap,
            pagerduty=pagerduty,
            jira=jira,
            group=f"faults-{seed}",
        )
        ingest = fault_cluster.Homeostat("ingest", config=config, folder=folders.logs)
        worker = fault_cluster.Homeostat("worker", config=config, folder=folders.logs)
        ingest.start()
        worker.start()
        evidence = fault_oracle.Evidence(pagerduty=pagerduty, jira=jira, markers=folders.markers)
        plan = fault_driver.schedule(
            seed,
            kills=sizes.kills,
            kafka_resources=sizes.kafka_resources,
            webhook_resources=sizes.webhook_resources,
            span=sizes.span,
        )
        driver = fault_driver.Driver(
            plan=plan,
            temporal=temporal,
            broker=broker,
            ingest=ingest,
            worker=worker,
            ticket_exists=evidence.ticket_exists,
        )
        done = await driver.execute()
        settled = await fault_oracle.wait_settled(evidence, done, timeout=sizes.settle_timeout)
        client = await Client.connect(temporal.address, data_converter=converter.DATA_CONVERTER)
        verdict = await fault_oracle.judge(run=done, evidence=evidence, temporal=client)
        verdict.settled_after = settled
        return Outcome(
            run=done,
            verdict=verdict,
            seconds=time.monotonic() - began,
            failed_starts={"ingest": ingest.failed_starts, "worker": worker.failed_starts},
        )
    finally:
        for process in (ingest, worker):
            if process is not None:
                await asyncio.to_thread(process.stop)
        await temporal.stop()
        broker.stop()
        pagerduty.stop()
        jira.stop()


def _create_topic(bootstrap: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(fault_cluster.TOPIC, num_partitions=2, replication_factor=1)])
    finally:
        admin.close()


def write_results(folder: Path, outcomes: list[Outcome]) -> None:
    """Write ``faults.json`` (every run, and totals) and ``faults.md`` into ``folder``."""
    runs = [outcome.as_json() for outcome in outcomes]
    keys = (
        "kills",
        "kills_survived",
        "episodes_checked",
        "losses",
        "duplicates",
        "phantoms",
        "excused_reruns",
    )
    totals = {key: sum(r[key] for r in runs) for key in keys}
    when = datetime.now(UTC).isoformat(timespec="seconds")
    folder.mkdir(parents=True, exist_ok=True)
    data = {"when": when, "totals": totals, "runs": runs}
    (folder / "faults.json").write_text(json.dumps(data, indent=2) + "\n")
    lines = [
        "# Fault suite (make soak)",
        "",
        (
            f"Run {when} by tests/faults/test_fault_soak.py: ingest and worker as separate "
            "`homeostat up --role` processes, the Temporal dev server (restarted on the same "
            "SQLite file and port) and a Tansu broker (stopped with SIGSTOP, never killed: it "
            "keeps messages in memory only), PagerDuty and Jira contract servers, a real "
            "playbook through ansible-runner."
        ),
        "",
        (
            "| seed | kills survived | kills by target | broker stalls | Homeostat kills in a "
            "Temporal outage | episodes checked | losses | duplicates | excused re-runs | seconds |"
        ),
        "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in runs:
        by_target = ", ".join(f"{k} {v}" for k, v in r["kills_by_target"].items())
        lines.append(
            f"| {r['seed']} | {r['kills_survived']} of {r['kills']} | {by_target} | "
            f"{r['broker_stalls']} | {r['homeostat_kills_in_temporal_outage']} | "
            f"{r['episodes_checked']} | {r['losses']} | {r['duplicates']} | "
            f"{r['excused_reruns']} | {r['seconds']} |"
        )
    for r in runs:
        for kind in ("losses", "duplicates", "phantoms"):
            lines += [f"- seed {r['seed']}, {kind}: {item}" for item in r["findings"][kind]]
    (folder / "faults.md").write_text("\n".join(lines) + "\n")
