"""Combine the `make soak` fragments in bench/results/ into SOAK.md and SOAK.json.

Each soak piece writes its own JSON fragment when it runs:

- ``webhook_fuzz.json`` (tests/e2e/test_webhook_fuzz.py): requests per route and status;
- ``kafka_fuzz.json`` (tests/e2e/test_kafka_fuzz.py): messages by kind, dead-lettered,
  episodes the valid ones started;
- ``faults.json`` (tests/faults/test_fault_soak.py): kills, episodes checked, losses,
  duplicates;
- ``load.json`` (tests/faults/test_load_soak.py): ten times the design load, resident
  memory over time, consumer lag, webhook latency.

This script reads whichever are there (a missing one is reported as not run, with no
figure made up for it) and writes one report. ``make soak`` runs it after the tests.

    python bench/soak_report.py [RESULTS_DIR]
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
FRAGMENTS = ("webhook_fuzz", "kafka_fuzz", "faults", "load")


def read(folder: Path) -> dict[str, Any]:
    """Every fragment found in ``folder``, by name."""
    found = {}
    for name in FRAGMENTS:
        path = folder / f"{name}.json"
        if path.exists():
            found[name] = json.loads(path.read_text())
    return found


def summary(fragments: dict[str, Any]) -> dict[str, Any]:
    """The combined figures (what SOAK.json holds besides the fragments)."""
    combined: dict[str, Any] = {"generated": datetime.now(UTC).isoformat(timespec="seconds")}
    fuzz = fragments.get("webhook_fuzz")
    if fuzz is not None:
        combined["webhook_fuzz"] = {
            route: {
                "bodies": row["requests"],
                "statuses": row["statuses"],
                "responses_5xx": row["responses_5xx"],
            }
            for route, row in fuzz["routes"].items()
        }
    kafka = fragments.get("kafka_fuzz")
    if kafka is not None:
        combined["kafka_fuzz"] = {
            key: kafka[key]
            for key in ("messages", "dead_lettered", "episodes_started", "by_kind")
            if key in kafka
        }
    faults = fragments.get("faults")
    if faults is not None:
        combined["faults"] = {
            **faults["totals"],
            "excused_reruns": sum(run["excused_reruns"] for run in faults["runs"]),
        }
    load = fragments.get("load")
    if load is not None:
        combined["load"] = {
            "design_load": load["design_load"],
            "factor": load["factor"],
            "seconds": load["seconds"],
            "kafka_achieved_per_second": load["kafka"]["achieved_per_second"],
            "webhooks_achieved_per_second": load["webhooks"]["achieved_per_second"],
            "webhook_latency_ms": load["webhooks"]["latency_ms"],
            "webhook_statuses": load["webhooks"]["statuses"],
            "lag_max": load["kafka"]["lag_max"],
            "lag_drained_after_seconds": load["kafka"]["lag_drained_after_seconds"],
            "rss": load["rss"],
            "rss_over_time": [[s["at"], s["rss_mib"]] for s in load["samples"]],
            "load_average": load["load_average"],
        }
    combined["missing"] = [name for name in FRAGMENTS if name not in fragments]
    return combined


def markdown(fragments: dict[str, Any], combined: dict[str, Any]) -> str:
    """SOAK.md."""
    lines = [
        "# Soak report (make soak)",
        "",
        (
            f"Combined {combined['generated']} by bench/soak_report.py from the fragments in "
            "bench/results/ (each piece's own report is beside it). The machine has 2 cores "
            "shared with other engineers' work: rates and latencies are distorted by CPU "
            "contention; counts (losses, duplicates, 5xx) are not."
        ),
        "",
    ]
    lines += _webhooks(fragments, combined)
    lines += _kafka(fragments, combined)
    lines += _faults(fragments, combined)
    lines += _load(fragments, combined)
    if combined["missing"]:
        lines += ["## Not run", "", ", ".join(f"`{m}`" for m in combined["missing"]), ""]
    return "\n".join(lines)


def _webhooks(fragments: dict[str, Any], combined: dict[str, Any]) -> list[str]:
    if "webhook_fuzz" not in combined:
        return []
    rows = combined["webhook_fuzz"]
    statuses = sorted({s for row in rows.values() for s in row["statuses"]}, key=int)
    lines = [
        f"## Webhook fuzz ({fragments['webhook_fuzz']['when']})",
        "",
        "| route | bodies | " + " | ".join(statuses) + " | 5xx |",
        "| --- | ---: | " + " | ".join("---:" for _ in statuses) + " | ---: |",
    ]
    lines += [
        f"| `{route}` | {row['bodies']} | "
        + " | ".join(str(row["statuses"].get(s, 0)) for s in statuses)
        + f" | {row['responses_5xx']} |"
        for route, row in rows.items()
    ]
    return [*lines, ""]


def _kafka(fragments: dict[str, Any], combined: dict[str, Any]) -> list[str]:
    if "kafka_fuzz" not in combined:
        return []
    kafka = combined["kafka_fuzz"]
    when = fragments["kafka_fuzz"].get("when", "")
    lines = [
        f"## Kafka fuzz ({when})",
        "",
        (
            f"Messages: {kafka.get('messages')}. Dead-lettered: {kafka.get('dead_lettered')}. "
            f"Episodes started by the valid ones: {kafka.get('episodes_started')}."
        ),
        "",
    ]
    kinds = kafka.get("by_kind") or {}
    if kinds:
        lines += ["| kind | messages |", "| --- | ---: |"]
        lines += [f"| {kind} | {count} |" for kind, count in kinds.items()]
        lines.append("")
    return lines


def _faults(fragments: dict[str, Any], combined: dict[str, Any]) -> list[str]:
    if "faults" not in combined:
        return []
    totals = combined["faults"]
    lines = [
        f"## Faults ({fragments['faults']['when']})",
        "",
        (
            f"Kills survived: {totals['kills_survived']} of {totals['kills']}. Episodes checked: "
            f"{totals['episodes_checked']}. Losses: {totals['losses']}. Duplicates: "
            f"{totals['duplicates']}. Phantom episodes: {totals['phantoms']}. Steps run again "
            f"after completing, each with the worker killed or Temporal down inside the run "
            f"(at least once, as documented): {totals['excused_reruns']}."
        ),
        "",
    ]
    for run in fragments["faults"]["runs"]:
        lines.append(
            f"- seed {run['seed']}: kills by target {run['kills_by_target']}, "
            f"{run['broker_stalls']} broker stalls, {run['homeostat_kills_in_temporal_outage']} "
            f"Homeostat kills inside a Temporal outage; recovery median "
            f"{run['recovery_seconds']['median']} s, max {run['recovery_seconds']['max']} s"
        )
        for kind in ("losses", "duplicates", "phantoms"):
            lines += [f"  - {kind}: {item}" for item in run["findings"][kind]]
    return [*lines, ""]


def _load(fragments: dict[str, Any], combined: dict[str, Any]) -> list[str]:
    if "load" not in combined:
        return []
    load = combined["load"]
    design = load["design_load"]
    latency = load["webhook_latency_ms"]
    rss = load["rss"]
    return [
        f"## Load ({fragments['load']['when']})",
        "",
        (
            f"Design load: {design['kafka_events_per_second']} Kafka events/s and "
            f"{design['webhook_requests_per_second']} webhook requests/s; offered "
            f"{load['factor']}x for {load['seconds']} s: achieved "
            f"{load['kafka_achieved_per_second']} events/s and "
            f"{load['webhooks_achieved_per_second']} requests/s. Webhook latency p50 "
            f"{latency['p50']} ms, p99 {latency['p99']} ms, max {latency['max']} ms; statuses "
            f"{load['webhook_statuses']}. Consumer lag max {load['lag_max']}, drained "
            f"{load['lag_drained_after_seconds']} s after the load stopped. Resident memory "
            f"after warm-up {rss['first_mib']} -> {rss['last_mib']} MiB ({rss['growth_percent']}%, "
            f"{rss['slope_mib_per_min']} MiB/min). Load average before/after "
            f"{load['load_average']['before']} / {load['load_average']['after']}."
        ),
        "",
        "RSS over time (s: MiB): " + ", ".join(f"{at:.0f}: {mib}" for at, mib in _thinned(load)),
        "",
    ]


def _thinned(load: dict[str, Any], points: int = 20) -> list[list[float]]:
    series = load["rss_over_time"]
    return series[:: max(1, len(series) // points)]


def main(argv: list[str]) -> int:
    """Write SOAK.md and SOAK.json; 0 even when fragments are missing (they are listed)."""
    folder = Path(argv[1]) if len(argv) > 1 else RESULTS
    fragments = read(folder)
    combined = summary(fragments)
    (folder / "SOAK.json").write_text(
        json.dumps({"summary": combined, "fragments": fragments}, indent=2) + "\n"
    )
    (folder / "SOAK.md").write_text(markdown(fragments, combined) + "\n")
    print(f"wrote {folder / 'SOAK.md'} ({len(fragments)} of {len(FRAGMENTS)} fragments)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
