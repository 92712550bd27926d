"""The PromQL client against a real Prometheus, and the mapping of every upstream failure."""

from __future__ import annotations

import http.server
import threading
from datetime import UTC, datetime, timedelta

import pytest

from controller.ingest import promql
from controller.rules import sandbox, series

T0 = datetime(1990, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def prometheus():
    """One sandbox Prometheus holding two series, with a stale marker in one."""
    millis = int(T0.timestamp() * 1000)
    with sandbox.Sandbox() as box:
        box.write(
            [
                sandbox.Points(
                    labels={"__name__": "load", "host": "a"},
                    points=(
                        (millis, 1.5),
                        (millis + 60_000, 2.0),
                        (millis + 120_000, series.STALE_NAN),
                    ),
                ),
                sandbox.Points(labels={"__name__": "load", "host": "b"}, points=((millis, 7.0),)),
            ]
        )
        yield box


def test_instant_query_returns_labels_and_values(prometheus):
    """An instant query returns every series with its labels and value at that time."""
    client = promql.Client(prometheus.url)
    got = sorted(
        client.instant("load", at=T0 + timedelta(minutes=1)), key=lambda s: s.labels["host"]
    )
    assert got == [
        promql.Sample(labels={"__name__": "load", "host": "a"}, value=2.0),
        promql.Sample(labels={"__name__": "load", "host": "b"}, value=7.0),
    ]
    assert [s.labels["host"] for s in client.instant("load", at=T0 + timedelta(minutes=2))] == ["b"]
    assert client.instant("scalar(load{host='b'})", at=T0) == [promql.Sample(labels={}, value=7.0)]


def test_range_query(prometheus):
    """A range query returns each series' points at every step."""
    client = promql.Client(prometheus.url)
    got = client.range(
        'load{host="a"}', start=T0, end=T0 + timedelta(minutes=1), step=timedelta(seconds=30)
    )
    assert [value for _, value in got[0].points] == [1.5, 1.5, 2.0]
    assert got[0].points[0][0] == T0


def test_bad_query_is_permanent(prometheus):
    """A PromQL syntax error is a QueryError that retrying cannot fix."""
    with pytest.raises(promql.QueryError) as caught:
        promql.Client(prometheus.url).instant("load{", at=T0)
    assert caught.value.transient is False
    assert caught.value.status == 400


def test_unreachable_is_transient():
    """A refused connection is a transient QueryError."""
    port = sandbox._free_port()
    with pytest.raises(promql.QueryError) as caught:
        promql.Client(f"http://127.0.0.1:{port}").instant("up", at=T0)
    assert caught.value.transient is True


class _Fake(http.server.BaseHTTPRequestHandler):
    status = 503
    body = b"overloaded"

    def do_GET(self):
        self.send_response(self.status)
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize(
    ("status", "body", "transient"),
    [
        (503, b"overloaded", True),
        (200, b"not json", True),
        (200, b'{"data": {}}', True),
        (422, b"{}", False),
    ],
)
def test_server_failures_are_mapped(status, body, transient):
    """5xx, malformed answers and 4xx all become QueryError, transient or not."""
    handler = type("Handler", (_Fake,), {"status": status, "body": body})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(promql.QueryError) as caught:
            promql.Client(f"http://127.0.0.1:{server.server_address[1]}").instant("up", at=T0)
        assert caught.value.transient is transient
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
