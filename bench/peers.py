"""The peers the benchmarks compare with, installed by the bench itself, each in its own venv.

- ansible-rulebook 1.3.2 (Event-Driven Ansible's engine) in ``.bench-peers/ansible-rulebook``,
  with the Java 17 runtime its Drools engine needs (Debian's ``openjdk-17-jre-headless``,
  installed with apt-get when missing and this runs as root).

Nothing here runs at import; ``ansible_rulebook()`` installs on first use and answers the
virtualenv's path afterwards.

    python bench/peers.py        # install every peer now
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEERS = Path(os.environ.get("BENCH_PEERS", ROOT / ".bench-peers"))
ARB_VERSION = "1.3.2"


def java() -> str | None:
    """The ``java`` binary, installing Debian's Java 17 runtime when missing (as root)."""
    found = shutil.which("java")
    if found is not None:
        return found
    apt = shutil.which("apt-get")
    if os.geteuid() == 0 and apt is not None:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run([apt, "update", "-qq"], check=False, env=env)
        subprocess.run(
            [apt, "install", "-y", "-qq", "openjdk-17-jre-headless"], check=False, env=env
        )
    return shutil.which("java")


def ansible_rulebook() -> Path:
    """The virtualenv holding ansible-rulebook (and ansible-core), installed when missing.

    Raises:
        SystemExit: it could not be installed.
    """
    home = PEERS / "ansible-rulebook"
    binary = home / "bin" / "ansible-rulebook"
    if binary.exists() and (home / "bin" / "ansible-galaxy").exists():
        return home
    if java() is None:
        raise SystemExit("ansible-rulebook needs Java 17: apt-get install openjdk-17-jre-headless")
    if not (home / "bin" / "python").exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(home)
    pip = [str(home / "bin" / "python"), "-m", "pip", "install", "-q"]
    # ansible-rulebook finds its source plugins through ansible-galaxy (ansible-core).
    completed = subprocess.run(
        [*pip, f"ansible-rulebook=={ARB_VERSION}", "ansible-core"], check=False
    )
    if completed.returncode != 0 or not binary.exists():
        raise SystemExit(f"could not install ansible-rulebook {ARB_VERSION} into {home}")
    return home


def main() -> None:
    """Install every peer; print where."""
    print(ansible_rulebook())
    print(java())


if __name__ == "__main__":
    sys.exit(main())
