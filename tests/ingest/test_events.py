import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def test_the_transport_time_may_be_given_lazily():
    """A function for the transport time is called only for an event without its own time."""
    calls = []

    def received():
        calls.append(1)
        return NOW

    kw = {"source": SourceKind.KAFKA, "stream": "t", "received_at": received}
    assert events.decode({"timestamp": 1_795_000_000, "host": "a"}, **kw).at != NOW
    assert calls == []
    assert events.decode({"host": "a"}, **kw).at == NOW
    assert calls == [1]


def test_epoch_times_out_of_range_are_rejected_every_time():
    """An epoch time datetime cannot hold is rejected on every message, not only the first."""
    for _ in range(2):
        with pytest.raises(errors.PayloadError, match="out of range"):
            _decode({"timestamp": 10**20})


def _outcome(call, data):
    try:
        return ("value", repr(call(data)))  # repr: NaN equals itself
    except Exception as exc:  # noqa: BLE001 - the error itself is what is compared
        return ("error", type(exc), str(exc))


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(
    value=_JSON_VALUES,
    before=st.sampled_from(["", " ", "\n\t"]),
    after=st.sampled_from(["", " ", "\r\n", "x", "}", " {}"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-32-be"]),
)
def test_loads_reads_json_exactly_as_json_loads(value, before, after, encoding):
    """Kafka's JSON decoding gives json.loads's value, or its very error, for any body."""
    text = before + json.dumps(value, ensure_ascii=False) + after
    data = text.encode(encoding, "surrogatepass")
    assert _outcome(events.loads, data) == _outcome(json.loads, data)


@settings(max_examples=400, deadline=None)
@given(data=st.binary(max_size=24) | st.builds(lambda b: b"{" + b + b"}", st.binary(max_size=12)))
def test_loads_fails_exactly_as_json_loads_on_any_bytes(data):
    """Arbitrary bytes give json.loads's value or its very error (broken UTF-8 included)."""
    assert _outcome(events.loads, data) == _outcome(json.loads, data)


def test_loads_rejects_what_is_not_bytes_as_json_loads_does():
    """A tombstone (no value) fails with json.loads's TypeError."""
    assert _outcome(events.loads, None) == _outcome(json.loads, None)


_NUMBERS = st.from_regex(
    r"-?(0|[1-9][0-9]{0,40})(\.[0-9]{1,40})?([eE][+-]?[0-9]{1,4})?", fullmatch=True
)
_DIGITS = st.text(alphabet="0123456789", min_size=1, max_size=5000).map(lambda d: "1" + d)
_EDGES = st.sampled_from(
    [
        "NaN",
        "Infinity",
        "-Infinity",
        '{"a": NaN}',
        '{"a": 1, "a": 2}',
        '"\\ud800"',
        '"\\udc00\\ud800"',
        "\ufeff{}",
        '{"a": "\\u0000"}',
        "[" * 3000 + "]" * 3000,
        "1e400",
        "-0",
        "-0.0",
        "18446744073709551616",
        "-9223372036854775809",
    ]
)


@settings(max_examples=400, deadline=None)
@given(text=_NUMBERS | _DIGITS | _EDGES, wrap=st.booleans())
def test_loads_reads_numbers_and_edge_cases_exactly_as_json_loads(text, wrap):
    """Numbers of any size and form, NaN, duplicate keys, lone surrogates, a BOM, deep nesting: json.loads's value or its very error."""
    data = ('{"v": ' + text + "}" if wrap else text).encode("utf-8", "surrogatepass")
    assert _outcome(events.loads, data) == _outcome(json.loads, data)


_RECEIVED_MS = 1_795_000_000_123
_STAMPS = (
    st.integers(min_value=-(10**14), max_value=10**14)
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.booleans()
    | st.sampled_from(["2026-11-22T12:00:00Z", "2026-11-22T13:00:00+01:00", "2026-11-22", "x"])
    | st.text(max_size=8)
    | st.lists(st.integers(), max_size=2)
)
_PLAIN = st.fixed_dictionaries(
    {"kind": st.text(max_size=3), "n": st.floats() | st.integers() | st.none()},
    optional={"timestamp": _STAMPS | st.none(), "ts": _STAMPS | st.none(), "host": st.text()},
)
_OTHER_SHAPES = st.fixed_dictionaries(
    {},
    optional={
        "timestamp": _STAMPS,
        "labels": st.dictionaries(st.text(max_size=3), st.text(max_size=3) | st.integers()),
        "name": st.text(max_size=4) | st.integers(),
        "value": st.floats() | st.text(max_size=4) | st.none(),
        "specversion": st.sampled_from(["1.0", "0.3", 1]),
        "id": st.text(max_size=3),
        "source": st.text(max_size=3),
        "type": st.text(max_size=3),
        "time": _STAMPS,
    },
)
_MESSAGES = st.one_of(
    _PLAIN.map(lambda value: json.dumps(value).encode()),
    _PLAIN.map(lambda value: json.dumps(value).encode()),
    _OTHER_SHAPES.map(lambda value: json.dumps(value).encode()),
    _JSON_VALUES.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=24),
    _EDGES.map(str.encode),
    st.none(),
)


def _decoded_in_two_steps(data, timestamp_field):
    """``decode(loads(data))``, a JSON error as the one-step decoder reports it."""
    try:
        value = events.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as exc:
        raise errors.PayloadError("(message)", f"not valid JSON: {exc}") from None
    received = datetime.fromtimestamp(_RECEIVED_MS / 1000, tz=UTC)
    return events.decode(
        value,
        source=SourceKind.KAFKA,
        stream="topic",
        received_at=lambda: received,
        timestamp_field=timestamp_field,
    )


def _decoded_in_one_step(data, timestamp_field):
    decoder = events.Decoder(source=SourceKind.KAFKA, timestamp_field=timestamp_field)
    return decoder.decode(data, stream="topic", received_ms=_RECEIVED_MS)


def _result(call, *args):
    try:
        return ("value", repr(call(*args)))
    except errors.PayloadError as exc:
        return ("payload error", exc.field, exc.message)
    except Exception as exc:  # noqa: BLE001 - the error itself is what is compared
        return ("error", type(exc), str(exc))


@settings(max_examples=600, deadline=None)
@given(data=_MESSAGES, timestamp_field=st.sampled_from(["timestamp", "ts"]))
def test_the_one_step_decoder_gives_what_loads_then_decode_give(data, timestamp_field):
    """Kafka's one-step decoder gives the observation, or the very error, of json.loads then decode, for any message."""
    assert _result(_decoded_in_one_step, data, timestamp_field) == _result(
        _decoded_in_two_steps, data, timestamp_field
    )
