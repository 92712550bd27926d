import io
import json
import logging

import structlog

from controller import settings, worker
from controller.observability import logging as logging_setup


def _lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_json_lines_for_our_events_and_for_library_loggers():
    """Our events and temporalio/kafka/ansible_runner records come out as the same JSON lines."""
    stream = io.StringIO()
    logging_setup.configure(level="info", json=True, stream=stream)
    structlog.get_logger("controller.test").info("rule_fired", rule="high-cpu")
    logging.getLogger("temporalio.worker").warning("worker %s polling", "w1")
    logging.getLogger("ansible_runner").error("runner failed")
    lines = _lines(stream)
    assert [line["event"] for line in lines] == ["rule_fired", "worker w1 polling", "runner failed"]
    assert lines[0]["rule"] == "high-cpu"
    assert lines[0]["level"] == "info"
    assert lines[1]["logger"] == "temporalio.worker"
    assert all("timestamp" in line for line in lines)


def test_level_filters_debug():
    """At level info, debug events are dropped."""
    stream = io.StringIO()
    logging_setup.configure(level="info", json=True, stream=stream)
    structlog.get_logger("controller.test").debug("noisy")
    logging.getLogger("temporalio").debug("noisy too")
    assert _lines(stream) == []


def test_secret_fields_are_redacted():
    """A field named like a secret never reaches the output."""
    stream = io.StringIO()
    logging_setup.configure(level="info", json=True, stream=stream)
    structlog.get_logger("controller.test").info("configured", token="abc123", routing_key="R")
    text = stream.getvalue()
    assert "abc123" not in text
    assert '"token": "**********"' in text


def test_console_rendering_when_asked():
    """The console renderer writes readable, non-JSON lines."""
    stream = io.StringIO()
    logging_setup.configure(level="info", json=False, stream=stream)
    structlog.get_logger("controller.test").info("homeostat_ready", api="http://x")
    text = stream.getvalue()
    assert "homeostat_ready" in text
    assert "api=http://x" in text
    assert not text.lstrip().startswith("{")


def test_a_logger_used_before_a_reconfiguration_follows_the_new_one():
    """A module's logger already used (and cached) still obeys a later configuration, so capture_logs sees its events."""
    first = io.StringIO()
    logging_setup.configure(level="info", json=True, stream=first)
    log = structlog.get_logger("controller.test.cached")
    log.info("before")
    logging_setup.configure(level="info", json=True, stream=io.StringIO())
    with structlog.testing.capture_logs() as captured:
        log.warning("after", rule="high-cpu")
    assert [(entry["event"], entry["rule"]) for entry in captured] == [("after", "high-cpu")]
    assert [line["event"] for line in _lines(first)] == ["before"]


def test_inbound_and_connection_secrets_are_masked_in_log_text(monkeypatch, tmp_path):
    """Webhook tokens and HMAC secrets, operator tokens, Slack's signing secret, Temporal's API key and Kafka's SASL password are masked wherever a log line's text carries them, like the activities' credentials."""
    secrets = {
        "HOMEOSTAT_ALERTMANAGER__BEARER_TOKEN": "am-token-7f3e9c",
        "HOMEOSTAT_WEBHOOKS__HMAC_SECRET": "events-hmac-4b1d2a",
        "HOMEOSTAT_WEBHOOKS__GITLAB_TOKEN": "gitlab-token-9c8b7a",
        "HOMEOSTAT_API__TOKENS": '{"alice": "alices-token-0123456789"}',
        "HOMEOSTAT_SLACK__SIGNING_SECRET": "slack-signing-5e6f7a",
        "HOMEOSTAT_TEMPORAL__API_KEY": "temporal-key-1a2b3c",
        "HOMEOSTAT_KAFKA__SASL_PASSWORD": "sasl-pass-8d9e0f",
    }
    monkeypatch.chdir(tmp_path)
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    configured = settings.load(None)
    stream = io.StringIO()
    logging_setup.configure(
        level="info", json=True, stream=stream, mask=worker.secret_mask(configured)
    )
    shown = [
        "am-token-7f3e9c",
        "events-hmac-4b1d2a",
        "gitlab-token-9c8b7a",
        "alices-token-0123456789",
        "slack-signing-5e6f7a",
        "temporal-key-1a2b3c",
        "sasl-pass-8d9e0f",
    ]
    for secret in shown:
        structlog.get_logger("controller.test").warning("request_refused", detail=f"sent {secret}")
        logging.getLogger("kafka").error("auth failed for %s", secret)
    text = stream.getvalue()
    assert len(_lines(stream)) == 2 * len(shown)
    assert not [secret for secret in shown if secret in text]
