from pathlib import Path

import helm_python
import yaml

from controller import settings

CHART = Path(__file__).resolve().parents[2] / "helm" / "homeostat"


def _render(values: dict) -> dict[str, dict]:
    rendered = helm_python.Chart.load(str(CHART)).render(values, name="prod", namespace="ops")
    return {Path(path).name: yaml.safe_load(text) for path, text in rendered.items()}


def test_chart_lints_without_errors():
    """`helm lint` (the real Helm engine) finds no error in the chart."""
    report = helm_python.lint(str(CHART), strict=False)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 3] == []


def test_rendered_config_is_a_valid_homeostat_config(tmp_path):
    """The homeostat.yaml the chart renders loads as Homeostat settings pointing at the cluster's Temporal."""
    manifests = _render({"temporal": {"address": "temporal.prod:7233"}})
    config = tmp_path / "homeostat.yaml"
    config.write_text(manifests["configmap.yaml"]["data"]["homeostat.yaml"])
    loaded = settings.load(config)
    assert loaded.temporal.address == "temporal.prod:7233"
    assert loaded.http.host == "0.0.0.0"
    assert str(loaded.rules.rules_dir) == "/etc/homeostat/rules"


def test_deployment_probes_secrets_and_rule_mounts():
    """The pod probes /healthz and /readyz, takes secrets from the named Secret, and mounts rules."""
    manifests = _render(
        {"existingSecret": "homeostat-secrets", "rules": {"configMap": "team-rules"}}
    )
    pod = manifests["deployment.yaml"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["args"] == ["up", "--config", "/etc/homeostat/homeostat.yaml"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["envFrom"] == [{"secretRef": {"name": "homeostat-secrets"}}]
    assert {"name": "rules", "configMap": {"name": "team-rules"}} in pod["volumes"]
