"""Event bodies as observations: CloudEvents, prometheus-kafka-adapter samples, plain JSON.

The same decoding serves Kafka messages and the generic webhook, so a rule written for
one source reads the other's events the same way. The format is recognised per message:

- CloudEvents 1.0, structured JSON mode (``specversion`` present): event time is ``time``,
  labels are the context attributes (``type``, ``source``, ``subject``, ``id``) and the
  string extension attributes, the body is the whole event (``data`` included).
- prometheus-kafka-adapter JSON (``name``, ``value``, ``timestamp``, ``labels``): a
  sample; labels are the series labels with ``__name__``, the value is a float.
- any other JSON object: event time from the configured timestamp field (RFC 3339 or
  epoch seconds/milliseconds), else the transport's time; labels are the top-level
  string values.

Kafka decodes every message here, so the per-message path avoids repeated work: JSON bytes
skip ``json.loads``'s encoding sniffing when they are plainly UTF-8, an epoch time seen a
moment ago is not converted again, and the transport's time is computed only when the
event has none of its own.
"""

from __future__ import annotations

import functools
import json
import json.scanner
import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, cast

import msgspec

from controller import errors
from controller.domain import observations

_CLOUDEVENTS_CONTEXT = ("type", "source", "subject", "id", "datacontenttype", "dataschema")
_EPOCH_MILLIS_THRESHOLD = 10**11
"""An epoch number above this is taken as milliseconds (1973 in ms; year 5138 in s)."""
_JSON = json.JSONDecoder()
_SCAN = json.scanner.make_scanner(cast("Any", _JSON))  # typeshed: any decoder-like context
"""The scanner that ``_JSON.decode`` calls after skipping whitespace."""
_FAST = msgspec.json.Decoder().decode
"""msgspec's JSON decoder: ``json.loads``'s values for what it accepts (see ``loads``)."""
_SNIFFED = frozenset(b"\x00\xef\xfe\xff")
"""First bytes that make ``json.loads`` look for a BOM or UTF-16/32 (NUL bytes)."""


def loads(data: bytes) -> Any:
    """``json.loads(data)``: the same value, or the same error, for any input.

    Bytes go to msgspec's decoder first (about a third of the standard library's cost).
    Whatever it accepts, ``json.loads`` reads to the same value; what it refuses (NaN,
    ``Infinity``, a BOM, UTF-16/32, lone surrogates, integers past 4,300 digits, nesting
    past its depth ...) takes ``json.loads``'s own path below, so the value or the error
    is ``json.loads``'s. The hypothesis tests in ``tests/ingest/test_events.py`` hold both
    to that.

    ``json.loads`` first sniffs the encoding of bytes (a BOM, NUL bytes of UTF-16/32); when
    the first two bytes rule all of that out it reads UTF-8, and so does this, directly. A
    text that is one object, with no whitespace around it, goes straight to the scanner
    that ``json.loads`` would call after skipping whitespace. Anything else takes
    ``json.loads``'s own path.
    """
    if type(data) is bytes:
        try:
            return _FAST(data)
        except (msgspec.DecodeError, RecursionError):
            pass  # json.loads's own value (NaN, a BOM ...) or its own error, below
    return _standard(data)


def _standard(data: Any) -> Any:
    """``json.loads(data)`` for what msgspec refused, skipping what it can of its sniffing."""
    if type(data) is not bytes or len(data) < 2 or data[0] in _SNIFFED or not data[1]:  # noqa: PLR2004
        return json.loads(data)
    text = data.decode("utf-8", "surrogatepass")
    if text[0] == "{" and text[-1] == "}":
        try:
            value, end = _SCAN(text, 0)
        except StopIteration:
            pass  # not a value: the full path raises json.loads's error
        else:
            if end == len(text):
                return value
    return _JSON.decode(text)


class Decoder:
    """JSON bytes of one source as observations: ``decode(loads(data), ...)`` in one step.

    Kafka decodes every message here. The observation, or the error, is the one ``loads``
    and ``decode`` give (``tests/ingest/test_events.py`` holds the two to that with
    hypothesis); the common shape, a plain JSON object with an epoch time, takes a path
    with no intermediate calls, and the transport's time is computed only for an event
    that has no time of its own.
    """

    __slots__ = ("_field", "_source")

    def __init__(
        self, *, source: observations.SourceKind, timestamp_field: str = "timestamp"
    ) -> None:
        """Decode events of ``source``; plain JSON carries its time in ``timestamp_field``."""
        self._source = source
        self._field = timestamp_field

    def decode(self, data: bytes, *, stream: str, received_ms: float) -> observations.Observation:
        """One message as an observation.

        A method, not ``__call__``: calling an instance costs about four times a bound
        method's call, once per message.

        Args:
            data: the message (JSON bytes).
            stream: the Kafka topic or webhook stream it came from.
            received_ms: the transport's time, epoch milliseconds: the event time of an
                event without its own.

        Raises:
            errors.PayloadError: ``data`` is not JSON, or not even bytes (a tombstone):
                field ``(message)``, ``json.loads``'s error in the message; or the value fits
                no format (see ``decode``).
            RecursionError, ValueError, OverflowError: as ``loads`` or ``decode`` raise them
                (nesting too deep, an integer of too many digits ...).
        """
        if type(data) is bytes:
            try:
                event = _FAST(data)
            except (msgspec.DecodeError, RecursionError):
                event = _json(data)
        else:
            event = _json(data)
        field = self._field
        if (
            type(event) is not dict
            or "specversion" in event
            or ("labels" in event and "name" in event and "value" in event)
        ):
            return decode(
                event,
                source=self._source,
                stream=stream,
                received_at=functools.partial(_from_ms, received_ms),
                timestamp_field=field,
            )
        stamp = event.get(field)
        if stamp is None:
            at = _from_ms(received_ms)
        elif type(stamp) is int:
            try:
                at = from_epoch(stamp)
            except (OverflowError, OSError, ValueError):
                raise errors.PayloadError(field, f"epoch time out of range: {stamp}") from None
        else:
            at = parse_time(stamp, field=field)
        labels = {key: value for key, value in event.items() if type(value) is str}
        if type(stamp) is str:
            del labels[field]  # the time is not a label (``decode``)
        return observations.Observation(
            source=self._source, stream=stream, at=at, labels=labels, body=event
        )


def _json(data: Any) -> Any:
    """``_standard(data)``; ``json.loads``'s syntax, encoding, type errors as ``PayloadError``."""
    try:
        return _standard(data)
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as exc:
        raise errors.PayloadError("(message)", f"not valid JSON: {exc}") from None


def decode(
    event: Any,
    *,
    source: observations.SourceKind,
    stream: str,
    received_at: datetime | Callable[[], datetime],
    timestamp_field: str = "timestamp",
) -> observations.Observation:
    """Turn one decoded JSON value into an observation.

    Args:
        event: the JSON value (must be an object).
        source: the kind of source it came from.
        stream: the Kafka topic or webhook stream.
        received_at: the transport's time, used when the event carries none; or a function
            that returns it, called only then.
        timestamp_field: plain JSON: the field that holds the event time.

    Raises:
        errors.PayloadError: the value does not fit any format; ``field`` names where.
    """
    # This runs once per Kafka message: plain ``dict`` checks, no copies.
    if not isinstance(event, dict):
        raise errors.PayloadError("(body)", f"an event must be a JSON object, not {_kind(event)}")
    if "specversion" in event:
        return _cloudevent(event, source=source, stream=stream)
    if "labels" in event and "name" in event and "value" in event:
        return _sample(event, source=source, stream=stream, received_at=received_at)
    stamp = event.get(timestamp_field)
    at = _received(received_at) if stamp is None else parse_time(stamp, field=timestamp_field)
    labels = {
        key: value for key, value in event.items() if type(value) is str and key != timestamp_field
    }
    return observations.Observation(source=source, stream=stream, at=at, labels=labels, body=event)


def _cloudevent(
    event: Mapping[str, Any], *, source: observations.SourceKind, stream: str
) -> observations.Observation:
    if event.get("specversion") != "1.0":
        raise errors.PayloadError(
            "specversion", f"unsupported CloudEvents version {event.get('specversion')!r}"
        )
    for required in ("id", "source", "type"):
        if not isinstance(event.get(required), str) or not event[required]:
            raise errors.PayloadError(
                required, "required CloudEvents attribute is missing or empty"
            )
    if "time" not in event:
        raise errors.PayloadError("time", "Homeostat needs the event time of a CloudEvent")
    at = parse_time(event["time"], field="time")
    labels = {
        key: value
        for key, value in event.items()
        if isinstance(value, str) and key not in {"specversion", "time", "data", "data_base64"}
    }
    return observations.Observation(
        source=source, stream=stream, at=at, labels=labels, body=dict(event)
    )


def _sample(
    event: Mapping[str, Any],
    *,
    source: observations.SourceKind,
    stream: str,
    received_at: datetime | Callable[[], datetime],
) -> observations.Observation:
    labels = event["labels"]
    if not isinstance(labels, Mapping) or not all(isinstance(v, str) for v in labels.values()):
        raise errors.PayloadError("labels", "must be an object of string values")
    try:
        value = float(event["value"])
    except (TypeError, ValueError, OverflowError):
        raise errors.PayloadError("value", f"not a number: {event['value']!r}") from None
    if math.isnan(value) and str(event["value"]).lower() != "nan":
        raise errors.PayloadError("value", "not a number")
    at = (
        parse_time(event["timestamp"], field="timestamp")
        if "timestamp" in event
        else _received(received_at)
    )
    return observations.Observation(
        source=source,
        stream=stream,
        at=at,
        labels={**labels, "__name__": str(event["name"])},
        value=value,
        body=dict(event),
    )


def parse_time(value: Any, *, field: str) -> datetime:
    """An RFC 3339 string or an epoch number (seconds or milliseconds) as aware UTC.

    Raises:
        errors.PayloadError: the value is neither, or has no timezone.
    """
    kind = type(value)
    if kind is int or kind is float or (kind is not bool and isinstance(value, int | float)):
        try:
            return from_epoch(value)
        except (OverflowError, OSError, ValueError):
            raise errors.PayloadError(field, f"epoch time out of range: {value}") from None
    if kind is bool:
        raise errors.PayloadError(field, "a time must be RFC 3339 text or epoch seconds")
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise errors.PayloadError(field, f"not an RFC 3339 time: {value!r}") from None
        if parsed.tzinfo is None:
            raise errors.PayloadError(field, f"time without a timezone: {value!r}")
        return parsed.astimezone(UTC)
    raise errors.PayloadError(
        field, f"a time must be RFC 3339 text or epoch seconds, not {_kind(value)}"
    )


@functools.lru_cache(maxsize=1024)
def from_epoch(value: float) -> datetime:
    """Epoch seconds, or milliseconds above ``_EPOCH_MILLIS_THRESHOLD``, as aware UTC.

    Events of one moment share their time: a recent conversion is reused.

    Raises:
        OverflowError, OSError, ValueError: out of ``datetime``'s range.
    """
    seconds = value / 1000 if abs(value) > _EPOCH_MILLIS_THRESHOLD else value
    return datetime.fromtimestamp(seconds, tz=UTC)


def _from_ms(milliseconds: float) -> datetime:
    """Epoch milliseconds (a Kafka record's timestamp) as aware UTC."""
    return datetime.fromtimestamp(milliseconds / 1000, tz=UTC)


def _received(received_at: datetime | Callable[[], datetime]) -> datetime:
    return received_at if isinstance(received_at, datetime) else received_at()


def _kind(value: Any) -> str:
    names = {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        type(None): "null",
    }
    return names.get(type(value), "a number")
