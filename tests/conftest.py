from __future__ import annotations

import sys
from pathlib import Path

import pytest

# tests import shared helpers (tests/speech.py) as top-level modules
sys.path.insert(0, str(Path(__file__).parent))

from strict_skips import StrictSkips, load_allowlist, strict_skips_on


def pytest_configure(config: pytest.Config) -> None:
    if strict_skips_on():
        config.pluginmanager.register(StrictSkips(load_allowlist()), "voxline-strict-skips")
