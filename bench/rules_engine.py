"""Rules-engine benchmark: 1,000,000 observations, 10,000 resources, 100 rules.

Measures events/s, µs per event, peak RSS and start-up time of Homeostat's engine, and of
ansible-rulebook 1.3.2 on equivalent rules (same conditions, no-op actions) in the same run
in a virtualenv of its own.

    python bench/rules_engine.py               # both, writes bench/results/rules_engine.json
    python bench/rules_engine.py --events 200000 --arb-events 20000

ansible-rulebook is installed by ``peers.py`` into a virtualenv of its own on first use.

Each side runs in its own process so peak RSS is that side's alone. Homeostat's figures are
taken twice: as shipped (rules indexed by their `labels.type == ...` conjunct, conditions
through CEL's plain-Python twin) and with every condition forced through CEL.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import peers
import record

RULES = 100
RESOURCES = 10_000
CHUNK = 10_000


def rule_file(rules: int, *, group: str = "bench", remediation: str | None = "scale-web") -> str:
    """Homeostat rules: Kafka event rules, one `type` each, CPU above 90 for 1 minute.

    Also the rules of ``growth.py`` (group ``growth``, no remediation).
    """
    plan = f"  remediation: {remediation}\n" if remediation else ""
    items = [
        f"- name: Hot{index}\n"
        "  source: kafka\n"
        "  stream: metrics\n"
        f"  match: labels.type == 'metric_{index}'\n"
        "  when: body.value > 90\n"
        "  for: 1m\n"
        "  stale_after: 5m\n"
        "  resource: service/{{ labels.service }}\n" + plan
        for index in range(rules)
    ]
    return f"groups:\n  - name: {group}\n    rules:\n" + textwrap.indent("".join(items), " " * 6)


def event(index: int, total: int) -> tuple[int, str, float]:
    """The index-th event: (resource number, rule type number, value).

    Each resource belongs to one rule type and reports every 100 s of event time; every
    seventh resource runs hot during the first half, so about 1,400 episodes start and end.
    """
    service = index % RESOURCES
    value = 95.0 if service % 7 == 0 and index < total // 2 else 50.0
    return service, service % RULES, value


def homeostat(events: int, *, force_cel: bool) -> dict[str, float]:
    """Run Homeostat's engine over ``events`` observations; figures for this process."""
    started = time.perf_counter()
    from controller.domain import observations  # noqa: PLC0415 - start-up is measured
    from controller.rules import engine, loader  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "bench.yaml").write_text(rule_file(RULES))
        rule_set = loader.load_rule_set(Path(folder), known_remediations=None)
    if force_cel:
        rule_set = _without_fast_paths(rule_set)
    eng = engine.Engine(rule_set)
    startup = time.perf_counter() - started
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    step = timedelta(milliseconds=10)
    transitions = 0
    busy = 0.0
    kafka = observations.SourceKind.KAFKA
    for first in range(0, events, CHUNK):
        batch = []
        for index in range(first, min(first + CHUNK, events)):
            service, kind, value = event(index, events)
            batch.append(
                observations.Observation(
                    source=kafka,
                    stream="metrics",
                    at=t0 + step * index,
                    labels={"type": f"metric_{kind}", "service": f"svc-{service}"},
                    body={"value": value},
                )
            )
        begin = time.perf_counter()
        for observation in batch:
            transitions += len(eng.observe(observation))
        transitions += len(eng.tick(batch[-1].at))
        busy += time.perf_counter() - begin
    return {
        "events": events,
        "transitions": transitions,
        "seconds": busy,
        "events_per_second": events / busy,
        "us_per_event": busy / events * 1e6,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "startup_seconds": startup,
    }


def _without_fast_paths(rule_set):  # type: ignore[no-untyped-def]
    import dataclasses  # noqa: PLC0415

    from controller.rules import model  # noqa: PLC0415

    groups = []
    for group in rule_set.groups:
        rules = tuple(
            dataclasses.replace(
                rule,
                match=rule.match and dataclasses.replace(rule.match, fast=None),
                when=rule.when and dataclasses.replace(rule.when, fast=None),
            )
            for rule in group.rules
        )
        groups.append(dataclasses.replace(group, rules=rules))
    return model.RuleSet(
        groups=tuple(groups), silences=rule_set.silences, revision=rule_set.revision
    )


def process_startup() -> float:
    """Wall time of a fresh interpreter that imports the engine, loads 100 rules, builds it."""
    code = (
        "import tempfile, pathlib, sys; sys.path.insert(0, 'bench');"
        "import rules_engine as b;"
        "from controller.rules import engine, loader;"
        "d = tempfile.mkdtemp(); pathlib.Path(d, 'r.yaml').write_text(b.rule_file(100));"
        "engine.Engine(loader.load_rule_set(pathlib.Path(d), known_remediations=None))"
    )
    best = float("inf")
    for _ in range(3):
        begin = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])
        best = min(best, time.perf_counter() - begin)
    return best


ARB_SOURCE = '''\
"""Benchmark event source: the same events as Homeostat's run, then a `done` event."""
import asyncio
import time

RESOURCES = 10_000
RULES = 100


async def main(queue, args):
    total = int(args["count"])
    print(f"FIRST {time.time()}", flush=True)
    for index in range(total):
        service = index % RESOURCES
        value = 95.0 if service % 7 == 0 and index < total // 2 else 50.0
        kind = f"metric_{service % RULES}"
        await queue.put({"type": kind, "service": f"svc-{service}", "value": value})
    await queue.put({"done": True})
    await asyncio.sleep(3600)
'''


def arb_rulebook(events: int) -> str:
    """ansible-rulebook rules equivalent to Homeostat's (no `for`: it has none)."""
    rules = "".join(
        f"      - name: hot{index}\n"
        f'        condition: event.type == "metric_{index}" and event.value > 90\n'
        "        action:\n          none:\n"
        for index in range(RULES)
    )
    return (
        "- name: bench\n  hosts: all\n  sources:\n"
        f"    - bench_source:\n        count: {events}\n"
        "  rules:\n" + rules + "      - name: done\n        condition: event.done == true\n"
        "        action:\n          shutdown:\n            delay: 0\n"
    )


def ansible_rulebook(events: int, venv: Path) -> dict[str, float | str]:
    """Run ansible-rulebook over ``events`` events; its figures, or why it could not run."""
    binary = venv / "bin" / "ansible-rulebook"
    if not binary.exists():
        return {"error": f"ansible-rulebook not installed in {venv}"}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "sources").mkdir()
        (root / "sources" / "bench_source.py").write_text(ARB_SOURCE)
        (root / "rulebook.yml").write_text(arb_rulebook(events))
        (root / "inventory.yml").write_text("all:\n  hosts:\n    localhost:\n")
        env = {**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}
        begin = time.time()
        completed = subprocess.run(
            [str(binary), "-r", "rulebook.yml", "-i", "inventory.yml", "-S", "sources"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=3600,
        )
        end = time.time()
    first = [line for line in completed.stdout.splitlines() if line.startswith("FIRST ")]
    if completed.returncode != 0 or not first:
        return {
            "error": f"exit {completed.returncode}: {(completed.stdout + completed.stderr)[-1500:]}"
        }
    busy = end - float(first[0].split()[1])
    return {
        "events": events,
        "seconds": busy,
        "events_per_second": events / busy,
        "us_per_event": busy / events * 1e6,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "startup_seconds": float(first[0].split()[1]) - begin,
    }


def child(args: list[str]) -> dict[str, float]:
    """Run one Homeostat measurement in a fresh process (for its own peak RSS)."""
    completed = subprocess.run(
        [sys.executable, __file__, *args],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[1],
    )
    return json.loads(completed.stdout)


def main() -> None:
    """Run the benchmark and record its results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--arb-events", type=int, default=100_000)
    parser.add_argument("--child", choices=["fast", "cel"])
    parser.add_argument("--no-write", action="store_true")
    options = parser.parse_args()
    if options.child:
        print(json.dumps(homeostat(options.events, force_cel=options.child == "cel")))
        return
    result = record.Result(name="rules_engine", title="Rules engine alone")
    ours = child(["--child", "fast", "--events", str(options.events)])
    all_cel = child(["--child", "cel", "--events", str(options.events)])
    startup = process_startup()
    venv = peers.ansible_rulebook()
    arb = ansible_rulebook(options.arb_events, venv)
    result.raw = {
        "workload": {"events": options.events, "resources": RESOURCES, "rules": RULES},
        "homeostat": ours,
        "homeostat_all_cel": all_cel,
        "homeostat_process_startup_seconds": startup,
        "ansible_rulebook": arb,
        "ansible_rulebook_version": _arb_version(venv),
    }
    result.rows.extend(rows(ours, all_cel, startup, arb))
    result.notes.append(
        f"Workload: {options.events:,} Kafka observations over {RESOURCES:,} resources and "
        f"{RULES} rules (`labels.type == 'metric_N'`, `when: body.value > 90`, `for: 1m`); every "
        "7th resource runs hot for the first half. ansible-rulebook "
        f"({result.raw['ansible_rulebook_version']}, its own virtualenv, Java 17) runs the same "
        f"conditions on {options.arb_events:,} events from a local source plugin; it has no "
        "`for`, so it does less work per event. Each side runs in its own process."
    )
    print(json.dumps(result.raw, indent=2))
    if not options.no_write:
        print(record.write(result))


def rows(
    ours: dict[str, float],
    all_cel: dict[str, float],
    startup: float,
    arb: dict[str, float | str],
) -> list[record.Row]:
    """The figures beside ansible-rulebook's."""
    if "events_per_second" not in arb:
        note = f"ansible-rulebook did not run: {arb.get('error', '')}"[:300]
        return [record.Row(figure="events/s", ours=ours["events_per_second"], unit="", note=note)]
    theirs = {key: float(value) for key, value in arb.items() if key != "error"}
    name = "ansible-rulebook 1.3.2"
    return [
        record.Row(
            figure="events/s (as shipped)",
            ours=round(ours["events_per_second"]),
            unit="ev/s",
            against=name,
            theirs=round(theirs["events_per_second"]),
            ratio=round(ours["events_per_second"] / theirs["events_per_second"], 1),
            target=">= 1",
            met=ours["events_per_second"] >= theirs["events_per_second"],
        ),
        record.Row(
            figure="events/s, every condition through CEL",
            ours=round(all_cel["events_per_second"]),
            unit="ev/s",
            against=name,
            theirs=round(theirs["events_per_second"]),
            ratio=round(all_cel["events_per_second"] / theirs["events_per_second"], 1),
            target=">= 1",
            met=all_cel["events_per_second"] >= theirs["events_per_second"],
        ),
        record.Row(
            figure="µs per event",
            ours=round(ours["us_per_event"], 1),
            unit="µs",
            against=name,
            theirs=round(theirs["us_per_event"], 1),
            ratio=round(theirs["us_per_event"] / ours["us_per_event"], 1),
            ratio_means="theirs / ours",
        ),
        record.Row(
            figure="peak RSS",
            ours=round(ours["peak_rss_mib"], 1),
            unit="MiB",
            against=name,
            theirs=round(theirs["peak_rss_mib"], 1),
            ratio=round(ours["peak_rss_mib"] / theirs["peak_rss_mib"], 2),
            target="<= 1",
            met=ours["peak_rss_mib"] <= theirs["peak_rss_mib"],
        ),
        record.Row(
            figure="start-up (fresh interpreter, 100 rules)",
            ours=round(startup, 2),
            unit="s",
            against=name,
            theirs=round(theirs["startup_seconds"], 2),
            ratio=round(startup / theirs["startup_seconds"], 2),
            target="<= 1",
            met=startup <= theirs["startup_seconds"],
        ),
    ]


def _arb_version(venv: Path) -> str:
    binary = venv / "bin" / "ansible-rulebook"
    if not binary.exists() or shutil.which("java") is None:
        return "not installed"
    completed = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, check=False
    )
    return (
        completed.stdout.strip().splitlines()[0]
        if completed.stdout.strip()
        else completed.stderr[-300:]
    )


if __name__ == "__main__":
    main()
