"""Fixtures of the operator API tests: Homeostat in-process on the session's dev server.

The SaaS fakes (``tests/fakes``) and the e2e harness (``tests/e2e/homeostat.py``) are
top-level modules; this folder puts both on the path.
"""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = Path(__file__).resolve().parents[1]
for folder in ("fakes", "e2e"):
    if str(_TESTS / folder) not in sys.path:
        sys.path.insert(0, str(_TESTS / folder))
