"""A simulator of Asterisk's AudioSocket client side (app_audiosocket / res_audiosocket), for tests.

Written from /work/shared/TELEPHONY.md. Like Asterisk it:

- opens a TCP connection to the server and sends the 16-byte call UUID frame (kind 0x01) first;
- streams audio of ONE kind (0x10 slin 8 kHz by default, or any of the higher-rate kinds 0x11-0x18)
  as 20 ms frames paced on the monotonic clock, from a clip or silence;
- sends DTMF as kind 0x03 frames of one ASCII byte, and may hang up with a 0x00 frame or just close;
- accepts only hangup (0x00) and audio kinds from the server: a hangup ends the session, and any other
  kind (or a frame it cannot parse) is a fatal protocol error that ends the session too; either way
  it closes the socket, as Asterisk hangs up the channel;
- records every frame it receives with its arrival time (time.monotonic()).

Usage::

    async with AsteriskAudioSocket(server.port, kind=0x12) as ast:
        await ast.stream(speech_clip(16000, 1.0))
        await ast.send_dtmf("5")
        await ast.send_hangup()
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np

from voxline.audio.pcm import AudioChunk
from voxline.audio.resample import resample
from voxline.audio.wav import read_wav

KIND_HANGUP = 0x00
KIND_UUID = 0x01
KIND_DTMF = 0x03
KIND_ERROR = 0xFF
AUDIO_KIND_RATES = {
    0x10: 8000,
    0x11: 12000,
    0x12: 16000,
    0x13: 24000,
    0x14: 32000,
    0x15: 44100,
    0x16: 48000,
    0x17: 96000,
    0x18: 192000,
}
FRAME_S = 0.020
SPEECH_DIR = Path("/usr/share/asterisk/sounds/en_US_f_Allison")


@dataclass(frozen=True, slots=True)
class Received:
    kind: int
    payload: bytes
    at: float
    """time.monotonic() when the whole frame had arrived."""


def frame(kind: int, payload: bytes = b"") -> bytes:
    return struct.pack(">BH", kind, len(payload)) + payload


def speech_clip(rate: int, seconds: float, name: str = "demo-congrats.wav") -> AudioChunk:
    """Recorded speech (Asterisk's 8 kHz prompts) at `rate`, cut or looped to `seconds`.

    Falls back to a two-tone signal if the sound package is missing, so tests still carry real audio.
    """
    path = SPEECH_DIR / name
    if path.exists():
        clip = resample(read_wav(path), rate)
    else:
        t = np.arange(round(rate * 2.0)) / rate
        wave = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1170 * t)
        clip = AudioChunk.from_float32(wave.astype(np.float32), rate)
    n = round(rate * seconds)
    reps = -(-n // max(clip.num_samples, 1))
    samples = np.tile(clip.samples, reps)[:n]
    samples[samples == 0] = 1  # no digital-zero samples, so "audio came back" is never ambiguous
    return AudioChunk(samples.astype(np.int16), rate)


class AsteriskAudioSocket:
    """One simulated Asterisk AudioSocket session (one call)."""

    def __init__(
        self,
        port: int,
        host: str = "127.0.0.1",
        *,
        kind: int = 0x10,
        call_uuid: uuid.UUID | None = None,
    ) -> None:
        if kind not in AUDIO_KIND_RATES:
            raise ValueError(f"not an audio kind: 0x{kind:02x}")
        self.host = host
        self.port = port
        self.kind = kind
        self.rate = AUDIO_KIND_RATES[kind]
        self.uuid = call_uuid or uuid.uuid4()
        self.received: list[Received] = []
        self.sent_audio: list[bytes] = []
        self.end_reason: str | None = None
        """Why the session ended: "hangup" (server sent 0x00), "closed" (server closed the socket),
        "protocol_error: ..." (server sent something Asterisk refuses), "local" (we ended it)."""
        self.ended = asyncio.Event()
        self.ended_at: float | None = None
        self.closed_by_server_at: float | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._rx_task: asyncio.Task[None] | None = None
        self._reading = asyncio.Event()
        self._reading.set()

    # -- lifecycle
    async def connect(self, *, send_uuid: bool = True) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        self._rx_task = asyncio.get_running_loop().create_task(self._receive_loop())
        if send_uuid:
            await self.send_raw(frame(KIND_UUID, self.uuid.bytes))

    async def __aenter__(self) -> AsteriskAudioSocket:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Just close the socket (Asterisk does this when the channel goes away)."""
        self._end("local")
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._writer.wait_closed(), 1.0)
        if self._rx_task is not None:
            self._rx_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._rx_task

    async def wait_ended(self, within_s: float = 5.0) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ended.wait(), within_s)
        return self.ended.is_set()

    def pause_reading(self) -> None:
        """Stop reading the socket (a stalled Asterisk): TCP backpressure builds up at the server."""
        self._reading.clear()

    def resume_reading(self) -> None:
        self._reading.set()

    # -- sending
    async def send_raw(self, data: bytes) -> None:
        assert self._writer is not None, "connect() first"
        if self._writer.is_closing():
            return
        self._writer.write(data)
        with contextlib.suppress(ConnectionError):
            await self._writer.drain()

    async def stream(self, audio: AudioChunk | None = None, seconds: float | None = None) -> int:
        """Send `audio` (resampled to our kind's rate) or `seconds` of silence as paced 20 ms frames.

        Stops early if the session ends. Returns the number of frames sent.
        """
        if audio is None:
            audio = AudioChunk.silence(seconds or 0.0, self.rate)
        elif audio.sample_rate != self.rate:
            audio = resample(audio, self.rate)
        samples_per_frame = round(self.rate * FRAME_S)
        data = audio.to_bytes()
        step = 2 * samples_per_frame
        start = time.monotonic()
        sent = 0
        for offset in range(0, len(data), step):
            if self.ended.is_set():
                break
            payload = data[offset : offset + step]
            if len(payload) < step:  # Asterisk frames are whole; pad the tail with silence
                payload += bytes(step - len(payload))
            await self.send_raw(frame(self.kind, payload))
            self.sent_audio.append(payload)
            sent += 1
            delay = start + sent * FRAME_S - time.monotonic()
            await asyncio.sleep(max(delay, 0.0))
        return sent

    async def stream_wav(self, path: str | Path) -> int:
        """Play a WAV file (any rate; converted to our kind's rate) as paced frames."""
        return await self.stream(read_wav(path, target_rate=self.rate))

    async def send_dtmf(self, digit: str) -> None:
        await self.send_raw(frame(KIND_DTMF, digit.encode("ascii")))

    async def send_hangup(self) -> None:
        """Send the hangup frame, then close, as Asterisk does when the caller hangs up."""
        await self.send_raw(frame(KIND_HANGUP))
        await self.close()

    async def send_error(self, code: int) -> None:
        await self.send_raw(frame(KIND_ERROR, bytes([code])))

    # -- what came back
    @property
    def audio_frames(self) -> list[Received]:
        return [r for r in self.received if r.kind in AUDIO_KIND_RATES]

    def received_audio(self, kind: int | None = None) -> AudioChunk:
        """All audio received in `kind` (default: ours) concatenated."""
        want = self.kind if kind is None else kind
        data = b"".join(r.payload for r in self.audio_frames if r.kind == want)
        return AudioChunk.from_bytes(data, AUDIO_KIND_RATES[want])

    @property
    def kinds_received(self) -> list[int]:
        return [r.kind for r in self.received]

    # -- internals
    def _end(self, reason: str) -> None:
        if self.end_reason is None:
            self.end_reason = reason
            self.ended_at = time.monotonic()
        self.ended.set()

    async def _receive_loop(self) -> None:
        assert self._reader is not None and self._writer is not None
        buffer = bytearray()
        hang_up_by: float | None = None  # once the session is over: how long to wait for the server's close
        while True:
            await self._reading.wait()
            try:
                if hang_up_by is None:
                    data = await self._reader.read(65536)
                else:
                    data = await asyncio.wait_for(self._reader.read(65536), hang_up_by - time.monotonic())
            except TimeoutError:  # the server never closed: Asterisk closes the socket itself
                self._writer.close()
                return
            except (ConnectionError, OSError):
                data = b""
            now = time.monotonic()
            if not data:
                self.closed_by_server_at = now
                self._end("closed")
                self._writer.close()
                return
            buffer += data
            while len(buffer) >= 3:
                kind, length = struct.unpack_from(">BH", buffer)
                if len(buffer) < 3 + length:
                    break
                payload = bytes(buffer[3 : 3 + length])
                del buffer[: 3 + length]
                self.received.append(Received(kind, payload, now))
                reason = self._judge(kind, payload)
                if reason is not None and hang_up_by is None:
                    # Asterisk hangs up the channel, which closes the socket a moment later; we
                    # keep reading (and recording) until then to see whether the server closes too.
                    self._end(reason)
                    hang_up_by = now + 0.5

    def _judge(self, kind: int, payload: bytes) -> str | None:
        """Asterisk's verdict on a frame from the server: None to carry on, or why the session ends."""
        if kind == KIND_HANGUP:
            return "hangup"
        if kind in AUDIO_KIND_RATES:
            if len(payload) % 2:
                return f"protocol_error: odd audio payload of {len(payload)} bytes"
            return None
        return f"protocol_error: kind 0x{kind:02x} is not accepted from the server"
