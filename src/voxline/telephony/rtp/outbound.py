"""Outbound RTP: the stream state shared by audio and DTMF, and the paced audio sink.

Timestamps follow the clock, not the packet count: a pause of 1.3 s advances the timestamp by
10400 even though no packet was sent, so the peer's jitter buffer plays the next talkspurt at the
right moment. The first packet after a pause carries the marker bit (RFC 3551 §4.1).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random

from voxline.audio.clock import Clock
from voxline.audio.pcm import AudioChunk
from voxline.logs import call_id_var
from voxline.telephony.rtp.codecs import Codec
from voxline.telephony.rtp.packet import RtpPacket
from voxline.telephony.rtp.stats import RateLimitedLog, RtpStats
from voxline.telephony.rtp.telephone_event import TelephoneEvent
from voxline.transports.base import FRAME_S, PacedSink

__all__ = ["RtpSender", "RtpSink"]

log = logging.getLogger(__name__)

DTMF_UPDATE_S = 0.050
DTMF_VOLUME = 10
"""-10 dBm0, the level of a typical phone's keypad tones."""


class RtpSender:
    """SSRC, sequence numbers, clock-driven timestamps and the destination of one outbound stream."""

    def __init__(self, clock: Clock, stats: RtpStats, codec: Codec, call_id: str = "") -> None:
        self.clock = clock
        self.stats = stats
        self.codec = codec
        self.call_id = call_id
        # Random initial values, as RFC 3550 §5.1 asks, so streams of successive calls never collide.
        self.ssrc = random.getrandbits(32)
        self._seq = random.getrandbits(16)
        self._last_ts = random.getrandbits(32)
        self._last_t = clock.now()
        self.remote: tuple[str, int] | None = None
        self.on_hold = False
        self.confirmed = True
        """False until the signalling confirmed the session (a SIP UAS: the ACK): nothing goes out."""
        self.dtmf_active = False
        """While a telephone-event is being sent, audio packets are withheld (RFC 4733 §2.5.1.1)."""
        self.new_talkspurt = True
        self.transport: asyncio.DatagramTransport | None = None
        self._errors = RateLimitedLog(log)

    @property
    def frame_samples(self) -> int:
        """One frame in RTP clock ticks (G.722: 160, though the frame holds 320 samples)."""
        return round(self.codec.timestamp_rate * FRAME_S)

    def timestamp_at(self, t: float) -> int:
        """The RTP timestamp of clock time `t`: whole frames of real time since the last one asked."""
        steps = round((t - self._last_t) / FRAME_S)
        if steps > 0:
            self._last_t = t
            self._last_ts = (self._last_ts + steps * self.frame_samples) & 0xFFFFFFFF
        return self._last_ts

    def can_send(self) -> bool:
        return self.confirmed and not self.on_hold and self.remote is not None and self.transport is not None

    def send(self, payload_type: int, payload: bytes, *, marker: bool, timestamp: int) -> bool:
        """Send one packet now. Never raises: a failed send is counted as not sent and logged."""
        if not self.can_send():
            return False
        assert self.transport is not None and self.remote is not None
        packet = RtpPacket(payload_type, self._seq, timestamp, self.ssrc, payload, marker=marker)
        self._seq = (self._seq + 1) & 0xFFFF
        try:
            self.transport.sendto(packet.to_bytes(), self.remote)
        except (OSError, RuntimeError) as exc:  # closing transport, unreachable host
            self._errors.warning("send", "RTP send to %s failed: %s", self.remote, exc, extra=self._extra)
            return False
        self.stats.packets_out += 1
        return True

    async def send_event(self, payload_type: int, event: int, duration_ms: int) -> None:
        """One RFC 4733 event, paced on the clock: a start packet with the marker bit, an update every
        50 ms, then three end packets one frame apart, all carrying the event's start timestamp and the
        duration so far (the start packet covers its first frame)."""
        rate = self.codec.timestamp_rate
        total = max(1, round(duration_ms * rate / 1000))
        start = self.clock.now()
        timestamp = self.timestamp_at(start)
        self.dtmf_active = True
        try:
            first = TelephoneEvent(
                event, end=False, volume=DTMF_VOLUME, duration=min(self.frame_samples, total)
            )
            self.send(payload_type, first.to_bytes(), marker=True, timestamp=timestamp)
            update = 1
            while update * DTMF_UPDATE_S * rate < total:
                await self.clock.sleep_until(start + update * DTMF_UPDATE_S)
                elapsed = round(update * DTMF_UPDATE_S * rate)
                progress = TelephoneEvent(event, end=False, volume=DTMF_VOLUME, duration=elapsed)
                self.send(payload_type, progress.to_bytes(), marker=False, timestamp=timestamp)
                update += 1
            end = TelephoneEvent(event, end=True, volume=DTMF_VOLUME, duration=min(total, 0xFFFF))
            for repeat in range(3):
                await self.clock.sleep_until(start + total / rate + repeat * FRAME_S)
                self.send(payload_type, end.to_bytes(), marker=False, timestamp=timestamp)
        finally:
            self.dtmf_active = False
            self.new_talkspurt = True

    @property
    def _extra(self) -> dict[str, str]:
        return {"call_id": self.call_id or call_id_var.get()}


class RtpSink(PacedSink):
    """20 ms frames of the call's codec on the monotonic clock; silence is not sent at all."""

    def __init__(self, sender: RtpSender, clock: Clock, call_id: str = "") -> None:
        super().__init__(sender.codec.clock_rate, clock)
        self._sender = sender
        self._call_id = call_id

    def start(self) -> None:
        # The pacing task outlives whoever queued the first audio, so give it the call's id itself.
        if self._task is None:
            context = contextvars.copy_context()
            if self._call_id:
                context.run(call_id_var.set, self._call_id)
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._run(), name="rtp-sink", context=context)

    async def _emit(self, frame: AudioChunk) -> None:
        sender = self._sender
        if sender.dtmf_active or not sender.can_send():
            sender.new_talkspurt = True
            return
        lateness = self.clock.now() - self.tick_time
        timestamp = sender.timestamp_at(self.tick_time)
        payload = sender.codec.encode(frame)
        if sender.send(sender.codec.payload_type, payload, marker=sender.new_talkspurt, timestamp=timestamp):
            sender.stats.record_send(lateness)
        sender.new_talkspurt = False

    async def _idle(self) -> None:
        self._sender.new_talkspurt = True

    def _on_clear(self) -> None:
        self._sender.new_talkspurt = True
