from datetime import UTC, datetime

import pytest

from controller import errors
from controller.domain.observations import SourceKind
from controller.ingest import events

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _decode(value, **kw):
    return events.decode(value, source=SourceKind.KAFKA, stream="topic", received_at=NOW, **kw)


def test_cloudevent_time_and_context_become_event_time_and_labels():
    """A CloudEvent's `time` is the event time; its context attributes are labels; data stays in the body."""
    obs = _decode(
        {
            "specversion": "1.0",
            "id": "e1",
            "source": "/deploy",
            "type": "deploy.finished",
            "time": "2026-11-22T11:59:00Z",
            "subject": "service/web",
            "data": {"ok": False},
        }
    )
    assert obs.at == datetime(2026, 11, 22, 11, 59, tzinfo=UTC)
    assert obs.labels == {
        "id": "e1",
        "source": "/deploy",
        "type": "deploy.finished",
        "subject": "service/web",
    }
    assert obs.body["data"] == {"ok": False}


def test_cloudevent_without_required_attribute_names_it():
    """A CloudEvent missing `type` is rejected naming `type`."""
    with pytest.raises(errors.PayloadError) as caught:
        _decode({"specversion": "1.0", "id": "e1", "source": "/x", "time": "2026-11-22T11:59:00Z"})
    assert caught.value.field == "type"


def test_prometheus_kafka_adapter_sample():
    """A prometheus-kafka-adapter message becomes a sample with its series labels and value."""
    obs = _decode(
        {
            "timestamp": "2026-11-22T11:58:00Z",
            "value": "97.5",
            "name": "cpu_usage",
            "labels": {"__name__": "cpu_usage", "service": "web"},
        }
    )
    assert obs.value == 97.5
    assert obs.labels == {"__name__": "cpu_usage", "service": "web"}
    assert obs.at == datetime(2026, 11, 22, 11, 58, tzinfo=UTC)


def test_adapter_sample_with_a_non_numeric_value_names_value():
    """A sample whose value is not a number is rejected naming `value`."""
    with pytest.raises(errors.PayloadError) as caught:
        _decode({"name": "cpu", "value": "high", "labels": {}})
    assert caught.value.field == "value"


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        (1_795_000_000, datetime.fromtimestamp(1_795_000_000, tz=UTC)),
        (1_795_000_000_123, datetime.fromtimestamp(1_795_000_000.123, tz=UTC)),
        ("2026-11-22T13:00:00+01:00", datetime(2026, 11, 22, 12, 0, tzinfo=UTC)),
    ],
)
def test_plain_json_time_from_the_configured_field(stamp, expected):
    """Plain JSON takes event time from the timestamp field: RFC 3339, epoch seconds or milliseconds."""
    obs = _decode({"ts": stamp, "host": "db-1", "level": 3}, timestamp_field="ts")
    assert obs.at == expected
    assert obs.labels == {"host": "db-1"}
    assert obs.body["level"] == 3


def test_plain_json_without_a_time_uses_the_transport_time():
    """Without a timestamp field, the Kafka record (or request) time is the event time."""
    assert _decode({"host": "db-1"}).at == NOW


@pytest.mark.parametrize("value", [[1, 2], "text", 5, None])
def test_non_objects_are_rejected(value):
    """An event that is not a JSON object is rejected with what it was."""
    with pytest.raises(errors.PayloadError, match="must be a JSON object"):
        _decode(value)


def test_naive_time_is_rejected():
    """A time without a timezone is ambiguous and rejected, naming the field."""
    with pytest.raises(errors.PayloadError) as caught:
        _decode({"timestamp": "2026-11-22T12:00:00"})
    assert caught.value.field == "timestamp"
