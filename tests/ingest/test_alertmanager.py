import json
from datetime import UTC, datetime

import pytest

from controller import errors
from controller.ingest import alertmanager, payloads


def notification(*alerts, **extra) -> bytes:
    body = {
        "version": "4",
        "groupKey": '{}:{alertname="HighCPU"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "homeostat",
        "groupLabels": {"alertname": "HighCPU"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://am:9093",
        "alerts": list(alerts),
        **extra,
    }
    return json.dumps(body).encode()


def alert(
    status="firing", service="web", starts="2026-11-22T10:00:00Z", ends="0001-01-01T00:00:00Z"
):
    return {
        "status": status,
        "labels": {"alertname": "HighCPU", "service": service},
        "annotations": {"summary": "CPU high"},
        "startsAt": starts,
        "endsAt": ends,
        "generatorURL": "http://prom/graph",
        "fingerprint": f"fp-{service}",
    }


def test_each_alert_is_taken_by_its_own_status():
    """In a group whose status is firing, a resolved alert is still a resolved observation."""
    body = notification(
        alert(), alert(status="resolved", service="api", ends="2026-11-22T10:05:00Z")
    )
    found = alertmanager.to_observations(payloads.parse(alertmanager.Notification, body))
    assert [o.body["status"] for o in found] == ["firing", "resolved"]
    assert found[0].at == datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    assert found[1].at == datetime(2026, 11, 22, 10, 5, tzinfo=UTC)
    assert found[0].body["endsAt"] is None
    assert found[0].labels == {"alertname": "HighCPU", "service": "web"}


def test_unknown_fields_are_ignored():
    """Fields that newer Alertmanagers add do not break parsing."""
    body = notification(alert() | {"silencedBy": []}, newField={"x": 1})
    assert len(payloads.parse(alertmanager.Notification, body).alerts) == 1


def test_a_bad_field_is_named_with_its_path():
    """A malformed startsAt is reported as alerts[0].startsAt."""
    with pytest.raises(errors.PayloadError) as caught:
        payloads.parse(alertmanager.Notification, notification(alert(starts="yesterday")))
    assert caught.value.field == "alerts[0].startsAt"


def test_wrong_version_is_named():
    """A payload of another version is rejected naming `version`."""
    with pytest.raises(errors.PayloadError) as caught:
        payloads.parse(alertmanager.Notification, notification(alert(), version="3"))
    assert caught.value.field == "version"


def test_not_json_is_a_body_error():
    """A body that is not JSON says so."""
    with pytest.raises(errors.PayloadError, match="not valid JSON"):
        payloads.parse(alertmanager.Notification, b"{nope")
