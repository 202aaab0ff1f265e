"""Whole calls in several languages, with fake engines: each language mode, the voice following the
language, the STT forced to it, the model told which language to answer in, wrong-script replies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from conversation.fakes import FakeCallIO, FakeLLM, FakeSTT, FakeTTS, FakeVAD, Script, take_time, wait_until
from voxline.agent.config import AgentConfig
from voxline.audio.clock import Clock, VirtualClock
from voxline.audio.pcm import AudioChunk
from voxline.conversation.conversation import Conversation
from voxline.conversation.metrics import CallReport
from voxline.conversation.waiting import done_before
from voxline.engines import base
from voxline.engines.base import Engines, LanguageGuess, LLMDelta, ToolCall, Transcript
from voxline.engines.stt_openai import OpenAISTT

HI_REPLY = "आपका कार्ड बंद कर दिया गया है।"
Heard = tuple[str, str, float]
"""(text, language it is in, LID probability)."""


class LanguageSTT:
    """Transcribes scripted turns and identifies them in the same pass, like WhisperSTT."""

    name = "fake-multilingual-stt"
    multilingual = True

    clock: Clock | None = None
    """The call's clock, on which transcribing takes its 10 ms."""

    def __init__(self, turns: Sequence[Heard]) -> None:
        self.turns = list(turns)
        self.forced: list[str | None] = []
        """The language each transcription was forced to (None: identified)."""
        self.candidates: list[list[str] | None] = []

    def _next(self) -> Heard:
        return self.turns.pop(0) if self.turns else ("", "en", 1.0)

    async def transcribe(self, audio: AudioChunk, language: str | None = None) -> Transcript:
        await take_time(self.clock, 0.01)
        text, spoken, _ = self._next()
        self.forced.append(language)
        return Transcript(text, language or spoken)

    async def transcribe_with_language(
        self, audio: AudioChunk, candidates: Sequence[str] | None, forced: str | None = None
    ) -> tuple[Transcript, LanguageGuess]:
        await take_time(self.clock, 0.01)
        text, spoken, probability = self._next()
        self.forced.append(forced)
        self.candidates.append(list(candidates) if candidates is not None else None)
        return Transcript(text, forced or spoken), LanguageGuess(spoken, probability)

    async def warm_up(self) -> None:
        pass


class PlainSTT(LanguageSTT):
    """An STT that cannot identify languages: the call pairs it with a separate identifier."""

    transcribe_with_language = None  # type: ignore[assignment]


def test_identifying_a_language_while_transcribing_is_a_declared_capability() -> None:
    assert isinstance(LanguageSTT([]), base.LanguageSTT)
    assert not isinstance(PlainSTT([]), base.LanguageSTT)  # opted out: paired with a separate identifier
    assert isinstance(OpenAISTT("http://127.0.0.1:9/v1", "whisper-1"), base.LanguageSTT)
    assert not isinstance(FakeSTT(), base.LanguageSTT)


class ScriptedLID:
    name = "fake-lid"

    def __init__(self, guesses: Sequence[tuple[str, float]]) -> None:
        self.guesses = list(guesses)
        self.asked: list[list[str] | None] = []

    async def identify(self, audio: AudioChunk, candidates: Sequence[str] | None = None) -> LanguageGuess:
        self.asked.append(list(candidates) if candidates is not None else None)
        language, probability = self.guesses.pop(0)
        return LanguageGuess(language, probability)


@dataclass
class Call:
    clock: VirtualClock
    call: FakeCallIO
    conversation: Conversation
    llm: FakeLLM
    stt: LanguageSTT
    voices: dict[str, FakeTTS]
    task: asyncio.Task[CallReport]
    events: list[dict[str, Any]]

    async def caller_says(self, after_turns: int, within_s: float = 6.0) -> None:
        """Wait for the agent's turn `after_turns - 1` to end, then speak one caller turn."""
        await self.until_listening(after_turns - 1, within_s)
        self.call.talk(0.4)

    async def until_listening(self, after: int, within_s: float = 6.0) -> None:
        await wait_until(
            lambda: len(self.conversation.report.turns) > after and self.conversation.state == "listening",
            within_s,
            self.clock,
        )

    async def ended(self, within_s: float = 5.0) -> CallReport:
        if not await done_before(self.task, self.clock, self.clock.now() + within_s):
            raise TimeoutError(f"the call did not end within {within_s} s of its clock")
        return self.task.result()

    async def hang_up(self) -> CallReport:
        await self.call.caller_hangs_up()
        return await self.ended()


def multilingual_agent(mode: str, allowed: Sequence[str] = ("en", "hi"), **extra: Any) -> AgentConfig:
    config: dict[str, Any] = {
        "greeting": "Hello.",
        "reprompt": "Still there?",
        "goodbye": "Goodbye then.",
        "languages": {"mode": mode, "allowed": list(allowed), "switch_after_turns": 2},
        "texts": {"hi": {"switched": "ठीक है, अब हम हिंदी में बात करते हैं।", "fallback": "माफ़ कीजिए।"}},
        "turn": {"end_of_turn_silence_ms": 300, "min_speech_ms": 100, "barge_in_min_speech_ms": 200},
        "limits": {"silence_reprompt_s": 30, "max_reprompts": 1},
    }
    config.update(extra)
    return AgentConfig.model_validate(config)


@asynccontextmanager
async def call(
    agent: AgentConfig,
    turns: Sequence[Heard],
    replies: Sequence[Script] = (),
    stt: LanguageSTT | None = None,
    lid: ScriptedLID | None = None,
) -> AsyncIterator[Call]:
    clock = VirtualClock()
    io = FakeCallIO(clock=clock)
    voices = {"en": FakeTTS(), "hi": FakeTTS(), "mr": FakeTTS()}
    llm, stt = FakeLLM(replies, clock=clock), stt or LanguageSTT(turns)
    stt.clock = clock
    engines = Engines(
        vad=FakeVAD(),
        stt=stt,
        llm=llm,
        tts=voices["en"],
        voices={"hi": voices["hi"], "mr": voices["mr"]},
        lid=lid,
    )
    events: list[dict[str, Any]] = []
    conversation = Conversation(io, agent, engines, transport="fake", on_event=events.append)
    io.start_mic()
    task = asyncio.create_task(conversation.run())
    try:
        yield Call(clock, io, conversation, llm, stt, voices, task, events)
    finally:
        if not task.done():
            await io.caller_hangs_up()
            await done_before(task, clock, clock.now() + 5)
        await io.aclose()


# ---------------------------------------------------------------- auto


async def test_auto_follows_the_caller_to_hindi_after_two_turns() -> None:
    turns = [("my card", "en", 0.97), ("मेरा कार्ड खो गया", "hi", 0.92), ("कृपया बंद कीजिए", "hi", 0.88)]
    replies = ["Sorry to hear that.", "I can help with that.", HI_REPLY]
    async with call(multilingual_agent("auto"), turns, replies) as c:
        for n in (1, 2, 3):
            await c.caller_says(after_turns=n)
        await c.until_listening(after=3)
        report = await c.hang_up()
    english, stray, switched = report.turns[1:]
    assert (english.language, english.detected_language) == ("en", "en")
    assert (stray.language, stray.detected_language, stray.language_probability) == ("en", "hi", 0.92)
    assert not stray.language_switched  # one turn is not enough
    assert switched.language_switched and switched.language == "hi" and switched.language_probability == 0.88
    # the switch line, then the answer, both in the Hindi voice; English before that in the English one
    assert c.voices["hi"].spoken == ["ठीक है, अब हम हिंदी में बात करते हैं।", HI_REPLY]
    assert c.voices["en"].spoken == ["Hello.", "Sorry to hear that.", "I can help with that."]
    assert switched.agent_text == f"ठीक है, अब हम हिंदी में बात करते हैं। {HI_REPLY}"
    # LID ran every turn among the allowed languages, the call's current one first
    assert c.stt.candidates == [["en", "hi"], ["en", "hi"], ["en", "hi"]]
    # the model was told per turn, after the history, which language to answer in
    notes = [request[-1] for request in c.llm.requests]
    assert all(n.role == "system" for n in notes)
    assert "English" in notes[1].content and "Hindi" in notes[2].content
    assert c.llm.requests[2][0] == c.llm.requests[0][0]  # the system prompt never changed
    assert any(e == {"type": "language", "language": "hi", "requested": False} for e in c.events)


async def test_auto_one_stray_turn_does_not_flip_the_call() -> None:
    turns = [("hello", "en", 0.9), ("accha", "hi", 0.95), ("thanks", "en", 0.9), ("ok", "hi", 0.95)]
    async with call(multilingual_agent("auto"), turns, ["One.", "Two.", "Three.", "Four."]) as c:
        for n in (1, 2, 3, 4):
            await c.caller_says(after_turns=n)
        await c.until_listening(after=4)
        report = await c.hang_up()
    assert [t.language for t in report.turns] == ["en"] * 5
    assert not any(t.language_switched for t in report.turns)
    assert c.voices["hi"].spoken == []


async def test_auto_with_a_separate_identifier_decodes_in_the_identified_language() -> None:
    # the unsure middle turn is decoded in the call's language (a real STT then writes Latin)
    turns = [("मेरा कार्ड", "hi", 1.0), ("kho gaya", "hi", 1.0), ("कृपया बंद कीजिए", "hi", 1.0)]
    lid = ScriptedLID([("hi", 0.9), ("hi", 0.3), ("hi", 0.8)])
    replies = ["Okay.", "Okay.", HI_REPLY]
    async with call(multilingual_agent("auto"), turns, replies, PlainSTT(turns), lid) as c:
        for n in (1, 2, 3):
            await c.caller_says(after_turns=n)
        await c.until_listening(after=3)
        report = await c.hang_up()
    assert lid.asked == [["en", "hi"], ["en", "hi"], ["en", "hi"]]
    assert c.stt.forced == ["hi", "en", "hi"]  # confident: decode in Hindi; unsure: in the call's language
    assert not report.turns[2].language_switched
    # the unsure turn did not break the streak: the next confident Hindi turn is the second in a row
    assert report.turns[3].language_switched and report.turns[3].language == "hi"


async def test_auto_switches_at_once_when_the_caller_asks_in_hindi() -> None:
    turns = [("हिंदी में बात कीजिए", "hi", 0.56), ("मेरा कार्ड खो गया", "hi", 0.9)]
    async with call(multilingual_agent("auto"), turns, [HI_REPLY]) as c:
        for n in (1, 2):
            await c.caller_says(after_turns=n)
        await c.until_listening(after=2)
        report = await c.hang_up()
    request, answer = report.turns[1:]
    assert request.language_switched and request.language == "hi"
    assert request.agent_text == "ठीक है, अब हम हिंदी में बात करते हैं।"  # the switch line answers it
    assert len(c.llm.requests) == 1  # only the real question went to the model
    assert answer.language == "hi" and answer.agent_text == HI_REPLY and not answer.language_switched
    assert c.voices["hi"].spoken == ["ठीक है, अब हम हिंदी में बात करते हैं।", HI_REPLY]
    assert c.stt.candidates == [["en", "hi"], ["hi", "en"]]  # the STT now confirms Hindi first
    assert any(e == {"type": "language", "language": "hi", "requested": True} for e in c.events)


# ---------------------------------------------------------------- fixed


async def test_fixed_hindi_ignores_english_and_forces_the_stt() -> None:
    agent = multilingual_agent("fixed", (), language="hi", greeting="नमस्ते।")
    turns = [("card", "en", 0.99), ("in English please", "en", 0.99)]
    async with call(agent, turns, [HI_REPLY, HI_REPLY]) as c:
        for n in (1, 2):
            await c.caller_says(after_turns=n)
        await c.until_listening(after=2)
        report = await c.hang_up()
    assert c.stt.forced == ["hi", "hi"] and c.stt.candidates == []  # no identification at all
    assert [t.language for t in report.turns] == ["hi", "hi", "hi"]
    assert not any(t.language_switched for t in report.turns)
    assert c.voices["hi"].spoken == ["नमस्ते।", HI_REPLY, HI_REPLY] and c.voices["en"].spoken == []
    assert "Devanagari" in c.llm.requests[0][-1].content


async def hindi_call_answered_with(reply: str) -> tuple[Call, CallReport]:
    """A fixed-Hindi call: the caller says one turn, the model answers `reply`, the caller hangs up."""
    agent = multilingual_agent("fixed", (), language="hi", greeting="नमस्ते।")
    async with call(agent, [("कार्ड", "hi", 1.0)], [reply]) as c:
        await c.caller_says(after_turns=1)
        await c.until_listening(after=1)
        report = await c.hang_up()
    return c, report


async def test_wrong_script_reply_is_replaced_by_the_fallback_line() -> None:
    c, report = await hindi_call_answered_with("Sure, your card is blocked now.")
    turn = report.turns[1]
    assert turn.wrong_script_text == "Sure, your card is blocked now."
    assert turn.agent_text == "माफ़ कीजिए।"
    assert c.voices["hi"].spoken == ["नमस्ते।", "माफ़ कीजिए।"]
    history = c.conversation.history.messages
    assert [m.content for m in history if m.role == "assistant"] == ["नमस्ते।", "माफ़ कीजिए।"]


async def test_a_reply_with_nothing_speakable_is_replaced_by_the_fallback_line() -> None:
    c, report = await hindi_call_answered_with("*smiles* 🙂")
    turn = report.turns[1]
    assert turn.wrong_script_text == ""  # nothing was in the wrong script; there was nothing at all
    assert turn.agent_text == "माफ़ कीजिए।"
    assert c.voices["hi"].spoken == ["नमस्ते।", "माफ़ कीजिए।"]


# ---------------------------------------------------------------- on_request


async def test_on_request_keyword_switches_voice_stt_and_replies() -> None:
    agent = multilingual_agent("on_request", ("en", "hi", "mr"))
    turns = [
        ("Hindi mein baat kijiye", "en", 1.0),
        ("मेरा कार्ड खो गया", "hi", 1.0),
        ("मराठीत बोला", "mr", 1.0),
    ]
    async with call(agent, turns, [HI_REPLY]) as c:
        for n in (1, 2, 3):
            await c.caller_says(after_turns=n)
        await c.until_listening(after=3)
        report = await c.hang_up()
    request, answer, marathi = report.turns[1:]
    assert request.language_switched and request.language == "hi"
    assert request.agent_text == "ठीक है, अब हम हिंदी में बात करते हैं।"  # the switch line answers it
    assert len(c.llm.requests) == 1  # only the real question went to the model
    assert answer.language == "hi" and answer.agent_text == HI_REPLY
    assert "Hindi" in c.llm.requests[0][-1].content
    assert marathi.language_switched and marathi.language == "mr"
    assert c.voices["mr"].spoken == ["ठीक आहे, आता आपण मराठीत बोलूया."]  # built-in line, Marathi voice
    assert c.stt.candidates == [["en", "hi", "mr"], ["hi", "en", "mr"], ["hi", "en", "mr"]]


async def test_on_request_switch_by_the_models_tool_call() -> None:
    agent = multilingual_agent("on_request", ("en", "hi", "mr"))
    tool = LLMDelta(
        tool_call=ToolCall("switch_language", {"language": "mr"}, "c1"), finish_reason="tool_calls"
    )
    turns = [("is Marathi okay for my grandmother", "en", 1.0), ("हो", "mr", 1.0)]
    async with call(agent, turns, [[tool], "नमस्कार."]) as c:
        assert "switch_language" in c.conversation.tools
        for n in (1, 2):
            await c.caller_says(after_turns=n)
        await c.until_listening(after=2)
        report = await c.hang_up()
    switched = report.turns[1]
    assert switched.tool_calls == ["switch_language"] and switched.language_switched
    assert switched.language == "mr" and c.conversation.language.current == "mr"
    assert c.voices["mr"].spoken == ["ठीक आहे, आता आपण मराठीत बोलूया.", "नमस्कार."]
    assert len(c.llm.requests) == 2  # the switch line was the answer; no second model round
    assert c.stt.candidates == [["en", "hi", "mr"], ["mr", "en", "hi"]]
    tool_results = [m.content for m in c.conversation.history.messages if m.role == "tool"]
    assert tool_results == ["The call is now in Marathi."]


async def test_reprompt_and_goodbye_follow_the_call_language() -> None:
    agent = multilingual_agent("on_request", limits={"silence_reprompt_s": 0.4, "max_reprompts": 1})
    async with call(agent, [("हिंदी में बात कीजिए", "hi", 1.0)]) as c:
        await c.caller_says(after_turns=1)
        report = await c.ended(within_s=8)
    assert report.end_reason == "silence"
    assert [t.language for t in report.turns] == ["en", "hi", "hi", "hi"]
    assert [t.agent_text for t in report.turns[2:]] == [
        "क्या आप लाइन पर हैं? मैं आपकी क्या मदद कर सकती हूँ?",
        "कॉल करने के लिए धन्यवाद। नमस्ते।",
    ]
    assert len(c.voices["hi"].spoken) == 5 and c.voices["en"].spoken == ["Hello."]


# ---------------------------------------------------------------- text normalisation


async def test_tts_reads_the_normalised_text_while_the_record_keeps_the_written_one() -> None:
    from conversation.fakes import CollectingSink
    from voxline.audio.clock import MonotonicClock
    from voxline.conversation.reply import Reply, static_text

    sink, tts = CollectingSink(), FakeTTS(seconds_per_char=0.001)
    written = "आपका बैलेंस ₹500 है। धन्यवाद।"
    spoken = {"आपका बैलेंस ₹500 है।": "आपका बैलेंस पाँच सौ रुपये है।"}
    reply = Reply(
        static_text(written),
        sink=sink,
        tts=tts,
        clock=MonotonicClock(),
        speech_text=lambda t: spoken.get(t, t),
    )
    await reply.generate()
    await reply.wait_played()
    assert tts.spoken == ["आपका बैलेंस पाँच सौ रुपये है।", "धन्यवाद।"]
    assert reply.full_text == written and reply.heard_text() == written
    await sink.aclose()
