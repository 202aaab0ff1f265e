from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

# tests import shared helpers (tests/speech.py) as top-level modules
sys.path.insert(0, str(Path(__file__).parent))

from strict_skips import StrictSkips, load_allowlist, strict_skips_on

# A capacity measured on this machine (`voxline bench --scenarios capacity`) would change the
# admission of every server the tests start; they run with none, as on a clean clone.
os.environ["VOXLINE_CAPACITY_FILE"] = str(Path(tempfile.mkdtemp(prefix="voxline-tests-")) / "capacity.json")


def pytest_configure(config: pytest.Config) -> None:
    if strict_skips_on():
        config.pluginmanager.register(StrictSkips(load_allowlist()), "voxline-strict-skips")
