"""Whole calls on a VirtualClock: the caller's microphone, the sink, the fake models and every
timer of the call (silence, call length, key runs, digit entry) take their time on one virtual
clock, so a test scripts the caller at exact times and waits by moving virtual time, never by
polling the wall clock. Seconds of silence pass instantly, and the same call replays exactly.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from conversation.fakes import FakeCallIO, FakeLLM, FakeSTT, FakeTTS, FakeVAD, Script
from voxline.agent.config import AgentConfig
from voxline.audio.clock import VirtualClock
from voxline.conversation.conversation import Conversation
from voxline.conversation.metrics import CallReport
from voxline.engines.base import Engines

from .test_conversation import LONG, make_agent


@dataclass
class VirtualCall:
    clock: VirtualClock
    call: FakeCallIO
    conversation: Conversation
    llm: FakeLLM
    task: asyncio.Task[CallReport]
    events: list[dict[str, Any]]

    async def until(self, t: float) -> None:
        """Let the call run until virtual time `t`."""
        await self.clock.sleep_until(t)

    async def hang_up_at(self, t: float) -> CallReport:
        await self.until(t)
        await self.call.caller_hangs_up()
        return await self.task

    def said(self) -> list[str]:
        return [e["text"] for e in self.events if e["type"] == "agent_said"]


@asynccontextmanager
async def virtual_call(
    replies: Sequence[Script] = (),
    transcripts: Sequence[str] = (),
    agent: AgentConfig | None = None,
    token_delay_s: float = 0.005,
) -> AsyncIterator[VirtualCall]:
    clock = VirtualClock()
    call = FakeCallIO(clock=clock)
    llm = FakeLLM(replies, token_delay_s, clock)
    engines = Engines(vad=FakeVAD(), stt=FakeSTT(transcripts, clock), llm=llm, tts=FakeTTS())
    events: list[dict[str, Any]] = []
    conversation = Conversation(call, agent or make_agent(), engines, on_event=events.append)
    assert conversation.clock is clock  # the call's sink clock drives the conversation
    call.start_mic()
    task = asyncio.create_task(conversation.run())
    try:
        yield VirtualCall(clock, call, conversation, llm, task, events)
    finally:
        if not task.done():
            await call.caller_hangs_up()
            await asyncio.wait([task])
        await call.aclose()


async def one_answered_turn() -> tuple[CallReport, list[dict[str, Any]]]:
    async with virtual_call(["We open at nine. We close at five."], ["When do you open?"]) as v:
        await v.until(1.0)
        v.call.talk(0.5)
        report = await v.hang_up_at(5.0)
        return report, v.events


async def test_greeting_then_an_answer_with_latencies_in_virtual_time() -> None:
    report, events = await one_answered_turn()
    assert report.end_reason == "caller_hangup"
    greeting, answer = report.turns
    assert greeting.agent_text == "Hello." and answer.user_text == "When do you open?"
    assert answer.agent_text == "We open at nine. We close at five." and not answer.interrupted
    m = answer.metrics
    # "When do you open?" was the draft at the pause: the turn ended on the 250 ms early-end silence
    assert m.endpointing_ms is not None and 250 <= m.endpointing_ms < 300
    # the caller's pause was transcribed and answered before the turn ended: no STT wait, and the
    # answer had a head start of the end-of-turn silence less the pause and the 10 ms of STT
    assert m.stt_ms == 0.0
    assert m.answer_head_start_ms is not None and 100 < m.answer_head_start_ms < 300
    assert m.voice_to_voice_ms is not None and m.endpointing_ms < m.voice_to_voice_ms < 600
    assert [e["state"] for e in events if e["type"] == "state"] == [
        "thinking",
        "speaking",
        "listening",
        "user_speaking",
        "thinking",
        "speaking",
        "listening",
    ]


async def test_the_same_call_replays_exactly() -> None:
    first, first_events = await one_answered_turn()
    second, second_events = await one_answered_turn()
    assert first_events == second_events
    assert [t.metrics for t in first.turns] == [t.metrics for t in second.turns]


async def test_silence_reprompts_then_ends_the_call_on_the_clock() -> None:
    agent = make_agent(limits={"silence_reprompt_s": 8, "max_reprompts": 1})
    async with virtual_call(agent=agent) as v:
        report = await v.task
    assert report.end_reason == "silence"
    assert [t.agent_text for t in report.turns] == ["Hello.", "Still there?", "Goodbye then."]
    assert v.clock.now() > 16.0  # two 8 s silences passed, in virtual time


async def test_max_call_length_says_goodbye_then_ends() -> None:
    agent = make_agent(limits={"max_call_s": 5, "silence_reprompt_s": 60})
    async with virtual_call(agent=agent) as v:
        report = await v.task
    assert report.end_reason == "max_duration" and report.turns[-1].agent_text == "Goodbye then."
    assert 5.0 <= v.clock.now() < 8.0


async def test_barge_in_keeps_only_what_the_caller_heard() -> None:
    async with virtual_call([LONG, "Sure, go ahead."], ["I need a card", "wait a moment"]) as v:
        await v.until(1.0)
        v.call.talk(0.4)
        await v.until(3.0)  # the answer is playing
        assert v.conversation.state == "speaking"
        v.call.talk(0.6)
        report = await v.hang_up_at(8.0)
    interrupted = report.turns[1]
    assert interrupted.interrupted and interrupted.agent_full_text == LONG
    assert interrupted.agent_text and LONG.startswith(interrupted.agent_text)
    assert len(interrupted.agent_text) < len(LONG)
    stop_ms = interrupted.metrics.barge_in_stop_ms
    assert stop_ms is not None and stop_ms < 150
    assert report.turns[2].user_text == "wait a moment"


async def test_keys_become_one_turn_after_the_inter_digit_gap() -> None:
    async with virtual_call(["Thanks."]) as v:
        await v.until(1.0)
        v.call.press("1")
        await v.until(1.5)
        v.call.press("2")
        await v.until(3.0)
        assert len(v.conversation.report.turns) == 1  # still inside the 2 s gap after the last key
        report = await v.hang_up_at(6.0)
    keys = report.turns[1]
    assert keys.dtmf == "12" and keys.user_text == "(caller pressed 1 2)" and keys.agent_text == "Thanks."


async def test_digit_entry_times_out_on_the_clock() -> None:
    agent = make_agent(
        ivr={
            "start": "main",
            "main": {
                "prompt": "Press 5.",
                "options": {"5": {"action": "collect", "collect": {"first_digit_timeout_s": 4}}},
            },
        }
    )
    async with virtual_call(["No number, fine."], agent=agent) as v:
        await v.until(2.0)
        v.call.press("5")
        await v.until(3.0)
        assert v.conversation.floor.keypad.awaiting_entry
        await v.until(6.5)
        assert not v.conversation.floor.keypad.collecting  # 4 s without a digit
        report = await v.hang_up_at(9.0)
    assert [e["reason"] for e in v.events if e["type"] == "digits"] == ["no_input"]
    assert report.turns[1].agent_text == "No number, fine."
    assert "The caller entered no digits." in v.llm.requests[0][-1].content
