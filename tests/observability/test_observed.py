import json
import re
import time
import urllib.parse

import httpx
import kafka
import observed_scenario as scenario
import pytest
import pytest_asyncio
from fake_jira import FakeJira
from fake_pagerduty import FakePagerDuty
from grafana_foundation_sdk.cog import encoder as cogencoder
from grafana_foundation_sdk.cog import plugins as cogplugins
from grafana_foundation_sdk.models import dashboard as grafana_dashboard
from grafana_foundation_sdk.models import prometheus as grafana_prometheus
from harness import processes, prometheus
from prometheus_client import parser

from controller.workflows import telemetry

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def observed(tmp_path_factory, temporal_dev_server, kafka_bootstrap):
    """Homeostat after the scenario, scraped every second by a real Prometheus."""
    folder = tmp_path_factory.mktemp("observed")
    scenario.write_files(folder)
    pagerduty = FakePagerDuty(routing_keys={scenario.ROUTING_KEY}).start(folder)
    jira = FakeJira(cloud=False, token=scenario.JIRA_TOKEN).start(folder)
    http_port, sdk_port = processes.free_port(), processes.free_port()
    prom = prometheus.start_prometheus(
        folder / "prometheus",
        config={
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {
                    "job_name": "homeostat",
                    "static_configs": [{"targets": [f"127.0.0.1:{http_port}"]}],
                },
                {
                    "job_name": "homeostat-temporal-sdk",
                    "static_configs": [{"targets": [f"127.0.0.1:{sdk_port}"]}],
                },
            ],
        },
    )
    config = scenario.homeostat.make_settings(
        folder,
        temporal_dev_server.address,
        http={"port": http_port},
        rules={"playbooks_dir": str(scenario.REPO / "playbooks")},
        webhooks={"bearer_token": scenario.TOKEN},
        kafka={
            "bootstrap_servers": [kafka_bootstrap],
            "group_id": "observed",
            "max_poll_interval": "10s",
            "session_timeout": "6s",
        },
        prometheus={"url": prom.url, "evaluation_interval": "1s"},
        paging={
            "routing_key": scenario.ROUTING_KEY,
            "events_url": pagerduty.url,
            "ca_file": str(pagerduty.ca_file),
        },
        ticketing={"url": jira.url, "flavor": "datacenter", "token": scenario.JIRA_TOKEN},
        activities={"state_dir": str(folder / "runs")},
        metrics={"sdk_address": f"127.0.0.1:{sdk_port}", "visibility_interval": "1s"},
    )
    temporal = await scenario.homeostat.client(temporal_dev_server.address)
    producer = kafka.KafkaProducer(bootstrap_servers=[kafka_bootstrap])
    try:
        async with scenario.homeostat.running(config) as endpoints:
            for index in range(5):
                payload = {"kind": "error", "service": f"kafka-{index % 2}", "n": index}
                producer.send("observed-events", json.dumps(payload).encode(), key=b"k")
            producer.flush()
            closed, waiting = await scenario.play(endpoints.api_url, temporal)

            async def kafka_read():
                families = await _scrape(f"{endpoints.api_url}/metrics")
                evaluated = _samples(families, "homeostat_rule_evaluations_total")
                return evaluated.get((("rule", "ObservedKafka"),), 0) >= 5

            await scenario.homeostat.eventually(kafka_read, timeout=60)
            await scenario.settle(4)
            yield scenario.Observed(
                api_url=endpoints.api_url,
                sdk_metrics_url=f"http://127.0.0.1:{sdk_port}/metrics",
                prometheus_url=prom.url,
                temporal=temporal,
                namespace="default",
                closed_episode=closed,
                waiting_episode=waiting,
            )
    finally:
        producer.close()
        prom.process.stop()
        pagerduty.stop()
        jira.stop()


async def _scrape(url: str) -> list:
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.get(url)
    answer.raise_for_status()
    return list(parser.text_string_to_metric_families(answer.text))


def _samples(families, name: str) -> dict[tuple, float]:
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in families
        for sample in family.samples
        if sample.name == name
    }


async def test_worker_metrics_count_what_the_workflows_did(observed):
    """After the scenario, /metrics counts its episodes, steps, approval, suppression, page, ticket and playbook hosts."""
    families = await _scrape(f"{observed.api_url}/metrics")
    started = _samples(families, "homeostat_episodes_started_total")
    assert started[(("rule", "ObservedLatency"),)] >= 3
    ended = _samples(families, "homeostat_episodes_ended_total")
    assert ended[(("outcome", "succeeded"), ("rule", "ObservedLatency"))] == 1
    durations = _samples(families, "homeostat_episode_duration_seconds_count")
    assert durations[(("outcome", "succeeded"), ("rule", "ObservedLatency"))] == 1
    steps = _samples(families, "homeostat_steps_total")
    for kind, outcome in [
        ("approve", "approved"),
        ("command", "succeeded"),
        ("playbook", "succeeded"),
        ("page", "succeeded"),
        ("ticket", "succeeded"),
    ]:
        assert steps[(("kind", kind), ("outcome", outcome))] == 1, (kind, steps)
    assert _samples(families, "homeostat_step_duration_seconds_count")
    assert _samples(families, "homeostat_suppressions_total") == {(("reason", "cooldown"),): 1}
    assert _samples(families, "homeostat_approvals_requested_total")[()] == 2
    assert _samples(families, "homeostat_approvals_decided_total") == {
        (("channel", "cli"), ("decision", "approved")): 1
    }
    assert _samples(families, "homeostat_pages_total") == {
        (("action", "trigger"),): 1,
        (("action", "resolve"),): 1,
    }
    assert _samples(families, "homeostat_tickets_total") == {
        (("action", "opened"),): 1,
        (("action", "resolved"),): 1,
    }
    assert _samples(families, "homeostat_playbook_hosts_total")[(("status", "changed"),)] == 1


async def test_visibility_gauges_show_the_waiting_approval_and_open_episode(observed):
    """The pending approval and the waiting episode's workflow id appear in /metrics, read from Temporal."""
    families = await _scrape(f"{observed.api_url}/metrics")
    assert _samples(families, "homeostat_approvals_pending")[()] >= 1
    phases = _samples(families, "homeostat_resources")
    assert phases[(("phase", "awaiting_approval"),)] >= 1
    opened = _samples(families, "homeostat_open_episode_start_time_seconds")
    ids = {dict(labels)["workflow_id"] for labels in opened}
    assert observed.waiting_episode in ids
    assert observed.closed_episode not in ids
    started = next(
        value
        for labels, value in opened.items()
        if dict(labels)["workflow_id"] == observed.waiting_episode
    )
    assert time.time() - 300 < started <= time.time()


async def test_ingest_metrics_cover_transitions_evaluations_conditions_lag_and_webhooks(observed):
    """Transitions by rule, evaluations by rule, conditions by state, Kafka lag and webhook durations are exported."""
    families = await _scrape(f"{observed.api_url}/metrics")
    transitions = _samples(families, "homeostat_transitions_total")
    assert transitions[(("kind", "fired"), ("rule", "ObservedLatency"))] == 3
    assert transitions[(("kind", "resolved"), ("rule", "ObservedLatency"))] == 1
    evaluations = _samples(families, "homeostat_rule_evaluations_total")
    assert evaluations[(("rule", "ObservedLatency"),)] >= 4
    assert evaluations[(("rule", "ObservedScrape"),)] >= 2
    assert evaluations[(("rule", "ObservedKafka"),)] >= 5
    conditions = _samples(families, "homeostat_conditions")
    assert conditions[(("rule", "ObservedLatency"), ("state", "firing"))] == 2
    lag = _samples(families, "homeostat_kafka_consumer_lag")
    assert lag, "no partition lag exported"
    assert all(value == 0 for value in lag.values())
    requests = _samples(families, "homeostat_http_request_duration_seconds_count")
    assert requests[(("code", "200"), ("route", "events"))] == 4


async def test_no_created_series_and_no_resource_name_in_any_label(observed):
    """No metric exports a *_created series, and no label value names a resource (except the bounded open-episode list)."""
    families = await _scrape(f"{observed.api_url}/metrics")
    names = {sample.name for family in families for sample in family.samples}
    assert not [name for name in names if name.endswith("_created")]
    resource_names = [scenario.RESOURCE, "checkout-api-7f9c", "inventory-db-3", "kafka-0"]
    for family in families:
        if family.name == "homeostat_open_episode_start_time_seconds":
            continue
        for sample in family.samples:
            for value in sample.labels.values():
                assert not any(name in value for name in resource_names), (sample.name, value)
    declared = {family.name for family in families}
    assert set(telemetry.NAMES) <= declared


async def test_temporal_sdk_metrics_are_served_on_their_own_endpoint(observed):
    """The SDK's runtime serves temporal_* metrics with Prometheus conventions; Homeostat's stay on /metrics."""
    families = await _scrape(observed.sdk_metrics_url)
    names = {sample.name for family in families for sample in family.samples}
    assert any(
        re.fullmatch(r"temporal_workflow_task_execution_latency_seconds_bucket", n) for n in names
    )
    assert any(name.startswith("temporal_") and name.endswith("_total") for name in names)
    assert not [name for name in names if name.startswith("homeostat_")]


DASHBOARD = scenario.REPO / "helm" / "homeostat" / "dashboards" / "homeostat.json"
_VARIABLE = re.compile(r"\$\{([^}:]+)(?::(\w+))?\}")


def _dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def _panels(dashboard: dict) -> list[dict]:
    found = []
    for panel in dashboard["panels"]:
        found += panel.get("panels", [])
        if panel["type"] != "row":
            found.append(panel)
    return found


def _promql(expr: str) -> str:
    return expr.replace("$__rate_interval", "1m").replace("$__range", "5m")


async def _query(prometheus_url: str, expr: str) -> list[dict]:
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.get(f"{prometheus_url}/api/v1/query", params={"query": _promql(expr)})
    body = answer.json()
    assert body["status"] == "success", (expr, body)
    return body["data"]["result"]


def test_the_dashboard_loads_in_the_typed_grafana_model_without_losing_anything():
    """The dashboard JSON decodes into grafana-foundation-sdk's Dashboard, every query as a typed Prometheus query, and encodes back the same panels, queries and links."""
    cogplugins.register_default_plugins()
    data = _dashboard()
    model = grafana_dashboard.Dashboard.from_json(data)
    assert model.title == "Homeostat"
    assert [v.name for v in model.templating.list_val] == ["datasource", "temporal_ui", "namespace"]
    typed = [
        panel
        for item in model.panels
        for panel in ([item] if isinstance(item, grafana_dashboard.Panel) else item.panels)
    ]
    assert len(typed) == len(_panels(data)) >= 20
    for panel in typed:
        assert panel.targets, panel.title
        for target in panel.targets:
            assert isinstance(target, grafana_prometheus.Dataquery), panel.title
            assert target.expr.strip()
    again = json.loads(json.dumps(model.to_json(), cls=cogencoder.JSONEncoder))
    assert [(p["title"], [t["expr"] for t in p["targets"]]) for p in _panels(again)] == [
        (p["title"], [t["expr"] for t in p["targets"]]) for p in _panels(data)
    ]
    assert [(link["title"], link["url"]) for link in again["links"]] == [
        (link["title"], link["url"]) for link in data["links"]
    ]


async def test_every_dashboard_query_parses_and_returns_data_from_prometheus(observed):
    """Each panel's PromQL, run by the Prometheus that scraped Homeostat during the scenario, parses and returns series."""
    queries = [
        (panel["title"], target["expr"])
        for panel in _panels(_dashboard())
        for target in panel["targets"]
    ]
    empty = [
        (title, expr) for title, expr in queries if not await _query(observed.prometheus_url, expr)
    ]
    assert empty == []


def _links(panel: dict) -> list[str]:
    config = panel.get("fieldConfig", {})
    found = [link["url"] for link in panel.get("links", [])]
    found += [link["url"] for link in config.get("defaults", {}).get("links", [])]
    for override in config.get("overrides", []):
        for prop in override["properties"]:
            if prop["id"] == "links":
                found += [link["url"] for link in prop["value"]]
    return found


def _resolve(template: str, values: dict[str, str]) -> str:
    def one(match: re.Match) -> str:
        value = values[match.group(1)]
        return urllib.parse.quote(value, safe="") if match.group(2) == "percentencode" else value

    return _VARIABLE.sub(one, template)


async def _confirm(observed, url: str) -> str:
    """What the Temporal Web UI URL names, after checking with Temporal that it exists."""
    parsed = urllib.parse.urlsplit(url)
    assert f"{parsed.scheme}://{parsed.netloc}" == "http://temporal-ui.test"
    parts = parsed.path.split("/")
    assert parts[:4] == ["", "namespaces", observed.namespace, "workflows"], url
    if len(parts) == 4:
        query = urllib.parse.parse_qs(parsed.query)["query"][0]
        count = await observed.temporal.count_workflows(query)
        assert count.count >= 1, query
        return query
    assert len(parts) == 6
    assert parts[5] == "history", url
    workflow_id = urllib.parse.unquote(parts[4])
    described = await observed.temporal.get_workflow_handle(workflow_id).describe()
    assert described.id == workflow_id
    return workflow_id


async def test_every_dashboard_link_names_a_workflow_or_query_that_temporal_confirms(observed):
    """Each data link, resolved with a row its own panel shows for the scenario's episodes, opens an existing workflow history or a visibility query with results."""
    base = {"temporal_ui": "http://temporal-ui.test", "namespace": observed.namespace}
    dashboard = _dashboard()
    confirmed = [await _confirm(observed, _resolve(url, base)) for url in _links(dashboard)]
    for panel in _panels(dashboard):
        templates = _links(panel)
        if not templates:
            continue
        rows = await _query(observed.prometheus_url, panel["targets"][0]["expr"])
        wanted = {"rule": "ObservedLatency", "workflow_id": observed.waiting_episode}
        matching = [r for r in rows if all(r["metric"].get(k, v) == v for k, v in wanted.items())]
        matching.sort(key=lambda r: float(r["value"][1]) <= 0)  # rows with a value first
        row = matching[0]["metric"] if matching else None
        assert row is not None, (panel["title"], rows)
        values = dict(base)
        for label, value in row.items():
            values[f"__field.labels.{label}"] = value
            values[f"__data.fields.{label}"] = value
        confirmed += [await _confirm(observed, _resolve(t, values)) for t in templates]
    assert observed.waiting_episode in confirmed
    assert any('HomeostatRule="ObservedLatency"' in item for item in confirmed)
    assert any('HomeostatPhase="awaiting_approval"' in item for item in confirmed)
