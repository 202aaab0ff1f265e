"""The strict-skip hook itself, run on a scratch suite in a child pytest."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from strict_skips import ALLOWLIST, load_allowlist, strict_skips_on

HERE = Path(__file__).parent
SCRATCH_SUITE = """
import pytest

def test_passes():
    pass

@pytest.mark.skipif(True, reason="sipp (Debian sip-tester) is not installed")
def test_missing_peer():
    pass

def test_allowed():
    pytest.skip("set VOXLINE_ASTERISK_PREFIX to run against a real Asterisk")
"""


def run_scratch(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    for name in ("conftest.py", "strict_skips.py", "skip_allowlist.txt"):
        shutil.copy(HERE / name, tmp_path / name)
    (tmp_path / "test_scratch.py").write_text(SCRATCH_SUITE)
    clean = {k: v for k, v in os.environ.items() if k not in ("CI", "VOXLINE_STRICT_SKIPS")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", str(tmp_path)],
        cwd=tmp_path, env=clean | env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_a_missing_peer_fails_the_run_in_ci(tmp_path: Path) -> None:
    done = run_scratch(tmp_path, CI="true")
    assert done.returncode == 1, done.stdout
    assert "sipp (Debian sip-tester) is not installed" in done.stdout
    assert "1 passed, 1 skipped, 1 error" in done.stdout  # the allow-listed skip stays a skip


def test_strict_by_environment_variable_and_lenient_without(tmp_path: Path) -> None:
    assert run_scratch(tmp_path, VOXLINE_STRICT_SKIPS="1").returncode == 1
    lenient = run_scratch(tmp_path)
    assert lenient.returncode == 0 and "1 passed, 2 skipped" in lenient.stdout, lenient.stdout


def test_switches() -> None:
    assert strict_skips_on({"CI": "true"}) and strict_skips_on({"VOXLINE_STRICT_SKIPS": "1"})
    assert not strict_skips_on({}) and not strict_skips_on({"VOXLINE_STRICT_SKIPS": "0", "CI": "false"})


def test_allowlist_is_short_and_each_entry_says_why(tmp_path: Path) -> None:
    entries = load_allowlist()
    assert 1 <= len(entries) <= 5, "the allow-list is meant to stay short and reviewed"
    assert all(len(entry.why) > 20 for entry in entries)
    broken = tmp_path / "list.txt"
    broken.write_text("sipp\n")
    with pytest.raises(ValueError, match="PATTERN -- why"):
        load_allowlist(broken)
    assert ALLOWLIST.exists()
