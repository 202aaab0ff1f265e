"""voxline's `/ws/call` caller protocol (see voxline.transports.websocket) for a peer bot's side.

This module runs inside a peer's own virtual environment, where voxline is not installed: it uses
the standard library only. A peer bot that speaks this protocol can be driven by the bench's
WebSocket caller exactly as `voxline serve` is, so both are timed by the same code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MIN_RATE = 8000
MAX_RATE = 48000
MAX_CALL_ID = 64
CLOSE_NORMAL = 1000
CLOSE_UNSUPPORTED = 1003
DTMF_DIGITS = frozenset("0123456789*#ABCD")


@dataclass(frozen=True)
class Start:
    sample_rate: int
    call_id: str | None


@dataclass(frozen=True)
class Audio:
    pcm: bytes
    """Signed 16-bit little-endian mono samples at the call's rate."""


@dataclass(frozen=True)
class Hangup:
    pass


@dataclass(frozen=True)
class Digit:
    digit: str


@dataclass(frozen=True)
class Refused:
    """A frame the protocol does not allow: tell the caller (an `error` event) and go on."""

    reason: str


Inbound = Audio | Hangup | Digit | Refused


def parse_start(text: str | bytes) -> Start:
    """The caller's first frame; raises ValueError with the reason the call is refused."""
    if not isinstance(text, str):
        raise ValueError("the first frame must be a JSON text start message, not binary")
    try:
        msg = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the first frame must be a JSON start message: {exc.msg}") from exc
    if not isinstance(msg, dict) or msg.get("type") != "start":
        raise ValueError('the first frame must be {"type": "start", "sample_rate": ..., "format": "s16le"}')
    rate = msg.get("sample_rate")
    if not isinstance(rate, int) or isinstance(rate, bool) or not MIN_RATE <= rate <= MAX_RATE:
        raise ValueError(f"sample_rate must be an integer from {MIN_RATE} to {MAX_RATE}, got {rate!r}")
    if msg.get("format", "s16le") != "s16le":
        raise ValueError(f'format must be "s16le", got {msg.get("format")!r}')
    call_id = msg.get("call_id")
    if call_id is not None and (not isinstance(call_id, str) or not 0 < len(call_id) <= MAX_CALL_ID):
        raise ValueError(f"call_id must be a string of 1 to {MAX_CALL_ID} characters")
    return Start(rate, call_id)


def parse_inbound(data: str | bytes) -> Inbound | None:
    """A frame after the start one; None for an empty audio frame (nothing to do)."""
    if isinstance(data, bytes):
        if len(data) % 2:
            return Refused(f"audio frames must hold whole s16le samples, got {len(data)} bytes")
        return Audio(data) if data else None
    try:
        msg = json.loads(data)
    except json.JSONDecodeError:
        return Refused("text frames must be JSON")
    kind = msg.get("type") if isinstance(msg, dict) else None
    if kind == "hangup":
        return Hangup()
    if kind == "dtmf":
        digit = str(msg.get("digit", "")).upper()
        if len(digit) == 1 and digit in DTMF_DIGITS:
            return Digit(digit)
        return Refused(f"bad DTMF digit {msg.get('digit')!r}")
    return Refused(f"unknown message type {kind!r}")


def event(kind: str, **fields: Any) -> str:
    """A server → caller JSON event (`ready`, `user_text`, `agent_text`, `clear`, `hangup`, `error`)."""
    return json.dumps({"type": kind, **fields}, ensure_ascii=False)
