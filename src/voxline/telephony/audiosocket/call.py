"""One Asterisk AudioSocket call as a `CallIO`: frames in, paced 20 ms slin frames out.

Asterisk has no flush for audio it has already received, so barge-in only works if we never get
ahead of real time: the sink writes one frame per tick and, if the socket has not taken the previous
one yet (the peer is not reading), drops the frame instead of queueing it on the wire.

Two things keep a call alive the way Asterisk's code expects (see docs/asterisk.md):

- The `AudioSocket()` application hangs up after 2 s with no frame in either direction, and Asterisk
  forwards the caller's frames only while the channel produces them. So while the agent has nothing
  to say the sink sends a silence frame of the call's kind every 20 ms: it costs nothing, keeps the
  line up, and barge-in stays exact because nothing is ever queued ahead.
- When the caller's frames stop (silence suppression, hold, a dialplan `Wait()`), `receive()` hands
  out silence in real time once a frame is overdue, as the RTP jitter buffer does, so the endpointer
  sees the pause that ends the caller's turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from voxline.audio.clock import Clock
from voxline.audio.pcm import AudioChunk
from voxline.capacity import CallSlot
from voxline.telephony.audiosocket.protocol import (
    AUDIO_RATES,
    DEFAULT_AUDIO_KIND,
    AudioSocketProtocolError,
    ErrorCode,
    Frame,
    FrameDecoder,
    Kind,
    encode_frame,
    hangup_frame,
)
from voxline.transports.base import FRAME_S, CallIO, Dtmf, PacedSink

log = logging.getLogger(__name__)

READ_SIZE = 65536
DTMF_DIGITS = frozenset("0123456789*#ABCD")
CLOSE_TIMEOUT_S = 1.0
DEFAULT_IDLE_TIMEOUT_S = 120.0
SILENCE_AFTER_S = 0.06
"""How late the caller's next frame may be before we hand out silence in its place (as RTP does)."""
MAX_SILENCE_BEHIND_S = 0.5
"""After a longer stall (a suspended process) skip ahead instead of releasing seconds of silence."""


class AudioSocketSink(PacedSink):
    """Writes each paced frame as one audio frame of the peer's kind, and a silence frame of that
    kind on each idle tick (with `keepalive`), so Asterisk's 2-second inactivity timer never fires."""

    def __init__(
        self,
        writer: asyncio.StreamWriter,
        kind: int,
        clock: Clock | None = None,
        *,
        keepalive: bool = True,
    ) -> None:
        super().__init__(AUDIO_RATES[kind], clock)
        self._writer = writer
        self.kind = kind
        self.keepalive = keepalive
        self.frames_dropped = 0
        """Frames thrown away because the peer was not reading (each is 20 ms the caller missed)."""
        self.silence_frames_sent = 0
        self._silence = b""

    async def _idle(self) -> None:
        if not self.keepalive:
            return
        transport = self._writer.transport
        if transport.is_closing() or transport.get_write_buffer_size() > 0:
            return  # a peer that is not reading misses nothing when silence is skipped
        payload_size = 2 * self.frame_samples
        if len(self._silence) != 3 + payload_size or self._silence[0] != self.kind:
            self._silence = encode_frame(self.kind, bytes(payload_size))
        self._writer.write(self._silence)
        self.silence_frames_sent += 1

    async def _emit(self, frame: AudioChunk) -> None:
        transport = self._writer.transport
        if transport.is_closing():
            raise ConnectionError("AudioSocket connection closed")
        if transport.get_write_buffer_size() > 0:
            # The kernel would not take the last frame: buffering more would put audio ahead of
            # real time that no barge-in could take back.
            self.frames_dropped += 1
            if self.frames_dropped == 1 or self.frames_dropped % 50 == 0:
                log.warning("AudioSocket peer is not reading; dropped %d frames so far", self.frames_dropped)
            return
        self._writer.write(encode_frame(self.kind, frame.to_bytes()))

    def adopt_kind(self, kind: int) -> None:
        """Switch the outbound audio to another kind, converting what is queued but not yet played."""
        self.kind = kind
        self.set_output_rate(AUDIO_RATES[kind])


class AudioSocketCall(CallIO):
    """A call whose UUID frame has been read. `call_id` is ours (a fresh hex id); the UUID the peer
    chose is `label` (canonical form), kept beside the record, never its key.

    Until the peer's first audio frame we assume the 8 kHz kind; when audio of another kind
    arrives we answer in that kind from then on (audio already queued is converted).
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        call_uuid: uuid.UUID,
        decoder: FrameDecoder,
        clock: Clock | None = None,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._decoder = decoder
        self.uuid = call_uuid
        self.audio_kind: int = DEFAULT_AUDIO_KIND
        self._sink = AudioSocketSink(writer, DEFAULT_AUDIO_KIND, clock)
        super().__init__(uuid.uuid4().hex, AUDIO_RATES[DEFAULT_AUDIO_KIND], self._sink)
        self.label = str(call_uuid)
        self.capacity_slot: CallSlot | None = None
        """The call budget's slot the server took on admission (the server's runner adopts it)."""
        self.idle_timeout_s = DEFAULT_IDLE_TIMEOUT_S
        """Hang up when the peer sends no byte for this long (a connection that holds a slot)."""
        self._last_heard = self._sink.clock.now()
        self._heard_audio = False
        self._audio_end = 0.0
        """Clock time up to which the caller's audio (frames, or silence we filled in) has covered."""
        self.silence_filled_s = 0.0
        """Seconds of silence handed out because the caller's frames stopped coming."""
        self._filling = False
        self._read_task: asyncio.Task[bytes] | None = None
        self._ended = False
        """The session is over (either side); receive() returns None from now on."""
        self._closed = False

    @property
    def ended(self) -> bool:
        return self._ended

    async def receive(self) -> AudioChunk | Dtmf | None:
        while not self._ended:
            try:
                frame = self._decoder.next_frame()
            except AudioSocketProtocolError as exc:
                log.warning("AudioSocket protocol error, closing the connection: %s", exc)
                await self.hangup("protocol_error")
                return None
            if frame is None:
                idle_at = self._last_heard + self.idle_timeout_s
                due = self._silence_due()
                data = await self._read(idle_at if due is None else min(due, idle_at))
                if data is None:
                    if self._sink.clock.now() >= idle_at:
                        log.warning("AudioSocket peer sent nothing for %g s; hanging up", self.idle_timeout_s)
                        await self.hangup("idle_timeout")
                        return None
                    if due is None or self._sink.clock.now() < due:
                        continue
                    return self._fill_silence()
                self._last_heard = self._sink.clock.now()
                if not data:
                    if not self._ended:
                        log.info("AudioSocket peer closed the connection")
                        self.hangup_reason = self.hangup_reason or "caller_disconnected"
                        self._ended = True
                        await self._close_socket()
                    return None
                self._decoder.feed(data)
                continue
            item = await self._handle(frame)
            if item is not None:
                return item
        return None

    async def _read(self, deadline: float | None) -> bytes | None:
        """The next bytes from the peer (b"" once it closed), or None if `deadline` came first.

        One read task lives across calls, so a deadline never cancels a read half done."""
        if self._read_task is None:
            self._read_task = asyncio.ensure_future(self._reader.read(READ_SIZE))
            # a read still pending when the call ends finishes (EOF) with nobody awaiting it
            self._read_task.add_done_callback(lambda t: t.cancelled() or t.exception())
        if deadline is not None and not self._read_task.done():
            sleeper = asyncio.ensure_future(self._sink.clock.sleep_until(deadline))
            try:
                await asyncio.wait({self._read_task, sleeper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
            if not self._read_task.done():
                return None
        task, self._read_task = self._read_task, None
        try:
            return await task
        except (ConnectionError, OSError) as exc:
            log.info("AudioSocket read failed: %s", exc)
            return b""

    def _silence_due(self) -> float | None:
        """When the caller's next frame is overdue and silence takes its place (None: not yet
        heard any audio, so there is no rate or turn to keep time for)."""
        if not self._heard_audio:
            return None
        return self._audio_end + SILENCE_AFTER_S

    def _fill_silence(self) -> AudioChunk:
        """One frame of silence in place of a frame the caller did not send, in real time."""
        now = self._sink.clock.now()
        if now - SILENCE_AFTER_S - self._audio_end > MAX_SILENCE_BEHIND_S:
            self._audio_end = now - SILENCE_AFTER_S - FRAME_S
        if not self._filling:
            self._filling = True
            log.debug("AudioSocket peer sent no audio for %.0f ms; hearing silence", SILENCE_AFTER_S * 1000)
        self._audio_end += FRAME_S
        self.silence_filled_s += FRAME_S
        return AudioChunk.silence(FRAME_S, self.input_rate)

    async def _handle(self, frame: Frame) -> AudioChunk | Dtmf | None:
        if frame.is_audio:
            if frame.kind != self.audio_kind or not self._heard_audio:
                self._adopt(frame.kind)
            chunk = AudioChunk.from_bytes(frame.payload, self.input_rate)
            self._audio_end = max(self._audio_end, self._sink.clock.now()) + chunk.duration_s
            self._filling = False
            return chunk
        if frame.kind == Kind.DTMF:
            digit = frame.payload.decode("latin-1").upper()
            if digit in DTMF_DIGITS:
                return Dtmf(digit)
            log.warning("AudioSocket DTMF frame with an invalid digit %r; ignored", frame.payload)
        elif frame.kind == Kind.HANGUP:
            log.info("AudioSocket peer sent hangup")
            self.hangup_reason = self.hangup_reason or "caller_hangup"
            self._ended = True
            await self._close_socket()
        elif frame.kind == Kind.ERROR:
            await self._on_error(frame.payload[0])
        elif frame.kind == Kind.UUID:
            log.warning("AudioSocket peer sent a second UUID frame (%s); ignored", frame.payload.hex())
        return None

    def _adopt(self, kind: int) -> None:
        if kind != self.audio_kind:
            log.info(
                "AudioSocket peer speaks kind 0x%02x (%d Hz); answering in the same kind",
                kind,
                AUDIO_RATES[kind],
            )
        self._heard_audio = True
        self.audio_kind = kind
        self.input_rate = AUDIO_RATES[kind]
        self._sink.adopt_kind(kind)

    async def _on_error(self, code: int) -> None:
        name = ErrorCode(code).name if code in ErrorCode._value2member_map_ else "unknown"
        if code == ErrorCode.CALLER_HANGUP:
            log.info("AudioSocket peer reports error 0x%02x (%s): the caller hung up", code, name)
            self.hangup_reason = self.hangup_reason or "caller_hangup"
            self._ended = True
            await self._close_socket()
        else:
            log.warning("AudioSocket peer reports error 0x%02x (%s)", code, name)

    async def hangup(self, reason: str = "normal") -> None:
        """Stop the audio, send the hangup frame (unless the peer already left) and close."""
        if self.hangup_reason is None:
            self.hangup_reason = reason
        if self._closed:
            return
        await self.sink.aclose()  # no audio may follow the hangup frame
        if not self._ended and not self._writer.transport.is_closing():
            log.info("hanging up AudioSocket call (%s)", reason)
            self._writer.write(hangup_frame())
        self._ended = True
        await self._close_socket()

    async def aclose(self) -> None:
        await super().aclose()
        self._ended = True
        await self._close_socket()

    async def _close_socket(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.sink.aclose()
        self._writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._writer.wait_closed(), CLOSE_TIMEOUT_S)
