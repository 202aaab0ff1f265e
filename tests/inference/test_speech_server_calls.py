"""A call whose speech server is killed while the agent talks: the sentence under way and any asked
for before the restart are spoken by the fallback voice (espeak-ng, run in the job), not dropped
into silence, and the server comes back. Real Piper on a real speech server; the caller, VAD, STT
and LLM are the conversation fakes."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from typing import Any

import pytest

from conversation.fakes import FakeCallIO, FakeLLM, FakeSTT, FakeVAD, run_to_the_end, wait_until
from conversation.test_conversation import make_agent
from voxline.audio.pcm import AudioChunk
from voxline.conversation.conversation import Conversation
from voxline.engines.base import Engines, LLMDelta
from voxline.engines.tts_espeak import EspeakTTS
from voxline.inference.client import RemoteSpeech, RemoteTTS
from voxline.inference.models import voice_spec
from voxline.inference.supervisor import SpeechServer

pytestmark = pytest.mark.slow

ANSWER = "We open at nine on weekdays. We close at five, and on Sundays we are closed."


class CrashingLLM(FakeLLM):
    """Kills the speech server as it starts answering: the answer's sentences then find it dead."""

    server_pid: int | None = None

    def stream(self, *args: Any, **kwargs: Any) -> AsyncIterator[LLMDelta]:
        if self.server_pid is not None:
            os.kill(self.server_pid, signal.SIGKILL)
            self.server_pid = None
        return super().stream(*args, **kwargs)


class SpyEspeak(EspeakTTS):
    def __init__(self) -> None:
        super().__init__("en-us")
        self.spoken: list[str] = []

    def stream(self, text: str, voice: str | None = None) -> AsyncIterator[AudioChunk]:
        self.spoken.append(text)
        return super().stream(text, voice)


async def test_the_rest_of_a_reply_is_spoken_by_the_fallback_voice_when_the_server_dies() -> None:
    agent = make_agent()
    spec = voice_spec(agent.voice)
    assert spec is not None
    server = SpeechServer(specs=[spec])
    await asyncio.to_thread(server.start)
    try:
        # no restart wait: a sentence asked for while the server is down fails at once (by default it
        # would wait up to 15 s for the restarted server, and this test would only time the restart)
        piper = RemoteTTS(
            RemoteSpeech(server.endpoint, restart_wait_s=0.0), spec.key, name="piper", sample_rate=22050
        )
        llm = CrashingLLM([ANSWER])
        fallback = SpyEspeak()
        engines = Engines(
            vad=FakeVAD(),
            stt=FakeSTT(["When do you open?"]),
            llm=llm,
            tts=piper,
            fallback_tts=fallback,
        )
        call = FakeCallIO()
        conversation = Conversation(call, agent, engines, transport="fake")
        call.start_mic()
        task = asyncio.create_task(run_to_the_end(call, conversation))
        await wait_until(
            lambda: len(conversation.report.turns) == 1 and conversation.state == "listening", 30
        )
        heard_greeting_s = call.sink.emitted_s
        assert fallback.spoken == []  # the greeting came from Piper on the server
        llm.server_pid = server.pid
        call.talk(0.5)
        await wait_until(
            lambda: len(conversation.report.turns) == 2 and conversation.state == "listening", 60
        )
        await call.caller_hangs_up()
        report = await asyncio.wait_for(task, 30)
        await call.aclose()
        # the sentences Piper could not make any more were spoken by espeak-ng in the job
        assert call.sink.emitted_s > heard_greeting_s + 1.5  # the caller heard the answer
        assert fallback.spoken[0] == "We open at nine on weekdays."
        # (a sentence asked for after the restart goes back to Piper)
        assert set(fallback.spoken) <= {
            "We open at nine on weekdays.",
            "We close at five, and on Sundays we are closed.",
        }
        assert report.turns[1].agent_text == ANSWER and not report.turns[1].interrupted
        # and the server is back for the next request
        assert await asyncio.to_thread(server.wait_ready, 120)
        again = RemoteTTS(RemoteSpeech(server.endpoint), spec.key, name="piper", sample_rate=22050)
        assert AudioChunk.concat([c async for c in again.stream("Back again.")]).duration_s > 0.3
    finally:
        await asyncio.to_thread(server.stop)
