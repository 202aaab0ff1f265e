"""One agent reply: text stream → sentences → clean text → TTS → paced sink, pipelined.

Two tasks joined by a queue: the producer reads the LLM and cuts sentences, the synthesizer turns
each sentence into audio while the LLM is still writing the next. Every sentence remembers its
audio and the span of sink time it occupies, which makes barge-in exact: `pause()` drops what the
caller has not heard, `heard_text()` says what they did hear, and `resume()` replays from the start
of the sentence that was cut (a false alarm: a cough, an "mm-hm").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from voxline.audio.clock import Clock
from voxline.audio.levels import trim_leading_silence
from voxline.audio.pcm import AudioChunk
from voxline.conversation.chunker import SentenceChunker
from voxline.conversation.sanitize import ReplyPolicy, clean_sentence, is_question
from voxline.engines.base import TTS, LLMDelta, ToolCall
from voxline.engines.line_audio import LineAudio, replay
from voxline.transports.base import PacedSink, SinkMark

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ReplyMetrics:
    started_at: float
    llm_first_token_ms: float | None = None
    llm_first_sentence_ms: float | None = None
    tts_first_audio_ms: float | None = None
    first_audio_out_at: float | None = None
    """Clock time the reply's first audio left the transport (see `Reply.first_audio_out_at`)."""


@dataclass(frozen=True, slots=True)
class ReplyAudioStarted:
    """The reply's first audio went to the sink."""

    reply: Reply


ReplyEvent = ReplyAudioStarted
"""What a reply tells its owner as it goes (one kind so far)."""


@dataclass(slots=True)
class _Sentence:
    text: str
    audio: list[AudioChunk] = field(default_factory=list)
    synthesized: bool = False
    start_s: float | None = None
    """Sink time (sink.queued_s) where this sentence's audio begins, once sent."""
    end_s: float | None = None

    def duration_s(self) -> float:
        if self.start_s is not None and self.end_s is not None:
            return self.end_s - self.start_s
        return sum(chunk.duration_s for chunk in self.audio)


async def static_text(text: str) -> AsyncIterator[LLMDelta]:
    """A fixed line (greeting, reprompt, goodbye) shaped like an LLM stream."""
    yield LLMDelta(text=text, finish_reason="stop")


def static_sentences(text: str) -> list[str]:
    """The sentences a Reply of `static_text(text)` (no policy) hands to its voice, before the
    `speech_text` rewrite: what `LineAudio` must hold for the reply to find them."""
    chunker = SentenceChunker()
    pieces = [*chunker.feed(text), chunker.finish()]
    return [sentence for piece in pieces if (sentence := clean_sentence(piece))]


def spoken_form(sentence: str, speech_text: Callable[[str], str] | None) -> str:
    """The text a Reply's voice reads for `sentence`: its `speech_text` rewrite, or the sentence as
    written when there is none, the rewrite comes out empty, or it fails."""
    if speech_text is None:
        return sentence
    try:
        return speech_text(sentence) or sentence
    except Exception:
        log.exception("text normalisation failed for %r; speaking it as written", sentence)
        return sentence


def static_speech(text: str, speech_text: Callable[[str], str] | None) -> list[str]:
    """What a Reply of `static_text(text)` (no policy) with `speech_text` hands its voice, sentence
    by sentence: the keys `LineAudio` must hold for that reply to find the line."""
    return [spoken_form(sentence, speech_text) for sentence in static_sentences(text)]


async def _aclose(iterator: object) -> None:
    close = getattr(iterator, "aclose", None)  # an async generator has it; an AsyncIterator need not
    if close is not None:
        with contextlib.suppress(Exception):
            await close()


class Reply:
    def __init__(
        self,
        deltas: AsyncIterator[LLMDelta],
        *,
        sink: PacedSink,
        tts: TTS,
        clock: Clock,
        policy: ReplyPolicy | None = None,
        first_clause_words: int = 0,
        fallback_tts: TTS | None = None,
        voice: str | None = None,
        on_event: Callable[[ReplyEvent], None] | None = None,
        speech_text: Callable[[str], str] | None = None,
        held: bool = False,
        line_audio: LineAudio | None = None,
    ) -> None:
        """`speech_text` turns a sentence into what the TTS reads ("₹500" → words); the sentence itself
        stays as written in `full_text` and `heard_text()`. A `held` reply generates its text and audio
        but sends nothing until `release()` (an answer prepared before the caller's turn is confirmed).
        With `line_audio`, a sentence whose audio is kept there (a fixed line rendered at start-up) is
        replayed instead of synthesised."""
        self._deltas = deltas
        self._sink = sink
        self._tts = tts
        self._fallback_tts = fallback_tts
        self._clock = clock
        self._policy = policy
        self._chunker = SentenceChunker(first_clause_words)
        self._voice = voice
        self._on_event = on_event
        self._speech_text = speech_text
        self._line_audio = line_audio
        self.metrics = ReplyMetrics(started_at=clock.now())
        self.route: str | None = None
        """The route whose line this reply is (set by the conversation), else None: the model's."""
        self.tool_calls: list[ToolCall] = []
        self.finish_reason: str | None = None
        self._sentences: list[_Sentence] = []
        self._cursor = (0, 0)  # next (sentence, chunk) to send
        self._paused = held
        self._cut: tuple[int, float] = (0, 0.0)
        self._resumed = asyncio.Event()
        if not held:
            self._resumed.set()
        self._generated = False
        self._lock = asyncio.Lock()
        self.sent_audio = False
        self._first_mark: SinkMark | None = None
        """Where the first audio went in the sink's output, when it started a run after silence."""

    # ------------------------------------------------------------ public

    @property
    def full_text(self) -> str:
        """Everything the agent meant to say (after cleaning and the reply policy)."""
        return " ".join(s.text for s in self._sentences)

    @property
    def policy(self) -> ReplyPolicy | None:
        return self._policy

    @property
    def paused(self) -> bool:
        return self._paused

    async def generate(self) -> None:
        """Run the LLM and TTS to completion; audio is queued on the sink as it is made."""
        queue: asyncio.Queue[_Sentence | None] = asyncio.Queue()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._produce(queue), name="reply-llm")
            tg.create_task(self._synthesize(queue), name="reply-tts")
        self._generated = True

    async def wait_played(self) -> None:
        """Return once the whole reply has been heard (waiting through pauses until resumed)."""
        while True:
            await self._resumed.wait()
            await self._sink.drain()
            if not self._paused:
                return

    def pause(self) -> bool:
        """Stop the audio now (barge-in). Returns True if the caller was hearing it."""
        if self._paused:
            return False
        audible = self.sent_audio and self._sink.is_playing
        self._paused = True
        self._resumed.clear()
        self._cut = self._cut_at(self._sink.played_s)
        self._sink.clear()
        self._cursor = (self._cut[0], 0)
        for sentence in self._sentences[self._cut[0] :]:
            sentence.start_s = sentence.end_s = None
        return audible

    async def resume(self) -> None:
        """A false alarm: play again from the start of the sentence that was cut."""
        if not self._paused:
            return
        self._paused = False
        await self._pump()
        self._resumed.set()

    async def release(self) -> None:
        """Let a held reply be heard: what is ready goes out now, the rest as it is made."""
        await self.resume()

    def cut_in_question(self, min_heard: float = 0.5) -> bool:
        """Paused in the middle of a question the caller had mostly heard: a "yes" or "okay" now
        answers it (it is not a backchannel, and replaying the question would be absurd)."""
        index, fraction = self._cut
        return (
            self._paused
            and index < len(self._sentences)
            and is_question(self._sentences[index].text)
            and fraction >= min_heard
        )

    def heard_text(self) -> str:
        """What the caller heard: whole sentences played, plus the played share of the cut one."""
        index, fraction = self._cut if self._paused else self._cut_at(self._sink.played_s)
        heard = [s.text for s in self._sentences[:index]]
        if index < len(self._sentences):
            words = self._sentences[index].text.split()
            heard += words[: math.floor(fraction * len(words) + 1e-9)]
        return " ".join(heard)

    @property
    def first_audio_out_at(self) -> float | None:
        """Clock time the reply's first audio left the transport (None if none has yet): after
        earlier audio still playing, when that was due to end; else when the sink reports the
        playback that our first audio began (`PacedSink.heard_from`)."""
        if self.metrics.first_audio_out_at is None and self._first_mark is not None:
            self.metrics.first_audio_out_at = self._sink.heard_from(self._first_mark)
        return self.metrics.first_audio_out_at

    # ------------------------------------------------------------ pipeline

    async def _produce(self, queue: asyncio.Queue[_Sentence | None]) -> None:
        try:
            async for delta in self._deltas:
                if self.metrics.llm_first_token_ms is None:
                    self.metrics.llm_first_token_ms = self._ms_since_start()
                if delta.tool_call is not None:
                    self.tool_calls.append(delta.tool_call)
                if delta.finish_reason is not None:
                    self.finish_reason = delta.finish_reason
                for piece in self._chunker.feed(delta.text) if delta.text else []:
                    self._add_sentence(piece, queue)
            self._add_sentence(self._chunker.finish(truncated=self.finish_reason == "length"), queue)
        except Exception:
            log.exception("reply text stream failed; speaking what we have")
        finally:
            await _aclose(self._deltas)
            queue.put_nowait(None)

    def _add_sentence(self, piece: str, queue: asyncio.Queue[_Sentence | None]) -> None:
        text = self._policy.accept(piece) if self._policy else clean_sentence(piece)
        if not text:
            return
        if self.metrics.llm_first_sentence_ms is None:
            self.metrics.llm_first_sentence_ms = self._ms_since_start()
        sentence = _Sentence(text)
        self._sentences.append(sentence)
        queue.put_nowait(sentence)

    async def _synthesize(self, queue: asyncio.Queue[_Sentence | None]) -> None:
        while (sentence := await queue.get()) is not None:
            handed_at = self._clock.now()
            try:
                await self._speak(self._tts, sentence, handed_at)
            except Exception:
                started = self._cursor[0] > self._sentences.index(sentence) or bool(self._cursor[1])
                if self._fallback_tts is None or started:
                    log.exception("TTS failed for %r; skipping it", sentence.text)
                else:
                    log.exception("TTS failed for %r; using the fallback voice", sentence.text)
                    sentence.audio.clear()
                    with contextlib.suppress(Exception):
                        await self._speak(self._fallback_tts, sentence, handed_at)
            sentence.synthesized = True
            await self._pump()

    async def _speak(self, tts: TTS, sentence: _Sentence, handed_at: float) -> None:
        text = self._for_tts(sentence.text)
        kept = self._line_audio.get(tts, text, self._voice) if self._line_audio is not None else None
        stream = replay(kept) if kept is not None else tts.stream(text, self._voice)
        try:
            async for chunk in stream:
                if sentence is self._sentences[0] and not sentence.audio:
                    chunk = trim_leading_silence(chunk)  # the caller is waiting for this one
                if self.metrics.tts_first_audio_ms is None:
                    self.metrics.tts_first_audio_ms = (self._clock.now() - handed_at) * 1000
                sentence.audio.append(chunk)
                await self._pump()
        finally:
            await _aclose(stream)

    async def _pump(self) -> None:
        """Send every piece of audio that is ready and not yet sent, in order (unless paused)."""
        async with self._lock:
            while not self._paused and self._cursor[0] < len(self._sentences):
                index, chunk_index = self._cursor
                sentence = self._sentences[index]
                if chunk_index == 0 and (sentence.audio or sentence.synthesized):
                    sentence.start_s = self._sink.queued_s
                for chunk in sentence.audio[chunk_index:]:
                    self._note_first_send()
                    await self._sink.send(chunk)
                self._cursor = (index, len(sentence.audio))
                if not sentence.synthesized:
                    return
                self._sink.flush()
                sentence.end_s = self._sink.queued_s
                self._cursor = (index + 1, 0)

    def _note_first_send(self) -> None:
        if self.sent_audio:
            return
        self.sent_audio = True
        if self._sink.is_playing:  # earlier audio still queued: ours starts after it
            backlog = self._sink.queued_s - self._sink.played_s
            self.metrics.first_audio_out_at = self._clock.now() + backlog
        else:
            self._first_mark = self._sink.mark()
        if self._on_event is not None:
            self._on_event(ReplyAudioStarted(self))

    def _cut_at(self, played_s: float) -> tuple[int, float]:
        """(index of the first sentence not fully played, share of it that was played)."""
        for i, sentence in enumerate(self._sentences):
            if sentence.start_s is None:
                return i, 0.0
            if sentence.end_s is not None and sentence.end_s <= played_s + 1e-6:
                continue
            duration = sentence.duration_s()
            share = (played_s - sentence.start_s) / duration if duration > 0 else 0.0
            return i, min(1.0, max(0.0, share))
        return len(self._sentences), 0.0

    def _for_tts(self, text: str) -> str:
        return spoken_form(text, self._speech_text)

    def _ms_since_start(self) -> float:
        return (self._clock.now() - self.metrics.started_at) * 1000
