"""Backtest memory benchmark: peak RSS over 1 day and 7 days of 15 s data for 100 series.

A real Prometheus (the rule-test sandbox: the `prometheus` binary, storage in a temporary
folder) receives 100 `load` series at 15 s resolution for 7 days through remote write.
`homeostat rules backtest` then runs, each time in a fresh process so its peak RSS is its
own, over the last day and over the whole week, with rules evaluated every 15 s and every
minute. Bounded memory means the 7-day peak stays close to the 1-day one: query_range is
read 720 evaluations at a time.

    python bench/backtest_memory.py          # writes bench/results/backtest_memory.json

The episodes found are printed too, so a run that silently found nothing is visible.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from controller.rules import sandbox

SERIES = 100
STEP = timedelta(seconds=15)
DAYS = 7
START = datetime(2026, 3, 2, tzinfo=UTC)
RESULTS = Path(__file__).parent / "results" / "backtest_memory.json"
RULES = """\
groups:
  - name: hosts
    interval: {interval}
    rules:
      - name: HostLoadHigh
        expr: load > 0.8
        for: 5m
        resource: host/{{{{ labels.host }}}}
"""


def _value(series: int, index: int) -> float:
    """High for 30 minutes every 6 hours, shifted per series."""
    minute = (index * 15 // 60 + series * 7) % 360
    return 0.95 if minute < 30 else 0.3


def _write(box: sandbox.Sandbox) -> int:
    points = int(timedelta(days=DAYS) / STEP)
    base = int(START.timestamp() * 1000)
    step = int(STEP.total_seconds() * 1000)
    for series in range(SERIES):
        box.write(
            [
                sandbox.Points(
                    labels={"__name__": "load", "host": f"h{series:03}"},
                    points=tuple(
                        (base + index * step, _value(series, index)) for index in range(points)
                    ),
                )
            ]
        )
    return points * SERIES


_CHILD = """
import resource, sys
from controller import cli
sys.argv = ["homeostat", *sys.argv[1:]]
try:
    cli.main()
finally:
    print("peak_rss_kib", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""
"""Runs `homeostat` and reports the process's own peak RSS when it ends."""


def _backtest(folder: Path, url: str, *, days: int) -> dict[str, float]:
    end = START + timedelta(days=DAYS)
    begin = end - timedelta(days=days)
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _CHILD,
            "rules",
            "backtest",
            str(folder),
            "--from",
            begin.isoformat(),
            "--to",
            end.isoformat(),
            "--prometheus",
            url,
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"backtest failed:\n{result.stderr}")
    peak = int(result.stderr.rsplit("peak_rss_kib", 1)[1].split()[0])
    report = json.loads(result.stdout)
    return {
        "days": days,
        "seconds": round(seconds, 1),
        "peak_rss_mib": round(peak / 1024, 1),
        "evaluations": report["inputs"],
        "episodes": len(report["episodes"]),
    }


def main() -> None:
    """Write the week of data, run the four backtests, record the figures."""
    found: dict[str, object] = {
        "recorded": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "series": SERIES,
        "resolution_seconds": STEP.total_seconds(),
        "runs": [],
    }
    with sandbox.Sandbox() as box, tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        found["samples_written"] = _write(box)
        found["write_seconds"] = round(time.monotonic() - started, 1)
        runs = []
        for interval in ("1m", "15s"):
            folder = Path(tmp) / interval
            folder.mkdir()
            (folder / "rules.yaml").write_text(RULES.format(interval=interval))
            for days in (1, DAYS):
                run = {"interval": interval, **_backtest(folder, box.url, days=days)}
                print(json.dumps(run))
                runs.append(run)
        found["runs"] = runs
    RESULTS.write_text(json.dumps(found, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
