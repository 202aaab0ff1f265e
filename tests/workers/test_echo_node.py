"""A `mode: echo` agent on `voxline serve --workers process`, as `voxline bench --echo-workers process`
runs it: a real SIP call whose audio comes back, by default from the supervisor's own loop (a
media-only call has no model runtime to isolate), with `--media-calls jobs` from a job process (its
RTP socket handed to the job); jobs that load no model, and the node's /health reporting the RTP send
lateness of its calls."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from voxline.agent.config import SipConfig
from voxline.audio.pcm import AudioChunk
from voxline.bench.processes import free_port
from voxline.bench.runner import ECHO_AGENT
from voxline.telephony.sip.endpoint import SipEndpoint
from voxline.transports.base import CallIO

pytestmark = pytest.mark.timeout(180)
SRC = Path(__file__).resolve().parent.parent.parent / "src"
MODEL_RUNTIMES = ("onnxruntime", "ctranslate2", "libllama", "piper", "torch")
RATE = 8000


async def healthy(
    base: str, proc: subprocess.Popen[bytes], idle: int, within_s: float = 90
) -> dict[str, Any]:
    deadline = time.monotonic() + within_s
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            assert proc.poll() is None, "voxline serve exited while starting"
            try:
                response = await http.get(f"{base}/health")
                body: dict[str, Any] = response.json()
                if response.status_code == 200 and body["pool"]["idle"] >= idle:
                    return body
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.3)
    raise AssertionError("voxline serve did not become healthy with its jobs warm")


def mapped_libraries(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


async def echo_call(sip_port: int, seconds: float = 2.0) -> tuple[str, list[AudioChunk]]:
    """Say a tone for `seconds` over SIP/RTP (PCMU), listen a second longer; what came back."""
    heard: list[AudioChunk] = []

    async def talk(call: CallIO) -> None:
        t = np.arange(round(seconds * RATE)) / RATE
        await call.sink.send(AudioChunk((np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16), RATE))
        until = time.monotonic() + seconds + 1.0
        while time.monotonic() < until:
            try:
                item = await asyncio.wait_for(call.receive(), 0.2)
            except TimeoutError:
                continue
            if isinstance(item, AudioChunk):
                heard.append(item)
            elif item is None:
                break

    config = SipConfig(port=0, transports=["udp"], rtp_port_min=0, rtp_port_max=0, codecs=["PCMU"])
    caller = SipEndpoint(config, lambda io: asyncio.sleep(0))
    await caller.start()
    try:
        reason = await caller.call(f"sip:echo@127.0.0.1:{sip_port}", talk, timeout_s=10)
    finally:
        await caller.stop()
    return reason, heard


@pytest.mark.parametrize("media_calls", ["supervisor", "jobs"])
async def test_an_echo_call_through_a_process_mode_node_comes_back(tmp_path: Path, media_calls: str) -> None:
    agent = tmp_path / "echo.yaml"
    agent.write_text(ECHO_AGENT)
    port = free_port()
    command = [
        sys.executable, "-m", "voxline.cli", "serve", "--agent", str(agent), "--port", str(port),
        "--db", str(tmp_path / "calls.sqlite3"), "--sip", "--sip-port", "0", "--no-audiosocket",
        "--workers", "process", "--idle-processes", "2", "--log-level", "warning",
        "--media-calls", media_calls,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = await asyncio.to_thread(subprocess.Popen, command, env=env, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        health = await healthy(base, proc, idle=2)
        pool = health["pool"]
        assert pool["services"] == {"llama_servers": []}  # no llama-server, no speech server
        for pid in pool["jobs_rss_mb"]:  # a warm echo job holds no model runtime, not even the VAD's
            maps = mapped_libraries(int(pid))
            assert not [name for name in MODEL_RUNTIMES if name in maps]
        assert pool["rtp_send_lateness"]["calls"] == 0

        reason, heard = await echo_call(int(health["sip"]["udp"]))
        assert reason == "normal"
        loud = [c for c in heard if float(np.abs(c.samples.astype(np.float32)).mean()) > 1000]
        assert len(loud) * 0.02 >= 1.5  # most of the 2 s tone came back

        async with httpx.AsyncClient() as http:
            for _ in range(100):
                body = (await http.get(f"{base}/health")).json()
                if body["pool"]["rtp_send_lateness"]["calls"] == 1:
                    break
                await asyncio.sleep(0.1)
            records = (await http.get(f"{base}/calls")).json()
        timing = body["pool"]["rtp_send_lateness"]
        assert timing["calls"] == 1 and timing["packets"] >= len(loud)  # every echo frame was paced
        assert 0 <= timing["p50_ms"] <= timing["p99_ms"] <= timing["max_ms"]
        in_jobs = 1 if media_calls == "jobs" else 0  # on the supervisor, no job was taken
        assert body["pool"]["calls"] == in_jobs and body["pool"]["crashed"] == 0
        assert [(r["agent"], r["transport"], r["end_reason"], r["turn_count"]) for r in records] == [
            ("echo", "sip", "caller_hangup", 0)
        ]
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 30)
    assert code in (0, -signal.SIGTERM)
