"""The engine interfaces. The conversation core depends only on these, never on a concrete model.

Blocking model work must never run on the event loop: implementations run it in a worker thread
(every runtime used here releases the GIL while it computes) and expose async methods.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from voxline.audio.pcm import AudioChunk, Float32Array
from voxline.engines.line_audio import LineAudio


class EngineError(RuntimeError):
    """A model engine failed; the message says what to do about it."""


class ModelNotInstalledError(EngineError):
    """A model's weights are not available; the message says how to install them."""


# ---------------------------------------------------------------- VAD


@runtime_checkable
class VADStream(Protocol):
    """Per-call voice activity state. `probability` is cheap (well under a millisecond per frame)."""

    sample_rate: int
    frame_samples: int

    def probability(self, frame: Float32Array) -> float:
        """Speech probability of exactly `frame_samples` float32 samples at `sample_rate`."""
        ...

    def reset(self) -> None: ...


class VAD(Protocol):
    name: str

    def new_stream(self) -> VADStream: ...


# ---------------------------------------------------------------- STT


@dataclass(frozen=True, slots=True)
class Transcript:
    text: str
    language: str
    language_probability: float = 1.0
    compute_ms: float = 0.0


class STT(Protocol):
    name: str
    multilingual: bool

    async def transcribe(self, audio: AudioChunk, language: str | None = None) -> Transcript:
        """Transcribe one utterance. `language=None` detects it (only multilingual models)."""
        ...

    async def warm_up(self) -> None: ...


# ---------------------------------------------------------------- language identification


@dataclass(frozen=True, slots=True)
class LanguageGuess:
    """Which language an utterance is in (ISO 639-1 codes: "en", "hi", "mr", ...)."""

    language: str
    probability: float
    probabilities: dict[str, float] = field(default_factory=dict)
    """Every candidate's probability, when the identifier knows them."""
    compute_ms: float = 0.0


@runtime_checkable
class LanguageSTT(STT, Protocol):
    """An STT that also says which language it heard, from the same pass (whisper's one encoder
    pass; a server that reports the language it detected). A call that must identify each turn's
    language uses this instead of pairing the STT with a separate `LanguageIdentifier`. The
    capability is the type: a class offers it by defining the method (set it to None to opt out)."""

    async def transcribe_with_language(
        self, audio: AudioChunk, candidates: Sequence[str] | None, forced: str | None = None
    ) -> tuple[Transcript, LanguageGuess]:
        """Identify the language among `candidates` and transcribe; the decode runs in `forced`
        when given, else in the identified language."""
        ...


class LanguageIdentifier(Protocol):
    """Spoken language identification. Whisper's detector today; a dedicated LID model later."""

    name: str

    async def identify(self, audio: AudioChunk, candidates: Sequence[str] | None = None) -> LanguageGuess:
        """The most likely language of `audio`, restricted to `candidates` when given."""
        ...


# ---------------------------------------------------------------- LLM


Role = Literal["system", "user", "assistant", "tool"]


@dataclass(slots=True)
class ToolCall:
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    id: str = ""


@dataclass(slots=True)
class Message:
    role: Role
    content: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str = ""
    name: str = ""
    interrupted: bool = False
    """An assistant turn the caller cut off: `content` holds only what they heard."""


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A function the model may call, in OpenAI's JSON-schema shape."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass(frozen=True, slots=True)
class LLMDelta:
    """One streamed piece of a reply: text, a complete tool call, or the end with its reason."""

    text: str = ""
    tool_call: ToolCall | None = None
    finish_reason: Literal["stop", "length", "tool_calls"] | None = None


class LLM(Protocol):
    name: str

    def stream(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec] = (), max_tokens: int = 64
    ) -> AsyncIterator[LLMDelta]:
        """Stream a reply. Closing the iterator early (barge-in) must stop generation promptly."""
        ...

    async def warm_up(self, system_prompt: str, tools: Sequence[ToolSpec] = ()) -> None:
        """Evaluate the system prompt (with the tools the turns will offer) so the first turn only
        pays for its own tokens."""
        ...

    def count_tokens(self, text: str) -> int: ...

    @property
    def busy(self) -> bool:
        """Generating for someone right now, so new work would wait: speculative work (an answer
        prepared on a pause) is then left to the calls that need the model now."""
        ...


# ---------------------------------------------------------------- TTS


class TTS(Protocol):
    name: str
    sample_rate: int

    def stream(self, text: str, voice: str | None = None) -> AsyncIterator[AudioChunk]:
        """Synthesize one sentence, yielding audio as soon as it exists. Closing early cancels."""
        ...

    async def warm_up(self) -> None: ...


# ---------------------------------------------------------------- bundle


@dataclass(slots=True)
class Engines:
    """The engines one agent uses. Built once per process and shared by its calls
    (VAD state is per call via `vad.new_stream()`; the LLM serialises its own use)."""

    vad: VAD
    stt: STT
    llm: LLM
    tts: TTS
    fallback_tts: TTS | None = None
    voices: dict[str, TTS] = field(default_factory=dict)
    """Language → the voice for it, for agents that speak several; `tts` speaks the rest."""
    lid: LanguageIdentifier | None = None
    """Spoken language identification, for agents in `auto` language mode."""
    line_audio: LineAudio = field(default_factory=LineAudio)
    """Fixed lines (the greeting) already spoken by their voice, rendered at warm-up for every call."""

    @classmethod
    def none(cls) -> Engines:
        """A media-only agent's engines (`mode: echo`): none, since its echo asks for no model."""
        return cls(vad=None, stt=None, llm=None, tts=None)  # type: ignore[arg-type]

    def tts_for(self, language: str) -> TTS:
        return self.voices.get(language, self.tts)
