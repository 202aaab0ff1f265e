"""`voxline call sip:…` as a real process on the real models: the agent places a SIP call, greets
whoever answers, and the callee (a SIP endpoint in the test) hears it and hangs up."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from voxline.agent.config import SipConfig
from voxline.audio.pcm import AudioChunk
from voxline.telephony.sip.endpoint import SipEndpoint
from voxline.transports.base import CallIO

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

LISTEN_S = 7.0


class Callee:
    """Answers, listens for a while, hangs up; keeps what it heard."""

    def __init__(self) -> None:
        self.heard: list[AudioChunk] = []

    async def __call__(self, call: CallIO) -> None:
        async def listen() -> None:
            while (item := await call.receive()) is not None:
                if isinstance(item, AudioChunk):
                    self.heard.append(item)

        try:
            await asyncio.wait_for(listen(), LISTEN_S)
        except TimeoutError:
            await call.hangup("callee_done")


async def test_voxline_call_places_a_call_and_the_agent_greets_the_callee(tmp_path: Path) -> None:
    callee = Callee()
    config = SipConfig(port=0, transports=["udp"], user="callee")
    config = config.model_copy(update={"rtp_port_min": 0, "rtp_port_max": 0})
    endpoint = SipEndpoint(config, callee)
    await endpoint.start()
    report_path = tmp_path / "report.json"
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "voxline.cli", "call",
            f"sip:callee@127.0.0.1:{endpoint.local_port('udp')}",
            "--report", str(report_path), "--db", str(tmp_path / "calls.sqlite3"), "--log-level", "warning",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), 150)
    finally:
        await endpoint.stop()
    assert proc.returncode == 0, out.decode()[-3000:]
    report = json.loads(report_path.read_text())
    assert report["transport"] == "sip"
    assert report["turns"][0]["agent_text"].startswith("Thank you for calling Northwind Bank")
    assert report["end_reason"] == "caller_hangup", report["end_reason"]
    audio = np.concatenate([c.samples for c in callee.heard]) if callee.heard else np.zeros(0, np.int16)
    voiced = sum(1 for i in range(0, audio.size - 160, 160) if np.abs(audio[i : i + 160]).max() > 1000)
    assert voiced * 0.02 > 2.0, f"the callee heard only {voiced * 0.02:.1f} s of speech"
