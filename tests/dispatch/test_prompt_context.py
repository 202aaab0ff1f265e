"""The real conversation, run by the call runner with a call's metadata: the agent's placeholders are
filled from it, and the system prompt the model gets is the same bytes on every turn of the call."""

from __future__ import annotations

import asyncio
from typing import Any

from conversation.fakes import FakeCallIO, FakeLLM, FakeSTT, FakeTTS, FakeVAD, wait_until
from voxline.agent.config import AgentConfig
from voxline.audio.clock import VirtualClock
from voxline.calls.runner import CallContext, CallRunner, CallSession, build_conversation
from voxline.conversation.metrics import NullRecorder
from voxline.dispatch.metadata import CallMetadata
from voxline.engines.base import Engines


async def test_the_call_context_fills_the_prompt_once_and_it_stays_byte_identical() -> None:
    agent = AgentConfig.model_validate(
        {
            "greeting": "Hello.",
            "persona": "You are Maya. The caller's plan is {plan}.",
            "rules": ["The caller's number is {caller_number}."],
            "context": {"plan": {"source": "field:plan", "pattern": "[a-z]{1,16}"}},
            "turn": {"end_of_turn_silence_ms": 300, "min_speech_ms": 100, "barge_in_min_speech_ms": 200},
            "limits": {"silence_reprompt_s": 30},
        }
    )
    clock = VirtualClock()
    call = FakeCallIO(clock=clock)
    llm = FakeLLM(["Sure.", "Of course."])
    llm.clock = clock
    stt = FakeSTT(["What is my plan?", "And my number?"])
    stt.clock = clock
    engines = Engines(vad=FakeVAD(), stt=stt, llm=llm, tts=FakeTTS())
    built: list[Any] = []

    def capture(*args: Any, **kwargs: Any) -> CallSession:
        conversation = build_conversation(*args, **kwargs)
        built.append(conversation)
        return conversation

    runner = CallRunner(agent, engines, NullRecorder(), make_conversation=capture, clock=clock)
    metadata = CallMetadata("websocket", caller_number="+4930123", fields={"plan": "premium"})
    call.start_mic()
    task = asyncio.create_task(runner.converse(call, CallContext("websocket", metadata=metadata)))
    await wait_until(lambda: bool(built) and len(built[0].report.turns) >= 1, 5, clock)
    for turn in (1, 2):
        call.talk(0.5)
        await wait_until(lambda t=turn: len(llm.requests) >= t and len(built[0].report.turns) > t, 5, clock)  # type: ignore[misc]
    await call.caller_hangs_up()
    report = await asyncio.wait_for(task, 10)
    systems = [request[0].content for request in llm.requests]
    assert len(systems) == 2 and systems[0] == systems[1]
    assert systems[0].startswith("You are Maya. The caller's plan is premium.")
    assert "- The caller's number is +4930123." in systems[0]
    assert report.metadata == {
        "transport": "websocket",
        "caller_number": "+4930123",
        "fields": {"plan": "premium"},
    }
