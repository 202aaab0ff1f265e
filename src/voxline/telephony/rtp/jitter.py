"""Inbound jitter buffer: puts packets back in order, waits a bounded time for missing ones.

It is adaptive rather than fixed-delay, because latency is the product: a packet that arrives in
order is released at once; only a gap in the sequence makes later packets wait, for at most
`max_wait_s` after the first of them arrived, before the gap is concealed. When the peer sends
nothing at all (silence suppression, hold, a dead network) it releases silence in real time once
`max_wait_s` has passed, so downstream voice detection still sees time go by.

It works on extended (un-wrapped) sequence numbers, so the 65535 → 0 wrap is ordinary arithmetic,
and follows RFC 3550 Appendix A.1 for jumps: a big jump is believed only when the next packet
continues from it. A new SSRC is a new stream, believed once two of its packets arrive in order (or
at once if the old stream has gone quiet), so one stray packet cannot reset a live call.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

from voxline.telephony.rtp.packet import RtpPacket, seq_delta, ts_delta
from voxline.telephony.rtp.stats import RtpStats

__all__ = ["JitterBuffer", "Playout"]

MAX_DROPOUT = 3000
MAX_MISORDER = 100


@dataclass(frozen=True, slots=True)
class Playout:
    """A stretch of inbound audio: a packet's payload, or `samples` of nothing (payload None)."""

    payload: bytes | None
    samples: int
    lost: bool = False
    """True when packets were lost (conceal by repetition); False when the peer sent nothing."""


@dataclass(frozen=True, slots=True)
class _Held:
    packet: RtpPacket
    samples: int
    arrival: float


class JitterBuffer:
    def __init__(
        self,
        stats: RtpStats,
        *,
        max_wait_s: float = 0.06,
        clock_rate: int = 8000,
        frame_samples: int = 160,
        capacity: int = 64,
        max_conceal_s: float = 1.0,
    ) -> None:
        self.stats = stats
        self.max_wait_s = max_wait_s
        self.clock_rate = clock_rate
        self.frame_samples = frame_samples
        self.capacity = capacity
        self.max_conceal_samples = round(max_conceal_s * clock_rate)
        self.reset()

    def reset(self) -> None:
        """Forget the stream entirely (the next packet starts a new one)."""
        self._ssrc: int | None = None
        self._next_ext = 0
        self._next_ts = 0
        self._held: dict[int, _Held] = {}
        self._recent: collections.deque[int] = collections.deque(maxlen=512)
        self._recent_set: set[int] = set()
        self._audio_end = 0.0
        """Clock time at which the audio released so far runs out, if played in real time."""
        self._filled = 0
        """Silence released since the last packet, so a gap that later turns out lost is not doubled."""
        self._last_arrival = 0.0
        self._last_samples = self.frame_samples
        self._bad_seq: int | None = None
        self._candidate: _Held | None = None
        self._out: list[Playout] = []

    @property
    def ssrc(self) -> int | None:
        return self._ssrc

    @property
    def held(self) -> int:
        return len(self._held)

    # ------------------------------------------------------------------ input

    def push(self, packet: RtpPacket, samples: int, now: float) -> None:
        """Accept one audio packet (of `samples` timestamp units) that arrived at `now`."""
        item = _Held(packet, samples, now)
        if self._ssrc is None:
            self._start(item)
        elif packet.ssrc != self._ssrc:
            candidate = self._candidate
            quiet = now - self._last_arrival >= self.max_wait_s
            follows = (
                candidate is not None
                and candidate.packet.ssrc == packet.ssrc
                and seq_delta(packet.sequence, candidate.packet.sequence) == 1
            )
            if not (quiet or follows):
                self._candidate = item
                return
            self._flush_held(now)
            self.stats.ssrc_changes += 1
            if follows and candidate is not None:
                self._start(candidate)
                self._store(candidate)
            else:
                self._start(item)
        self._candidate = None
        self._store(item)

    def _start(self, item: _Held) -> None:
        self._ssrc = item.packet.ssrc
        self._next_ext = item.packet.sequence
        self._next_ts = item.packet.timestamp
        self._recent.clear()
        self._recent_set.clear()
        self._bad_seq = None
        self._audio_end = max(self._audio_end, item.arrival)

    def _store(self, item: _Held) -> None:
        packet, now = item.packet, item.arrival
        self._last_arrival = now
        delta = seq_delta(packet.sequence, self._next_ext & 0xFFFF)
        if delta < -MAX_MISORDER or delta > MAX_DROPOUT:
            if self._bad_seq != packet.sequence:
                self._bad_seq = (packet.sequence + 1) & 0xFFFF
                self.stats.late += 1
                return
            # Two packets in a row continue the jump: the peer restarted its numbering.
            self._flush_held(now)
            self._start(item)
            delta = 0
        self._bad_seq = None
        ext = self._next_ext + delta
        if delta < 0:
            if ext in self._recent_set:
                self.stats.duplicates += 1
            else:
                self.stats.late += 1
            return
        if ext in self._held:
            self.stats.duplicates += 1
            return
        self._held[ext] = item
        self._release(now)

    # ------------------------------------------------------------------ output

    def pop(self, now: float) -> list[Playout]:
        """Everything ready to be played by `now`, in order."""
        self._release(now)
        self._fill_silence(now)
        out, self._out = self._out, []
        return out

    def next_deadline(self) -> float | None:
        """When `pop` will next have something to release even if no packet arrives."""
        if self._held:
            return min(h.arrival for h in self._held.values()) + self.max_wait_s
        if self._ssrc is None:
            return None
        return self._audio_end + self.max_wait_s

    def _release(self, now: float) -> None:
        while self._held:
            item = self._held.pop(self._next_ext, None)
            if item is not None:
                self._deliver(item, now)
                continue
            oldest = min(h.arrival for h in self._held.values())
            if len(self._held) <= self.capacity and now < oldest + self.max_wait_s:
                return
            self._conceal_gap(min(self._held), now)

    def _deliver(self, item: _Held, now: float) -> None:
        ext = self._next_ext
        self._out.append(Playout(item.packet.payload, item.samples))
        if len(self._recent) == self._recent.maxlen:
            self._recent_set.discard(self._recent[0])
        self._recent.append(ext)
        self._recent_set.add(ext)
        self._next_ext = ext + 1
        self._next_ts = (item.packet.timestamp + item.samples) & 0xFFFFFFFF
        if item.samples:
            self._last_samples = item.samples
        self._filled = 0
        self._audio_end = max(self._audio_end, now) + item.samples / self.clock_rate

    def _conceal_gap(self, first_held: int, now: float) -> None:
        missing = first_held - self._next_ext
        after = self._held[first_held].packet
        gap = ts_delta(after.timestamp, self._next_ts)
        if not 0 < gap <= missing * 8 * self._last_samples:  # a timestamp that makes no sense
            gap = missing * self._last_samples
        gap = min(gap - self._filled, self.max_conceal_samples)
        self.stats.lost += missing
        if gap > 0:
            self._out.append(Playout(None, gap, lost=True))
            self.stats.concealed_ms += 1000 * gap / self.clock_rate
            self._audio_end = max(self._audio_end, now) + gap / self.clock_rate
        self._filled = 0
        self._next_ext = first_held
        self._next_ts = after.timestamp

    def _fill_silence(self, now: float) -> None:
        if self._ssrc is None or self._held:
            return
        behind = now - self.max_wait_s - self._audio_end
        if behind > 0.5:  # a long stall: jump ahead rather than release seconds of silence at once
            self._audio_end = now - self.max_wait_s - self.frame_samples / self.clock_rate
        while now >= self._audio_end + self.max_wait_s:
            self._out.append(Playout(None, self.frame_samples))
            self._filled += self.frame_samples
            self._audio_end += self.frame_samples / self.clock_rate

    def _flush_held(self, now: float) -> None:
        """Release an ending stream's held packets in order, gaps closed up (its future is gone)."""
        for ext in sorted(self._held):
            self._next_ext = ext
            self._deliver(self._held.pop(ext), now)
