"""One report from every benchmark's results: ``bench/results/REPORT.md`` and ``REPORT.json``.

Reads the ``<name>.json`` files the benchmarks wrote (``record.write``), in the order
``run.py`` ran them, and puts every figure beside its peer or limit, with the target and
whether it was met, the machine and its load average while each benchmark ran.

    python bench/report.py            # from the results already in bench/results/
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import record

ORDER = ("rules_engine", "kafka_ingest", "latency", "growth", "temporal_side", "fanout")
"""The benchmarks, in the order ``make bench`` runs them and the report lists them."""


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:,.1f}"
    return f"{value:,.2f}"


def _verdict(row: dict[str, Any]) -> str:
    if row["met"] is None:
        return ""
    return "met" if row["met"] else "**missed**"


def table(rows: list[dict[str, Any]]) -> list[str]:
    """The Markdown table of one benchmark's rows."""
    lines = [
        "| figure | Homeostat | peer or limit (same run) | them | ratio | target | |",
        "| --- | ---: | --- | ---: | ---: | --- | --- |",
    ]
    for row in rows:
        ratio = "" if row["ratio"] is None else f"{_number(row['ratio'])} ({row['ratio_means']})"
        lines.append(
            f"| {row['figure']} | {_number(row['ours'])} {row['unit']} | {row['against']} "
            f"| {_number(row['theirs'])} | {ratio} | {row['target']} | {_verdict(row)} |"
        )
    notes = [f"- {row['figure']}: {row['note']}" for row in rows if row["note"]]
    return [*lines, *(["", *notes] if notes else [])]


def gather(folder: Path) -> list[dict[str, Any]]:
    """Every benchmark result in ``folder``, in ``ORDER``, then any other."""
    found = {
        path.stem: json.loads(path.read_text())
        for path in folder.glob("*.json")
        if path.stem != "REPORT"
    }
    found = {name: body for name, body in found.items() if "rows" in body}
    results = [found.pop(name) for name in ORDER if name in found]
    return results + [found[name] for name in sorted(found)]


def markdown(results: list[dict[str, Any]], run: dict[str, Any]) -> str:
    """The report as Markdown."""
    machine = run["machine"]
    lines = [
        "# Homeostat benchmarks (`make bench`)",
        "",
        (
            f"One run, {run['started']} to {run['finished']} (UTC), on a {machine['cpus']}-core "
            f"{machine['cpu_model']} with {machine['memory_gib']} GiB, Python "
            f"{machine['python']}, {machine['platform']}. The machine is shared with other "
            "work: the load average (1, 5, 15 minutes) is given at the start of each "
            "benchmark. Each figure stands beside its peer or limit measured in the same run "
            "on the same machine; ratios are what count, absolute rates move with the load."
        ),
        "",
        (
            f"Load average at the start of the run: {_load(run['load_average_at_start'])}; "
            f"at its end: {_load(run['load_average_at_end'])}."
        ),
        "",
        "| benchmark | targets met | load at its start |",
        "| --- | ---: | --- |",
    ]
    for result in results:
        judged = [row for row in result["rows"] if row["met"] is not None]
        met = sum(1 for row in judged if row["met"])
        lines.append(
            f"| [{result['title']}](#{result['name']}) | {met} of {len(judged)} "
            f"| {_load(result['load_average_at_start'])} |"
        )
    for result in results:
        lines += [
            "",
            f'<a id="{result["name"]}"></a>',
            f"## {result['title']} (`bench/{result['name']}.py`)",
            "",
            (
                f"Ran {result['started']} to {result['finished']}, load average at its start "
                f"{_load(result['load_average_at_start'])}."
            ),
            "",
            *table(result["rows"]),
        ]
        for note in result["notes"]:
            lines += ["", note]
    return "\n".join(lines) + "\n"


def _load(values: list[float]) -> str:
    return ", ".join(f"{value:.2f}" for value in values)


def write(folder: Path, run: dict[str, Any]) -> tuple[Path, Path]:
    """Write REPORT.md and REPORT.json into ``folder``; their paths."""
    results = gather(folder)
    body = {**run, "benchmarks": results}
    json_path = folder / "REPORT.json"
    json_path.write_text(json.dumps(body, indent=2) + "\n")
    md_path = folder / "REPORT.md"
    md_path.write_text(markdown(results, run))
    return md_path, json_path


def main() -> None:
    """Rebuild the report from the results in ``bench/results``."""
    machine = record.machine()
    previous = record.RESULTS / "REPORT.json"
    run = {
        "started": record.now(),
        "finished": record.now(),
        "machine": machine,
        "load_average_at_start": machine["load_average"],
        "load_average_at_end": machine["load_average"],
    }
    if previous.exists():
        kept = json.loads(previous.read_text())
        run = {key: kept.get(key, value) for key, value in run.items()}
    for path in write(record.RESULTS, run):
        print(path)


if __name__ == "__main__":
    main()
