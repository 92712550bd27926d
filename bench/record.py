"""What every benchmark records: the machine, its load, and rows of figures beside their peers.

Each benchmark writes ``bench/results/<name>.json`` through ``write``; ``bench/report.py``
gathers them into ``REPORT.md`` and ``REPORT.json``. A row is one figure of Homeostat's,
the peer or limit it is measured against in the same run, their ratio and the target.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def now() -> str:
    """The time now, UTC, to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    """One figure beside its peer or limit, measured in the same run.

    Attributes:
        figure: what is measured, in words.
        ours: Homeostat's value.
        unit: the unit of ``ours`` and ``theirs``.
        against: the peer or the limit it is compared with.
        theirs: the peer's or limit's value, measured in the same run.
        ratio: how the two compare, as the target states it (e.g. ours / theirs).
        ratio_means: what ``ratio`` is (``ours / theirs`` or ``theirs / ours``).
        target: the target for ``ratio`` in words (e.g. ``>= 0.75``); empty when none.
        met: whether the target is met; ``None`` when there is none.
        note: plain words about the figure, and why a target was missed.
    """

    figure: str
    ours: float
    unit: str
    against: str = ""
    theirs: float | None = None
    ratio: float | None = None
    ratio_means: str = "ours / theirs"
    target: str = ""
    met: bool | None = None
    note: str = ""


@dataclass(kw_only=True)
class Result:
    """One benchmark's run: its rows, notes and raw figures."""

    name: str
    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    started: str = field(default_factory=now)
    load_at_start: tuple[float, float, float] = field(default_factory=os.getloadavg)


def machine() -> dict[str, Any]:
    """The CPU, memory, Python and OS this ran on, and the load average now."""
    model = "unknown"
    memory_kib = 0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory_kib = int(line.split()[1])
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(memory_kib / 2**20, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": [round(value, 2) for value in os.getloadavg()],
    }


def write(result: Result) -> Path:
    """Write ``result`` as ``bench/results/<name>.json``; the path written."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    body = {
        "name": result.name,
        "title": result.title,
        "started": result.started,
        "finished": now(),
        "load_average_at_start": [round(value, 2) for value in result.load_at_start],
        "machine": machine(),
        "rows": [asdict(row) for row in result.rows],
        "notes": result.notes,
        "raw": result.raw,
    }
    path = RESULTS / f"{result.name}.json"
    path.write_text(json.dumps(body, indent=2) + "\n")
    return path


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile of ``values`` (nearest rank, as latency reports use)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summary(values: list[float]) -> dict[str, float]:
    """p50, p90, p99, mean and max of ``values``."""
    return {
        "p50": percentile(values, 0.50),
        "p90": percentile(values, 0.90),
        "p99": percentile(values, 0.99),
        "mean": statistics.fmean(values),
        "max": max(values),
        "n": len(values),
    }
