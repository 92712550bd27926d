"""Hypothesis through the real HTTP server: hostile bodies on every webhook route, valid events interleaved.

Homeostat runs in-process (uvicorn on a loopback port) against the session's Temporal dev
server. Each route gets 1,000 generated requests in `make test` and 10,000 in `make soak`:
JSON of any shape, wrong types, deep nesting, huge numbers, truncated and binary bodies,
wrong content types, bodies over the limit, bad credentials, and valid events. No answer may
be 5xx, none may hang, the connection must survive every answer that does not close it, and
every valid event must start its episode: its answer names one transition and its resource
workflow exists in Temporal. The soak run writes bench/results/webhook_fuzz.{md,json}.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import homeostat
import httpx
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rawhttp import SyncConnection, head
from webhook_senders import (
    CREDENTIALS,
    EVENTS_SECRET,
    PATHS,
    RULES,
    headers_for,
    route_of,
    valid_body,
)

from controller.domain import contract, resources
from controller.ingest import auth

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"
LIMIT = 4 * 1024 * 1024
SHORT = 1000
SOAK = 10_000

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["probe", "", "service/a", "..", "a\x00b", "1970-01-01T00:00:00Z"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "kind",
                    "service",
                    "timestamp",
                    "labels",
                    "value",
                    "name",
                    "specversion",
                    "id",
                    "source",
                    "type",
                    "time",
                    "alerts",
                    "status",
                    "version",
                    "project",
                    "object_attributes",
                ]
            )
            | st.text(max_size=6),
            children,
            max_size=5,
        )
    ),
    max_leaves=12,
)
"""Any JSON, biased towards the field names the decoders look at."""

PLAN = {
    "valid": 25,
    "json": 175,
    "wrong_types": 200,
    "deep": 60,
    "number": 100,
    "truncated": 60,
    "bytes": 60,
    "text": 60,
    "array": 60,
    "content_type": 60,
    "auth": 60,
    "huge": 20,
    "too_many": 20,
    "gitlab_event": 40,
}
"""Requests per 1,000 by kind; a kind that does not apply to a route becomes ``json``."""
KINDS = list(PLAN)


@dataclass
class Tally:
    """What one route's run sent and got."""

    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    kinds: collections.Counter[str] = field(default_factory=collections.Counter)
    valid_resources: list[str] = field(default_factory=list)
    exchange_seconds: collections.Counter[str] = field(default_factory=collections.Counter)
    requests: int = 0
    connections: int = 0
    seconds: float = 0.0


@dataclass
class Case:
    kind: str
    route: str
    path: str
    body: bytes
    headers: dict[str, str]
    chunks: tuple[bytes, ...] = ()
    resource: str | None = None
    expect: int | None = None


def _wrong_types(draw: Any, route: str) -> bytes:
    value = draw(JSON_VALUES)
    other = draw(JSON_VALUES)
    if route == "alertmanager":
        alert = {
            "status": draw(st.sampled_from(["firing", "resolved", value])),
            "labels": draw(st.sampled_from([{"alertname": "Probe", "service": "x"}, value])),
            "startsAt": draw(st.sampled_from(["2026-11-22T10:00:00Z", other, "yesterday"])),
            "endsAt": other,
        }
        body: Any = {
            "version": draw(st.sampled_from(["4", value])),
            "alerts": draw(st.sampled_from([[alert], alert, value, [alert, value]])),
        }
    elif route == "gitlab":
        body = {
            "object_kind": value,
            "object_attributes": draw(st.sampled_from([{"status": value}, other])),
            "project": draw(st.sampled_from([{"path_with_namespace": other}, value])),
            "ref": other,
        }
    else:
        body = draw(
            st.sampled_from(
                [
                    {"kind": "other", "service": value, "timestamp": other},
                    {"name": "cpu", "value": value, "labels": other},
                    {
                        "specversion": draw(st.sampled_from(["1.0", value])),
                        "id": value,
                        "source": "/x",
                        "type": other,
                        "time": draw(st.sampled_from(["2026-11-22T10:00:00Z", value])),
                    },
                    {
                        "kind": "other",
                        "timestamp": draw(st.sampled_from([value, 10**20, -1, 1e300, "nope"])),
                    },
                ]
            )
        )
    return json.dumps(body).encode()


def _huge_number(draw: Any, route: str) -> bytes:
    del route
    digits = b"9" * draw(st.integers(300, 6000))
    number = draw(
        st.sampled_from(
            [
                digits,
                b"-" + digits,
                b"1." + digits,
                b"1e" + digits[:6],
                b"0." + digits + b"e-99999",
                digits + b".5",
            ]
        )
    )
    template = draw(
        st.sampled_from(
            [
                b'{"value": %s}',
                b'{"name": "cpu", "labels": {}, "value": %s}',
                b'{"timestamp": %s}',
                b"[%s]",
                b"%s",
                b'{"version": "4", "alerts": [], "truncatedAlerts": %s}',
            ]
        )
    )
    return template % number


def kind_for(route_name: str, kind: str) -> str:
    """``kind``, or ``json`` where it does not apply to the route."""
    route = route_of(route_name)
    if (kind in {"too_many", "array"} and route != "events") or (
        kind == "gitlab_event" and route != "gitlab"
    ):
        return "json"
    return kind


def _deep(draw: Any, route: str) -> bytes:
    del route
    depth = draw(st.integers(40, 6000))
    opener, closer = draw(
        st.sampled_from([(b"[", b"]"), (b'{"a":', b"}"), (b'{"labels":[', b"]}")])
    )
    return opener * depth + b"1" + closer * draw(st.sampled_from([depth, depth // 2]))


def _truncated(draw: Any, route: str) -> bytes:
    whole, _ = valid_body(route, draw(st.text(min_size=1, max_size=40)))
    return whole[: draw(st.integers(0, len(whole) - 1))]


def _text(draw: Any, route: str) -> bytes:
    del route
    text = json.dumps(draw(JSON_VALUES))
    return text.encode(draw(st.sampled_from(["utf-8", "utf-16", "utf-32", "latin-1"])), "replace")


def _array(draw: Any, route: str) -> bytes:
    del route
    items = draw(st.lists(st.one_of(JSON_VALUES, st.just({"kind": "other"})), max_size=20))
    return json.dumps(items).encode()


def _any_json(draw: Any, route: str) -> bytes:
    del route
    return json.dumps(draw(JSON_VALUES)).encode()


def _binary(draw: Any, route: str) -> bytes:
    del route
    return draw(st.binary(max_size=300))


def _too_many(draw: Any, route: str) -> bytes:
    del route
    return b"[" + b",".join([b'{"kind":"other"}'] * draw(st.integers(1001, 3000))) + b"]"


BODIES = {
    "wrong_types": _wrong_types,
    "deep": _deep,
    "number": _huge_number,
    "truncated": _truncated,
    "bytes": _binary,
    "text": _text,
    "array": _array,
    "too_many": _too_many,
}
"""How each kind builds its body; any other kind sends any JSON."""


def _content_type(draw: Any, case: Case) -> None:
    case.headers["Content-Type"] = draw(
        st.sampled_from(
            [
                "text/plain",
                "application/x-www-form-urlencoded",
                "multipart/form-data; boundary=x",
                "application/cloudevents+json",
                "application/json; charset=utf-16",
                "",
            ]
        )
    )


def _bad_credentials(draw: Any, case: Case) -> None:
    case.expect = 401
    broken = draw(st.sampled_from(["none", "wrong", "stale", "moved"]))
    case.headers = {"Content-Type": "application/json"}
    if broken == "wrong":
        case.headers.update(
            {
                "Authorization": "Bearer nope",
                "X-Gitlab-Token": "nope",
                "X-Gitlab-Event": "Pipeline Hook",
            }
        )
    elif case.route == "events" and broken in {"stale", "moved"}:
        case.headers = headers_for(case.route, case.path, case.body)
        stamp = int(time.time()) - (600 if broken == "stale" else 0)
        signed_path = case.path if broken == "stale" else "/v1/events/elsewhere"
        case.headers.update(
            auth.sign(EVENTS_SECRET, timestamp=stamp, path=signed_path, body=case.body)
        )


def _huge(draw: Any, case: Case) -> None:
    case.expect = 413
    case.body = b""
    if draw(st.booleans()):
        case.headers["Content-Length"] = str(draw(st.integers(LIMIT + 1, 10**10)))
        case.chunks = (b" " * 65536,)
    else:
        case.headers["Transfer-Encoding"] = "chunked"
        piece = b" " * 262144
        chunk = b"%x\r\n%s\r\n" % (len(piece), piece)
        case.chunks = (chunk,) * (LIMIT // len(piece) + 2)


def _gitlab_event(draw: Any, case: Case) -> None:
    case.headers["X-Gitlab-Event"] = draw(
        st.sampled_from(["", "System Hook", "Push Hook\r", "x" * 300, "Pipeline Hook "])
    )


def _too_many_expected(draw: Any, case: Case) -> None:
    del draw
    case.expect = 413


REQUESTS = {
    "content_type": _content_type,
    "auth": _bad_credentials,
    "huge": _huge,
    "gitlab_event": _gitlab_event,
    "too_many": _too_many_expected,
}
"""How each kind changes the request around its body."""


@st.composite
def cases(draw: Any, route_name: str, kind: str, names: itertools.count) -> Case:
    """One request of ``kind`` to ``route_name``."""
    route = route_of(route_name)
    path = PATHS[route_name]
    resource = None
    if kind == "valid":
        label = draw(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", max_size=12))
        body, resource = valid_body(route, f"fuzz-{next(names)}-{label}{uuid.uuid4().hex[:6]}")
    else:
        body = BODIES.get(kind, _any_json)(draw, route)
    case = Case(
        kind=kind,
        route=route,
        path=path,
        body=body,
        headers=headers_for(route, path, body),
        chunks=(body,),
        resource=resource,
        expect=200 if kind == "valid" else None,
    )
    if kind in REQUESTS:
        REQUESTS[kind](draw, case)
    if "Content-Length" not in case.headers and "Transfer-Encoding" not in case.headers:
        case.headers["Content-Length"] = str(len(case.body))
    return case


def fuzz(api: str, route_name: str, examples: int) -> Tally:
    """Send ``examples`` generated requests to one route, kind by kind, on kept-alive connections."""
    tally = Tally()
    connection = SyncConnection(api, timeout=60)
    names = itertools.count()
    started = time.monotonic()
    planned: collections.Counter[str] = collections.Counter()
    for kind, per_thousand in PLAN.items():
        planned[kind_for(route_name, kind)] += max(1, per_thousand * examples // 1000)
    try:
        for kind, count in planned.items():
            _fuzz_kind(connection, route_name, kind, count, names, tally)
    finally:
        connection.close()
        tally.connections = connection.connections
        tally.seconds = time.monotonic() - started
    return tally


def _fuzz_kind(
    connection: SyncConnection,
    route_name: str,
    kind: str,
    examples: int,
    names: itertools.count,
    tally: Tally,
) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases(route_name, kind, names))
    def one_request(case: Case) -> None:
        sent = time.monotonic()
        answer = connection.exchange(head("POST", PATHS[route_name], case.headers), case.chunks)
        tally.exchange_seconds[case.kind] += time.monotonic() - sent
        tally.requests += 1
        tally.statuses[answer.status] += 1
        tally.kinds[case.kind] += 1
        assert answer.status < 500, (case.kind, answer.status, answer.body[:300], case.body[:300])
        if case.expect is not None:
            assert answer.status == case.expect, (case.kind, answer.status, answer.body[:300])
        if case.kind == "valid":
            transitions = json.loads(answer.body)["transitions"]
            assert len(transitions) == 1, answer.body
            tally.valid_resources.append(case.resource)

    one_request()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def service(tmp_path_factory, temporal_dev_server):
    """Homeostat with default limits, every webhook authenticated, behind the real Temporal."""
    folder = homeostat.write_rules(tmp_path_factory.mktemp("fuzz"), RULES)
    config = homeostat.make_settings(folder, temporal_dev_server.address, **CREDENTIALS)
    async with homeostat.running(config) as endpoints:
        yield endpoints.api_url


async def _run(api: str, route_name: str, examples: int, temporal_dev_server) -> Tally:
    tally = await asyncio.to_thread(fuzz, api, route_name, examples)
    async with httpx.AsyncClient(timeout=10) as client:
        assert (await client.get(f"{api}/healthz")).status_code == 200
    assert tally.requests >= examples
    assert tally.kinds["valid"] > 0
    temporal = await homeostat.client(temporal_dev_server.address)
    for resource in tally.valid_resources:
        workflow = resources.resource_workflow_id(resources.ResourceKey(resource))
        described = await temporal.get_workflow_handle(workflow).describe()
        assert described.workflow_type == contract.RESOURCE_WORKFLOW
    return tally


@pytest.mark.timeout(300)
@pytest.mark.parametrize("route_name", list(PATHS))
async def test_no_generated_request_breaks_a_webhook(service, temporal_dev_server, route_name):
    """1,000 generated requests per route: never a 5xx or a hang, and every valid event starts its episode."""
    await _run(service, route_name, SHORT, temporal_dev_server)


SOAK_TALLIES: dict[str, Tally] = {}


@pytest.fixture(scope="module")
def soak_report():
    """Write bench/results/webhook_fuzz.{json,md} once every soaked route has run."""
    yield SOAK_TALLIES
    if SOAK_TALLIES:
        _write_report(SOAK_TALLIES)


@pytest.mark.soak
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("route_name", list(PATHS))
async def test_soak_no_generated_request_breaks_a_webhook(
    service, temporal_dev_server, soak_report, route_name
):
    """10,000 generated requests per route (make soak): never a 5xx or a hang, every valid event starts its episode."""
    soak_report[route_name] = await _run(service, route_name, SOAK, temporal_dev_server)


def _write_report(tallies: dict[str, Tally]) -> None:
    data = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "routes": {
            PATHS[name]: {
                "requests": tally.requests,
                "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
                "kinds": dict(sorted(tally.kinds.items())),
                "valid_events": len(tally.valid_resources),
                "episodes_confirmed": len(tally.valid_resources),
                "responses_5xx": sum(v for k, v in tally.statuses.items() if k >= 500),
                "connections": tally.connections,
                "seconds": round(tally.seconds, 1),
            }
            for name, tally in tallies.items()
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "webhook_fuzz.json").write_text(json.dumps(data, indent=2) + "\n")
    statuses = sorted({k for t in tallies.values() for k in t.statuses})
    lines = [
        "# Webhook fuzz (make soak)",
        "",
        (
            f"Run {data['when']}: generated requests through the real HTTP server "
            "(tests/e2e/test_webhook_fuzz.py), Homeostat in-process against the Temporal "
            "dev server."
        ),
        "",
        "| route | requests | "
        + " | ".join(str(s) for s in statuses)
        + " | 5xx | valid events | episodes confirmed | connections | seconds |",
        "| --- | ---: | "
        + " | ".join("---:" for _ in statuses)
        + " | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, tally in tallies.items():
        row = data["routes"][PATHS[name]]
        lines.append(
            f"| `{PATHS[name]}` | {tally.requests} | "
            + " | ".join(str(tally.statuses.get(s, 0)) for s in statuses)
            + f" | {row['responses_5xx']} | {row['valid_events']} | {row['episodes_confirmed']}"
            + f" | {tally.connections} | {row['seconds']} |"
        )
    lines += [
        "",
        "`connections`: TCP connections the client opened. It opens a new one only after an",
        "answer that closed its connection (401 or 413 given before the body was read) or the",
        "server's keep-alive timeout; a connection that broke after any other answer fails the",
        "run. `episodes confirmed`: valid events whose answer named their transition and whose",
        "resource workflow exists in Temporal.",
        "",
        "Requests by kind:",
        "",
        "| route | " + " | ".join(KINDS_ORDER) + " |",
        "| --- | " + " | ".join("---:" for _ in KINDS_ORDER) + " |",
    ]
    for name, tally in tallies.items():
        lines.append(
            f"| `{PATHS[name]}` | "
            + " | ".join(str(tally.kinds.get(k, 0)) for k in KINDS_ORDER)
            + " |"
        )
    (RESULTS / "webhook_fuzz.md").write_text("\n".join(lines) + "\n")


KINDS_ORDER = sorted(set(KINDS))
