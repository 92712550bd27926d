"""Generated Kafka messages through the real broker: hostile ones dead-lettered once, valid ones evaluated.

Homeostat runs in-process against the session's Temporal dev server and broker. A seeded
generator interleaves valid events (plain JSON, epoch times, CloudEvents, labels of
hundreds of KB) with hostile messages: JSON nested thousands deep, integers of thousands of
digits, sample values too large for a float, binary garbage, invalid UTF-8, wrong types,
truncated JSON, bad or far-future times, broken CloudEvents, empty and null messages; and
with events that decode but start nothing (no rule matches, or a resource key with '..').
Every hostile message must be dead-lettered exactly once with the error in its headers,
every valid one must start its episode (its resource workflow exists), and nothing else
may. 300 messages in `make test`, 10,000 in `make soak`, which writes
bench/results/kafka_fuzz.{md,json}.
"""

from __future__ import annotations

import collections
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import homeostat
import kafka_streams
import pytest

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"
SHORT = 300
SOAK = 10_000
RULES = """\
groups:
  - name: fuzz
    rules:
      - name: FuzzDown
        source: kafka
        stream: {topic}
        match: labels.kind == 'fuzz'
        when: body.state == 'down'
        resource: host/{{{{ labels.host }}}}
"""


@dataclass(frozen=True)
class Message:
    """One generated message and what must become of it."""

    kind: str
    fate: str
    """``valid`` (starts an episode), ``hostile`` (dead-lettered) or ``ignored`` (neither)."""
    key: bytes
    value: bytes | None
    host: str = ""


@dataclass
class Tally:
    """What one run sent and what became of it."""

    sent: collections.Counter[str] = field(default_factory=collections.Counter)
    dead_lettered: int = 0
    episodes: int = 0
    seconds: float = 0.0


class Generator:
    """Seeded messages of every kind; ``make(n)`` interleaves them."""

    def __init__(self, seed: int, run: str) -> None:
        self.rng = random.Random(seed)
        self.run = run
        self.count = 0

    def _host(self) -> str:
        self.count += 1
        return f"{self.run}-{self.count}"

    def _now(self) -> datetime:
        return datetime.now(UTC)

    def _extra(self) -> dict:
        rng = self.rng
        return {
            f"f{n}": rng.choice(
                [rng.randint(-(10**9), 10**9), rng.random(), "é€😀", None, [1, {"a": "b"}], True]
            )
            for n in range(rng.randint(0, 4))
        }

    def _event(self, host: str, **fields) -> dict:
        return {"timestamp": self._now().isoformat(), "kind": "fuzz", "host": host, **fields}

    # --- valid: each starts one episode --------------------------------------------------

    def valid_plain(self) -> Message:
        host = self._host()
        body = self._event(host, state="down", **self._extra())
        return Message("valid_plain", "valid", host.encode(), json.dumps(body).encode(), host)

    def valid_epoch_ms(self) -> Message:
        host = self._host()
        body = self._event(host, state="down")
        body["timestamp"] = int(self._now().timestamp() * 1000)
        return Message("valid_epoch_ms", "valid", host.encode(), json.dumps(body).encode(), host)

    def valid_cloudevent(self) -> Message:
        host = self._host()
        body = {
            "specversion": "1.0",
            "id": f"id-{host}",
            "source": "/fuzz",
            "type": "fuzz.down",
            "time": self._now().isoformat(),
            "kind": "fuzz",
            "host": host,
            "state": "down",
            "data": self._extra(),
        }
        return Message("valid_cloudevent", "valid", host.encode(), json.dumps(body).encode(), host)

    def valid_huge_label(self) -> Message:
        host = self._host()
        body = self._event(host, state="down", message="m" * self.rng.randint(10_000, 300_000))
        return Message("valid_huge_label", "valid", host.encode(), json.dumps(body).encode(), host)

    # --- hostile: each is dead-lettered ----------------------------------------------------

    def _hostile(self, kind: str, value: bytes | None) -> Message:
        return Message(kind, "hostile", self._host().encode(), value)

    def deep_array(self) -> Message:
        depth = self.rng.randint(2_000, 20_000)
        return self._hostile("deep_array", b"[" * depth + b"]" * depth)

    def deep_object(self) -> Message:
        depth = self.rng.randint(2_000, 20_000)
        return self._hostile("deep_object", b'{"a":' * depth + b"1" + b"}" * depth)

    def huge_integer(self) -> Message:
        digits = str(self.rng.randint(1, 9)) * self.rng.randint(4_301, 8_000)
        text = json.dumps(self._event(self._host(), state="down")).replace(
            '"state"', f'"n": {digits}, "state"'
        )
        return self._hostile("huge_integer", text.encode())

    def huge_sample(self) -> Message:
        digits = "1" + "0" * self.rng.randint(400, 1_000)
        text = f'{{"name": "up", "labels": {{"host": "x"}}, "value": {digits}}}'
        return self._hostile("huge_sample", text.encode())

    def binary(self) -> Message:
        size = self.rng.randint(1, 2_000)
        return self._hostile("binary", b"\xff" + self.rng.randbytes(size))

    def invalid_utf8(self) -> Message:
        return self._hostile("invalid_utf8", b'{"kind": "fuzz", "host": "\xc3\x28"}')

    def wrong_type(self) -> Message:
        value = self.rng.choice([[1, 2], "text", 42, None, True, [{"kind": "fuzz"}]])
        return self._hostile("wrong_type", json.dumps(value).encode())

    def truncated(self) -> Message:
        text = json.dumps(self._event(self._host(), state="down")).encode()
        return self._hostile("truncated", text[: self.rng.randint(1, len(text) - 1)])

    def bad_time(self) -> Message:
        stamp = self.rng.choice([True, {"t": 1}, "yesterday", 1e20, "2026-01-01T00:00:00", -1e300])
        body = self._event(self._host(), state="down")
        body["timestamp"] = stamp
        return self._hostile("bad_time", json.dumps(body).encode())

    def future(self) -> Message:
        body = self._event(self._host(), state="down")
        body["timestamp"] = (self._now() + timedelta(minutes=self.rng.randint(6, 600))).isoformat()
        return self._hostile("future", json.dumps(body).encode())

    def bad_cloudevent(self) -> Message:
        body = {"specversion": "1.0", "id": "x", "source": "/f", "type": "t", "time": "now"}
        body.pop(self.rng.choice(["id", "source", "type", "time"]))
        if self.rng.random() < 0.3:
            body["specversion"] = "0.3"
        return self._hostile("bad_cloudevent", json.dumps(body).encode())

    def empty(self) -> Message:
        return self._hostile("empty", self.rng.choice([b"", None]))

    # --- ignored: decoded, counted, start nothing ----------------------------------------

    def unmatched(self) -> Message:
        body = self._event(self._host(), state="down")
        body["kind"] = "other"
        return Message("unmatched", "ignored", b"u", json.dumps(body).encode())

    def bad_resource(self) -> Message:
        host = self.rng.choice(["a/../b", "a//b", "not a name", "x/./y"])
        body = self._event(host, state="down")
        return Message("bad_resource", "ignored", b"r", json.dumps(body).encode())

    def make(self, total: int) -> list[Message]:
        """``total`` messages, about 40% valid, 50% hostile, 10% ignored, interleaved."""
        weighted: list[tuple[Callable[[], Message], int]] = [
            (self.valid_plain, 14),
            (self.valid_epoch_ms, 8),
            (self.valid_cloudevent, 12),
            (self.valid_huge_label, 6),
            (self.deep_array, 5),
            (self.deep_object, 5),
            (self.huge_integer, 5),
            (self.huge_sample, 5),
            (self.binary, 6),
            (self.invalid_utf8, 3),
            (self.wrong_type, 5),
            (self.truncated, 5),
            (self.bad_time, 4),
            (self.future, 3),
            (self.bad_cloudevent, 3),
            (self.empty, 1),
            (self.unmatched, 5),
            (self.bad_resource, 5),
        ]
        makers = [maker for maker, _ in weighted]
        weights = [weight for _, weight in weighted]
        return [self.rng.choices(makers, weights)[0]() for _ in range(total)]


async def _run(total: int, seed: int, *, tmp_path, temporal, bootstrap) -> Tally:
    topic = kafka_streams.new_topic(bootstrap, "fuzz", partitions=3)
    folder = homeostat.write_rules(tmp_path, RULES.format(topic=topic))
    config = homeostat.make_settings(
        folder,
        temporal.address,
        kafka={
            "bootstrap_servers": [bootstrap],
            "group_id": f"g-{topic}",
            "dead_letter_topic": f"{topic}.dead",
            **kafka_streams.CONSUMER,
        },
    )
    messages = Generator(seed, topic).make(total)
    tally = Tally(sent=collections.Counter(message.kind for message in messages))
    hostile = [m for m in messages if m.fate == "hostile"]
    valid = {f"resource/host/{m.host}" for m in messages if m.fate == "valid"}
    began = time.monotonic()
    async with homeostat.running(config):
        placed = kafka_streams.produce(bootstrap, topic, [(m.key, m.value) for m in messages])
        client = await homeostat.client(temporal.address)

        async def all_started():
            found = await kafka_streams.resource_workflows(client, config.temporal.task_queue)
            return found if valid <= found else None

        started = await homeostat.eventually(all_started, timeout=120 + total / 20, interval=1)
        dead = kafka_streams.read_all(bootstrap, f"{topic}.dead", expect=len(hostile))
    tally.seconds = time.monotonic() - began
    tally.episodes = len(started)
    tally.dead_lettered = len(dead)
    where = dict(zip(placed, messages, strict=True))
    lettered = collections.Counter(
        (
            int(dict(record.headers)["homeostat-source-partition"]),
            int(dict(record.headers)["homeostat-source-offset"]),
        )
        for record in dead
    )
    twice = [position for position, count in lettered.items() if count > 1]
    assert not twice, f"seed {seed}: dead-lettered more than once: {twice[:5]}"
    wrongly = [where[position].kind for position in lettered if where[position].fate != "hostile"]
    assert not wrongly, f"seed {seed}: dead-lettered but not hostile: {wrongly[:5]}"
    missing = [
        m.kind for position, m in where.items() if m.fate == "hostile" and not lettered[position]
    ]
    assert not missing, f"seed {seed}: hostile but not dead-lettered: {missing[:5]}"
    for record in dead:
        headers = dict(record.headers)
        sent = where[
            (int(headers["homeostat-source-partition"]), int(headers["homeostat-source-offset"]))
        ]
        assert headers["homeostat-error"], (seed, sent.kind)
        assert record.value == (sent.value or b""), (seed, sent.kind)
    assert started == valid, (
        f"seed {seed}: episodes not started: {sorted(valid - started)[:5]}, unexpected: {sorted(started - valid)[:5]}"
    )
    return tally


@pytest.mark.timeout(300)
async def test_generated_messages_never_stop_the_stream(
    tmp_path, temporal_dev_server, kafka_bootstrap
):
    """300 generated messages: every hostile one is dead-lettered exactly once with its error, every valid one starts its episode, nothing else happens."""
    await _run(SHORT, 9, tmp_path=tmp_path, temporal=temporal_dev_server, bootstrap=kafka_bootstrap)


@pytest.mark.soak
@pytest.mark.timeout(3600)
async def test_soak_generated_messages_never_stop_the_stream(
    tmp_path, temporal_dev_server, kafka_bootstrap
):
    """10,000 generated messages (make soak): every hostile one dead-lettered once, every valid one evaluated; writes bench/results/kafka_fuzz.{md,json}."""
    seed = int(time.time())
    tally = await _run(
        SOAK, seed, tmp_path=tmp_path, temporal=temporal_dev_server, bootstrap=kafka_bootstrap
    )
    _write_report(tally, seed)


def _write_report(tally: Tally, seed: int) -> None:
    data = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "seed": seed,
        "messages": sum(tally.sent.values()),
        "by_kind": dict(sorted(tally.sent.items())),
        "dead_lettered": tally.dead_lettered,
        "episodes_started": tally.episodes,
        "seconds": round(tally.seconds, 1),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "kafka_fuzz.json").write_text(json.dumps(data, indent=2) + "\n")
    lines = [
        "# Kafka fuzz (make soak)",
        "",
        (
            f"Run {data['when']}, seed {seed}: {data['messages']:,} generated messages through the "
            f"real broker into an in-process Homeostat, in {data['seconds']} s. Every hostile message "
            f"was dead-lettered exactly once ({tally.dead_lettered:,}), every valid one started its "
            f"episode ({tally.episodes:,}); nothing else was dead-lettered or started."
        ),
        "",
        "| kind | messages |",
        "| --- | ---: |",
        *(f"| {kind} | {count:,} |" for kind, count in sorted(tally.sent.items())),
        "",
    ]
    (RESULTS / "kafka_fuzz.md").write_text("\n".join(lines))
