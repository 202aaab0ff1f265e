"""What a conversation tells its observer (the web page, over the call's WebSocket): one typed
definition per event and one serialiser, shared by the real conversation, the server and the test
stand-ins, so a stand-in cannot drift from what the page really receives. Nothing builds these
objects as plain dicts: every conversation event goes out through `to_wire`.

Wire shapes (JSON objects, `type` first):
  {"type": "state", "state": "listening"}       (listening, user_speaking, thinking, speaking)
  {"type": "user_text", "text": ..., "language": "en"}
  {"type": "agent_said", "turn": 1, "text": ...}   (each line as the caller heard it; a barge-in cuts it)
  {"type": "agent_text", "text": ..., "interrupted": false}   (the whole turn, once it is over)
  {"type": "metrics", "turn": 0, "stt_ms": ..., "voice_to_voice_ms": ..., ...}   (flat, one per turn)
  {"type": "language", "language": "hi", "requested": true}
  {"type": "dtmf", "digit": "5"}
  {"type": "digits", "digits": "1234", "reason": "terminator"}
  {"type": "tool_call", "turn": 0, "name": "transfer_call", "arguments": {...}}
  {"type": "error", "message": ...}

The WebSocket transport adds its own frames around these (`ready`, `clear`, `hangup`, its protocol
errors): see the protocol in `voxline.transports.websocket`, which sits below the conversation
and so writes them itself.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

from voxline.conversation.metrics import TurnMetrics


@dataclass(frozen=True, slots=True)
class StateChanged:
    type: ClassVar[str] = "state"
    state: str


@dataclass(frozen=True, slots=True)
class UserText:
    type: ClassVar[str] = "user_text"
    text: str
    language: str


@dataclass(frozen=True, slots=True)
class AgentText:
    type: ClassVar[str] = "agent_text"
    text: str
    interrupted: bool


@dataclass(frozen=True, slots=True)
class TurnTimings:
    """A finished turn's latencies, sent flat (the metric names sit beside `turn`)."""

    type: ClassVar[str] = "metrics"
    turn: int
    metrics: TurnMetrics


@dataclass(frozen=True, slots=True)
class LanguageSwitched:
    type: ClassVar[str] = "language"
    language: str
    requested: bool


@dataclass(frozen=True, slots=True)
class KeyPressed:
    type: ClassVar[str] = "dtmf"
    digit: str


@dataclass(frozen=True, slots=True)
class DigitsCollected:
    type: ClassVar[str] = "digits"
    digits: str
    reason: str


@dataclass(frozen=True, slots=True)
class ToolCalled:
    type: ClassVar[str] = "tool_call"
    turn: int
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AgentSaid:
    """One line the caller heard, as heard (a barge-in cuts it); evals and chat read these."""

    type: ClassVar[str] = "agent_said"
    turn: int
    text: str


@dataclass(frozen=True, slots=True)
class CallFailed:
    type: ClassVar[str] = "error"
    message: str


ConversationEvent = (
    StateChanged
    | UserText
    | AgentText
    | TurnTimings
    | LanguageSwitched
    | KeyPressed
    | DigitsCollected
    | ToolCalled
    | AgentSaid
    | CallFailed
)
EVENT_CLASSES: tuple[type[ConversationEvent], ...] = (
    StateChanged, UserText, AgentText, TurnTimings, LanguageSwitched, KeyPressed, DigitsCollected,
    ToolCalled, AgentSaid, CallFailed,
)  # fmt: skip


def to_wire(event: ConversationEvent) -> dict[str, Any]:
    """The JSON object the page receives for `event`."""
    wire: dict[str, Any] = {"type": event.type}
    for item in fields(event):
        value = getattr(event, item.name)
        if isinstance(value, TurnMetrics):
            wire.update(value.as_dict())
        else:
            wire[item.name] = value
    return wire
