"""The real `voxline serve`, with the default agent's real models, drained by SIGTERM with a call in
progress: the node settings from the command line reach /health, a second call over the threshold
is refused, SIGTERM refuses new calls (OPTIONS 503) while the call goes on, and once the caller
hangs up the process exits 0. A second SIGTERM makes the real conversation say the agent's goodbye
line and end the call with `node_shutdown`, which its record keeps."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from node_harness import options

from telephony.peers.ports import free_port
from telephony.sip.rawpeer import UdpPeer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

SRC = Path(__file__).resolve().parents[2] / "src"


async def next_event(ws: Any, kind: str, within_s: float = 30.0) -> dict[str, Any]:
    while True:
        msg = await asyncio.wait_for(ws.recv(), within_s)
        if isinstance(msg, str) and (event := json.loads(msg))["type"] == kind:
            return dict(event)


async def sip_options(port: int) -> tuple[int, str | None]:
    peer = await UdpPeer().open()
    try:
        peer.send(options(port, peer.port), port)
        answer = await peer.final()
        return answer.status, answer.headers.get("Retry-After")
    finally:
        peer.close()


def spawn(command: list[str], tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(SRC), "VOXLINE_DATA_DIR": str(tmp_path)}
    with (tmp_path / "serve.log").open("wb") as log:
        return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)


def tail(log: Path) -> str:
    return log.read_text()[-3000:]


async def wait_ready(process: subprocess.Popen[bytes], client: httpx.AsyncClient, log: Path) -> None:
    deadline = time.monotonic() + 300
    while True:
        assert process.poll() is None, tail(log)
        assert time.monotonic() < deadline, "voxline serve did not become ready"
        try:
            if (await client.get("/health")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.5)


async def until_draining(client: httpx.AsyncClient) -> httpx.Response:
    for _ in range(100):
        response = await client.get("/health")
        if response.json()["status"] == "draining":
            return response
        await asyncio.sleep(0.1)
    raise AssertionError("the server never said it was draining")


async def exited(process: subprocess.Popen[bytes], within_s: float = 30.0) -> int | None:
    for _ in range(int(within_s * 10)):
        if process.poll() is not None:
            break
        await asyncio.sleep(0.1)
    return process.poll()


async def test_a_second_sigterm_ends_a_real_call_with_the_agents_goodbye(tmp_path: Path) -> None:
    http, db = free_port(), tmp_path / "calls.sqlite3"
    command = [
        sys.executable, "-m", "voxline.cli", "serve", "--port", str(http), "--no-sip", "--no-audiosocket",
        "--db", str(db),
    ]  # fmt: skip
    process = spawn(command, tmp_path)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http}") as client:
            await wait_ready(process, client, tmp_path / "serve.log")
            async with websockets.connect(f"ws://127.0.0.1:{http}/ws/call") as call:
                await call.send(json.dumps({"type": "start", "sample_rate": 16000, "format": "s16le"}))
                ready = await next_event(call, "ready")
                greeting = await next_event(call, "agent_text")
                process.send_signal(signal.SIGTERM)
                await until_draining(client)
                process.send_signal(signal.SIGTERM)
                said, audio_after = None, 0  # the greeting had played out (its text comes at its end)
                while True:
                    msg = await asyncio.wait_for(call.recv(), 60.0)
                    if isinstance(msg, bytes):
                        audio_after += len(msg)
                        continue
                    event = json.loads(msg)
                    if event["type"] == "agent_text" and event["text"] != greeting["text"]:
                        said = event
                    elif event["type"] == "hangup":
                        break
        assert said is not None and "Goodbye" in said["text"]
        assert audio_after > 16000 * 2  # more than a second of it was played to the caller
        assert event["reason"] == "node_shutdown"
        assert await exited(process) == 0, (tmp_path / "serve.log").read_text()[-3000:]
        with sqlite3.connect(db) as records:
            row = records.execute(
                "SELECT end_reason FROM calls WHERE call_id = ?", (ready["call_id"],)
            ).fetchone()
        assert row == ("node_shutdown",)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def test_voxline_serve_drains_on_sigterm_with_a_call_in_progress(tmp_path: Path) -> None:
    http, sip = free_port(), free_port()
    pid_file = tmp_path / "serve.pid"
    command = [
        sys.executable, "-m", "voxline.cli", "serve", "--port", str(http), "--sip", "--sip-port", str(sip),
        "--no-audiosocket", "--capacity-calls", "1", "--load-threshold", "0.9", "--drain-timeout", "120",
        "--pid-file", str(pid_file), "--db", str(tmp_path / "calls.sqlite3"),
    ]  # fmt: skip
    process = spawn(command, tmp_path)
    base = f"http://127.0.0.1:{http}"
    try:
        async with httpx.AsyncClient(base_url=base) as client:
            await wait_ready(process, client, tmp_path / "serve.log")
            health = (await client.get("/health")).json()
            load = health["load"]
            assert (load["capacity_calls"], load["threshold"]) == (1, 0.9)
            assert (
                load["load_fnc"] == "voxline.node.load.default_load" and health["drain"]["state"] == "serving"
            )
            assert pid_file.read_text().strip() == str(process.pid)
            assert await sip_options(sip) == (200, None)

            async with websockets.connect(f"ws://127.0.0.1:{http}/ws/call") as call:
                await call.send(json.dumps({"type": "start", "sample_rate": 16000, "format": "s16le"}))
                await next_event(call, "ready")
                async with websockets.connect(f"ws://127.0.0.1:{http}/ws/call") as second:
                    refused = await next_event(second, "error")
                    await second.wait_closed()
                assert "the node is busy" in refused["message"]
                assert second.close_reason == "over load threshold"

                process.send_signal(signal.SIGTERM)
                response = await until_draining(client)
                assert response.status_code == 503 and response.json()["drain"]["calls_left"] == 1
                assert await sip_options(sip) == (503, "60")
                await next_event(call, "agent_text")  # the greeting: the call goes on
                assert process.poll() is None
            # the caller hung up
            assert await exited(process) == 0, (tmp_path / "serve.log").read_text()[-3000:]
            assert not pid_file.exists()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
