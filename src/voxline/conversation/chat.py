"""A call in text: the caller types, the agent answers through the very loop a phone call runs.

`TextSession` runs a real `Conversation` on a call with no audio: each caller line enters the call as
a transcribed turn (`Conversation.hear_text`), so the language policy, the model, the output filter,
tool rounds, `switch_language`, `collect_digits`, transfers and hang-ups all behave as on the phone.
The voice is mute, so a reply is its text. Used by `voxline chat` and by text-mode evals.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from voxline.agent.config import AgentConfig
from voxline.audio.pcm import AudioChunk, Float32Array
from voxline.conversation.conversation import Conversation
from voxline.conversation.language import DEVANAGARI_LANGUAGES
from voxline.conversation.metrics import CallReport
from voxline.engines.base import LLM, Engines, LanguageGuess, Transcript
from voxline.transports.base import CallIO, Dtmf, PacedSink

IDLE_POLL_S = 0.02
"""How often the session looks whether the agent has finished its turn."""


class _SilentSink(PacedSink):
    async def _emit(self, frame: AudioChunk) -> None:
        pass


class TextCall(CallIO):
    """A line with no audio: nothing comes in (turns are given as text), transfers and keys succeed
    and are remembered."""

    def __init__(self, call_id: str | None = None) -> None:
        super().__init__(call_id or uuid.uuid4().hex[:16], 16000, _SilentSink(16000))
        self.transferred_to: str | None = None
        self.sent_keys = ""
        self._closed = asyncio.Event()

    async def receive(self) -> AudioChunk | Dtmf | None:
        await self._closed.wait()
        return None  # the caller hung up

    async def hangup(self, reason: str = "normal") -> None:
        self.hangup_reason = reason

    async def transfer(self, target: str) -> bool:
        self.transferred_to = target
        return True

    async def send_dtmf(self, digits: str, duration_ms: int = 100) -> bool:
        self.sent_keys += digits
        return True

    def caller_hangs_up(self) -> None:
        self._closed.set()


class _NoVADStream:
    sample_rate = 16000
    frame_samples = 512

    def probability(self, frame: Float32Array) -> float:
        return 0.0

    def reset(self) -> None:
        pass


class _NoVAD:
    name = "none"

    def new_stream(self) -> _NoVADStream:
        return _NoVADStream()


class _NoSTT:
    name = "none"
    multilingual = True

    async def transcribe(self, audio: AudioChunk, language: str | None = None) -> Transcript:
        raise RuntimeError("a text call has no audio to transcribe")

    async def warm_up(self) -> None:
        pass


class _MuteTTS:
    name = "mute"
    sample_rate = 16000

    async def stream(self, text: str, voice: str | None = None) -> AsyncIterator[AudioChunk]:
        for _ in ():
            yield AudioChunk(np.zeros(0, np.int16), self.sample_rate)

    async def warm_up(self) -> None:
        pass


def language_of_script(text: str, allowed: tuple[str, ...], current: str) -> str:
    """A typed line's language by its script: Devanagari is the call's language if that is written in
    it, else the first allowed language that is; Latin is English when allowed. A stand-in for the
    language identifier a spoken turn goes through."""
    devanagari = sum(1 for c in text if "\u0900" <= c <= "\u097f")
    latin = sum(1 for c in text if c.isascii() and c.isalpha())
    if devanagari > latin:
        if current in DEVANAGARI_LANGUAGES:
            return current
        return next((a for a in allowed if a in DEVANAGARI_LANGUAGES), current)
    if latin and "en" in allowed:
        return "en"
    return current


def text_engines(llm: LLM) -> Engines:
    """The agent's language model with no ears and a mute voice."""
    return Engines(vad=_NoVAD(), stt=_NoSTT(), llm=llm, tts=_MuteTTS())


@dataclass(slots=True)
class TextReply:
    """What the agent did in answer to one caller line (or key press)."""

    text: str
    """Everything it said, in order (its answer, a tool's line, the language switch line)."""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    """{"name", "arguments"} of each tool the model called."""
    language: str = ""
    """The call's language after the turn."""
    ended: bool = False
    end_reason: str | None = None
    transferred_to: str | None = None
    first_token_ms: float | None = None
    first_sentence_ms: float | None = None
    """Model asked → first sentence ready to speak: the text-mode stand-in for response latency."""
    events: list[dict[str, Any]] = field(default_factory=list)


class TextSession:
    """One text call. `start()` returns the greeting; `say()` one caller line's answer; `close()` hangs
    up and returns the call report."""

    def __init__(self, agent: AgentConfig, llm: LLM, call_id: str | None = None) -> None:
        self.agent = agent
        self.call = TextCall(call_id)
        self.events: list[dict[str, Any]] = []
        self.conversation = Conversation(
            self.call, agent, text_engines(llm), transport="text", on_event=self.events.append
        )
        self._task: asyncio.Task[CallReport] | None = None

    @property
    def ended(self) -> bool:
        return self.conversation.report.end_reason is not None

    @property
    def language(self) -> str:
        return self.conversation.language.current

    async def start(self) -> TextReply:
        self._task = asyncio.create_task(self.conversation.run(), name="text-call")
        return await self._answer_since(0, started=True)

    async def say(self, text: str, language: str | None = None, probability: float = 1.0) -> TextReply:
        """The caller says `text`. `language` is what a language identifier would have heard (auto and
        on_request agents use it; default: judged from the script the text is written in)."""
        policy = self.conversation.language
        if language is None and policy.identifies:
            language = language_of_script(text, policy.allowed, policy.current)
        guess = LanguageGuess(language, probability) if language else None
        mark = len(self.events)
        self.conversation.hear_text(text, guess)
        return await self._answer_since(mark)

    async def press(self, keys: str) -> TextReply:
        """The caller presses keys, one after another."""
        mark = len(self.events)
        for key in keys:
            self.conversation.press_key(key)
        return await self._answer_since(mark)

    async def close(self) -> CallReport:
        if self._task is None:
            return self.conversation.report
        if not self._task.done():
            self.call.caller_hangs_up()
        try:
            report = await self._task
        finally:  # a text call has no line to hang up (the conversation only reports why it ended)
            with contextlib.suppress(Exception):
                await self.call.aclose()
        return report

    async def __aenter__(self) -> TextSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _answer_since(self, mark: int, *, started: bool = False) -> TextReply:
        await self._until_caller_turn(mark, started)
        events = self.events[mark:]
        said = [e["text"] for e in events if e.get("type") == "agent_said"]
        calls = [
            {"name": e["name"], "arguments": dict(e.get("arguments") or {})}
            for e in events
            if e.get("type") == "tool_call"
        ]
        metrics = [
            e for e in events if e.get("type") == "metrics" and e.get("llm_first_token_ms") is not None
        ]
        report = self.conversation.report
        return TextReply(
            text=" ".join(said),
            tool_calls=calls,
            language=self.language,
            ended=report.end_reason is not None,
            end_reason=report.end_reason,
            transferred_to=report.transferred_to,
            first_token_ms=metrics[0]["llm_first_token_ms"] if metrics else None,
            first_sentence_ms=metrics[0]["llm_first_sentence_ms"] if metrics else None,
            events=events,
        )

    async def _until_caller_turn(self, mark: int, started: bool) -> None:
        """Wait until the call took up what was given after `mark` and the caller has the floor again
        (seen twice in a row, so a collection that just finished has had time to hand back)."""
        task = self._task
        if task is None:
            raise RuntimeError("start() the session first")
        taken_up = started
        settled = 0
        while settled < 2:
            if task.done():
                task.result()  # re-raise what ended the call loop
                return
            await asyncio.sleep(IDLE_POLL_S)
            taken_up = taken_up or any(e.get("type") == "state" for e in self.events[mark:])
            settled = settled + 1 if taken_up and self.conversation.awaiting_caller else 0
