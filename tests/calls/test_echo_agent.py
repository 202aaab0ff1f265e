"""`mode: echo`: a media-only agent that runs through the call runner like any agent, with no model."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from voxline.agent.config import AgentConfig
from voxline.audio.pcm import AudioChunk
from voxline.calls import CallContext, CallRunner
from voxline.calls.echo import EchoSession
from voxline.conversation.metrics import CallReport, NullRecorder, TurnRecord
from voxline.dispatch.node import NodeAgents, model_set
from voxline.dispatch.rules import Dispatcher
from voxline.engines.base import Engines
from voxline.transports.base import CallIO, Dtmf, PacedSink
from voxline.workers.services import NodeServices


class ListRecorder:
    def __init__(self) -> None:
        self.events: list[str] = []

    def call_started(self, report: CallReport) -> None:
        self.events.append(f"started {report.call_id} {report.transport}")

    def turn_finished(self, call_id: str, turn: TurnRecord) -> None:
        self.events.append("turn")

    def call_ended(self, report: CallReport) -> None:
        self.events.append(f"ended {report.end_reason}")


class _KeptSink(PacedSink):
    def __init__(self, rate: int) -> None:
        super().__init__(rate)
        self.sent: list[AudioChunk] = []

    async def _emit(self, frame: AudioChunk) -> None:
        self.sent.append(frame)


class SpeakingCall(CallIO):
    """A caller who says its frames, presses a key, then hangs up."""

    def __init__(self, frames: list[AudioChunk | Dtmf]) -> None:
        self.kept = _KeptSink(8000)
        super().__init__("echo-1", 8000, self.kept)
        self._frames = list(frames)

    async def receive(self) -> AudioChunk | Dtmf | None:
        if self._frames:
            return self._frames.pop(0)
        await self.kept.drain()  # the caller hears the echo out, then hangs up
        self.hangup_reason = "caller_hangup"
        return None

    async def hangup(self, reason: str = "normal") -> None:
        self.hangup_reason = self.hangup_reason or reason


def frame(value: int) -> AudioChunk:
    return AudioChunk(np.full(160, value, dtype=np.int16), 8000)


ECHO = AgentConfig(name="echo line", mode="echo")


async def test_an_echo_agent_plays_the_caller_back_and_records_a_call_without_turns() -> None:
    call = SpeakingCall([frame(100), Dtmf("5"), frame(200), frame(300)])
    recorder = ListRecorder()
    runner = CallRunner(ECHO, Engines.none(), recorder)
    report = await runner.run(call, CallContext("sip"))
    assert [int(chunk.samples[0]) for chunk in call.kept.sent] == [100, 200, 300]
    assert report.end_reason == "caller_hangup" and report.turns == [] and report.agent == "echo line"
    assert recorder.events == ["started echo-1 sip", "ended caller_hangup"]


def test_a_conversation_agent_is_not_media_only() -> None:
    assert not AgentConfig().media_only
    assert ECHO.media_only


def test_a_node_loads_and_warms_nothing_for_an_echo_agent() -> None:
    def build(agent: AgentConfig) -> Any:
        raise AssertionError(f"models built for {agent.name}")

    other = ECHO.model_copy(update={"name": "other"})
    node = NodeAgents({"echo": ECHO, "echo2": other}, Dispatcher.single("echo"))
    engines = node.load(build)
    assert engines.llm is None and engines.stt is None and engines.vad is None
    asyncio.run(node.warm())  # no prompt, no fixed line: nothing to warm
    assert model_set(ECHO) != model_set(AgentConfig())


async def test_the_node_serves_no_model_for_an_echo_agent() -> None:
    agent = ECHO.model_copy(update={"llm": ECHO.llm.model_copy(update={"engine": "llama_server"})})
    services = NodeServices([agent])
    await services.start()  # would start a speech server for a conversation agent's whisper and voice
    assert services.speech is None
    await services.for_agent(agent)  # would start a llama-server for a conversation agent
    assert services.describe() == {"llama_servers": []}
    assert services.shared(agent) == {} and services._take_slot(agent) is None


def test_build_conversation_gives_the_echo_for_a_media_only_agent() -> None:
    from voxline.calls.runner import build_conversation

    session = build_conversation(
        SpeakingCall([]), ECHO, Engines.none(), recorder=NullRecorder(), clock=None,
        transport="audiosocket", on_event=None,
    )  # fmt: skip
    assert isinstance(session, EchoSession) and session.report.transport == "audiosocket"
