"""RFC 4733 telephone-events: the 4-byte payload, and a receiver that yields one Dtmf per key press.

A sender repeats an event's packets (start, updates, three end packets) all with the event's start
timestamp, and peers retransmit; so an event is identified by (SSRC, timestamp), never by digit.
A key press is reported when its end arrives (the duration is then known), or, if every end packet
was lost, once the event has been silent for `stale_s`.
"""

from __future__ import annotations

import collections
import struct
from dataclasses import dataclass

from voxline.telephony.rtp.packet import RtpPacket, RtpParseError, ts_delta
from voxline.transports.base import Dtmf

__all__ = ["DIGIT_EVENTS", "EVENT_DIGITS", "DtmfReceiver", "TelephoneEvent", "parse_telephone_event"]

EVENT_DIGITS = "0123456789*#ABCD"
"""Event codes 0-15 are the DTMF keys in this order (RFC 4733 §3.2)."""
DIGIT_EVENTS = {digit: code for code, digit in enumerate(EVENT_DIGITS)}
_EVENT = struct.Struct("!BBH")


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    event: int
    end: bool
    volume: int
    """Power level in -dBm0, 0-63."""
    duration: int
    """Timestamp units since the event's start timestamp."""

    def to_bytes(self) -> bytes:
        return _EVENT.pack(self.event, (0x80 if self.end else 0) | (self.volume & 0x3F), self.duration)


def parse_telephone_event(payload: bytes) -> TelephoneEvent:
    """The first event block of a telephone-event payload (extra redundant blocks are ignored)."""
    if len(payload) < _EVENT.size:
        raise RtpParseError(f"telephone-event payload needs 4 bytes, got {len(payload)}")
    event, flags, duration = _EVENT.unpack_from(payload)
    return TelephoneEvent(event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration)


@dataclass(slots=True)
class _Pending:
    digit: str
    duration: int
    last_seen: float


class DtmfReceiver:
    """Turns the telephone-event packets of a stream into exactly one Dtmf per event."""

    REMEMBERED = 64
    """Finished events remembered, so late retransmits of their end packets stay silent."""

    def __init__(self, clock_rate: int = 8000, stale_s: float = 0.5) -> None:
        self.clock_rate = clock_rate
        self.stale_s = stale_s
        self._pending: dict[tuple[int, int], _Pending] = {}
        self._done: collections.deque[tuple[int, int]] = collections.deque(maxlen=self.REMEMBERED)
        self._done_set: set[tuple[int, int]] = set()

    def feed(self, packet: RtpPacket, now: float) -> list[Dtmf]:
        """Digits finished by this packet (or by its arrival making an older one obsolete).

        Raises RtpParseError for a malformed payload. Non-DTMF events (flash, tones) are ignored.
        """
        event = parse_telephone_event(packet.payload)
        if event.event >= len(EVENT_DIGITS):
            return []
        key = (packet.ssrc, packet.timestamp)
        if key in self._done_set:
            return []
        finished = self._finish_older_than(key)
        pending = self._pending.get(key)
        if pending is None:
            pending = _Pending(EVENT_DIGITS[event.event], event.duration, now)
            self._pending[key] = pending
        pending.duration = max(pending.duration, event.duration)
        pending.last_seen = now
        if event.end:
            finished.append(self._finish(key))
        return finished

    def expire(self, now: float) -> list[Dtmf]:
        """Report events whose end packets never came."""
        stale = [key for key, p in self._pending.items() if now - p.last_seen >= self.stale_s]
        return [self._finish(key) for key in stale]

    def next_deadline(self) -> float | None:
        if not self._pending:
            return None
        return min(p.last_seen for p in self._pending.values()) + self.stale_s

    def reset(self) -> None:
        self._pending.clear()

    def _finish_older_than(self, key: tuple[int, int]) -> list[Dtmf]:
        # A new event from the same source means any older one has ended, even if its end was lost.
        older = [k for k in self._pending if k[0] == key[0] and ts_delta(k[1], key[1]) < 0]
        return [self._finish(k) for k in older]

    def _finish(self, key: tuple[int, int]) -> Dtmf:
        pending = self._pending.pop(key)
        if len(self._done) == self._done.maxlen:
            self._done_set.discard(self._done[0])
        self._done.append(key)
        self._done_set.add(key)
        return Dtmf(pending.digit, round(1000 * pending.duration / self.clock_rate))
