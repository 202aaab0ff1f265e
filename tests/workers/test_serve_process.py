"""`voxline serve` as a user runs it (process mode is its default): the real command, a WebSocket call
whose greeting comes from a job process, its record on /calls, the node's llama-server serving the
agent's in-process (`llama_cpp`) model, the node's speech server holding the agent's whisper for the
jobs, and SIGTERM leaving no process behind."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import websockets

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]
SRC = Path(__file__).resolve().parent.parent.parent / "src"
AGENT = """\
name: job smoke agent
stt:
  model: tiny.en
voice:
  engine: espeak
  voice: en-us
llm:
  engine: llama_cpp
  model: qwen2.5-0.5b
  slots: 2
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_healthy(base: str, proc: subprocess.Popen[bytes], within_s: float) -> dict[str, object]:
    deadline = time.monotonic() + within_s
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            assert proc.poll() is None, "voxline serve exited while starting"
            try:
                response = await http.get(f"{base}/health")
                if response.status_code == 200:
                    body: dict[str, object] = response.json()
                    return body
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.5)
    raise AssertionError("voxline serve did not become healthy")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_serve_runs_calls_in_jobs_by_default_and_exits_clean(tmp_path: Path) -> None:
    agent = tmp_path / "agent.yaml"
    agent.write_text(AGENT)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    command = [
        sys.executable, "-m", "voxline.cli", "serve", "--agent", str(agent), "--port", str(port),
        "--db", str(tmp_path / "calls.sqlite3"), "--no-sip", "--no-audiosocket",
        "--idle-processes", "1",
    ]  # fmt: skip
    proc = await asyncio.to_thread(subprocess.Popen, command, env=env, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        health = await wait_healthy(base, proc, within_s=300)
        workers = health["workers"]
        assert isinstance(workers, dict) and workers["idle"] == 1
        job_pids = [int(pid) for pid in workers["jobs_rss_mb"]]
        services = workers["services"]
        assert workers["mode"] == "process"
        assert [s["model"] for s in services["llama_servers"]] == ["qwen2.5-0.5b"]  # one, for the node
        speech = services["speech"]  # the agent's whisper is loaded once, in the node's speech server
        assert speech["ready"] and [m["name"] for m in speech["models"].values()] == ["whisper:tiny.en"]
        audio = 0
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws/call") as ws:
            await ws.send(json.dumps({"type": "start", "sample_rate": 16000, "format": "s16le"}))
            ready = json.loads(await asyncio.wait_for(ws.recv(), 30))
            assert ready["type"] == "ready"
            while audio < 16000 * 2:  # a second of the greeting, spoken by the job's voice
                message = await asyncio.wait_for(ws.recv(), 60)
                audio += len(message) if isinstance(message, bytes) else 0
            await ws.send(json.dumps({"type": "hangup"}))
        async with httpx.AsyncClient() as http:
            for _ in range(100):
                record = (await http.get(f"{base}/calls/{ready['call_id']}")).json()
                if record.get("end_reason"):
                    break
                await asyncio.sleep(0.1)
            health = (await http.get(f"{base}/health")).json()
        assert record["end_reason"] == "caller_hangup" and record["turns"][0]["agent_text"]
        job_pids += [int(pid) for pid in health["workers"]["jobs_rss_mb"]]
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 30)
    assert code in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it has shut down
    await asyncio.sleep(1.0)
    assert [pid for pid in job_pids if alive(pid)] == []  # no job outlives the node
    llama_pid = int(str(services["llama_servers"][0]["pid"]))  # type: ignore[index]
    assert not alive(llama_pid)  # nor the node's llama-server
    assert not alive(int(str(services["speech"]["pid"])))  # nor its speech server
