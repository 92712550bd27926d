"""Fixtures of the fault suite: the SaaS contract servers and the helpers' folder on the path.

The fakes live in ``tests/fakes/`` as top-level modules; this folder puts them on the path.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fakes"))
