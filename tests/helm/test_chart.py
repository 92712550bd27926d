import copy
import json
from pathlib import Path

import helm_python
import pytest
import yaml

from controller import settings

CHART = Path(__file__).resolve().parents[2] / "helm" / "homeostat"
DEFAULTS = yaml.safe_load((CHART / "values.yaml").read_text())

PRODUCTION = {
    "image": {
        "repository": "registry.example/homeostat",
        "tag": "1.2.3",
        "pullSecrets": [{"name": "pull"}],
    },
    "temporal": {
        "address": "temporal.example:7233",
        "namespace": "prod",
        "taskQueue": "homeostat-prod",
        "webUiUrl": "https://temporal.example",
        "tls": {
            "enabled": True,
            "existingSecret": "temporal-mtls",
            "mutual": True,
            "serverName": "temporal.example",
        },
        "apiKey": {"existingSecret": "temporal-api-key"},
    },
    "kafka": {
        "bootstrapServers": ["kafka-0.kafka:9093", "kafka-1.kafka:9093"],
        "groupId": "homeostat-prod",
        "topics": ["ops.events"],
        "securityProtocol": "SASL_SSL",
        "sasl": {
            "mechanism": "SCRAM-SHA-512",
            "username": "homeostat",
            "existingSecret": "kafka-sasl",
        },
        "tls": {"existingSecret": "kafka-ca", "mutual": True},
    },
    "prometheus": {"url": "http://prometheus.monitoring:9090", "evaluationInterval": "30s"},
    "ingest": {"replicas": 3, "podDisruptionBudget": {"minAvailable": 2}},
    "worker": {"replicas": 4, "activityThreads": 16},
    "config": {"logging": {"level": "warning"}, "dispatch": {"max_in_flight": 64}},
    "secrets": {"existingSecret": "homeostat-tokens"},
    "gitSync": {
        "enabled": True,
        "repo": "https://git.example/ops/rules.git",
        "ref": "prod",
        "existingSecret": "git-creds",
    },
    "service": {"annotations": {"team": "sre"}},
    "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus"}}},
    "dashboard": {"enabled": True},
    "podAnnotations": {"team": "sre"},
    "nodeSelector": {"pool": "ops"},
    "tolerations": [{"key": "ops", "operator": "Exists"}],
    "affinity": {"podAntiAffinity": {}},
}
"""Production-like values: mutual TLS and an API key for Temporal, SASL_SSL Kafka, git-sync."""

INLINE = {
    "secrets": {
        "create": True,
        "values": {key: f"value-of-{key}" for key in DEFAULTS["secrets"]["values"]},
    },
    "rules": {"files": {"rules.yaml": "groups: []\n"}},
    "remediations": {"files": {"plan.yaml": "steps: []\n"}},
    "playbooks": {"files": {"play.yml": "- hosts: all\n"}},
    "temporal": {"tls": {"enabled": True, "existingSecret": "temporal-ca"}},
    "ingest": {"podDisruptionBudget": {"enabled": False}},
}
"""Values with inline files and a Secret the chart creates."""


def _merge(base: dict, extra: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in extra.items():
        merged[key] = (
            _merge(merged.get(key, {}), value) if isinstance(value, dict) and value else value
        )
    return merged


def _render(values: dict) -> list[dict]:
    rendered = helm_python.Chart.load(str(CHART)).render(values, name="prod", namespace="ops")
    return [doc for text in rendered.values() for doc in yaml.safe_load_all(text) if doc]


def _find(manifests: list[dict], kind: str, name: str) -> dict:
    return next(m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name)


def _settings_of(
    manifests: list[dict], component: str, tmp_path: Path, monkeypatch
) -> settings.Settings:
    """Load the rendered homeostat.yaml with the container's environment, as the pod would."""
    config = _find(manifests, "ConfigMap", "prod-homeostat")["data"]["homeostat.yaml"]
    path = tmp_path / f"{component}.yaml"
    path.write_text(config)
    container = _find(manifests, "Deployment", f"prod-homeostat-{component}")["spec"]["template"][
        "spec"
    ]["containers"][0]
    for variable in container.get("env", []):
        if variable["name"].startswith("HOMEOSTAT_"):
            value = (
                '{"oncall": "a-long-enough-operator-token-0123456789"}'
                if variable["name"] == "HOMEOSTAT_API__TOKENS"
                else "secret-value"
            )
            monkeypatch.setenv(variable["name"], value)
    return settings.load(path)


def test_chart_lints_clean_with_helm_v4():
    """`helm lint --strict` (the real Helm v4 engine) reports nothing for the chart, with default and production values."""
    report = helm_python.lint(str(CHART), strict=True)
    assert report["errors"] == []
    assert report["messages"] == []


@pytest.mark.parametrize(
    "values", [{}, PRODUCTION, INLINE], ids=["default", "production", "inline"]
)
def test_separate_ingest_and_worker_deployments_are_hardened(values):
    """Ingest and worker run as their own Deployments, non-root with a read-only root filesystem, probed on /healthz and /readyz, each with a disruption budget."""
    manifests = _render(values)
    merged = _merge(DEFAULTS, values)
    for component in ("ingest", "worker"):
        deployment = _find(manifests, "Deployment", f"prod-homeostat-{component}")
        assert deployment["spec"]["replicas"] == merged[component]["replicas"]
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
        main = pod["containers"][0]
        assert main["args"][:3] == ["up", "--role", component]
        assert main["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert main["readinessProbe"]["httpGet"]["path"] == "/readyz"
        mounts = {m["mountPath"] for m in main["volumeMounts"]}
        assert {"/tmp", "/var/lib/homeostat"} <= mounts  # noqa: S108 - the pod's writable folders
        budgets = [
            m
            for m in manifests
            if m["kind"] == "PodDisruptionBudget" and m["metadata"]["name"].endswith(component)
        ]
        assert len(budgets) == int(merged[component]["podDisruptionBudget"]["enabled"])
    service = _find(manifests, "Service", "prod-homeostat")
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "ingest"


def test_default_values_render_settings_homeostat_loads(tmp_path, monkeypatch):
    """The default homeostat.yaml loads as Homeostat settings: the cluster's Temporal, mounted rule folders, the SDK metrics port."""
    manifests = _render({})
    loaded = _settings_of(manifests, "worker", tmp_path, monkeypatch)
    assert loaded.temporal.address == "temporal-frontend.temporal:7233"
    assert loaded.http.host == "0.0.0.0"
    assert str(loaded.rules.rules_dir) == "/etc/homeostat/rules"
    assert loaded.metrics.sdk_address == "0.0.0.0:9464"
    assert loaded.kafka.bootstrap_servers == []
    assert loaded.prometheus.coordination == "none"  # no Kafka: one replica does it all
    assert loaded.webhooks.mode == "direct"
    pod = _find(manifests, "Deployment", "prod-homeostat-ingest")["spec"]["template"]["spec"]
    assert {"name": "rules", "configMap": {"name": "prod-homeostat-rules"}} in pod["volumes"]
    kinds = {m["kind"] for m in manifests}
    assert "ServiceMonitor" not in kinds
    assert not [m for m in manifests if m["metadata"]["name"].endswith("-dashboard")]


def test_production_values_reach_temporal_kafka_and_secrets(tmp_path, monkeypatch):
    """Production-like values give mutual TLS and an API key for Temporal, SASL_SSL for Kafka, tokens from the named Secret, and settings that load."""
    manifests = _render(PRODUCTION)
    loaded = _settings_of(manifests, "ingest", tmp_path, monkeypatch)
    assert loaded.temporal.address == "temporal.example:7233"
    assert loaded.temporal.namespace == "prod"
    assert str(loaded.temporal.tls_cert_file) == "/etc/homeostat/temporal-tls/tls.crt"
    assert loaded.temporal.tls_server_name == "temporal.example"
    assert loaded.temporal.api_key is not None
    assert loaded.kafka.security_protocol == "SASL_SSL"
    assert loaded.prometheus.coordination == "kafka"  # three replicas share through Kafka
    assert loaded.webhooks.mode == "kafka"
    assert loaded.kafka.sasl_mechanism == "SCRAM-SHA-512"
    assert loaded.kafka.sasl_password is not None
    assert str(loaded.kafka.ssl_cafile) == "/etc/homeostat/kafka-tls/ca.crt"
    assert loaded.prometheus.url == "http://prometheus.monitoring:9090"
    assert loaded.dispatch.max_in_flight == 64
    assert loaded.activities.threads == 16
    assert loaded.paging.routing_key is not None
    assert loaded.alertmanager.bearer_token is not None
    assert str(loaded.rules.rules_dir) == "/git/repo/rules"
    pod = _find(manifests, "Deployment", "prod-homeostat-worker")["spec"]["template"]["spec"]
    sidecar = pod["containers"][1]
    assert sidecar["name"] == "git-sync"
    assert "--repo=https://git.example/ops/rules.git" in sidecar["args"]
    env = {v["name"]: v for v in pod["containers"][0]["env"]}
    assert (
        env["HOMEOSTAT_PAGING__ROUTING_KEY"]["valueFrom"]["secretKeyRef"]["name"]
        == "homeostat-tokens"
    )
    assert (
        env["HOMEOSTAT_TEMPORAL__API_KEY"]["valueFrom"]["secretKeyRef"]["name"]
        == "temporal-api-key"
    )
    monitor = _find(manifests, "ServiceMonitor", "prod-homeostat")
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["http", "temporal-sdk"]
    dashboard = _find(manifests, "ConfigMap", "prod-homeostat-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads((CHART / "dashboards" / "homeostat.json").read_text())
    assert json.loads(dashboard["data"]["homeostat.json"]) == shipped


def test_inline_files_and_created_secret(tmp_path, monkeypatch):
    """Inline rule, plan and playbook files become ConfigMaps, and secrets.values a Secret whose keys the pods read."""
    manifests = _render(INLINE)
    assert _find(manifests, "ConfigMap", "prod-homeostat-rules")["data"] == {
        "rules.yaml": "groups: []\n"
    }
    assert _find(manifests, "ConfigMap", "prod-homeostat-playbooks")["data"] == {
        "play.yml": "- hosts: all\n"
    }
    secret = _find(manifests, "Secret", "prod-homeostat")
    assert set(secret["stringData"]) == set(DEFAULTS["secrets"]["values"])
    loaded = _settings_of(manifests, "worker", tmp_path, monkeypatch)
    assert loaded.ticketing.token is not None
    assert loaded.temporal.tls_cert_file is None


def _leaves(values: dict, prefix: tuple = ()) -> list[tuple]:
    found = []
    for key, value in values.items():
        if isinstance(value, dict) and value:
            found += _leaves(value, (*prefix, key))
        else:
            found.append((*prefix, key))
    return found


def _changed(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 7
    if isinstance(value, list):
        return ["zz-sentinel"]
    if isinstance(value, dict):
        return {"zz": "sentinel"}
    return "zz-sentinel"


def _with(values: dict, path: tuple, value) -> dict:
    changed = copy.deepcopy(values)
    node = changed
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return changed


def _output(values: dict) -> object:
    """The rendered manifests, or the render error (a required value refused is a use too)."""
    try:
        return _render(values)
    except helm_python.HelmRenderError as exc:
        return str(exc)


def test_every_values_key_is_used():
    """Changing any key of values.yaml changes the rendered manifests, with at least one of the default, production and inline value sets."""
    bases = [_merge(DEFAULTS, extra) for extra in ({}, PRODUCTION, INLINE)]
    rendered = [_render(base) for base in bases]
    unused = [
        ".".join(path)
        for path in _leaves(DEFAULTS)
        if all(
            _output(_with(base, path, _changed(_leaf(base, path)))) == before
            for base, before in zip(bases, rendered, strict=True)
        )
    ]
    assert unused == []


def _leaf(values: dict, path: tuple):
    for key in path:
        values = values[key]
    return values
