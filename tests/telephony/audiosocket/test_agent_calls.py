"""A whole conversation (fake engines, real clock) over AudioSocket, driven the way Asterisk drives it:
issue 11's deaf agent on slin16, and a caller whose leg stops sending frames when they pause."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import numpy as np
import pytest

from conversation.fakes import FakeLLM, FakeSTT, FakeTTS, FakeVAD
from conversation.test_conversation import make_agent
from telephony.asterisk_audiosocket import AsteriskAudioSocket
from telephony.audiosocket.helpers import wait_until
from voxline.audio.pcm import AudioChunk
from voxline.conversation.conversation import Conversation
from voxline.conversation.metrics import CallReport
from voxline.engines.base import Engines
from voxline.telephony.audiosocket import AudioSocketServer
from voxline.transports.base import CallIO

pytestmark = pytest.mark.timeout(60)


def loud(seconds: float, rate: int) -> AudioChunk:
    """A caller 'speaking' to FakeVAD (loud), with no digital-zero samples."""
    t = np.arange(round(seconds * rate)) / rate
    wave = 0.3 * np.sin(2 * np.pi * 300 * t) + 0.01
    return AudioChunk.from_float32(wave.astype(np.float32), rate)


class Agent:
    def __init__(self) -> None:
        self.stt = FakeSTT(["When do you open?", "Thanks"])
        self.engines = Engines(
            vad=FakeVAD(), stt=self.stt, llm=FakeLLM(["We open at nine.", "Bye."]), tts=FakeTTS()
        )
        self.reports: list[CallReport] = []

    async def __call__(self, call: CallIO) -> None:
        agent = make_agent(limits={"silence_reprompt_s": 30, "max_reprompts": 1})
        report = await Conversation(call, agent, self.engines, transport="audiosocket").run()
        self.reports.append(report)


@pytest.fixture
async def agent_server() -> AsyncIterator[tuple[AudioSocketServer, Agent]]:
    agent = Agent()
    server = AudioSocketServer("127.0.0.1", 0, agent)
    await server.start()
    try:
        yield server, agent
    finally:
        await server.stop()


async def test_the_agent_hears_a_slin16_caller_whose_first_frame_comes_after_the_greeting(
    agent_server: tuple[AudioSocketServer, Agent],
) -> None:
    server, agent = agent_server
    async with AsteriskAudioSocket(server.port, kind=0x12) as ast:  # Dial(AudioSocket/.../c(slin16))
        await ast.quiet(0.5)  # the bridge has produced nothing yet: the agent greets at 8 kHz
        await ast.stream(loud(1.0, 16000))
        await ast.stream(seconds=1.5)  # an RTP leg keeps sending (silence) after the caller spoke
        assert agent.stt.transcribed_s, "the agent never heard the caller's turn"
        assert 1.0 <= agent.stt.transcribed_s[0] < 1.6  # the turn's own length (+ padding), not doubled
        reply = [f for f in ast.sound_frames if f.kind == 0x12]
        assert len(reply) > 10, "no spoken answer"
        assert not ast.ended.is_set()


async def test_the_application_form_keeps_the_call_and_answers_a_caller_who_goes_quiet(
    agent_server: tuple[AudioSocketServer, Agent],
) -> None:
    server, agent = agent_server
    ast = AsteriskAudioSocket.application_form(server.port)
    await ast.connect()
    try:
        await ast.quiet(1.0)  # the greeting plays; the caller's leg sends nothing
        await ast.stream(loud(0.6, 8000))
        spoke_at = time.monotonic()
        await ast.quiet(3.0)  # a leg with silence suppression: no frames at all while they wait
        assert not ast.ended.is_set(), f"Asterisk hung up: {ast.end_reason}"
        assert agent.stt.transcribed_s and 0.6 <= agent.stt.transcribed_s[0] < 1.2
        answer = [f for f in ast.sound_frames if f.at > spoke_at]
        assert answer, "the turn never ended: no answer"
        assert answer[0].at - spoke_at < 1.5  # end-of-turn silence (0.3 s) + fake engines
        assert ast.longest_gap_s() < 0.25
    finally:
        await ast.hang_up()
    assert await wait_until(lambda: len(agent.reports) == 1)
    assert agent.reports[0].end_reason == "caller_hangup"
    await asyncio.sleep(0)
