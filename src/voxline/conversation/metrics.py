"""Per-turn latency metrics and the call report, in the shape `report.json` promises other tools.

All times are clock seconds (see audio.clock); the *_ms fields are derived, None where a stage did
not happen in that turn (e.g. barge_in_stop_ms when the caller did not interrupt).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


@dataclass(slots=True)
class TurnMetrics:
    endpointing_ms: float | None = None
    """End of caller speech → the listener decided the turn was over (the silence wait)."""
    stt_ms: float | None = None
    llm_first_token_ms: float | None = None
    """Request sent → first token (measured from when the LLM was asked)."""
    llm_first_sentence_ms: float | None = None
    tts_first_audio_ms: float | None = None
    """First sentence handed to TTS → its first audio."""
    voice_to_voice_ms: float | None = None
    """End of caller speech → first agent audio leaving the transport."""
    barge_in_stop_ms: float | None = None
    """Caller speech onset during agent speech → agent audio stopped."""
    answer_head_start_ms: float | None = None
    """How long the answer had been in the making (LLM and TTS, begun on the caller's pause) when the
    turn was confirmed; None when it began only then. The LLM and TTS stages count from their own
    start, so on such a turn they overlap endpointing instead of following it."""

    def as_dict(self) -> dict[str, float | None]:
        return {k: (None if v is None else round(v, 1)) for k, v in asdict(self).items()}


@dataclass(slots=True)
class TurnRecord:
    index: int
    user_text: str
    agent_text: str
    """What the caller actually heard (trimmed at a barge-in)."""
    language: str
    """The language the agent answered this turn in."""
    interrupted: bool = False
    started_at: float = 0.0
    """Wall-clock (epoch) time of the caller's speech start, or of the agent's turn for the greeting."""
    user_speech_end_at: float | None = None
    agent_audio_start_at: float | None = None
    agent_full_text: str = ""
    """What the agent meant to say, before any barge-in cut it."""
    tool_calls: list[str] = field(default_factory=list)
    dtmf: str = ""
    """Keys the caller pressed that this turn answers (a menu choice, a key run, collected digits)."""
    detected_language: str | None = None
    """What the caller's speech was identified as (auto language mode), with its probability."""
    language_probability: float | None = None
    language_switched: bool = False
    """The call switched to `language` with this turn."""
    wrong_script_text: str = ""
    """What the model wrote in the wrong language or script and the caller did not hear."""
    route: str = ""
    """The route whose approved line answered the turn (no model asked), else ""."""
    guarded: list[str] = field(default_factory=list)
    """Sentences the reply guard kept from the caller, as 'refusal: …' or 'leak: …' (the handover
    line was said instead)."""
    metrics: TurnMetrics = field(default_factory=TurnMetrics)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["metrics"] = self.metrics.as_dict()
        return d


@dataclass(slots=True)
class CallReport:
    call_id: str
    agent: str
    transport: str
    started_at: float
    ended_at: float | None = None
    end_reason: str | None = None
    transferred_to: str | None = None
    turns: list[TurnRecord] = field(default_factory=list)
    metadata: dict[str, Any] | None = None
    """What the way in knew of the call (`CallMetadata.as_dict`): caller and dialled number, SIP
    `X-` headers, ARI variables, WebSocket start fields, the agent it was dispatched to."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "agent": self.agent,
            "transport": self.transport,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "end_reason": self.end_reason,
            "transferred_to": self.transferred_to,
            "metadata": self.metadata,
            "turns": [t.as_dict() for t in self.turns],
        }


class CallRecorder(Protocol):
    """Where a call's record goes as it happens (SQLite in production), so a crash loses nothing."""

    def call_started(self, report: CallReport) -> None: ...

    def turn_finished(self, call_id: str, turn: TurnRecord) -> None: ...

    def call_ended(self, report: CallReport) -> None: ...


class NullRecorder:
    def call_started(self, report: CallReport) -> None:
        pass

    def turn_finished(self, call_id: str, turn: TurnRecord) -> None:
        pass

    def call_ended(self, report: CallReport) -> None:
        pass
