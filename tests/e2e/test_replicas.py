"""Two ingest processes and two workers do the work of one of each, once, even when one of each is killed.

Three workloads run at once against one Temporal dev server, one broker and one
Prometheus: Kafka events (a rule with a `for` window), Prometheus rules in four groups
(assigned to the ingest replicas through a Kafka consumer group), and webhook events
(forwarded through Kafka, keyed by resource, so a count window never splits). Half-way, one
ingest process and one worker are killed with SIGKILL.
"""

import asyncio
import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import homeostat
import httpx
import pytest
import yaml
from harness import processes
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from prometheus_client import parser

from controller.domain import contract, resources, transitions

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

TOKEN = "replicas-token"
GROUPS = ["replicas-a", "replicas-b", "replicas-c", "replicas-d"]
PROMETHEUS_SERVICES = {f"p{n}": GROUPS[n % len(GROUPS)] for n in range(8)}
KAFKA_SERVICES = [f"k{n}" for n in range(12)]
WEBHOOK_SERVICES = [f"w{n}" for n in range(12)]
COUNT = 3
"""An event rule fires at a resource's third event within a minute: split across two
replicas, neither would count three."""


def _rules(topic: str) -> str:
    groups = [
        {
            "name": group,
            "interval": "1s",
            "rules": [
                {
                    "name": f"Load{group[-1].upper()}",
                    "source": "prometheus",
                    "expr": f'replicas_load{{group="{group}"}} > 90',
                    "resource": "service/{{ labels.service }}",
                    "remediation": "note",
                }
            ],
        }
        for group in GROUPS
    ]
    groups.append(
        {
            "name": "replicas-events",
            "rules": [
                {
                    "name": "KafkaDown",
                    "source": "kafka",
                    "stream": topic,
                    "match": "labels.state == 'down'",
                    "count": {"threshold": COUNT, "within": "1m"},
                    "resource": "service/{{ labels.service }}",
                    "remediation": "note",
                },
                {
                    "name": "HookDown",
                    "source": "webhook",
                    "stream": "replicas",
                    "match": "labels.state == 'down'",
                    "count": {"threshold": COUNT, "within": "1m"},
                    "resource": "service/{{ labels.service }}",
                    "remediation": "note",
                },
            ],
        }
    )
    return yaml.safe_dump({"groups": groups})


class _Exporter:
    """A scrape target whose series the test sets: replicas_load{service, group}."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {}
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                lines = [
                    f'replicas_load{{service="{service}",group="{PROMETHEUS_SERVICES[service]}"}} {value}'
                    for service, value in exporter.values.items()
                ]
                body = ("\n".join(lines) + "\n").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


async def _scrape(url: str) -> dict[tuple, float]:
    async with httpx.AsyncClient(timeout=5) as http:
        answer = await http.get(f"{url}/metrics")
    found = {}
    for family in parser.text_string_to_metric_families(answer.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _group_values(metrics: dict[tuple, float], name: str) -> dict[str, float]:
    return {
        dict(labels)["group"]: value
        for (metric, labels), value in metrics.items()
        if metric == name
    }


async def _episodes(temporal, task_rules: set[str]) -> dict[tuple[str, str], list[str]]:
    """Remediation workflows by (rule, resource), from Temporal visibility."""
    found: dict[tuple[str, str], list[str]] = {}
    query = f'WorkflowType = "{contract.REMEDIATION_WORKFLOW}"'
    async for execution in temporal.list_workflows(query):
        attributes = {key.name: value for key, value in execution.typed_search_attributes}
        rule = attributes.get("HomeostatRule")
        if rule in task_rules:
            found.setdefault((rule, attributes["HomeostatResource"]), []).append(execution.id)
    return found


async def test_two_ingest_and_two_workers_give_each_episode_once_through_kills(  # noqa: C901, PLR0912, PLR0915 - one scenario, read top to bottom
    tmp_path, temporal_dev_server, kafka_bootstrap, prometheus_factory
):
    """Kafka, Prometheus and webhook episodes come out exactly as one process of each would give them, with one ingest and one worker SIGKILLed mid-run, and each rule group evaluated by one replica at a time."""
    run = uuid.uuid4().hex[:8]
    topic = f"replicas-{run}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.create_topics([NewTopic(name=topic, num_partitions=4, replication_factor=1)])
    admin.close()
    exporter = _Exporter()
    prom = prometheus_factory(
        config={
            "global": {"scrape_interval": "1s"},
            "scrape_configs": [
                {
                    "job_name": "load",
                    "static_configs": [{"targets": [f"127.0.0.1:{exporter.port}"]}],
                }
            ],
        }
    )
    (tmp_path / "rules").mkdir()
    (tmp_path / "remediations").mkdir()
    (tmp_path / "rules" / "replicas.yaml").write_text(_rules(topic))
    (tmp_path / "remediations" / "note.yaml").write_text(
        'steps:\n  - id: note\n    command: {argv: ["true"]}\n'
    )
    common = {
        "temporal": {"address": temporal_dev_server.address, "task_queue": f"replicas-{run}"},
        "rules": {
            "rules_dir": str(tmp_path / "rules"),
            "remediations_dir": str(tmp_path / "remediations"),
            "playbooks_dir": str(tmp_path / "playbooks"),
        },
        "kafka": {
            "bootstrap_servers": [kafka_bootstrap],
            "group_id": f"replicas-{run}",
            "session_timeout": "6s",
            "max_poll_interval": "10s",
        },
        "prometheus": {
            "url": prom.url,
            "evaluation_interval": "1s",
            "coordination": "kafka",
            "assignment_topic": f"replicas-groups-{run}",
            "assignment_group": f"replicas-groups-{run}",
            "assignment_partitions": 8,
            "assignment_session_timeout": "6s",
        },
        "webhooks": {
            "bearer_token": TOKEN,
            "mode": "kafka",
            "topic": f"replicas-hooks-{run}",
            "topic_partitions": 4,
        },
        "activities": {"state_dir": str(tmp_path / "runs")},
    }
    started: dict[str, homeostat.Process] = {}
    urls: dict[str, str] = {}
    for name, role in [
        ("ingest1", "ingest"),
        ("ingest2", "ingest"),
        ("worker1", "worker"),
        ("worker2", "worker"),
    ]:
        port = processes.free_port()
        config = tmp_path / f"{name}.yaml"
        config.write_text(
            yaml.safe_dump({**common, "http": {"port": port}, "service": {"role": role}})
        )
        urls[name] = f"http://127.0.0.1:{port}"
        started[name] = homeostat.Process(config, tmp_path / f"{name}.log")
    try:
        for name, process in started.items():
            await asyncio.to_thread(process.start, urls[name])
        ingests = ["ingest1", "ingest2"]

        async def groups_assigned():
            owned = [
                _group_values(await _scrape(urls[n]), "homeostat_rule_group_owned") for n in ingests
            ]
            return all(sum(o.get(g, 0) for o in owned) == 1 for g in GROUPS) and all(
                any(o.values()) for o in owned
            )

        await homeostat.eventually(groups_assigned, timeout=60, interval=0.5)

        overlaps: list[tuple[str, float]] = []
        sampling = True

        async def sample_ownership() -> None:
            while sampling:
                alive = [n for n in ingests if started[n].process.poll() is None]
                try:
                    owned = [
                        _group_values(await _scrape(urls[n]), "homeostat_rule_group_owned")
                        for n in alive
                    ]
                except httpx.HTTPError:
                    await asyncio.sleep(0.2)
                    continue
                overlaps.extend(
                    (group, time.time())
                    for group in GROUPS
                    if sum(o.get(group, 0) for o in owned) > 1
                )
                await asyncio.sleep(0.3)

        sampler = asyncio.create_task(sample_ownership())
        t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=10)
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)

        def kafka_event(service: str, index: int) -> None:
            stamp = int((t0 + timedelta(seconds=index)).timestamp() * 1000)
            event = {"timestamp": stamp, "service": service, "state": "down"}
            producer.send(topic, json.dumps(event).encode(), key=service.encode())

        async def hook_event(http, service: str, index: int) -> None:
            # Alternate replicas per event: direct evaluation would split the count.
            target = ingests[(index + WEBHOOK_SERVICES.index(service)) % 2]
            if started[target].process.poll() is not None:
                target = "ingest2"
            at = t0 + timedelta(seconds=index)
            answer = await http.post(
                f"{urls[target]}/v1/events/replicas",
                json={"timestamp": at.isoformat(), "service": service, "state": "down"},
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            assert answer.status_code == 200, answer.text

        async with httpx.AsyncClient(timeout=15) as http:
            # Two of each resource's three events before the kill, the third after it.
            for index in range(COUNT - 1):
                for service in KAFKA_SERVICES:
                    kafka_event(service, index)
                for service in WEBHOOK_SERVICES:
                    await hook_event(http, service, index)
            producer.flush()
            exporter.values = dict.fromkeys(list(PROMETHEUS_SERVICES)[:4], 95.0)
            temporal = await homeostat.client(temporal_dev_server.address)
            rules = {"KafkaDown", "HookDown", *(f"Load{g[-1].upper()}" for g in GROUPS)}

            async def some_episodes():
                return len(await _episodes(temporal, rules)) >= 3

            await homeostat.eventually(some_episodes, timeout=60, interval=0.5)
            before = {n: await _scrape(urls[n]) for n in ingests}
            for name, scraped in before.items():
                owned = _group_values(scraped, "homeostat_rule_group_owned")
                counted = _group_values(scraped, "homeostat_rule_group_evaluations_total")
                print(f"{name} before the kill: owns {owned}, evaluations {counted}")  # noqa: T201
            started["ingest1"].kill()
            started["worker1"].kill()
            for service in KAFKA_SERVICES:
                kafka_event(service, COUNT - 1)
            producer.flush()
            for service in WEBHOOK_SERVICES:
                await hook_event(http, service, COUNT - 1)
            exporter.values = dict.fromkeys(PROMETHEUS_SERVICES, 95.0)

            expected = {("KafkaDown", f"service/{s}") for s in KAFKA_SERVICES}
            expected |= {("HookDown", f"service/{s}") for s in WEBHOOK_SERVICES}
            expected |= {
                (f"Load{group[-1].upper()}", f"service/{service}")
                for service, group in PROMETHEUS_SERVICES.items()
            }

            async def all_episodes():
                found = await _episodes(temporal, rules)
                return found if set(found) >= expected else None

            try:
                await homeostat.eventually(all_episodes, timeout=120, interval=1)
            except AssertionError:
                found = await _episodes(temporal, rules)
                logs = {n: p.log_path.read_text()[-3000:] for n, p in started.items()}
                raise AssertionError(f"missing {expected - set(found)}; logs: {logs}") from None
            await asyncio.sleep(3)  # time for a duplicate to show, if any
            found = await _episodes(temporal, rules)
        sampling = False
        await sampler
        producer.close()

        assert set(found) == expected
        duplicated = {key: ids for key, ids in found.items() if len(ids) != 1}
        assert duplicated == {}
        # Event rules: the episode ids are those one process computes (rule, resource, start).
        fired_at = t0 + timedelta(seconds=COUNT - 1)
        for rule, services in [("KafkaDown", KAFKA_SERVICES), ("HookDown", WEBHOOK_SERVICES)]:
            for service in services:
                resource = resources.ResourceKey(f"service/{service}")
                episode = transitions.episode_id(rule=rule, resource=resource, started_at=fired_at)
                assert found[(rule, resource)] == [resources.remediation_workflow_id(episode)]
        # Rule groups: never two owners at once; the survivor owns all four and evaluates them.
        assert overlaps == []
        survivor = await _scrape(urls["ingest2"])
        owned = _group_values(survivor, "homeostat_rule_group_owned")
        assert owned == dict.fromkeys(GROUPS, 1.0)
        evaluations = _group_values(survivor, "homeostat_rule_group_evaluations_total")
        print(f"ingest2 at the end: evaluations {evaluations}")  # noqa: T201
        assert all(evaluations.get(group, 0) > 0 for group in GROUPS), evaluations
    finally:
        for process in started.values():
            process.stop()
        exporter.server.shutdown()
        exporter.server.server_close()
