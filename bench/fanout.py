"""Fan-out benchmark: one trivial playbook over many hosts, two ways, measured in the same run.

- Homeostat: the ``run_playbook`` activity's own code (``controller.activities.ansible``):
  hosts cut into batches, one ansible-runner invocation per batch using forks, a bounded
  number of invocations at once, results aggregated per host.
- The per-host baseline: one ``ansible-playbook`` process per host, at most
  ``--per-host-concurrency`` at once (``asyncio`` and a semaphore), so a fleet fits in memory.

Both use the same playbook and the same inventory: N aliases of localhost with
``ansible_connection: local``. The per-host way runs for real on ``--per-host`` hosts (200
by default), beside the batched runner on the same hosts and on ``--hosts`` (1,000). An
optional second playbook (``--module-hosts``) adds ``ansible.builtin.ping``, a module that
starts Python on every host in both ways, to show how the gap narrows when the tasks
dominate. Each side runs in a child process; the parent samples the proportional set size
(PSS) of that child's whole process tree every 0.2 s and reports the peak.

    python bench/fanout.py                      # per-host on 200, batched on 200 and 1,000
    python bench/fanout.py --hosts 200 --per-host 20 --no-record
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
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))

import record

ROOT = Path(__file__).resolve().parents[1]
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


def child_per_host(workdir: Path, kind: str, hosts: int, concurrency: int) -> None:
    """One ansible-playbook per host, ``concurrency`` at once; print seconds and host counts."""
    playbooks, inventory_file = write_fixture(workdir, hosts, kind)
    env = {**os.environ, "ANSIBLE_PYTHON_INTERPRETER": sys.executable, **ANSIBLE_ENV}
    binary = str(Path(sys.executable).parent / "ansible-playbook")

    async def one(host: str, gate: asyncio.Semaphore) -> int:
        async with gate:
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
        gate = asyncio.Semaphore(concurrency)
        return await asyncio.gather(*(one(f"host-{i:04d}", gate) for i in range(hosts)))

    started = time.perf_counter()
    codes = asyncio.run(everything())
    seconds = time.perf_counter() - started
    ok = sum(1 for code in codes if code == 0)
    print(json.dumps({"seconds": round(seconds, 2), "hosts": hosts, "ok": ok}))


def batched(workdir: Path, *, kind: str, hosts: int, batch: int, forks: int, runs: int) -> dict:
    """The batched runner on ``hosts`` hosts, measured in a child process."""
    return measure(
        [
            "--child=batched",
            f"--playbook={kind}",
            f"--hosts={hosts}",
            f"--batch-size={batch}",
            f"--forks={forks}",
            f"--parallel-runs={runs}",
            f"--workdir={workdir / kind / f'batched-{hosts}'}",
        ]
    )


def per_host(workdir: Path, *, kind: str, hosts: int, concurrency: int) -> dict:
    """One process per host on ``hosts`` hosts, measured in a child process."""
    return measure(
        [
            "--child=per-host",
            f"--playbook={kind}",
            f"--hosts={hosts}",
            f"--per-host-concurrency={concurrency}",
            f"--workdir={workdir / kind / f'per-host-{hosts}'}",
        ]
    )


def rows(found: dict[str, dict], settings: dict[str, int], *, kind: str) -> list[record.Row]:
    """Wall time and memory of the batched runner beside the per-host baseline."""
    base = found["per_host"]
    peer = (
        f"one ansible-playbook per host, {settings['concurrency']} at once, {base['hosts']} hosts"
    )
    runner = (
        f"batches of {settings['batch']}, {settings['forks']} forks, "
        f"{settings['runs']} runs at once"
    )
    out: list[record.Row] = []
    for label in ("batched_same", "batched_fleet"):
        if label not in found:
            continue
        ours = found[label]
        same = ours["hosts"] == base["hosts"]
        rate, their_rate = ours["hosts"] / ours["seconds"], base["hosts"] / base["seconds"]
        out.append(
            record.Row(
                figure=f"{kind} playbook, {ours['hosts']} hosts: hosts/s ({runner}; "
                f"{ours['ok']}/{ours['hosts']} ok)",
                ours=round(rate, 2),
                unit="hosts/s",
                against=peer + f" ({base['ok']}/{base['hosts']} ok)",
                theirs=round(their_rate, 2),
                ratio=round(rate / their_rate, 1),
                target=">= 1",
                met=rate >= their_rate,
                note=(
                    f"wall time {ours['seconds']:.1f} s vs {base['seconds']:.1f} s"
                    if same
                    else f"wall time {ours['seconds']:.1f} s for {ours['hosts']} hosts; the "
                    f"per-host way measured on {base['hosts']} took {base['seconds']:.1f} s"
                ),
            )
        )
        out.append(
            record.Row(
                figure=f"{kind} playbook, {ours['hosts']} hosts: peak memory (PSS, tree)",
                ours=ours["peak_pss_mib"],
                unit="MiB",
                against=peer,
                theirs=base["peak_pss_mib"],
                ratio=round(ours["peak_pss_mib"] / base["peak_pss_mib"], 2),
            )
        )
    return out


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


def run_playbook_kind(
    workdir: Path, kind: str, *, fleet: int, base: int, settings: dict[str, int]
) -> dict[str, dict]:
    """Per-host on ``base`` hosts, batched on the same and on ``fleet``."""
    found = {
        "per_host": per_host(workdir, kind=kind, hosts=base, concurrency=settings["concurrency"]),
        "batched_same": batched(
            workdir,
            kind=kind,
            hosts=base,
            batch=settings["batch"],
            forks=settings["forks"],
            runs=settings["runs"],
        ),
    }
    if fleet != base:
        found["batched_fleet"] = batched(
            workdir,
            kind=kind,
            hosts=fleet,
            batch=settings["batch"],
            forks=settings["forks"],
            runs=settings["runs"],
        )
    return found


def main() -> None:
    """Run the benchmark (or one side of it, as a child) and record the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--hosts", type=int, default=1000, help="hosts for the batched runner")
    parser.add_argument("--per-host", type=int, default=200, help="hosts run one per process")
    parser.add_argument("--per-host-concurrency", type=int, default=8)
    parser.add_argument("--module-hosts", type=int, default=0, help="0 skips the module run")
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
            child_per_host(workdir, options.playbook, options.hosts, options.per_host_concurrency)
        return
    settings = {
        "batch": options.batch_size,
        "forks": options.forks,
        "runs": options.parallel_runs,
        "concurrency": options.per_host_concurrency,
    }
    result = record.Result(name="fanout", title="Fan-out over hosts, measured")
    result.raw = {"machine": machine(), "settings": settings}
    with tempfile.TemporaryDirectory(prefix="fanout-") as tmp:
        trivial = run_playbook_kind(
            Path(tmp), "trivial", fleet=options.hosts, base=options.per_host, settings=settings
        )
        result.raw["trivial"] = trivial
        result.rows.extend(rows(trivial, settings, kind="trivial"))
        if options.module_hosts:
            module = run_playbook_kind(
                Path(tmp),
                "module",
                fleet=options.module_hosts,
                base=options.module_hosts,
                settings=settings,
            )
            result.raw["module"] = module
            result.rows.extend(rows(module, settings, kind="module"))
    result.notes.append(
        "Hosts are localhost aliases (`ansible_connection: local`); both ways use the same "
        "inventory, playbook (one `debug` task: what the ways differ in is the cost of running "
        "Ansible per host) and settings (pipelining on). Every figure is measured: the "
        "per-host way runs each of its hosts as its own `ansible-playbook` process, at most "
        f"{options.per_host_concurrency} at once. Memory is the peak proportional set size of "
        "each side's whole process tree."
    )
    print(json.dumps(result.raw, indent=2))
    if not options.no_record:
        print(record.write(result))


if __name__ == "__main__":
    main()
