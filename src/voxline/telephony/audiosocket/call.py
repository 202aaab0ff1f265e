"""One Asterisk AudioSocket call as a `CallIO`: frames in, paced 20 ms slin frames out.

Asterisk has no flush for audio it has already received, so barge-in only works if we never get
ahead of real time: the sink writes one frame per tick and, if the socket has not taken the previous
one yet (the peer is not reading), drops the frame instead of queueing it on the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

import numpy as np

from voxline.audio.clock import Clock
from voxline.audio.pcm import AudioChunk
from voxline.audio.resample import resample
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


class AudioSocketSink(PacedSink):
    """Writes each paced frame as one audio frame of the peer's kind; sends nothing when idle."""

    def __init__(self, writer: asyncio.StreamWriter, kind: int, clock: Clock | None = None) -> None:
        super().__init__(AUDIO_RATES[kind], clock)
        self._writer = writer
        self.kind = kind
        self.frames_dropped = 0
        """Frames thrown away because the peer was not reading (each is 20 ms the caller missed)."""

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
        rate = AUDIO_RATES[kind]
        old_rate = self.output_rate
        if rate == old_rate:
            return
        parts = [f.samples for f in self._frames] + [self._partial]
        pending = np.concatenate(parts).astype(np.int16) if parts else np.zeros(0, np.int16)
        if pending.size:
            pending = resample(AudioChunk(pending, old_rate), rate).samples
        # Keep the accounting in samples of the new rate: played + pending == queued, as before.
        self._played_samples = round(self._played_samples * rate / old_rate)
        self._queued_samples = self._played_samples + int(pending.size)
        self.output_rate = rate
        self.frame_samples = round(rate * FRAME_S)
        self.frame_s = self.frame_samples / rate
        self._resamplers.clear()  # their state belongs to the old output rate
        self._frames.clear()
        n_full = pending.size // self.frame_samples
        for i in range(n_full):
            frame = pending[i * self.frame_samples : (i + 1) * self.frame_samples]
            self._frames.append(AudioChunk(frame.copy(), rate))
        self._partial = pending[n_full * self.frame_samples :].copy()
        if self._frames:
            self._drained.clear()
        else:
            self._drained.set()


class AudioSocketCall(CallIO):
    """A call whose UUID frame has been read. `call_id` is the Asterisk UUID in canonical form.

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
        super().__init__(str(call_uuid), AUDIO_RATES[DEFAULT_AUDIO_KIND], self._sink)
        self._heard_audio = False
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
                data = await self._read()
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

    async def _read(self) -> bytes:
        try:
            return await self._reader.read(READ_SIZE)
        except (ConnectionError, OSError) as exc:
            log.info("AudioSocket read failed: %s", exc)
            return b""

    async def _handle(self, frame: Frame) -> AudioChunk | Dtmf | None:
        if frame.is_audio:
            if frame.kind != self.audio_kind or not self._heard_audio:
                self._adopt(frame.kind)
            return AudioChunk.from_bytes(frame.payload, self.input_rate)
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
