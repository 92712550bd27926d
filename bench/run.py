"""``make bench``: every benchmark under bench/, one after the other, then one report.

Each benchmark runs in its own process and writes ``bench/results/<name>.json``; the
report (``REPORT.md``, ``REPORT.json``) puts their figures beside their peers and limits.
Peers (ansible-rulebook and its Java) are installed by ``peers.py`` into virtualenvs of
their own under ``.bench-peers/``. ``--quick`` runs smaller workloads, for trying the
harness, not for the record.

    python bench/run.py                       # everything, as make bench does
    python bench/run.py --only latency growth     # again; the rest stay the last full run's
    python bench/run.py --quick --only kafka_ingest
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import record
import report

HERE = Path(__file__).parent
FULL: dict[str, list[str]] = {
    "rules_engine": [],
    "kafka_ingest": ["--profile", str(HERE / "results" / "flamegraphs")],
    "latency": [],
    "growth": [],
    "temporal_side": [],
    "fanout": [],
    "resource_list": [],
    "backtest_memory": [],
    "webhook_limits": [],
}
"""Each benchmark's arguments for the record."""
QUICK: dict[str, list[str]] = {
    "rules_engine": ["--events", "100000", "--arb-events", "10000"],
    "kafka_ingest": ["--events", "50000"],
    "latency": ["--samples", "20"],
    "growth": ["--quick"],
    "temporal_side": ["--quick"],
    "fanout": ["--hosts", "100", "--per-host", "20", "--module-hosts", "0"],
    "resource_list": ["--resources", "300", "--no-record"],
    "backtest_memory": [],
    "webhook_limits": [],
}
"""Smaller workloads, for trying the harness."""


def wait_for_quiet(limit: float, patience: float) -> None:
    """Wait up to ``patience`` seconds for the 1-minute load average to fall under ``limit``."""
    deadline = time.monotonic() + patience
    while os.getloadavg()[0] > limit and time.monotonic() < deadline:
        print(f"load average {os.getloadavg()[0]:.1f} > {limit}: waiting", flush=True)
        time.sleep(30)


def merged(
    times: dict[str, dict[str, object]], run: dict[str, object], names: list[str]
) -> tuple[dict[str, dict[str, object]], dict[str, object]]:
    """Some benchmarks run again alone: the last full run's record, with these as re-runs.

    The other benchmarks' results stay as that run wrote them; the report names the
    re-run ones, when they ran and under what load.
    """
    times_file = record.RESULTS / "times.json"
    report_file = record.RESULTS / "REPORT.json"
    if not report_file.exists():
        return times, run
    kept = json.loads(report_file.read_text())
    previous = json.loads(times_file.read_text()) if times_file.exists() else {}
    rerun = {
        "names": names,
        "started": run["started"],
        "finished": run["finished"],
        "load_average_at_start": run["load_average_at_start"],
    }
    earlier = [
        {**entry, "names": [name for name in entry["names"] if name not in names]}
        for entry in kept.get("reruns", [])
    ]
    whole = {key: kept.get(key, value) for key, value in run.items() if key != "failed"}
    whole["failed"] = sorted((set(kept.get("failed", [])) - set(names)) | set(run["failed"]))
    whole["reruns"] = [entry for entry in earlier if entry["names"]] + [rerun]
    return {**previous, **times}, whole


def main() -> None:
    """Run the benchmarks asked for, then write the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(FULL), default=list(FULL))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--quiet-load",
        type=float,
        default=float(os.environ.get("BENCH_QUIET_LOAD", "0")),
        help="before each benchmark wait (at most --patience s) for the load to fall under this",
    )
    parser.add_argument("--patience", type=float, default=600)
    options = parser.parse_args()
    started = record.now()
    load_at_start = [round(value, 2) for value in os.getloadavg()]
    failed = []
    times: dict[str, dict[str, object]] = {}
    for name in [name for name in (*report.ORDER, *report.OTHERS) if name in options.only]:
        if options.quiet_load:
            wait_for_quiet(options.quiet_load, options.patience)
        arguments = (QUICK if options.quick else FULL)[name]
        print(f"== {name} {' '.join(arguments)}", flush=True)
        began = time.monotonic()
        times[name] = {"recorded": record.now(), "load": [round(v, 2) for v in os.getloadavg()]}
        completed = subprocess.run(
            [sys.executable, str(HERE / f"{name}.py"), *arguments], check=False
        )
        print(f"== {name}: exit {completed.returncode} in {time.monotonic() - began:.0f} s")
        if completed.returncode != 0:
            failed.append(name)
    run = {
        "started": started,
        "finished": record.now(),
        "machine": record.machine(),
        "load_average_at_start": load_at_start,
        "load_average_at_end": [round(value, 2) for value in os.getloadavg()],
        "quick": options.quick,
        "failed": failed,
    }
    if set(options.only) != set(FULL):
        times, run = merged(times, run, sorted(options.only))
    (record.RESULTS / "times.json").write_text(json.dumps(times, indent=2) + "\n")
    for path in report.write(record.RESULTS, run):
        print(path)
    if failed:
        raise SystemExit(f"benchmarks failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
