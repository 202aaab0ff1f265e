"""Draining a real server process: the node runs as `voxline serve` runs it (`serve_app`: uvicorn
with the drain's signal handling) in a subprocess, with a WebSocket call in progress.

SIGTERM (here through `voxline drain`): new calls are refused at once (OPTIONS 503, WebSocket
"draining", /health 503 "draining") while the call goes on; once the caller hangs up the process
exits 0. A second SIGTERM: the call hears the goodbye line and is ended. The drain timeout: the
same goodbye, unasked."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from node_harness import GOODBYE_TEXT, options

from server.ws_harness import tone
from telephony.peers.sipp import SIPP, run_sipp
from telephony.sip.rawpeer import UdpPeer

pytestmark = pytest.mark.timeout(120)

needs_sipp = pytest.mark.skipif(SIPP is None, reason="sipp (Debian sip-tester) is not installed")
TESTS = Path(__file__).resolve().parents[1]
SRC = TESTS.parent / "src"


@dataclass
class ServeProcess:
    process: subprocess.Popen[bytes]
    http: int
    sip: int
    pid_file: Path

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.http}/ws/call"

    async def health(self) -> httpx.Response:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.http}") as http:
            return await http.get("/health")

    async def exit_code(self, within_s: float) -> int | None:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            if (code := self.process.poll()) is not None:
                return code
            await asyncio.sleep(0.05)
        return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_node(tmp_path: Path, drain_timeout_s: float) -> ServeProcess:
    port_file = tmp_path / "ports.json"
    http = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS)])}
    command = [sys.executable, str(TESTS / "node" / "node_harness.py"), str(port_file), str(drain_timeout_s)]
    with (tmp_path / "serve.log").open("wb") as log:  # the child keeps its own copy of the handle
        process = subprocess.Popen([*command, str(http)], env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while not port_file.exists() or not port_file.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("the node did not start:\n" + (tmp_path / "serve.log").read_text())
        time.sleep(0.05)
    ports = json.loads(port_file.read_text())
    return ServeProcess(process, http, ports["sip"], port_file.with_suffix(".pid"))


@pytest.fixture
def node_factory(tmp_path: Path) -> Iterator[Any]:
    started: list[ServeProcess] = []

    def make(drain_timeout_s: float = 300.0) -> ServeProcess:
        node = start_node(tmp_path, drain_timeout_s)
        started.append(node)
        return node

    yield make
    for node in started:
        if node.process.poll() is None:
            node.process.kill()
            node.process.wait()


async def next_event(ws: Any, kind: str, within_s: float = 10.0) -> dict[str, Any]:
    while True:
        msg = await asyncio.wait_for(ws.recv(), within_s)
        if isinstance(msg, str) and (event := json.loads(msg))["type"] == kind:
            return dict(event)


async def start_call(ws: Any) -> None:
    await ws.send(json.dumps({"type": "start", "sample_rate": 16000, "format": "s16le"}))
    await next_event(ws, "ready")


async def echoes(ws: Any) -> bool:
    await ws.send(tone(0.2, 16000).to_bytes())
    while True:
        if isinstance(await asyncio.wait_for(ws.recv(), 5.0), bytes):
            return True


async def until_draining(node: ServeProcess) -> dict[str, Any]:
    for _ in range(200):
        response = await node.health()
        if response.json()["status"] == "draining":
            assert response.status_code == 503
            return dict(response.json())
        await asyncio.sleep(0.05)
    raise AssertionError("the node never said it was draining")


async def sip_options(port: int) -> tuple[int, str | None]:
    peer = await UdpPeer().open()
    try:
        peer.send(options(port, peer.port), port)
        answer = await peer.final()
        return answer.status, answer.headers.get("Retry-After")
    finally:
        peer.close()


def voxline_drain(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run(
        [sys.executable, "-m", "voxline.cli", "drain", *args], env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip


async def test_sigterm_lets_the_call_finish_refuses_new_ones_then_exits_0(node_factory: Any) -> None:
    node = node_factory()
    assert await sip_options(node.sip) == (200, None)
    async with websockets.connect(node.ws) as call:
        await start_call(call)
        assert await echoes(call)
        done = voxline_drain("--pid-file", str(node.pid_file), "--no-wait")  # SIGTERM, as a service manager
        assert done.returncode == 0, done.stderr
        assert f"draining voxline serve (pid {node.process.pid})" in done.stdout
        health = await until_draining(node)
        assert health["drain"]["calls_left"] == 1 and health["load"]["draining"] is True
        assert await sip_options(node.sip) == (503, "60")
        async with websockets.connect(node.ws) as refused:
            error = await next_event(refused, "error")
            await refused.wait_closed()
        assert "draining" in error["message"] and refused.close_reason == "draining"
        await asyncio.sleep(1.0)
        assert node.process.poll() is None  # still serving its call
        assert await echoes(call)
    # the caller hung up: the node has nothing left to wait for
    assert await node.exit_code(20.0) == 0
    assert not node.pid_file.exists()


async def test_a_second_sigterm_ends_the_call_with_the_goodbye_line(node_factory: Any) -> None:
    node = node_factory()
    async with websockets.connect(node.ws) as call:
        await start_call(call)
        assert await echoes(call)
        node.process.send_signal(signal.SIGTERM)
        await until_draining(node)
        node.process.send_signal(signal.SIGTERM)
        said = await next_event(call, "agent_text")
        heard = 0
        while True:  # the goodbye's audio, then the hangup
            msg = await asyncio.wait_for(call.recv(), 10.0)
            if isinstance(msg, bytes):
                heard += len(msg)
            elif json.loads(msg)["type"] == "hangup":
                hangup = json.loads(msg)
                break
    assert said["text"] == GOODBYE_TEXT
    assert heard >= 0.25 * 16000 * 2  # most of the 0.3 s goodbye tone (16 kHz, 16-bit)
    assert hangup["reason"] == "node_shutdown"
    assert await node.exit_code(20.0) == 0


async def test_the_drain_timeout_ends_the_call_with_the_goodbye_line(node_factory: Any) -> None:
    node = node_factory(drain_timeout_s=1.5)
    async with websockets.connect(node.ws) as call:
        await start_call(call)
        node.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        await until_draining(node)
        said = await next_event(call, "agent_text", within_s=15.0)
        waited = time.monotonic() - signalled
        hangup = await next_event(call, "hangup")
    assert said["text"] == GOODBYE_TEXT and hangup["reason"] == "node_shutdown"
    assert waited >= 1.5  # the call had its drain_timeout_s first
    assert await node.exit_code(20.0) == 0


@needs_sipp
async def test_sigterm_with_a_sip_call_in_progress_the_call_completes_then_exit_0(
    node_factory: Any, tmp_path: Path
) -> None:
    """sipp places a 4 s call (INVITE, ACK, 4 s, BYE); SIGTERM comes in its middle."""
    node = node_factory()
    sipp = asyncio.create_task(
        run_sipp(tmp_path / "sipp", f"127.0.0.1:{node.sip}", "-sn", "uac", "-d", "4000", timeout_s=30)
    )
    for _ in range(200):
        if (await node.health()).json()["load"]["calls"] == 1:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("sipp's call never started")
    node.process.send_signal(signal.SIGTERM)
    await until_draining(node)
    assert await sip_options(node.sip) == (503, "60")
    assert node.process.poll() is None
    result = await sipp
    assert result.returncode == 0, result.explain()  # the call ran to its BYE: nothing was cut
    assert await node.exit_code(20.0) == 0
