"""A whole call with fake engines on a virtual clock: scripted caller audio, tones for speech.

The caller's microphone, the sink, the fake models and the call's timers all run on the harness's
VirtualClock: the test waits by moving virtual time (`h.sleep`, `h.until_*`), never the wall clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, fields
from typing import Any

import pytest

from conversation.fakes import (
    FakeCallIO,
    FakeLLM,
    FakeSTT,
    FakeTTS,
    FakeVAD,
    Script,
    end_call_delta,
    run_to_the_end,
    wait_until,
)
from voxline.agent.config import AgentConfig
from voxline.audio.clock import VirtualClock
from voxline.conversation.conversation import Conversation
from voxline.conversation.events import EVENT_CLASSES, ConversationEvent, TurnTimings
from voxline.conversation.fixed_lines import render_fixed_lines
from voxline.conversation.metrics import CallReport, TurnMetrics
from voxline.conversation.reply import static_sentences
from voxline.conversation.waiting import done_before
from voxline.engines.base import Engines, LLMDelta

LONG = "Your new card will arrive within five working days by post. Please activate it in the app."


def make_agent(**overrides: Any) -> AgentConfig:
    config: dict[str, Any] = {
        "greeting": "Hello.",
        "reprompt": "Still there?",
        "goodbye": "Goodbye then.",
        "turn": {"end_of_turn_silence_ms": 300, "min_speech_ms": 100, "barge_in_min_speech_ms": 200},
        "limits": {"silence_reprompt_s": 30, "max_reprompts": 1},
    }
    config.update(overrides)
    return AgentConfig.model_validate(config)


@dataclass
class Harness:
    clock: VirtualClock
    call: FakeCallIO
    conversation: Conversation
    llm: FakeLLM
    stt: FakeSTT
    tts: FakeTTS
    task: asyncio.Task[CallReport]
    events: list[dict[str, Any]] = field(default_factory=list)

    def states(self) -> list[str]:
        return [e["state"] for e in self.events if e["type"] == "state"]

    async def sleep(self, seconds: float) -> None:
        """Let the call run for `seconds` of its clock."""
        await self.clock.sleep_until(self.clock.now() + seconds)

    async def until(self, predicate: Callable[[], bool], within_s: float = 5.0) -> None:
        await wait_until(predicate, within_s, self.clock)

    async def until_listening(self, after: int = 0, within_s: float = 5.0) -> None:
        """Wait for the agent's turn number `after` to be over (the call is listening again)."""
        await self.until(
            lambda: len(self.conversation.report.turns) > after and self.conversation.state == "listening",
            within_s,
        )

    async def until_speaking(self) -> None:
        await self.until(lambda: self.conversation.state == "speaking" and self.call.sink.is_playing)

    async def report(self, within_s: float = 5.0) -> CallReport:
        if not await done_before(self.task, self.clock, self.clock.now() + within_s):
            raise TimeoutError(f"the call did not end within {within_s} s of its clock")
        return self.task.result()


@asynccontextmanager
async def conversation(
    replies: Sequence[Script] = (),
    transcripts: Sequence[str] = (),
    agent: AgentConfig | None = None,
    token_delay_s: float = 0.005,
    engines: Engines | None = None,
) -> AsyncIterator[Harness]:
    """A call to `agent`; `engines` (fakes) may be given to share them between calls."""
    clock = VirtualClock()
    call = FakeCallIO(clock=clock)
    if engines is None:
        engines = Engines(
            vad=FakeVAD(), stt=FakeSTT(transcripts), llm=FakeLLM(replies, token_delay_s), tts=FakeTTS()
        )
    llm, stt, tts = engines.llm, engines.stt, engines.tts
    assert isinstance(llm, FakeLLM) and isinstance(stt, FakeSTT) and isinstance(tts, FakeTTS)
    llm.clock = stt.clock = clock  # the models take their time on this call's clock
    events: list[dict[str, Any]] = []
    conv = Conversation(call, agent or make_agent(), engines, transport="fake", on_event=events.append)
    call.start_mic()
    task = asyncio.create_task(run_to_the_end(call, conv))
    harness = Harness(clock, call, conv, llm, stt, tts, task, events)
    try:
        yield harness
    finally:
        if not task.done():
            await call.caller_hangs_up()
            await done_before(task, clock, clock.now() + 5)
        await call.aclose()


async def test_greeting_then_one_turn_answered() -> None:
    async with conversation(["We open at nine. We close at five."], ["When do you open?"]) as h:
        await h.until_listening(after=0)
        h.call.talk(0.5)
        await h.until_listening(after=1)
        await h.call.caller_hangs_up()
        report = await h.report()
    assert report.end_reason == "caller_hangup"
    greeting, answer = report.turns
    assert greeting.user_text == "" and greeting.agent_text == "Hello."
    assert answer.user_text == "When do you open?"
    assert answer.agent_text == "We open at nine. We close at five." and not answer.interrupted
    m = answer.metrics
    # the draft at the 120 ms pause already read "When do you open?": the turn ended after the
    # early-end silence (250 ms, the first 32 ms frame past it), not the 300 ms end of turn
    assert m.endpointing_ms is not None and 250 <= m.endpointing_ms < 300
    for value in (m.stt_ms, m.llm_first_token_ms, m.llm_first_sentence_ms, m.tts_first_audio_ms):
        assert value is not None and value >= 0
    assert m.voice_to_voice_ms is not None and m.voice_to_voice_ms > m.endpointing_ms
    assert 0.3 < h.stt.transcribed_s[0] < 1.2  # the caller's 0.5 s plus padding, resampled from 8 kHz
    assert h.tts.spoken == ["Hello.", "We open at nine.", "We close at five."]
    # the model saw the system prompt, the greeting and the caller's words
    roles = [(m.role, m.content) for m in h.llm.requests[0]]
    assert roles[0][0] == "system" and roles[1:] == [("assistant", "Hello."), ("user", "When do you open?")]
    assert {"listening", "user_speaking", "thinking", "speaking"} <= set(h.states())
    assert any(e["type"] == "metrics" for e in h.events)


async def test_barge_in_stops_audio_and_keeps_only_heard_words() -> None:
    async with conversation([LONG, "Sure, go ahead."], ["I need a card", "wait a moment"]) as h:
        await h.until_listening(after=0)
        h.call.talk(0.4)
        await h.until_speaking()
        await h.sleep(1.0)
        h.call.talk(0.6)
        await h.until_listening(after=2, within_s=8)
    report = await h.report()
    interrupted = report.turns[1]
    assert interrupted.interrupted and interrupted.agent_full_text == LONG
    heard = interrupted.agent_text.split()
    assert 0 < len(heard) < len(LONG.split()) and LONG.split()[: len(heard)] == heard
    assert interrupted.metrics.barge_in_stop_ms is not None and interrupted.metrics.barge_in_stop_ms > 0
    full_reply_s = sum(h.tts.duration_s(s) for s in h.tts.spoken if s in LONG)
    assert h.call.sink.emitted_s < 0.5 + full_reply_s  # the reply did not play out in full
    # history: only the heard part, marked; then the new caller turn and the answer to it
    messages = h.llm.requests[1]
    assert messages[-2].role == "assistant" and messages[-2].content == " ".join(heard)
    assert messages[-2].interrupted
    assert messages[-1].role == "user" and messages[-1].content == "wait a moment"
    assert report.turns[2].agent_text == "Sure, go ahead."


async def test_backchannel_resumes_the_reply_to_completion() -> None:
    async with conversation([LONG], ["I need a card", "mm-hm"]) as h:
        await h.until_listening(after=0)
        h.call.talk(0.4)
        await h.until_speaking()
        await h.sleep(0.8)
        h.call.talk(0.4)
        await h.until_listening(after=1, within_s=10)
    report = await h.report()
    turn = report.turns[1]
    assert not turn.interrupted and turn.agent_text == LONG
    assert turn.metrics.barge_in_stop_ms is not None  # it did pause for the "mm-hm"
    assert len(h.llm.requests) == 1  # the backchannel was not answered
    assert len(h.stt.transcribed_s) == 2
    full_reply_s = h.tts.duration_s("Hello.") + sum(h.tts.duration_s(s) for s in h.tts.spoken[1:])
    assert h.call.sink.emitted_s >= full_reply_s - 0.05  # everything was played (the cut part twice)


async def test_silence_reprompts_then_says_goodbye_and_hangs_up() -> None:
    agent = make_agent(limits={"silence_reprompt_s": 0.3, "max_reprompts": 1})
    async with conversation(agent=agent) as h:
        report = await h.report(within_s=8)
    assert report.end_reason == "silence" and h.call.hangups == ["silence"]
    assert [t.agent_text for t in report.turns] == ["Hello.", "Still there?", "Goodbye then."]
    said_s = sum(h.tts.duration_s(t.agent_text) for t in report.turns)
    assert h.call.emitted_at_hangup_s is not None and h.call.emitted_at_hangup_s >= said_s - 0.05
    assert h.llm.requests == []


async def test_end_call_tool_plays_goodbye_then_hangs_up() -> None:
    reply = [LLMDelta(text="Thanks for calling, bye!"), end_call_delta()]
    async with conversation([reply], ["that's all, bye"]) as h:
        await h.until_listening(after=0)
        h.call.talk(0.4)
        report = await h.report()
    assert report.end_reason == "agent_ended" and h.call.hung_up == "agent_ended"
    last = report.turns[-1]
    assert last.tool_calls == ["end_call"] and last.agent_text == "Thanks for calling, bye!"
    # the goodbye was fully played before the one hang-up (the runner's, with the reported reason)
    assert h.call.hangups == ["agent_ended"] and h.call.emitted_at_hangup_s is not None
    said_s = h.tts.duration_s("Hello.") + h.tts.duration_s(last.agent_text)
    assert h.call.emitted_at_hangup_s >= said_s - 0.05


async def test_end_call_without_words_speaks_the_agent_goodbye() -> None:
    async with conversation([[end_call_delta()]], ["bye"]) as h:
        await h.until_listening(after=0)
        h.call.talk(0.4)
        report = await h.report()
    assert report.end_reason == "agent_ended"
    assert report.turns[-1].agent_text == "Goodbye then."


async def test_caller_hangup_mid_reply_ends_cleanly_and_closes_the_llm() -> None:
    slow_long = " ".join(["word"] * 60) + "."
    async with conversation([f"One moment. {slow_long}"], ["tell me everything"], token_delay_s=0.05) as h:
        await h.until_listening(after=0)
        h.call.talk(0.4)
        await h.until_speaking()
        await h.call.caller_hangs_up()
        report = await h.report()
    assert report.end_reason == "caller_hangup"
    assert h.llm.closed == 1 and h.llm.finished == 0  # generation was stopped, not run to the end
    assert report.turns[-1].interrupted
    assert not h.call.sink.is_playing


async def test_caller_continuing_while_agent_thinks_gets_one_combined_answer() -> None:
    async with conversation(["Done."], ["I want to", "block my card"], token_delay_s=0.4) as h:
        await h.until_listening(after=0)
        h.call.talk(0.3)
        await h.until(lambda: h.conversation.state == "thinking" and len(h.stt.transcribed_s) == 1)
        h.call.talk(0.4)
        await h.until_listening(after=1, within_s=8)
    report = await h.report()
    assert [t.user_text for t in report.turns] == ["", "I want to block my card"]
    assert h.llm.requests[-1][-1].content == "I want to block my card"


async def test_dtmf_goes_into_history() -> None:
    async with conversation(["Got it."], ["my choice"]) as h:
        await h.until_listening(after=0)
        h.call.press("5")
        h.call.talk(0.4)
        await h.until_listening(after=1)
    assert h.llm.requests[0][-1].content == "(caller pressed 5) my choice"


async def test_caller_pausing_mid_sentence_gets_one_answer_to_the_whole_sentence() -> None:
    # The pause (300 ms) is long enough to start STT and an answer speculatively (150 ms) but shorter
    # than the end of turn (600 ms): the answer prepared for the first half must never be heard.
    agent = make_agent(
        turn={"end_of_turn_silence_ms": 600, "speculative_pause_ms": 150, "min_speech_ms": 100}
    )
    half, whole = "I would like to", "I would like to check my balance"
    # 100 ms a token: the half answer (3 tokens) is still being written when the caller goes on, which
    # on the virtual clock happens at the same instant every run (at 50 ms a token it would be done
    # a few ms before the resumed speech is detected)
    async with conversation([], [half, whole], agent, token_delay_s=0.1) as h:
        h.llm.by_question = {half: "HALF ANSWER.", whole: "Your balance is on the app."}
        await h.until_listening(after=0)
        h.call.talk(0.5)
        await h.sleep(0.8)  # 0.5 s of speech, then a 0.3 s pause...
        h.call.talk(0.5)  # ...and the caller goes on
        await h.until_listening(after=1, within_s=8)
        await h.sleep(0.5)
        await h.call.caller_hangs_up()
        report = await h.report()
    answers = [t for t in report.turns if t.user_text]
    assert [t.user_text for t in answers] == [whole]
    assert [t.agent_text for t in answers] == ["Your balance is on the app."]
    assert (
        h.stt.transcribed_s[0] < h.stt.transcribed_s[1]
    )  # the draft heard half; the final heard the whole turn
    # an answer to the half was prepared on the pause, and thrown away when the caller went on
    asked = [r[-1].content for r in h.llm.requests]
    assert asked[0] == half and asked[-1] == whole
    assert h.llm.finished <= len(asked) - 1 or asked.count(half) == 0
    # the caller heard the greeting and one answer, nothing else; the history has no half answer
    heard_s = h.tts.duration_s(agent.greeting) + h.tts.duration_s("Your balance is on the app.")
    assert h.call.sink.emitted_s == pytest.approx(heard_s, abs=0.1)
    assert all("HALF" not in m.content for m in h.conversation.history.messages)


async def test_a_turn_whose_draft_trails_off_waits_the_whole_end_of_turn_silence() -> None:
    agent = make_agent(turn={"end_of_turn_silence_ms": 500})
    async with conversation(["Sure."], ["I would like to"], agent) as h:
        report = await one_turn_then_hang_up(h)
    m = report.turns[1].metrics
    assert m.endpointing_ms is not None and m.endpointing_ms >= 500
    async with conversation(["Sure."], ["When do you open?"], agent) as h:
        report = await one_turn_then_hang_up(h)
    m = report.turns[1].metrics
    assert m.endpointing_ms is not None and 250 <= m.endpointing_ms < 300  # the same call, finished
    # switched off, a finished request waits the whole silence too
    agent = make_agent(turn={"end_of_turn_silence_ms": 500, "early_end_silence_ms": 0})
    async with conversation(["Sure."], ["When do you open?"], agent) as h:
        report = await one_turn_then_hang_up(h)
    m = report.turns[1].metrics
    assert m.endpointing_ms is not None and m.endpointing_ms >= 500


async def one_turn_then_hang_up(h: Harness) -> CallReport:
    """After the greeting the caller speaks 0.5 s, hears the answer, and hangs up."""
    await h.until_listening(after=0)
    h.call.talk(0.5)
    await h.until_listening(after=1, within_s=8)
    await h.call.caller_hangs_up()
    return await h.report()


async def test_answer_prepared_on_the_pause_is_used_when_the_caller_has_finished() -> None:
    agent = make_agent(turn={"end_of_turn_silence_ms": 500, "speculative_pause_ms": 150})
    async with conversation(["Sure."], ["Check my balance please"], agent) as h:
        report = await one_turn_then_hang_up(h)
    assert [t.user_text for t in report.turns if t.user_text] == ["Check my balance please"]
    assert [t.agent_text for t in report.turns if t.user_text] == ["Sure."]
    assert len(h.stt.transcribed_s) == 1  # transcribed once, during the end-of-turn silence
    assert len(h.llm.requests) == 1  # answered once: the prepared answer was the answer
    m = report.turns[1].metrics
    assert m.stt_ms is not None and m.stt_ms < 10  # nothing left to wait for when the turn ended
    # the answer began before the turn was confirmed (the 150 ms pause vs the 500 ms end of turn)
    assert m.answer_head_start_ms is not None and m.answer_head_start_ms > 100
    assert m.voice_to_voice_ms is not None and m.endpointing_ms is not None


async def test_no_answer_is_prepared_while_the_agent_is_talking_or_keys_are_pending() -> None:
    agent = make_agent(turn={"end_of_turn_silence_ms": 500, "speculative_pause_ms": 150})
    async with conversation(["Got it."], ["my choice"], agent) as h:
        await h.until_listening(after=0)
        h.call.press("5")
        h.call.talk(0.4)
        await h.until_listening(after=1)
    # the key note changes the question, so nothing was asked before the turn was confirmed
    assert [r[-1].content for r in h.llm.requests] == ["(caller pressed 5) my choice"]


async def test_both_sides_saying_goodbye_ends_the_call_even_without_the_tool() -> None:
    async with conversation(["You're welcome, goodbye!"], ["Thanks, goodbye"]) as h:
        await h.until_listening(after=0)
        h.call.talk(0.4)
        report = await h.report(within_s=8)
    assert report.end_reason == "agent_ended"
    assert h.call.hung_up == "agent_ended"
    assert report.turns[-1].agent_text == "You're welcome, goodbye!"


async def test_max_call_length_says_goodbye_then_hangs_up() -> None:
    agent = make_agent(limits={"max_call_s": 1.5, "silence_reprompt_s": 30})
    async with conversation([LONG], ["Tell me about my new card"], agent) as h:
        await h.until_listening(after=0)
        h.call.talk(0.4)  # the answer is still playing when the call reaches its limit
        report = await h.report(within_s=10)
    assert report.end_reason == "max_duration"
    assert h.call.hangups == ["max_duration"]
    assert report.turns[-1].agent_text == "Goodbye then."
    assert h.tts.spoken[-1] == "Goodbye then."


async def test_yes_over_the_end_of_a_question_answers_it_instead_of_replaying_it() -> None:
    question = "Shall I order a new one?"
    async with conversation(
        [f"Your card is blocked. {question}", "Done, it is on its way."], ["My card is blocked", "yes"]
    ) as h:
        await h.until_listening(after=0)
        h.call.talk(0.4)
        await h.until_speaking()
        await h.sleep(0.75)  # most of the question heard (statement 0.42 s, question 0.48 s)
        h.call.talk(0.3)
        await h.until_listening(after=2, within_s=8)
        await h.call.caller_hangs_up()
        report = await h.report()
    assert len(h.llm.requests) == 2
    assert h.llm.requests[1][-1].content == "yes"
    assert h.tts.spoken.count(question) == 1  # never replayed
    assert report.turns[-1].agent_text == "Done, it is on its way."


async def test_no_answer_is_prepared_while_the_model_is_busy_with_another_call() -> None:
    agent = make_agent(turn={"end_of_turn_silence_ms": 500, "speculative_pause_ms": 150})
    async with conversation(["Sure."], ["Check my balance please"], agent) as h:
        h.llm.busy = True  # another call is generating
        report = await one_turn_then_hang_up(h)
    assert [t.agent_text for t in report.turns if t.user_text] == ["Sure."]
    assert len(h.llm.requests) == 1
    assert report.turns[1].metrics.answer_head_start_ms is None  # answered once confirmed, not before


async def test_a_greeting_rendered_at_warm_up_is_replayed_on_every_call_not_synthesised() -> None:
    agent = make_agent(greeting="Thanks for calling Northwind. How can I help?")
    engines = Engines(vad=FakeVAD(), stt=FakeSTT([]), llm=FakeLLM([]), tts=FakeTTS())
    tts = engines.tts
    assert isinstance(tts, FakeTTS)
    rendered = await render_fixed_lines(agent, engines)
    assert rendered.sentences == 2 and tts.spoken == ["Thanks for calling Northwind.", "How can I help?"]
    for _ in range(2):  # two calls, one after the other, on the same engines
        async with conversation(agent=agent, engines=engines) as h:
            await h.until_listening(after=0)
            await h.call.caller_hangs_up()
            report = await h.report()
        assert report.turns[0].agent_text == "Thanks for calling Northwind. How can I help?"
        assert report.turns[0].metrics.tts_first_audio_ms is not None
        # the whole greeting was sent, from the kept audio
        whole = tts.duration_s("Thanks for calling Northwind.") + tts.duration_s("How can I help?")
        assert h.call.sink.emitted_s == pytest.approx(whole, abs=0.1)
    assert tts.spoken == ["Thanks for calling Northwind.", "How can I help?"]


async def test_barging_in_on_a_rendered_greeting_stops_it_and_keeps_only_what_was_heard() -> None:
    agent = make_agent(greeting=LONG)
    engines = Engines(
        vad=FakeVAD(), stt=FakeSTT(["hi I lost my card"]), llm=FakeLLM(["Sorry to hear that."]), tts=FakeTTS()
    )
    await render_fixed_lines(agent, engines)
    async with conversation(agent=agent, engines=engines) as h:
        await h.until_speaking()
        await h.sleep(0.8)
        h.call.talk(0.6)
        await h.until_listening(after=1, within_s=8)
        await h.call.caller_hangs_up()
        report = await h.report()
    greeting, answer = report.turns
    assert greeting.interrupted and greeting.agent_text and LONG.startswith(greeting.agent_text)
    assert len(greeting.agent_text) < len(LONG)
    assert answer.user_text == "hi I lost my card" and answer.agent_text == "Sorry to hear that."
    # during the call only the answer was synthesised
    assert h.tts.spoken == [*static_sentences(LONG), "Sorry to hear that."]


async def test_a_greeting_not_rendered_for_this_voice_is_synthesised_live() -> None:
    agent = make_agent(greeting="Good morning.")
    engines = Engines(vad=FakeVAD(), stt=FakeSTT([]), llm=FakeLLM([]), tts=FakeTTS())
    await render_fixed_lines(make_agent(greeting="Good evening."), engines)  # another agent's line
    async with conversation(agent=agent, engines=engines) as h:
        await h.until_listening(after=0)
        await h.call.caller_hangs_up()
        report = await h.report()
    assert report.turns[0].agent_text == "Good morning."
    assert h.tts.spoken == ["Good evening.", "Good morning."]


def wire_keys(event_type: type[ConversationEvent]) -> set[str]:
    names = {item.name for item in fields(event_type)} - {"metrics"}
    flat = {item.name for item in fields(TurnMetrics)} if event_type is TurnTimings else set()
    return {"type", *names, *flat}


async def test_events_have_the_shared_wire_shapes() -> None:
    """What the page receives is exactly `voxline.conversation.events`' shapes (the test stand-in
    conversation builds its events from the same classes, so the two cannot drift apart)."""
    async with conversation(["We open at nine."], ["When do you open?"]) as h:
        await h.until_listening(after=0)
        h.call.talk(0.5)
        await h.until_listening(after=1)
        await h.call.caller_hangs_up()
        await h.report()
    shapes = {cls.type: wire_keys(cls) for cls in EVENT_CLASSES}
    seen = {e["type"] for e in h.events}
    assert {"state", "user_text", "agent_text", "metrics"} <= seen
    for event in h.events:
        assert set(event) == shapes[event["type"]], event
    metrics = [e for e in h.events if e["type"] == "metrics"]
    assert [e["turn"] for e in metrics] == [0, 1] and metrics[1]["voice_to_voice_ms"] > 0
