import pytest

from controller import errors
from controller.ingest import payloads


@pytest.mark.parametrize("body", [b"1", b'"text"', b"null", b"true", b"[]", b"{}", b'[{"a": [1]}]'])
def test_any_shallow_json_value_parses(body):
    """Scalars, empty and shallow containers are returned as json.loads returns them."""
    assert payloads.loads(body) is not None or body == b"null"


def test_nesting_up_to_the_limit_is_accepted_and_beyond_refused():
    """64 levels of nesting parse; 65 are a PayloadError naming the limit."""
    deepest = b"[" * payloads.MAX_DEPTH + b"]" * payloads.MAX_DEPTH
    payloads.loads(deepest)
    with pytest.raises(errors.PayloadError, match="nested deeper than 64"):
        payloads.loads(b"[" + deepest + b"]")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested deeper"),
        (b'{"n": ' + b"1" * 5000 + b"}", "more digits"),
        (b"\xff\xfe\x00", "not valid JSON"),
        (b'{"a": 1', "not valid JSON"),
    ],
)
def test_hostile_json_is_a_payload_error(body, problem):
    """Deep nesting, over-long integers, bad bytes and truncation each name the problem."""
    with pytest.raises(errors.PayloadError, match=problem):
        payloads.loads(body)
