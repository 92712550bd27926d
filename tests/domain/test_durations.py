from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.domain import durations


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2d", timedelta(days=2)),
        ("1w", timedelta(weeks=1)),
        ("250ms", timedelta(milliseconds=250)),
        ("1m30s500ms", timedelta(minutes=1, seconds=30, milliseconds=500)),
        ("0", timedelta()),
    ],
)
def test_prometheus_durations_parse(text, expected):
    """Durations in Prometheus notation parse to the same length of time."""
    assert durations.parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "5", "5 m", "m5", "30s1m", "1h1h", "5q", "-5m"])
def test_malformed_durations_say_what_is_accepted(text):
    """A malformed duration is rejected with the accepted form in the message."""
    with pytest.raises(ValueError, match="largest unit first"):
        durations.parse_duration(text)


@given(st.integers(min_value=0, max_value=10**10))
def test_format_and_parse_round_trip(milliseconds):
    """Formatting a duration and parsing it back gives the same duration."""
    value = timedelta(milliseconds=milliseconds)
    assert durations.parse_duration(durations.format_duration(value)) == value
