"""A model server started by voxline ends when voxline does, even when voxline is SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "State:\tZ" in status.read_text())


def test_a_tied_child_dies_when_its_parent_is_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    # the parent spawns the child from a short-lived thread (as a model pool thread would), then
    # that thread ends: the child must survive that, and die only with the process
    parent = textwrap.dedent(
        f"""
        import threading, time
        from voxline.engines.children import popen_tied
        def start():
            child = popen_tied(["sleep", "60"])
            open({str(pid_file)!r}, "w").write(str(child.pid))
        t = threading.Thread(target=start); t.start(); t.join()
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", parent], env=dict(os.environ))
    try:
        deadline = time.monotonic() + 30
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline, "the parent never started its child"
            time.sleep(0.05)
        child = int(pid_file.read_text())
        time.sleep(0.3)
        assert _alive(child), "the child died with the thread that spawned it"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 5
        while _alive(child):
            assert time.monotonic() < deadline, "the child outlived its SIGKILLed parent"
            time.sleep(0.05)
    finally:
        proc.kill()
