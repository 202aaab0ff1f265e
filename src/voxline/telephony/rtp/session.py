"""One call's RTP: a UDP socket, the inbound jitter buffer + DTMF receiver, and a paced outbound sink.

Inbound datagrams are vetted in the socket callback, cheaply and in this order: is it RTP version
2, is it from the peer, is it a negotiated payload type, is the peer within a sane packet rate.
Whatever fails is counted and dropped (with a rate-limited log line); decoding happens later, in
the consumer's `receive()`, so a flood costs the event loop as little as possible.

Strict symmetric RTP: outbound goes to the SDP address until the peer's packets arrive, then to
wherever they come from, and the session stays latched there: no stranger is heard or answered for
the rest of the call, however long the peer is silent or on hold. The address the signalling named
(SDP) is always heard and takes over at once. Any other source (a peer behind NAT) is learnt only
once the signalling confirmed the session (a SIP UAS: the ACK), only while nothing is latched, and
only after `LEARN_PACKETS` packets in sequence (Asterisk's `strictrtp` learning does the same).
Nothing is sent before that confirmation either.
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import logging
import random
import socket

import numpy as np

from voxline.audio.clock import Clock, MonotonicClock
from voxline.audio.dtmf_detect import DtmfDetector
from voxline.audio.pcm import AudioChunk
from voxline.telephony.rtp.codecs import PCMU, Codec
from voxline.telephony.rtp.jitter import JitterBuffer, Playout
from voxline.telephony.rtp.outbound import RtpSender, RtpSink
from voxline.telephony.rtp.packet import RtpParseError, is_rtcp, parse_rtp
from voxline.telephony.rtp.stats import RateLimitedLog, RtpStats
from voxline.telephony.rtp.telephone_event import DIGIT_EVENTS, DtmfReceiver
from voxline.transports.base import Dtmf, PacedSink

__all__ = ["RtpSession"]

log = logging.getLogger(__name__)

COMFORT_NOISE_PT = 13
LEARN_PACKETS = 4
"""Packets in sequence a source the SDP did not name must send before it is latched."""
FLOOD_RATE_PPS = 200.0
"""Packets per second one peer may send: 50 audio + 50 DTMF is the most a sane stream needs."""
FLOOD_BURST = 100.0
INTER_DIGIT_S = 0.080
MAX_DTMF_MS = 5000
READY_LIMIT = 1000
"""Items kept for a consumer that stopped reading (20 s of audio); older ones are dropped."""


class _TokenBucket:
    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate, self.burst = rate, burst
        self._tokens, self._at = burst, now

    def take(self, now: float) -> bool:
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, session: RtpSession) -> None:
        self._session = session

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        try:
            self._session._on_datagram(data, (str(addr[0]), int(addr[1])))
        except Exception:  # a bug must cost one packet, never the call's socket
            log.exception("RTP packet handling failed; packet dropped", extra=self._session._extra)

    def error_received(self, exc: Exception) -> None:  # ICMP port unreachable and the like
        log.debug("RTP socket error: %s", exc)


class RtpSession:
    """One call's RTP. Create with `await RtpSession.open(...)`."""

    def __init__(
        self,
        sock: socket.socket,
        *,
        codec: Codec,
        dtmf_payload_type: int | None,
        jitter_ms: int,
        call_id: str,
        clock: Clock,
    ) -> None:
        self._sock = sock
        address = sock.getsockname()
        self.local_host: str = str(address[0])
        self.local_port: int = int(address[1])
        self.call_id = call_id
        self.clock = clock
        codec = codec.for_stream()
        self.codec = codec
        self.dtmf_payload_type = dtmf_payload_type
        self.stats = RtpStats()
        self._sender = RtpSender(clock, self.stats, codec, call_id)
        self.sink: PacedSink = RtpSink(self._sender, clock, call_id)
        self._jitter = JitterBuffer(self.stats, max_wait_s=jitter_ms / 1000, clock_rate=codec.timestamp_rate)
        self._dtmf = DtmfReceiver(codec.timestamp_rate)
        self._ready: collections.deque[AudioChunk | Dtmf] = collections.deque(maxlen=READY_LIMIT)
        self._wakeup = asyncio.Event()
        self._bucket = _TokenBucket(FLOOD_RATE_PPS, FLOOD_BURST, clock.now())
        self._sdp_remote: tuple[str, int] | None = None
        self._latched: tuple[str, int] | None = None
        self._candidate: tuple[str, int] | None = None
        self._candidate_seq = 0
        self._candidate_count = 0
        self.learn_sources = True
        """False: only the signalled address is ever heard (ARI: Asterisk announces it)."""
        self.confirmed = True
        """The signalling confirmed the session: media may go out, and an unknown first source may
        latch. A SIP UAS clears it until the ACK (`await_confirmation`)."""
        self._last_decoded: AudioChunk | None = None
        self.inband_dtmf = False
        """Look for keypad tones in the audio (SIP, when the offer/answer agreed no telephone-event;
        never on ARI, whose keys come as events)."""
        self._inband: DtmfDetector | None = None
        self._input_ended = False
        self._closed = False
        self._dtmf_lock = asyncio.Lock()
        self._transport: asyncio.DatagramTransport | None = None
        self._drops = RateLimitedLog(log)

    @classmethod
    async def open(
        cls,
        host: str,
        port_min: int = 20000,
        port_max: int = 20999,
        *,
        codec: Codec = PCMU,
        dtmf_payload_type: int | None = 101,
        jitter_ms: int = 60,
        call_id: str = "",
        clock: Clock | None = None,
    ) -> RtpSession:
        """Bind an even port in [port_min, port_max] on `host` (port_min=0: any free port)."""
        sock = bind_rtp_socket(host, port_min, port_max)
        return await cls.on_socket(
            sock, codec=codec, dtmf_payload_type=dtmf_payload_type, jitter_ms=jitter_ms,
            call_id=call_id, clock=clock,
        )  # fmt: skip

    @classmethod
    async def on_socket(
        cls,
        sock: socket.socket,
        *,
        codec: Codec = PCMU,
        dtmf_payload_type: int | None = 101,
        jitter_ms: int = 60,
        call_id: str = "",
        clock: Clock | None = None,
    ) -> RtpSession:
        """A session on a UDP socket bound elsewhere (a job process gets the supervisor's socket,
        whose port its SDP answer named); the session owns the socket from now on."""
        sock.setblocking(False)
        session = cls(
            sock,
            codec=codec,
            dtmf_payload_type=dtmf_payload_type,
            jitter_ms=jitter_ms,
            call_id=call_id,
            clock=clock or MonotonicClock(),
        )
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(session), sock=sock)
        except BaseException:
            sock.close()
            raise
        session._transport = transport
        session._sender.transport = transport
        log.debug("RTP session on %s:%d", session.local_host, session.local_port, extra=session._extra)
        return session

    # ------------------------------------------------------------------ control

    @property
    def remote(self) -> tuple[str, int] | None:
        """Where outbound packets go now."""
        return self._sender.remote

    def set_remote(self, host: str, port: int) -> None:
        """The peer's address from SDP. Symmetric RTP then follows the actual source of its packets.

        `host` must be an IP literal: a name would be resolved by `sendto`, on the event loop."""
        try:
            host = str(ipaddress.ip_address(host))
        except ValueError:
            raise ValueError(f"RTP remote must be an IP address, not {host[:80]!r}") from None
        address = (host, port)
        if address == self._sdp_remote:
            return  # a re-INVITE that changed nothing must not undo what we learned
        self._sdp_remote = address
        self._latched = None
        self._sender.remote = address

    def await_confirmation(self) -> None:
        """Send nothing, and latch only on the SDP address, until `media_confirmed()`."""
        self.confirmed = False
        self._sender.confirmed = False

    def media_confirmed(self) -> None:
        self.confirmed = True
        self._sender.confirmed = True

    def set_codec(self, codec: Codec, dtmf_payload_type: int | None) -> None:
        """Use the codec the offer/answer agreed on: the sink follows its audio rate (G.722: 16 kHz)."""
        if codec.timestamp_rate != self.codec.timestamp_rate:
            raise ValueError(f"cannot switch the RTP clock from {self.codec.timestamp_rate} Hz mid-call")
        codec = codec.for_stream()
        self.codec = codec
        self._sender.codec = codec
        self.sink.set_output_rate(codec.clock_rate)
        self.dtmf_payload_type = dtmf_payload_type

    def set_hold(self, on_hold: bool) -> None:
        self._sender.on_hold = on_hold

    def end_input(self) -> None:
        """The call is over for the listener: `receive()` returns None from now on."""
        self._input_ended = True
        self._wakeup.set()

    def inject(self, item: Dtmf) -> None:
        """Deliver a DTMF that came another way (SIP INFO) in order with the media."""
        self._ready.append(item)
        self._wakeup.set()

    # ------------------------------------------------------------------ inbound

    def _on_datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        if self._input_ended:
            return
        if len(data) < 12 or data[0] >> 6 != 2:
            self.stats.non_rtp_dropped += 1
            self._drops.warning("non-rtp", "dropped non-RTP datagram from %s", addr, extra=self._extra)
            return
        if is_rtcp(data):
            return  # RTCP multiplexed on the RTP port: reports we do not need
        try:
            packet = parse_rtp(data)
        except RtpParseError as exc:
            self.stats.non_rtp_dropped += 1
            self._drops.warning(
                "malformed", "dropped malformed RTP from %s: %s", addr, exc, extra=self._extra
            )
            return
        pt = packet.payload_type
        if pt not in (self.codec.payload_type, self.dtmf_payload_type):
            if pt != COMFORT_NOISE_PT:
                self.stats.wrong_payload_dropped += 1
                self._drops.warning("payload", "dropped RTP with payload type %d", pt, extra=self._extra)
            return
        now = self.clock.now()
        if not self._from_peer(addr, packet.sequence):
            self.stats.foreign_source_dropped += 1
            self._drops.warning("source", "dropped RTP from unexpected %s", addr, extra=self._extra)
            return
        if not self._bucket.take(now):
            self.stats.flood_dropped += 1
            self._drops.warning("flood", "RTP flood from %s: dropping packets", addr, extra=self._extra)
            return
        self.stats.packets_in += 1
        if pt == self.codec.payload_type:
            self._jitter.push(packet, self.codec.samples_in(packet.payload), now)
        else:
            try:
                digits = self._dtmf.feed(packet, now)
            except RtpParseError as exc:
                self.stats.non_rtp_dropped += 1
                self._drops.warning("dtmf", "dropped bad telephone-event: %s", exc, extra=self._extra)
                return
            self._queue_dtmf(digits)
        self._wakeup.set()

    def _from_peer(self, addr: tuple[str, int], sequence: int) -> bool:
        """Strict symmetric RTP (see the module's docstring)."""
        if addr == self._latched:
            return True
        if addr != self._sdp_remote:
            if self._latched is not None or not self.confirmed or not self.learn_sources:
                return False
            if addr == self._candidate and sequence == (self._candidate_seq + 1) & 0xFFFF:
                self._candidate_count += 1
            else:
                self._candidate, self._candidate_count = addr, 1
            self._candidate_seq = sequence
            if self._candidate_count < LEARN_PACKETS:
                return False
        log.info("RTP peer is at %s:%d (SDP said %s)", *addr, self._sdp_remote, extra=self._extra)
        self._latched = addr
        self._sender.remote = addr
        self._candidate = None
        return True

    def _queue_dtmf(self, digits: list[Dtmf]) -> None:
        for dtmf in digits:
            self.stats.dtmf_in += 1
            log.info("RTP DTMF %s (%d ms)", dtmf.digit, dtmf.duration_ms, extra=self._extra)
            self._ready.append(dtmf)

    async def receive(self) -> AudioChunk | Dtmf | None:
        """Next inbound audio (8 kHz) or DTMF, in order; None once closed or the input has ended."""
        while True:
            if self._closed or self._input_ended:
                return None
            if not self._ready:
                now = self.clock.now()
                self._queue_dtmf(self._dtmf.expire(now))
                for playout in self._jitter.pop(now):
                    chunk = self._decode(playout)
                    self._ready.append(chunk)
                    self._detect_inband(chunk)
            if self._ready:
                return self._ready.popleft()
            deadlines = [
                d for d in (self._jitter.next_deadline(), self._dtmf.next_deadline()) if d is not None
            ]
            await self._wait(min(deadlines, default=None))

    def _detect_inband(self, chunk: AudioChunk) -> None:
        """A peer that negotiated no telephone-event sends its keys as tones in the audio."""
        if not self.inband_dtmf:
            return
        if self._inband is None:
            log.info("no telephone-event negotiated: listening for in-band DTMF", extra=self._extra)
            self._inband = DtmfDetector()
        for key in self._inband.feed(chunk):
            self.stats.dtmf_in += 1
            log.info("in-band DTMF %s (%d ms)", key.digit, key.duration_ms, extra=self._extra)
            self._ready.append(Dtmf(key.digit, key.duration_ms))

    def _decode(self, playout: Playout) -> AudioChunk:
        rate = self.codec.clock_rate
        ticks_to_samples = rate / self.codec.timestamp_rate
        if playout.payload is not None:
            chunk = self.codec.decode(playout.payload)
            self._last_decoded = chunk
            return chunk
        count = round(playout.samples * ticks_to_samples)  # the jitter buffer counts RTP clock ticks
        samples = np.zeros(count, dtype=np.int16)
        last = self._last_decoded
        if playout.lost and last is not None and last.num_samples:
            # Conceal a lost packet with the last one, halved, then silence: no click, no stutter.
            n = min(count, last.num_samples)
            samples[:n] = last.samples[:n] // 2
        self._last_decoded = None
        return AudioChunk(samples, rate)

    async def _wait(self, deadline: float | None) -> None:
        self._wakeup.clear()
        if deadline is None:
            await self._wakeup.wait()
            return
        if isinstance(self.clock, MonotonicClock):  # the cheap way: one timer handle, no extra task
            loop = asyncio.get_running_loop()
            handle = loop.call_later(max(0.0, deadline - self.clock.now()), self._wakeup.set)
            try:
                await self._wakeup.wait()
            finally:
                handle.cancel()
            return
        sleeper = asyncio.ensure_future(self.clock.sleep_until(deadline))
        waiter = asyncio.ensure_future(self._wakeup.wait())
        try:
            await asyncio.wait({sleeper, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waiter.cancel()

    # ------------------------------------------------------------------ outbound DTMF

    async def send_dtmf(self, digits: str, duration_ms: int = 100) -> None:
        """Send digits as RFC 4733 events, one after another; returns once the last end packet left.

        Raises ValueError for a digit outside 0-9*#A-D or a bad duration, RuntimeError if no
        telephone-event payload type was negotiated.
        """
        digits = digits.upper()
        bad = [d for d in digits if d not in DIGIT_EVENTS]
        if bad:
            raise ValueError(f"not DTMF digits: {''.join(bad)!r}")
        if not 20 <= duration_ms <= MAX_DTMF_MS:
            raise ValueError(f"DTMF duration must be 20-{MAX_DTMF_MS} ms, got {duration_ms}")
        payload_type = self.dtmf_payload_type
        if payload_type is None:
            raise RuntimeError("the peer did not negotiate telephone-event; cannot send RFC 4733 DTMF")
        async with self._dtmf_lock:
            for index, digit in enumerate(digits):
                if self._closed:
                    return
                if index:
                    await self.clock.sleep_until(self.clock.now() + INTER_DIGIT_S)
                await self._sender.send_event(payload_type, DIGIT_EVENTS[digit], duration_ms)
                self.stats.dtmf_out += 1

    # ------------------------------------------------------------------ teardown

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._wakeup.set()
        await self.sink.aclose()
        self._sender.transport = None
        if self._transport is not None:
            self._transport.close()
        else:
            self._sock.close()
        self._jitter.reset()
        self._dtmf.reset()

    @property
    def _extra(self) -> dict[str, str]:
        return {"call_id": self.call_id or "-"}


def bind_rtp_socket(host: str, port_min: int, port_max: int) -> socket.socket:
    """A non-blocking UDP socket on an even port in [port_min, port_max] of `host` (0: any)."""
    family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    if port_min == 0:
        # Any free port; a few tries for an even one, as RFC 3550 §11 recommends for RTP.
        sock = None
        for _ in range(16):
            if sock is not None:
                sock.close()
            sock = _try_bind(family, host, 0)
            if sock is not None and sock.getsockname()[1] % 2 == 0:
                break
        if sock is None:
            raise OSError(f"cannot bind a UDP port on {host}")
        return sock
    first = port_min + (port_min % 2)
    evens = list(range(first, port_max + 1, 2))
    if not evens:
        raise ValueError(f"no even port in {port_min}-{port_max}")
    start = random.randrange(len(evens))  # spread calls over the range, as ports are reused quickly
    for port in evens[start:] + evens[:start]:
        sock = _try_bind(family, host, port)
        if sock is not None:
            return sock
    raise OSError(f"no free even UDP port in {port_min}-{port_max} on {host}")


def _try_bind(family: socket.AddressFamily, host: str, port: int) -> socket.socket | None:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.bind((host, port))
    except OSError:
        sock.close()
        return None
    return sock
