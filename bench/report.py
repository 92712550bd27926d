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
OTHERS = ("resource_list", "backtest_memory", "webhook_limits")
"""Benchmarks of other issues, run by ``make bench`` too; their JSON is read by ``adapt``."""


def _row(figure: str, ours: float, unit: str, **values: Any) -> dict[str, Any]:
    return {
        "figure": figure,
        "ours": ours,
        "unit": unit,
        "against": "",
        "theirs": None,
        "ratio": None,
        "ratio_means": "ours / theirs",
        "target": "",
        "met": None,
        "note": "",
        **values,
    }


def adapt(name: str, body: dict[str, Any], when: dict[str, Any]) -> dict[str, Any] | None:
    """The result of another issue's benchmark (its own JSON format) as report rows."""
    rows: list[dict[str, Any]] = []
    if name == "resource_list_1000":
        best = body["best_cli_seconds"]
        rows = [
            _row(
                "homeostat resource list --json, 1,000 resources (CLI, best of 3)",
                best,
                "s",
                against="limit (issue 10)",
                theirs=2.0,
                ratio=round(best / 2.0, 2),
                target="<= 1",
                met=best <= 2.0,
            ),
            _row(
                "the same listing in process (GET /v1/resources)",
                body["best_in_process_seconds"],
                "s",
            ),
        ]
        title = "Resource list over 1,000 resources"
    elif name == "backtest_memory":
        runs = {(run["interval"], run["days"]): run for run in body["runs"]}
        for interval in sorted({key[0] for key in runs}):
            one, seven = runs.get((interval, 1)), runs.get((interval, 7))
            if one and seven:
                rows.append(
                    _row(
                        f"backtest peak RSS, 7 days of data at a {interval} interval",
                        seven["peak_rss_mib"],
                        "MiB",
                        against="1 day of data",
                        theirs=one["peak_rss_mib"],
                        ratio=round(seven["peak_rss_mib"] / one["peak_rss_mib"], 2),
                        note=f"{seven['seconds']} s vs {one['seconds']} s",
                    )
                )
        title = "Backtest memory"
    elif name == "webhook_limits":
        after = body.get("after") or next(iter(body.values()))
        idle = after["rss_idle_mib"]
        batch = after["batch_50mb"]
        rows = [
            _row(
                "RSS while an unauthenticated 500 MB POST is refused",
                after["unauthenticated_500mb"]["rss_peak_mib"],
                "MiB",
                against="RSS idle",
                theirs=idle,
            ),
            _row(
                "/healthz p99 while a 50 MB batch is ingested",
                batch["healthz_p99_ms"],
                "ms",
                note=f"worst {batch['healthz_max_ms']} ms; batch took {batch['seconds']} s",
            ),
        ]
        title = "HTTP intake under hostile load (see webhook_limits.md)"
    else:
        return None
    return {
        "name": name,
        "title": title,
        "rows": rows,
        "notes": [],
        "started": when.get("recorded", body.get("recorded", "")),
        "finished": when.get("recorded", body.get("recorded", "")),
        "load_average_at_start": when.get("load", [0.0, 0.0, 0.0]),
    }


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
        if path.stem not in {"REPORT", "times"}
    }
    times = (
        json.loads((folder / "times.json").read_text()) if (folder / "times.json").exists() else {}
    )
    adapted = {}
    for name, body in found.items():
        if "rows" in body:
            # run.py noted when each benchmark began and the load then; a benchmark itself
            # notes them when it builds its result, after it measured.
            when = times.get(name, {})
            body["started"] = when.get("recorded", body["started"])
            body["load_average_at_start"] = when.get("load", body["load_average_at_start"])
            adapted[name] = body
        else:
            made = adapt(name, body, times.get(name.removesuffix("_1000"), {}))
            if made is not None:
                adapted[name] = made
    results = [adapted.pop(name) for name in ORDER if name in adapted]
    return results + [adapted[name] for name in sorted(adapted)]


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
        *_reruns(run),
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
    analysis = Path(__file__).with_name("analysis.md")
    if analysis.exists():
        lines += ["", analysis.read_text().strip()]
    for result in results:
        lines += [
            "",
            f'<a id="{result["name"]}"></a>',
            f"## {result['title']} (`bench/{result.get('script', result['name'])}.py`)",
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


def _reruns(run: dict[str, Any]) -> list[str]:
    """A paragraph naming the benchmarks run again alone after the run (``run.py --only``)."""
    reruns = run.get("reruns", [])
    if not reruns:
        return []
    parts = [
        f"{', '.join(f'`{name}`' for name in rerun['names'])} ({rerun['started']} to "
        f"{rerun['finished']}, load at its start {_load(rerun['load_average_at_start'])})"
        for rerun in reruns
    ]
    return [
        "",
        "Run again alone since, after changes to what they measure (`bench/run.py --only`; "
        "each one's peer measured again with it): " + "; ".join(parts) + ".",
    ]


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
