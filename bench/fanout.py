"""Fan-out benchmark: 1,000 hosts through one trivial playbook, two ways, in the same run.

- Homeostat: the ``run_playbook`` activity's own code (``controller.activities.ansible``):
  hosts cut into batches, one ansible-runner invocation per batch using forks, a bounded
  number of invocations at once, results aggregated per host.
- The seeds' way: one ``ansible-playbook`` process per host, all started at once with
  ``asyncio.gather``.

Both use the same playbook and the same inventory: N aliases of localhost with
``ansible_connection: local``. The headline run uses a trivial playbook (one ``debug``
task); a smaller second run adds ``ansible.builtin.ping``, a module that starts Python on
every host in both ways, to show how the gap narrows when the tasks dominate. Each side
runs in a child process; the parent samples the proportional set size (PSS) of that
child's whole process tree every 0.2 s and reports the peak.

One process per host costs about two seconds of CPU each on this class of machine, so on
a 2-core machine the per-host way is measured on a sample (``--sample``, default 50 hosts,
started together) and extrapolated linearly to N; the output says so. Linear is generous
to it: 1,000 concurrent ``ansible-playbook`` processes would need the sample's peak
memory times N / sample, more than this machine has.

    python bench/fanout.py                      # 1,000 hosts, per-host sample of 50
    python bench/fanout.py --hosts 200 --sample 20 --module-hosts 0 --no-record
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
PLAYBOOKS = {
    "trivial": """\
- name: Trivial fan-out play
  hosts: all
  connection: local
  gather_facts: false
  tasks:
    - name: Say hello
      ansible.builtin.debug:
        msg: "{{ inventory_hostname }} reached"
""",
    "module": """\
- name: Fan-out play running a module on every host
  hosts: all
  connection: local
  gather_facts: false
  tasks:
    - name: Reach the host
      ansible.builtin.ping:
    - name: Say so
      ansible.builtin.debug:
        msg: "{{ inventory_hostname }} reached"
""",
}
ANSIBLE_ENV = {
    "ANSIBLE_PIPELINING": "True",
    "ANSIBLE_NOCOLOR": "1",
    "ANSIBLE_HOST_KEY_CHECKING": "False",
    "ANSIBLE_RETRY_FILES_ENABLED": "False",
}
"""The same Ansible configuration for both ways (pipelining: one process per module run)."""


def write_fixture(workdir: Path, hosts: int, kind: str) -> tuple[Path, Path]:
    """The playbook directory and the inventory of ``hosts`` localhost aliases."""
    playbooks = workdir / "playbooks"
    playbooks.mkdir(parents=True, exist_ok=True)
    (playbooks / "fanout.yml").write_text(PLAYBOOKS[kind])
    inventory = workdir / "inventory.yml"
    names = {f"host-{i:04d}": {"ansible_connection": "local"} for i in range(hosts)}
    inventory.write_text(yaml.safe_dump({"all": {"hosts": names}}))
    return playbooks, inventory


def tree_pss(root: int) -> int:
    """Proportional set size of ``root`` and all its descendants, in bytes.

    PSS, not RSS: forked Ansible workers share most of their pages with their parent,
    and RSS would count those pages once per process.
    """
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, pending = 0, [root]
    while pending:
        pid = pending.pop()
        total += _pss(pid)
        pending.extend(children.get(pid, []))
    return total


def _pss(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return 0


def measure(args: list[str]) -> dict[str, float]:
    """Run this script as a child with ``args``; its JSON answer plus peak tree PSS."""
    process = subprocess.Popen(
        [sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_pss(process.pid))
            done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = process.communicate()
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"child {args} failed with {process.returncode}")
    found = json.loads(out.strip().splitlines()[-1])
    found["peak_pss_mib"] = round(peak / 2**20, 1)
    return found


def child_batched(
    workdir: Path, kind: str, *, hosts: int, batch: int, forks: int, runs: int
) -> None:
    """Run the activity's code on every host; print seconds and host counts."""
    from temporalio.testing import ActivityEnvironment  # noqa: PLC0415

    from controller.activities import ansible, inventory  # noqa: PLC0415
    from controller.activities import config as config_module  # noqa: PLC0415
    from controller.domain import resources  # noqa: PLC0415
    from controller.workflows import activity_io  # noqa: PLC0415

    playbooks, inventory_file = write_fixture(workdir, hosts, kind)
    activities = ansible.PlaybookActivities(
        playbooks_dir=playbooks,
        state_dir=workdir / "state",
        settings=config_module.AnsibleConfig(
            inventory=inventory_file,
            batch_size=batch,
            forks=forks,
            parallel_runs=runs,
            python_interpreter=sys.executable,
            env=ANSIBLE_ENV,
        ),
        hosts=inventory.Inventory(cmdb_client=None, static=inventory_file),
    )
    request = activity_io.RunPlaybookInput(
        context=activity_io.ActivityContext(
            resource=resources.ResourceKey("fleet/all"),
            episode=resources.EpisodeId("bench/fleet/all/1"),
            rule="bench",
            plan="fanout",
            step="fanout",
        ),
        playbook="fanout.yml",
        hosts=tuple(f"host-{i:04d}" for i in range(hosts)),
    )
    started = time.perf_counter()
    out = ActivityEnvironment().run(activities.run_playbook, request)
    seconds = time.perf_counter() - started
    ok = sum(1 for result in out.hosts if result.ok)
    print(json.dumps({"seconds": round(seconds, 2), "hosts": len(out.hosts), "ok": ok}))


def child_per_host(workdir: Path, kind: str, hosts: int) -> None:
    """One ansible-playbook per host, all at once; print seconds and host counts."""
    playbooks, inventory_file = write_fixture(workdir, hosts, kind)
    env = {**os.environ, "ANSIBLE_PYTHON_INTERPRETER": sys.executable, **ANSIBLE_ENV}
    binary = str(Path(sys.executable).parent / "ansible-playbook")

    async def one(host: str) -> int:
        process = await asyncio.create_subprocess_exec(
            binary,
            "-i",
            str(inventory_file),
            "--limit",
            host,
            str(playbooks / "fanout.yml"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        return await process.wait()

    async def everything() -> list[int]:
        return await asyncio.gather(*(one(f"host-{i:04d}") for i in range(hosts)))

    started = time.perf_counter()
    codes = asyncio.run(everything())
    seconds = time.perf_counter() - started
    ok = sum(1 for code in codes if code == 0)
    print(json.dumps({"seconds": round(seconds, 2), "hosts": hosts, "ok": ok}))


def machine() -> dict[str, object]:
    """What the figures were measured on."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = next(
        line.split()[1]
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    import ansible  # noqa: PLC0415
    import ansible_runner  # noqa: PLC0415

    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(int(memory) / 2**20, 1),
        "load_average_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "ansible_core": ansible.__version__,
        "ansible_runner": ansible_runner.__version__
        if hasattr(ansible_runner, "__version__")
        else "2.4",
        "kernel": platform.release(),
    }


def compare(
    workdir: Path, *, kind: str, hosts: int, sample: int, batch: int, forks: int, runs: int
) -> dict[str, object]:
    """Both ways on one playbook: measured figures, extrapolation and speed-up."""
    batched = measure(
        [
            "--child=batched",
            f"--playbook={kind}",
            f"--hosts={hosts}",
            f"--batch-size={batch}",
            f"--forks={forks}",
            f"--parallel-runs={runs}",
            f"--workdir={workdir / kind / 'batched'}",
        ]
    )
    sample = min(sample, hosts)
    per_host = measure(
        [
            "--child=per-host",
            f"--playbook={kind}",
            f"--hosts={sample}",
            f"--workdir={workdir / kind / 'per-host'}",
        ]
    )
    scale = hosts / sample
    found: dict[str, object] = {
        "playbook": kind,
        "hosts": hosts,
        "batch_size": batch,
        "forks": forks,
        "parallel_runs": runs,
        "batched": batched,
        "per_host": per_host,
        "per_host_extrapolated": sample < hosts,
        "per_host_extrapolated_seconds": round(per_host["seconds"] * scale, 1),
        "per_host_extrapolated_pss_mib": round(per_host["peak_pss_mib"] * scale, 1),
    }
    found["speedup"] = round(per_host["seconds"] * scale / batched["seconds"], 1)
    return found


def _rows(run: dict) -> list[str]:
    b, p, n = run["batched"], run["per_host"], run["hosts"]
    return [
        f"| **{run['playbook']}** playbook, {n} hosts | | | | |",
        (
            f"| Homeostat `run_playbook`: batches of {run['batch_size']}, {run['forks']} forks, "
            f"{run['parallel_runs']} runs at once | {b['ok']}/{b['hosts']} ok "
            f"| {b['seconds']:.1f} s "
            f"| {b['hosts'] / b['seconds']:.1f} | {b['peak_pss_mib']:.0f} MiB |"
        ),
        (
            f"| one `ansible-playbook` per host via `asyncio.gather`, measured on {p['hosts']} "
            f"hosts | {p['ok']}/{p['hosts']} ok | {p['seconds']:.1f} s "
            f"| {p['hosts'] / p['seconds']:.2f} | {p['peak_pss_mib']:.0f} MiB |"
        ),
        (
            f"| the same, **extrapolated** linearly to {n} hosts | | "
            f"{run['per_host_extrapolated_seconds']:.0f} s | | "
            f"{run['per_host_extrapolated_pss_mib'] / 1024:.1f} GiB if all started together |"
        ),
        f"| speed-up | | **{run['speedup']:.1f}x** | | |",
    ]


def markdown(results: dict) -> str:
    """The results as the Markdown note kept beside the JSON."""
    m = results["machine"]
    main_run, module_run = results["trivial"], results.get("module")
    lines = [
        "# Fan-out benchmark (bench/fanout.py)",
        "",
        (
            f"Recorded {results['recorded'][:10]} on a {m['cpus']}-core {m['cpu']} machine "
            f"({m['memory_gib']} GiB, Python {m['python']}, ansible-core {m['ansible_core']}), "
            "shared with other work (load average at start "
            f"{m['load_average_at_start'][0]:.1f}); raw figures in `fanout.json`. Hosts are "
            "localhost aliases (`ansible_connection: local`); both ways use the same inventory, "
            "playbook and Ansible settings (pipelining on)."
        ),
        "",
        "| | hosts run | wall time | hosts/s | peak memory (PSS, process tree) |",
        "| --- | ---: | ---: | ---: | ---: |",
        *_rows(main_run),
        *(_rows(module_run) if module_run else []),
        "",
        (
            f"The per-host figures for {main_run['hosts']} hosts are **extrapolated** from the "
            "measured sample, not measured: every process pays ansible-playbook's start-up "
            "(imports, plugins, parsing the whole inventory) for one host. Started together, "
            "the whole fleet's processes would need the memory shown, more than the machine has."
        ),
        "",
        (
            "The **trivial** playbook (one `debug` task) measures what the two ways differ in: "
            "the cost of running Ansible per host. The **module** playbook adds "
            "`ansible.builtin.ping`, which starts a Python interpreter on every host in both "
            "ways; that per-host cost is the same for both, so the speed-up shrinks when the "
            "tasks themselves dominate."
        ),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Run the benchmark (or one side of it, as a child) and record the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--sample", type=int, default=50, help="hosts for the per-host way")
    parser.add_argument("--module-hosts", type=int, default=100, help="0 skips the module run")
    parser.add_argument("--module-sample", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--forks", type=int, default=50)
    parser.add_argument("--parallel-runs", type=int, default=2)
    parser.add_argument("--no-record", action="store_true", help="print, do not write results")
    parser.add_argument("--child", choices=["batched", "per-host"], help=argparse.SUPPRESS)
    parser.add_argument("--playbook", choices=sorted(PLAYBOOKS), help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        workdir = Path(options.workdir)
        if options.child == "batched":
            child_batched(
                workdir,
                options.playbook,
                hosts=options.hosts,
                batch=options.batch_size,
                forks=options.forks,
                runs=options.parallel_runs,
            )
        else:
            child_per_host(workdir, options.playbook, options.hosts)
        return
    results: dict[str, object] = {
        "recorded": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
    }
    settings = {
        "batch": options.batch_size,
        "forks": options.forks,
        "runs": options.parallel_runs,
    }
    with tempfile.TemporaryDirectory(prefix="fanout-") as tmp:
        results["trivial"] = compare(
            Path(tmp), kind="trivial", hosts=options.hosts, sample=options.sample, **settings
        )
        if options.module_hosts:
            results["module"] = compare(
                Path(tmp),
                kind="module",
                hosts=options.module_hosts,
                sample=options.module_sample,
                **settings,
            )
    text = json.dumps(results, indent=2)
    print(text)
    for name in ("trivial", "module"):
        run = results.get(name)
        if isinstance(run, dict) and run["per_host_extrapolated"]:
            print(
                f"NOTE ({name}): the per-host figure for {run['hosts']} hosts is EXTRAPOLATED "
                f"linearly from {run['per_host']['hosts']} hosts measured, not measured; "
                f"speed-up {run['speedup']}x."
            )
    if not options.no_record:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "fanout.json").write_text(text + "\n")
        (RESULTS / "fanout.md").write_text(markdown(results))


if __name__ == "__main__":
    main()
