from __future__ import annotations

import tempfile
from pathlib import Path

from timeline import at

from controller.domain import observations, transitions
from controller.rules import engine, loader

RULES = """\
groups:
  - name: am
    rules:
      - name: NodeNotReady
        source: alertmanager
        match: labels.alertname == 'KubeNodeNotReady' && labels.severity != 'info'
        resource: host/{{ labels.node }}
        remediation: drain-node
        annotations: {summary: "{{ annotations.summary }} (via Homeostat)"}
"""


def alert(
    status,
    *,
    node="n1",
    severity="page",
    starts="2026-01-01T00:00:00.123456789Z",
    ends=None,
    received=0,
):
    return observations.Observation(
        source=observations.SourceKind.ALERTMANAGER,
        stream="/alertmanager",
        at=at(received),
        labels={"alertname": "KubeNodeNotReady", "node": node, "severity": severity},
        body={
            "status": status,
            "startsAt": starts,
            "endsAt": ends or "0001-01-01T00:00:00Z",
            "fingerprint": f"fp-{node}",
            "annotations": {"summary": f"{node} is not ready"},
        },
    )


def test_firing_alert_starts_episode_at_starts_at():
    """A firing alert opens an episode at its startsAt; Prometheus already applied `for`."""
    eng = engine.Engine(_rules())
    found = eng.observe(alert("firing", received=30))
    assert len(found) == 1
    fired = found[0]
    assert fired.kind is transitions.TransitionKind.FIRED
    assert fired.started_at == at(0).replace(microsecond=123456)
    assert fired.resource == "host/n1"
    assert fired.annotations == {"summary": "n1 is not ready (via Homeostat)"}
    assert fired.remediation == "drain-node"


def test_resend_is_idempotent_and_resolution_ends_at_ends_at():
    """Re-sent firing alerts change nothing; the resolution closes at endsAt."""
    eng = engine.Engine(_rules())
    eng.observe(alert("firing"))
    assert eng.observe(alert("firing", received=300)) == []
    found = eng.observe(alert("resolved", ends="2026-01-01T00:10:00Z", received=620))
    assert [(t.kind, t.at) for t in found] == [(transitions.TransitionKind.RESOLVED, at(600))]
    assert eng.observe(alert("resolved", ends="2026-01-01T00:10:00Z", received=700)) == []


def test_match_filters_alerts():
    """Alerts the CEL match rejects are ignored."""
    eng = engine.Engine(_rules())
    assert eng.observe(alert("firing", severity="info")) == []


def _rules():
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "r.yaml").write_text(RULES)
        return loader.load_rule_set(Path(folder), known_remediations={"drain-node"})
