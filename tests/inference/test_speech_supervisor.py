"""The supervisor's handle on the speech process, with no models loaded (fast): where it listens,
who may connect, and that it never outlives the node."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from voxline.engines.base import EngineError
from voxline.inference import protocol as p
from voxline.inference.supervisor import SpeechServer, request_sync


def test_it_listens_on_a_private_unix_socket_with_a_key_and_cleans_up() -> None:
    server = SpeechServer(specs=[])
    server.start()
    try:
        path = Path(server.endpoint.path)
        assert stat.S_ISSOCK(path.stat().st_mode)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert request_sync(server.endpoint, {"op": "ping"}, 5)["ok"]
        with pytest.raises(EngineError, match="wrong or missing key"):
            request_sync(p.SpeechEndpoint(server.endpoint.path, "not-the-key"), {"op": "ping"}, 5)
        # the key is in the process's environment at start only: not on its command line
        assert server.endpoint.key not in " ".join(server.command())
        pid = server.pid
        assert pid is not None
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode()
        assert server.endpoint.key not in cmdline
        assert server.describe()["models"] == {}
    finally:
        server.stop()
    assert not path.parent.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    server.start()  # a stopped server can be started again
    try:
        assert request_sync(server.endpoint, {"op": "ping"}, 5)["ok"]
    finally:
        server.stop()


def test_the_speech_process_exits_when_the_node_is_killed(tmp_path: Path) -> None:
    """A node killed with SIGKILL cannot stop its speech server: the server notices and exits."""
    pid_file = tmp_path / "pid"
    node = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
                import pathlib, time
                from voxline.inference.supervisor import SpeechServer
                server = SpeechServer(specs=[])
                server.start()
                pathlib.Path({str(pid_file)!r}).write_text(str(server.pid))
                time.sleep(60)
            """),
        ],
        env=dict(os.environ),
    )
    try:
        for _ in range(600):
            if pid_file.exists() and pid_file.read_text():
                break
            time.sleep(0.05)
        speech_pid = int(pid_file.read_text())
        os.kill(speech_pid, 0)  # running
        node.kill()
        node.wait()
        for _ in range(100):  # it polls for its parent once a second
            try:
                os.kill(speech_pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            os.kill(speech_pid, 9)
            pytest.fail("the speech server outlived its node by 10 s")
    finally:
        if node.poll() is None:
            node.kill()
