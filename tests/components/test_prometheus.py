import http.server
import json
import threading
import time
import urllib.request
from collections.abc import Iterator

import prometheus_client
import pytest
from harness import prometheus


@pytest.fixture
def metrics_target() -> Iterator[int]:
    """A local /metrics target exporting smoke_value 42."""
    registry = prometheus_client.CollectorRegistry()
    prometheus_client.Gauge("smoke_value", "A constant.", registry=registry).set(42)
    with prometheus.exporter(registry) as port:
        yield port


def test_prometheus_scrapes_a_target_and_answers_a_query(prometheus_factory, metrics_target):
    """The Debian Prometheus scrapes a local target and returns its value from a query."""
    server = prometheus_factory(
        config={
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {
                    "job_name": "smoke",
                    "static_configs": [{"targets": [f"127.0.0.1:{metrics_target}"]}],
                }
            ],
        }
    )
    value = None
    for _ in range(60):
        with urllib.request.urlopen(f"{server.url}/api/v1/query?query=smoke_value") as response:
            result = json.load(response)["data"]["result"]
        if result:
            value = float(result[0]["value"][1])
            break
        time.sleep(0.25)
    assert value == 42.0


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_alertmanager_delivers_an_alert_to_a_webhook(alertmanager_factory):
    """An alert posted to the Debian Alertmanager's API arrives at a local webhook receiver."""
    _Receiver.received = []
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    try:
        server = alertmanager_factory(
            config={
                "route": {
                    "receiver": "hook",
                    "group_wait": "0s",
                    "group_interval": "1s",
                    "repeat_interval": "1h",
                },
                "receivers": [
                    {
                        "name": "hook",
                        "webhook_configs": [
                            {
                                "url": f"http://127.0.0.1:{receiver.server_address[1]}/hook",
                                "send_resolved": True,
                            }
                        ],
                    }
                ],
            }
        )
        alert = [
            {
                "labels": {"alertname": "SmokeTest", "service": "web"},
                "annotations": {"summary": "smoke"},
            }
        ]
        request = urllib.request.Request(
            f"{server.url}/api/v2/alerts",
            data=json.dumps(alert).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request) as response:
            assert response.status == 200
        for _ in range(100):
            if _Receiver.received:
                break
            time.sleep(0.1)
        assert _Receiver.received, "no webhook delivery within 10 s"
        payload = _Receiver.received[0]
        assert payload["version"] == "4"
        assert payload["alerts"][0]["labels"] == {"alertname": "SmokeTest", "service": "web"}
        assert payload["alerts"][0]["status"] == "firing"
    finally:
        receiver.shutdown()
        receiver.server_close()
