"""A whole call on the real default stack through the server's AudioSocket listener, driven by the
Asterisk AudioSocket simulator at 8 kHz (kind 0x10) and 16 kHz (0x12): the caller hears the greeting
and a spoken answer to its recorded question, in the kind it sent, and the call is recorded."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from server.ws_harness import LiveServer
from speech import caller_turns
from telephony.asterisk_audiosocket import AsteriskAudioSocket
from voxline.agent.config import AgentConfig, AudioSocketConfig, SipConfig, TelephonyConfig
from voxline.audio.pcm import AudioChunk
from voxline.audio.resample import resample
from voxline.audio.wav import read_wav
from voxline.engines.base import Engines
from voxline.server.app import create_app
from voxline.server.telephony import TelephonyService

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

QUIET_S = 1.2


def _audiosocket_only(agent: AgentConfig) -> AgentConfig:
    telephony = TelephonyConfig(sip=SipConfig(enabled=False), audiosocket=AudioSocketConfig(port=0))
    return agent.model_copy(update={"telephony": telephony})


async def _stream_until_quiet(ast: AsteriskAudioSocket, limit_s: float) -> None:
    """Send silence (as an RTP caller leg does between words) until the agent has spoken and gone
    quiet (only keep-alive silence coming back)."""
    heard_before = len(ast.sound_frames)
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        await ast.stream(None, seconds=0.2)
        frames = ast.sound_frames
        if len(frames) > heard_before and time.monotonic() - frames[-1].at > QUIET_S:
            return


@pytest.mark.parametrize(("kind", "rate"), [(0x10, 8000), (0x12, 16000)])
async def test_audiosocket_call_answers_a_recorded_question(
    bank_agent: AgentConfig,
    real_engines: Engines,
    transcriber: object,
    tmp_path: Path,
    kind: int,
    rate: int,
) -> None:
    agent = _audiosocket_only(bank_agent)
    service = TelephonyService(agent)
    app = create_app(agent, engines=real_engines, db_path=tmp_path / "calls.sqlite3", services=[service])
    question_path, _ = caller_turns()[13]
    question = resample(read_wav(question_path), rate)
    with LiveServer(app) as server:
        port = service.audiosocket.port
        async with AsteriskAudioSocket(port, kind=kind) as ast:
            await _stream_until_quiet(ast, 15)
            greeting_frames = len(ast.sound_frames)
            assert greeting_frames > 50, "no greeting heard"
            await ast.stream(question)
            await _stream_until_quiet(ast, 25)
            reply_frames = ast.sound_frames[greeting_frames:]
            assert len(reply_frames) > 25, "no spoken answer heard"
            spoken_kinds = {f.kind for f in ast.sound_frames}
            assert spoken_kinds == {kind}, "the server answered in another audio kind"
            await ast.hang_up()
            await ast.wait_ended(5)
        greeting = AudioChunk.concat(
            [AudioChunk.from_bytes(f.payload, rate) for f in ast.sound_frames[:greeting_frames]]
        )
        text = (await transcriber.transcribe(greeting)).text  # type: ignore[attr-defined]
        assert "northwind" in text.lower() or "bank" in text.lower(), text
        async with httpx.AsyncClient(base_url=server.http) as client:
            for _ in range(50):
                calls = (await client.get("/calls")).json()
                if calls and calls[0].get("ended_at"):
                    break
                await asyncio.sleep(0.1)
        assert calls and calls[0]["transport"] == "audiosocket", calls
        assert calls[0]["label"] == str(ast.uuid) and calls[0]["call_id"] != str(ast.uuid)
