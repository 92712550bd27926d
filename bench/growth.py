"""Growth table: the rules engine as resources go 1,000 -> 1,000,000 and rules 10 -> 1,000.

For each size, in a fresh process (so RSS is that size's alone):

- start-up with rebuild: load the rules, build the engine and replay one event per
  resource (the recent past a restart reads back from Kafka), from the process's first line;
- steady state: ``--events-per-resource`` more events for every resource, in time order,
  timed around ``observe``/``tick`` only (building the events is the harness's cost);
- RSS (``VmRSS``) with every condition tracked, and bytes per tracked condition over the
  RSS of the same process before the first event;
- release: a ``tick`` past ``stale_after`` and the rule's horizon; the conditions still
  tracked after it (the target is none) and the RSS then.

Every event matches exactly one rule (rules are indexed by their ``labels.type == ...``
conjunct), so with cost following matching rules, µs/event stays flat as rules grow. The
rule counts are measured in rounds (``--rounds``, 3), every count once a round in a turned
order, and each count's median run is its figure: one burst of the shared machine's other
work then moves one run, not the comparison.

    python bench/growth.py                  # the table, writes bench/results/growth.json
    python bench/growth.py --quick          # 1k -> 100k resources, 10 -> 100 rules
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import record
import rules_engine

STARTED = time.perf_counter()
ROOT = Path(__file__).resolve().parents[1]
CHUNK = 20_000
LIMIT_MIB = 2048
"""The target: a million tracked resources in under 2 GiB."""
STALE_AFTER = timedelta(minutes=5)
FOR = timedelta(minutes=1)
PASS = timedelta(seconds=40)


def rss_mib() -> float:
    """This process's resident set size now, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def child(resources: int, rules: int, per_resource: int) -> dict[str, float]:
    """One size, measured in this process."""
    from controller.domain import observations  # noqa: PLC0415 - start-up is measured
    from controller.rules import engine, loader  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "growth.yaml").write_text(
            rules_engine.rule_file(rules, group="growth", remediation=None)
        )
        rule_set = loader.load_rule_set(Path(folder), known_remediations=None)
    eng = engine.Engine(rule_set)
    kafka = observations.SourceKind.KAFKA
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    services = [f"svc-{n:07d}" for n in range(resources)]
    kinds = [f"metric_{n % rules}" for n in range(resources)]
    gc.collect()
    before = rss_mib()
    # Every resource reports once per pass; a pass spans PASS of event time, so the hot
    # ones (one in 97) hold their condition past `for` and fire in the second pass.
    step = PASS / resources

    def one_pass(number: int) -> tuple[float, int]:
        busy, out = 0.0, 0
        base = t0 + PASS * number
        for first in range(0, resources, CHUNK):
            batch = [
                observations.Observation(
                    source=kafka,
                    stream="metrics",
                    at=base + step * n,
                    labels={"type": kinds[n], "service": services[n]},
                    body={"value": 95.0 if n % 97 == 0 else 50.0},
                )
                for n in range(first, min(first + CHUNK, resources))
            ]
            began = time.perf_counter()
            for observation in batch:
                out += len(eng.observe(observation))
            out += len(eng.tick(batch[-1].at))
            busy += time.perf_counter() - began
        return busy, out

    one_pass(0)
    startup = time.perf_counter() - STARTED
    busy, transitions = 0.0, 0
    for number in range(1, per_resource + 1):
        seconds, count = one_pass(number)
        busy += seconds
        transitions += count
    gc.collect()
    tracked = _tracked(eng)
    full = rss_mib()
    events = resources * per_resource
    late = t0 + PASS * (per_resource + 1) + STALE_AFTER + FOR + FOR
    eng.tick(late)
    eng.tick(late + STALE_AFTER + FOR)
    gc.collect()
    return {
        "resources": resources,
        "rules": rules,
        "events": events,
        "events_per_second": events / busy,
        "us_per_event": busy / events * 1e6,
        "transitions": transitions,
        "startup_with_rebuild_seconds": startup,
        "rss_before_mib": before,
        "rss_mib": full,
        "tracked": tracked,
        "bytes_per_condition": (full - before) * 2**20 / max(tracked, 1),
        "tracked_after_release": _tracked(eng),
        "rss_after_release_mib": rss_mib(),
    }


def _tracked(eng: object) -> int:
    """Conditions the engine holds state for (private, read by the bench only)."""
    return sum(len(runtime.tracked) for runtime in eng._runtimes.values())  # type: ignore[attr-defined]  # noqa: SLF001


def measure(resources: int, rules: int, per_resource: int) -> dict[str, float]:
    """One size in a fresh interpreter."""
    completed = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            str(resources),
            str(rules),
            str(per_resource),
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    found = json.loads(completed.stdout.strip().splitlines()[-1])
    print(
        f"{resources:>9,} resources {rules:>5} rules: {found['events_per_second']:>9,.0f} ev/s "
        f"{found['us_per_event']:5.1f} µs/ev, RSS {found['rss_mib']:7.1f} MiB "
        f"({found['bytes_per_condition']:.0f} B/condition), start-up "
        f"{found['startup_with_rebuild_seconds']:.2f} s, tracked after release "
        f"{found['tracked_after_release']}",
        flush=True,
    )
    return found


def rules_in_rounds(
    counts: tuple[int, ...], per: int, rounds: int
) -> tuple[list[dict], list[list[tuple[int, dict]]]]:
    """Each rule count measured once per round, in a turned order; each count's median run."""
    runs: dict[int, list[dict]] = {count: [] for count in counts}
    by_round: list[list[tuple[int, dict]]] = []
    for number in range(rounds):
        order = counts[number % len(counts) :] + counts[: number % len(counts)]
        this_round = [(count, measure(100_000, count, per)) for count in order]
        for count, found in this_round:
            runs[count].append(found)
        by_round.append(this_round)
    medians = [
        sorted(runs[count], key=lambda found: found["us_per_event"])[len(runs[count]) // 2]
        for count in counts
    ]
    return medians, by_round


def result_of(by_resources: list[dict], by_rules: list[dict]) -> record.Result:
    """The table's rows: each size beside the smallest (cost) and the 2 GiB limit (memory)."""
    result = record.Result(name="growth", title="Growth: resources and rules")
    result.raw = {"by_resources": by_resources, "by_rules": by_rules}
    smallest = by_resources[0]
    for found in by_resources:
        result.rows.append(
            record.Row(
                figure=f"{found['resources']:,} resources, {found['rules']} rules: µs/event",
                ours=round(found["us_per_event"], 2),
                unit="µs",
                against=f"{smallest['resources']:,} resources",
                theirs=round(smallest["us_per_event"], 2),
                ratio=round(found["us_per_event"] / smallest["us_per_event"], 2),
                note=(
                    f"{found['events_per_second']:,.0f} events/s; start-up with rebuild "
                    f"{found['startup_with_rebuild_seconds']:.2f} s; "
                    f"{found['bytes_per_condition']:.0f} bytes per tracked condition; "
                    f"{found['tracked_after_release']} conditions left after stale_after"
                ),
            )
        )
        result.rows.append(
            record.Row(
                figure=f"{found['resources']:,} resources: RSS, every condition tracked",
                ours=round(found["rss_mib"], 1),
                unit="MiB",
                against="limit for 1,000,000 resources",
                theirs=LIMIT_MIB,
                ratio=round(found["rss_mib"] / LIMIT_MIB, 3),
                target="<= 1" if found["resources"] >= 1_000_000 else "",
                met=found["rss_mib"] <= LIMIT_MIB if found["resources"] >= 1_000_000 else None,
            )
        )
    fewest = by_rules[0]
    for found in by_rules:
        ratio = found["us_per_event"] / fewest["us_per_event"]
        result.rows.append(
            record.Row(
                figure=f"{found['rules']:,} rules, {found['resources']:,} resources: µs/event",
                ours=round(found["us_per_event"], 2),
                unit="µs",
                against=f"{fewest['rules']} rules (each event matches one rule either way)",
                theirs=round(fewest["us_per_event"], 2),
                ratio=round(ratio, 2),
                target="<= 1.5",
                met=ratio <= 1.5,
                note=(
                    f"start-up with rebuild {found['startup_with_rebuild_seconds']:.2f} s, "
                    f"RSS {found['rss_mib']:.0f} MiB"
                ),
            )
        )
    released = [found for found in by_resources + by_rules if found["tracked_after_release"]]
    result.rows.append(
        record.Row(
            figure="conditions still tracked after stale_after (all sizes)",
            ours=sum(found["tracked_after_release"] for found in by_resources + by_rules),
            unit="",
            against="limit",
            theirs=0,
            target="== 0",
            met=not released,
        )
    )
    return result


def main() -> None:
    """Measure every size and record the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--events-per-resource", type=int, default=2)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the rule counts")
    parser.add_argument("--child", nargs=3, type=int, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        print(json.dumps(child(*options.child)))
        return
    sizes = (1_000, 10_000, 100_000) if options.quick else (1_000, 10_000, 100_000, 1_000_000)
    rules = (10, 100) if options.quick else (10, 100, 1_000)
    per = options.events_per_resource
    by_resources = [measure(size, 10, per) for size in sizes]
    by_rules, rounds = rules_in_rounds(rules, per, options.rounds)
    result = result_of(by_resources, by_rules)
    result.notes.append(
        f"Rules: {options.rounds} rounds at 100,000 resources, each measuring every rule "
        "count once (the order turned by one each round), so that a burst of the shared "
        "machine's other work falls on one round rather than one rule count; each count's "
        "figure is its median run. µs/event by round: "
        + "; ".join(
            ", ".join(f"{count} rules {found['us_per_event']:.2f}" for count, found in sorted(r))
            for r in rounds
        )
        + "."
    )
    result.notes.append(
        "Each size runs in a fresh process. Start-up with rebuild runs from the process's "
        "first line through loading the rules, building the engine and replaying one event "
        f"per resource. Steady state: {per} more events per resource, timed around the "
        "engine's calls only. Bytes per condition: RSS with every condition tracked over the "
        "same process's RSS before the first event, divided by the conditions tracked. "
        "Release: ticks past `stale_after` (5m) and `for` (1m) with no event."
    )
    if not options.no_write:
        print(record.write(result))


if __name__ == "__main__":
    main()
