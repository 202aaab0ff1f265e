"""Fake engines and a fake call for driving a Conversation without models or a network.

The fake caller has a "microphone" that sends 20 ms chunks at 8 kHz in real time, silent unless the
test makes it talk (a loud tone); FakeVAD calls a frame speech when it is loud.

Given a `clock` (a VirtualClock), the call, its microphone and the fake models take their time on
that clock instead, so a whole call runs in virtual time (see test_virtual_calls).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence

import numpy as np

from voxline.audio.clock import Clock
from voxline.audio.pcm import AudioChunk, Float32Array
from voxline.calls.runner import run_call
from voxline.conversation.conversation import Conversation
from voxline.conversation.metrics import CallReport
from voxline.engines.base import LLMDelta, Message, ToolCall, ToolSpec, Transcript
from voxline.transports.base import CallIO, Dtmf, PacedSink

# ---------------------------------------------------------------- engines


class FakeVADStream:
    sample_rate = 16000
    frame_samples = 512

    def __init__(self, level: float) -> None:
        self.level = level

    def probability(self, frame: Float32Array) -> float:
        return 1.0 if float(np.sqrt(np.mean(np.square(frame)))) > self.level else 0.0

    def reset(self) -> None:
        pass


class FakeVAD:
    name = "fake-vad"

    def __init__(self, level: float = 0.05) -> None:
        self.level = level

    def new_stream(self) -> FakeVADStream:
        return FakeVADStream(self.level)


class FakeSTT:
    name = "fake-stt"
    multilingual = False

    def __init__(self, texts: Sequence[str] = (), clock: Clock | None = None) -> None:
        self.texts = list(texts)
        self.clock = clock
        self.transcribed_s: list[float] = []
        """Duration of each utterance it was asked to transcribe."""

    async def transcribe(self, audio: AudioChunk, language: str | None = None) -> Transcript:
        self.transcribed_s.append(audio.duration_s)
        await take_time(self.clock, 0.01)
        return Transcript(self.texts.pop(0) if self.texts else "", language or "en")

    async def warm_up(self) -> None:
        pass


Script = str | list[LLMDelta]


async def take_time(clock: Clock | None, seconds: float) -> None:
    """Spend `seconds` on the given clock (on the event loop's, without one)."""
    if clock is None:
        await asyncio.sleep(seconds)
    else:
        await clock.sleep_until(clock.now() + seconds)


class FakeLLM:
    """Streams scripted replies word by word; records what it was asked and whether it was closed."""

    name = "fake-llm"

    def __init__(
        self, replies: Sequence[Script] = (), token_delay_s: float = 0.005, clock: Clock | None = None
    ) -> None:
        self.replies = list(replies)
        self.token_delay_s = token_delay_s
        self.clock = clock
        self.requests: list[list[Message]] = []
        self.closed = 0
        self.finished = 0
        self.busy = False
        """What the real engines report while generating for another call."""
        self.by_question: dict[str, Script] = {}
        """Replies chosen by the last message instead of in order (for answers prepared early)."""

    def stream(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec] = (), max_tokens: int = 64
    ) -> AsyncIterator[LLMDelta]:
        self.requests.append(list(messages))
        question = messages[-1].content if messages else ""
        if question in self.by_question:
            return self._run(self.by_question[question])
        script = self.replies.pop(0) if self.replies else "Okay."
        return self._run(script)

    async def _run(self, script: Script) -> AsyncIterator[LLMDelta]:
        if isinstance(script, str):
            words = script.split(" ")
            deltas = [LLMDelta(text=w + ("" if i == len(words) - 1 else " ")) for i, w in enumerate(words)]
            deltas.append(LLMDelta(finish_reason="stop"))
        else:
            deltas = script
        try:
            for delta in deltas:
                await take_time(self.clock, self.token_delay_s)
                yield delta
            self.finished += 1
        finally:
            self.closed += 1

    async def warm_up(self, system_prompt: str, tools: Sequence[ToolSpec] = ()) -> None:
        pass

    def count_tokens(self, text: str) -> int:
        return len(text.split())


def end_call_delta() -> LLMDelta:
    return LLMDelta(tool_call=ToolCall("end_call", {}, "call_1"), finish_reason="tool_calls")


class FakeTTS:
    """A 440 Hz tone, `seconds_per_char` long per character, in 100 ms chunks."""

    name = "fake-tts"

    def __init__(self, sample_rate: int = 22050, seconds_per_char: float = 0.02, fail_on: str = "") -> None:
        self.sample_rate = sample_rate
        self.seconds_per_char = seconds_per_char
        self.fail_on = fail_on
        self.spoken: list[str] = []

    def duration_s(self, text: str) -> float:
        return len(text) * self.seconds_per_char

    async def stream(self, text: str, voice: str | None = None) -> AsyncIterator[AudioChunk]:
        if self.fail_on and self.fail_on in text:
            raise RuntimeError("synthesis failed")
        self.spoken.append(text)
        n = round(self.duration_s(text) * self.sample_rate)
        t = np.arange(n) / self.sample_rate
        tone = AudioChunk.from_float32(0.3 * np.sin(2 * np.pi * 440 * t), self.sample_rate)
        step = self.sample_rate // 10
        for start in range(0, n, step):
            await asyncio.sleep(0)
            yield AudioChunk(tone.samples[start : start + step], self.sample_rate)

    async def warm_up(self) -> None:
        pass


# ---------------------------------------------------------------- the call


class CollectingSink(PacedSink):
    def __init__(self, output_rate: int = 8000, clock: Clock | None = None) -> None:
        super().__init__(output_rate, clock)
        self.frames: list[tuple[float, AudioChunk]] = []

    async def _emit(self, frame: AudioChunk) -> None:
        self.frames.append((self.clock.now(), frame))

    @property
    def emitted_s(self) -> float:
        return sum(f.duration_s for _, f in self.frames)


class FakeCallIO(CallIO):
    """8 kHz caller with a real-time microphone task; `talk()` makes it speak for a while."""

    def __init__(self, call_id: str = "test-call", clock: Clock | None = None) -> None:
        super().__init__(call_id, 8000, CollectingSink(8000, clock))
        self.clock = clock
        self.sink: CollectingSink
        self._inbound: asyncio.Queue[AudioChunk | Dtmf | None] = asyncio.Queue()
        self._talking_until = 0.0
        self._mic: asyncio.Task[None] | None = None
        self.hung_up: str | None = None
        self.hangups: list[str] = []
        self.emitted_at_hangup_s: float | None = None
        """How much of the agent's audio had been played when the call was hung up."""
        self.transferred_to: list[str] = []
        self.can_transfer = False
        self.sent_dtmf: list[str] = []
        self.can_send_dtmf = True
        self.talk_starts: list[float] = []

    def start_mic(self) -> None:
        self._mic = asyncio.get_running_loop().create_task(self._run_mic())

    async def _run_mic(self) -> None:
        rng = np.random.default_rng(0)
        next_t = self._now()
        while self.hung_up is None:
            loud = self._now() < self._talking_until
            noise = rng.normal(0, 0.3 if loud else 0.001, 160)
            self._inbound.put_nowait(AudioChunk.from_float32(noise, 8000))
            next_t += 0.02
            if self.clock is not None:
                await self.clock.sleep_until(next_t)
            else:
                await asyncio.sleep(max(0.0, next_t - self._now()))

    def _now(self) -> float:
        return self.clock.now() if self.clock is not None else asyncio.get_running_loop().time()

    def talk(self, seconds: float) -> None:
        self.talk_starts.append(self.sink.clock.now())
        self._talking_until = self._now() + seconds

    def press(self, digit: str) -> None:
        self._inbound.put_nowait(Dtmf(digit))

    async def caller_hangs_up(self) -> None:
        self.hung_up = "caller"
        self.hangup_reason = self.hangup_reason or "caller_hangup"
        self._inbound.put_nowait(None)

    async def receive(self) -> AudioChunk | Dtmf | None:
        return await self._inbound.get()

    async def hangup(self, reason: str = "normal") -> None:
        self.hangups.append(reason)
        if self.hangup_reason is None:
            self.hangup_reason = reason
            self.emitted_at_hangup_s = self.sink.emitted_s
        self.hung_up = reason
        self._inbound.put_nowait(None)

    async def transfer(self, target: str) -> bool:
        self.transferred_to.append(target)
        return self.can_transfer

    async def send_dtmf(self, digits: str, duration_ms: int = 100) -> bool:
        self.sent_dtmf.append(digits)
        return self.can_send_dtmf

    async def aclose(self) -> None:
        self.hung_up = self.hung_up or "closed"
        if self._mic is not None:
            self._mic.cancel()
            await asyncio.wait([self._mic])
        await super().aclose()


async def wait_until(
    predicate: Callable[[], bool], within_s: float = 5.0, clock: Clock | None = None
) -> None:
    """Check `predicate()` every 10 ms until it is true (fails the test after `within_s`). With a
    `clock` (a VirtualClock) the 10 ms and `within_s` are that clock's: the call runs in virtual time
    between the checks, and no wall clock is involved."""
    if clock is None:
        async with asyncio.timeout(within_s):
            while not predicate():  # noqa: ASYNC110 - the state belongs to other tasks; polling is simplest
                await asyncio.sleep(0.01)
        return
    deadline = clock.now() + within_s
    while not predicate():
        if clock.now() >= deadline:
            raise TimeoutError(f"not true within {within_s} s of the call's clock")
        await clock.sleep_until(clock.now() + 0.01)


async def run_to_the_end(call: CallIO, conversation: Conversation) -> CallReport:
    """Run `conversation` as every transport does: through `run_call`, which hangs up with the
    reason the conversation reports (unless the caller left) and closes the call."""
    report = await run_call(call, lambda _call: conversation.run())
    assert report is not None
    return report
