"""The agent under test as a separate process, as in production: `voxline serve`, or the echo server.

Both are started on free ports, watched until ready, and stopped (SIGTERM, then SIGKILL) at the
end; their output goes to a log file in the bench's output folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from voxline.bench.echo_server import READY_PREFIX

READY_TIMEOUT_S = 300.0
"""Loading and warming the models on a slow machine takes a while; a broken server fails sooner."""


@dataclass(frozen=True)
class AgentTarget:
    """Where a running agent answers: its SIP URI and its HTTP base URL (None: not reachable)."""

    sip_uri: str
    http_url: str | None
    pid: int | None = None
    """The agent's process when the bench started it (for its memory figures)."""

    def memory_mib(self) -> dict[str, float] | None:
        """Resident memory now (VmRSS) and at its peak (VmHWM), from /proc, summed over the agent's
        process tree: a process-mode node's models live in its jobs, speech server and llama-server,
        not in the supervisor (pages they share, a memory-mapped model, count once per process);
        None if unknown."""
        if self.pid is None:
            return None
        totals = {"VmRSS": 0.0, "VmHWM": 0.0}
        found = False
        for pid in _process_tree(self.pid):
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue  # it ended meanwhile
            for line in status.splitlines():
                key, _, value = line.partition(":")
                if key in totals:
                    totals[key] += int(value.split()[0]) / 1024
                    found = True
        if not found:
            return None
        return {"rss_mib": round(totals["VmRSS"], 1), "peak_rss_mib": round(totals["VmHWM"], 1)}

    async def health(self) -> dict[str, Any] | None:
        """The agent's /health body, or None when it cannot be read."""
        if self.http_url is None:
            return None
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                body: dict[str, Any] = (await client.get(f"{self.http_url}/health")).json()
                return body
        except (httpx.HTTPError, ValueError):
            return None

    @property
    def ws_url(self) -> str | None:
        if self.http_url is None:
            return None
        return self.http_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + "/ws/call"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return
    proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), 20)
    except TimeoutError:
        proc.kill()
        await proc.wait()


async def _wait_healthy(proc: asyncio.subprocess.Process, url: str, log_path: Path) -> dict[str, Any]:
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=5) as client:
        while True:
            if proc.returncode is not None:
                raise RuntimeError(f"voxline serve exited ({proc.returncode}); see {log_path}")
            if time.monotonic() - started > READY_TIMEOUT_S:
                raise RuntimeError(f"voxline serve not ready after {READY_TIMEOUT_S:.0f} s; see {log_path}")
            with contextlib.suppress(httpx.TransportError):
                response = await client.get(f"{url}/health")
                if response.status_code == 200:
                    body: dict[str, Any] = response.json()
                    return body
            await asyncio.sleep(0.5)


def _process_tree(root: int) -> list[int]:
    """`root` and every process descended from it (from /proc/*/stat's parent ids)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) ": state, ppid, ...
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += children.get(pid, [])
    return tree


@asynccontextmanager
async def voxline_server(
    out: Path, agent_file: Path | None, name: str = "serve", extra_args: Sequence[str] = ()
) -> AsyncIterator[AgentTarget]:
    """`voxline serve` with SIP on a free port, records in `out/<name>.sqlite3`, until the block ends
    (`extra_args` are added to its command line)."""
    port = free_port()
    args = [
        "-m", "voxline.cli", "serve", "--port", str(port), "--db", str(out / f"{name}.sqlite3"),
        "--no-audiosocket", "--sip", "--sip-port", "0", "--log-level", "warning",
        # the bench measures latency at the concurrency it asks for: admit by calls alone, up to
        # --max-calls (a setup's extra_args may set the node's own load policy: the last value wins)
        "--load-fnc", "voxline.node.load.calls_load", "--capacity-calls", "1000", "--load-threshold", "1",
    ]  # fmt: skip
    if agent_file is not None:
        args += ["--agent", str(agent_file)]
    args += list(extra_args)
    log_path = out / f"{name}.log"
    with log_path.open("ab") as log_file:
        proc = await asyncio.create_subprocess_exec(sys.executable, *args, stdout=log_file, stderr=log_file)
    try:
        url = f"http://127.0.0.1:{port}"
        health = await _wait_healthy(proc, url, log_path)
        sip_port = health["sip"]["udp"]
        yield AgentTarget(sip_uri=f"sip:agent@127.0.0.1:{sip_port}", http_url=url, pid=proc.pid)
    finally:
        await _stop(proc)


@asynccontextmanager
async def echo_server(out: Path) -> AsyncIterator[AgentTarget]:
    """The bench's SIP echo agent in its own process, until the block ends."""
    log_path = out / "echo_server.log"
    with log_path.open("ab") as log_file:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "voxline.bench.echo_server", "--sip-port", "0",
            stdout=asyncio.subprocess.PIPE, stderr=log_file,
        )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        text = line.decode().strip()
        if not text.startswith(READY_PREFIX):
            raise RuntimeError(f"the echo server did not start; see {log_path}")
        yield AgentTarget(sip_uri=f"sip:echo@127.0.0.1:{text.removeprefix(READY_PREFIX)}", http_url=None)
    finally:
        await _stop(proc)


async def _wait_http_ok(proc: asyncio.subprocess.Process, url: str, name: str, log_path: Path) -> None:
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=5) as client:
        while True:
            if proc.returncode is not None:
                raise RuntimeError(f"{name} exited ({proc.returncode}); see {log_path}")
            if time.monotonic() - started > READY_TIMEOUT_S:
                raise RuntimeError(f"{name} not ready after {READY_TIMEOUT_S:.0f} s; see {log_path}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.5)


@asynccontextmanager
async def http_process(
    args: list[str], ready_url: str, log_path: Path, name: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """Any HTTP service as a child process (`args[0]` is the program), ready once `ready_url` answers
    200, stopped when the block ends. Its output goes to `log_path`."""
    with log_path.open("ab") as log_file:
        proc = await asyncio.create_subprocess_exec(*args, stdout=log_file, stderr=log_file)
    try:
        await _wait_http_ok(proc, ready_url, name, log_path)
        yield proc
    finally:
        await _stop(proc)
