"""A simulator of Asterisk's AudioSocket client side, for tests, written from Asterisk's code
(asterisk/asterisk 23: `apps/app_audiosocket.c`, `channels/chan_audiosocket.c`, `res/res_audiosocket.c`).

What it does, and where in Asterisk that comes from:

- It opens a TCP connection and sends the call UUID frame (kind 0x01, 16 bytes) first, and nothing
  else until the channel produces something (`ast_audiosocket_init`). The audio kind is therefore
  known to the server only with the first audio frame.
- Audio frames go out only while the channel produces them (`ast_read` returns a voice frame):
  `stream()` is a caller leg sending audio (or, with `seconds=`, digital silence, as an RTP leg
  without silence suppression does); `quiet()` is a leg that produces no frames at all (silence
  suppression, hold, a dialplan `Wait()`). Frames are whatever length the channel produced: the
  last one of a prompt may be short (`ast_audiosocket_send_frame` copies `datalen`, no padding).
- Two forms, as in Asterisk:
  * `application=True` is the `AudioSocket()` dialplan application: it always sends kind 0x10 (it sets
    the channel's read format to slin) and it hangs up when neither side produced a frame for
    `MAX_WAIT_TIMEOUT_MSEC` (2000 ms): "Reached timeout after 2000 ms of no activity".
  * otherwise it is the channel driver, `Dial(AudioSocket/host:port/uuid/c(slinNN))`: the kind follows
    the codec (0x12 for slin16 ...) and there is no inactivity timer.
- A key press goes out as kind 0x03 with one ASCII byte.
- From the server it accepts the hangup kind (0x00, a graceful end) and the audio kinds of any rate
  (Asterisk translates whatever arrives); a closed socket is a graceful end too. Anything else
  (DTMF, UUID, error, an unknown kind) is "Received AudioSocket message other than hangup or audio",
  and an audio frame with a zero length is "Invalid message length": both end the session with an
  error. It does not check that an audio payload is whole samples (`f.samples = length / 2`).
- On every end (the caller hanging up, a hangup frame, an error, the timeout) Asterisk just closes the
  socket: it never sends a hangup (0x00) or error (0xff) frame itself. `hang_up()` does that.
  `send_hangup()` and `send_error()` exist only to test how the server treats other clients that do.

It records every frame it receives with its arrival time (time.monotonic()), and keeps recording for
`linger_s` after the session ended (Asterisk closes at once; the linger lets a test see whether the
server wrongly kept sending).

Usage::

    async with AsteriskAudioSocket(server.port, kind=0x12) as ast:   # Dial(AudioSocket/...c(slin16))
        await ast.stream(speech_clip(16000, 1.0))
        await ast.quiet(3.0)
        await ast.send_dtmf("5")
        await ast.hang_up()
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
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
APPLICATION_KIND = 0x10
MAX_WAIT_TIMEOUT_S = 2.0
"""app_audiosocket.c's MAX_WAIT_TIMEOUT_MSEC: no frame either way for this long ends the call."""
FRAME_S = 0.020
SPEECH_DIR = Path("/usr/share/asterisk/sounds/en_US_f_Allison")


@dataclass(frozen=True, slots=True)
class Received:
    kind: int
    payload: bytes
    at: float
    """time.monotonic() when the whole frame had arrived."""

    @property
    def is_silence(self) -> bool:
        return self.kind in AUDIO_KIND_RATES and not any(self.payload)


def frame(kind: int, payload: bytes = b"") -> bytes:
    return struct.pack(">BH", kind, len(payload)) + payload


def speech_clip(rate: int, seconds: float, name: str = "demo-congrats.wav") -> AudioChunk:
    """Recorded speech (Asterisk's 8 kHz prompts) at `rate`, cut or looped to `seconds`.

    Falls back to a two-tone signal if the sound package is missing, so tests still carry real audio.
    No sample is digital zero, so a frame of it is never mistaken for a silence frame.
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
    samples[samples == 0] = 1
    return AudioChunk(samples.astype(np.int16), rate)


class AsteriskAudioSocket:
    """One simulated Asterisk AudioSocket session (one call)."""

    def __init__(
        self,
        port: int,
        host: str = "127.0.0.1",
        *,
        kind: int = APPLICATION_KIND,
        application: bool = False,
        call_uuid: uuid.UUID | None = None,
        linger_s: float = 0.5,
    ) -> None:
        if kind not in AUDIO_KIND_RATES:
            raise ValueError(f"not an audio kind: 0x{kind:02x}")
        if application and kind != APPLICATION_KIND:
            raise ValueError("the AudioSocket() application always sends kind 0x10 (slin, 8 kHz)")
        self.host = host
        self.port = port
        self.kind = kind
        self.application = application
        self.rate = AUDIO_KIND_RATES[kind]
        self.uuid = call_uuid or uuid.uuid4()
        self.linger_s = linger_s
        self.received: list[Received] = []
        self.sent_audio: list[bytes] = []
        self.end_reason: str | None = None
        """Why the session ended: "hangup" (the server sent 0x00), "closed" (the server closed the
        socket), "timeout" (the application's 2 s of no activity), "protocol_error: ..." (the server
        sent something Asterisk refuses), "local" (the caller hung up: we closed)."""
        self.ended = asyncio.Event()
        self.ended_at: float | None = None
        self.closed_by_server_at: float | None = None
        self.last_activity = 0.0
        """time.monotonic() of the last frame either way (what the application's timer restarts on)."""
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._rx_task: asyncio.Task[None] | None = None
        self._timer_task: asyncio.Task[None] | None = None
        self._reading = asyncio.Event()
        self._reading.set()

    @classmethod
    def application_form(cls, port: int, **kwargs: object) -> AsteriskAudioSocket:
        """`AudioSocket(uuid,host:port)` in the dialplan: 8 kHz, and the 2-second rule."""
        return cls(port, kind=APPLICATION_KIND, application=True, **kwargs)  # type: ignore[arg-type]

    # -- lifecycle
    async def connect(self, *, send_uuid: bool = True) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        self.last_activity = time.monotonic()
        loop = asyncio.get_running_loop()
        self._rx_task = loop.create_task(self._receive_loop())
        if self.application:
            self._timer_task = loop.create_task(self._inactivity_timer())
        if send_uuid:
            await self.send_raw(frame(KIND_UUID, self.uuid.bytes))

    async def __aenter__(self) -> AsteriskAudioSocket:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def hang_up(self) -> None:
        """The caller hangs up: Asterisk closes the socket and sends nothing (no 0x00 frame)."""
        await self.close()

    async def close(self) -> None:
        self._end("local")
        self._close_socket()
        for task in (self._rx_task, self._timer_task):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def wait_ended(self, within_s: float = 5.0) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ended.wait(), within_s)
        return self.ended.is_set()

    def pause_reading(self) -> None:
        """Stop reading the socket (a stalled Asterisk): TCP backpressure builds up at the server."""
        self._reading.clear()

    def resume_reading(self) -> None:
        self._reading.set()

    # -- what the channel produces
    async def send_raw(self, data: bytes) -> None:
        assert self._writer is not None, "connect() first"
        if self._writer.is_closing():
            return
        self.last_activity = time.monotonic()
        self._writer.write(data)
        with contextlib.suppress(ConnectionError):
            await self._writer.drain()

    async def stream(self, audio: AudioChunk | None = None, seconds: float | None = None) -> int:
        """Send `audio` (resampled to our kind's rate) or `seconds` of digital silence as paced 20 ms
        frames, as a channel producing audio does. A short last frame goes out short, as in Asterisk.

        Stops early if the session ends. Returns the number of frames sent.
        """
        if audio is None:
            audio = AudioChunk.silence(seconds or 0.0, self.rate)
        elif audio.sample_rate != self.rate:
            audio = resample(audio, self.rate)
        step = 2 * round(self.rate * FRAME_S)
        data = audio.to_bytes()
        start = time.monotonic()
        sent = 0
        for offset in range(0, len(data), step):
            if self.ended.is_set():
                break
            payload = data[offset : offset + step]
            await self.send_raw(frame(self.kind, payload))
            self.sent_audio.append(payload)
            sent += 1
            delay = start + sent * FRAME_S - time.monotonic()
            await asyncio.sleep(max(delay, 0.0))
        return sent

    async def stream_wav(self, path: str | Path) -> int:
        """Play a WAV file (any rate; converted to our kind's rate) as paced frames."""
        return await self.stream(read_wav(path, target_rate=self.rate))

    async def quiet(self, seconds: float) -> None:
        """The channel produces no frames for `seconds` (silence suppression, hold, `Wait()`)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ended.wait(), seconds)

    async def send_dtmf(self, digit: str) -> None:
        await self.send_raw(frame(KIND_DTMF, digit.encode("ascii")))

    async def send_hangup(self) -> None:
        """A hangup frame then close. Asterisk never does this (it just closes); other clients may."""
        await self.send_raw(frame(KIND_HANGUP))
        await self.close()

    async def send_error(self, code: int) -> None:
        """An error frame. Asterisk never sends one; the protocol document describes it."""
        await self.send_raw(frame(KIND_ERROR, bytes([code])))

    # -- what came back
    @property
    def audio_frames(self) -> list[Received]:
        """Every audio frame from the server, silence included."""
        return [r for r in self.received if r.kind in AUDIO_KIND_RATES]

    @property
    def sound_frames(self) -> list[Received]:
        """Audio frames with something in them (the agent speaking, not keep-alive silence)."""
        return [r for r in self.audio_frames if not r.is_silence]

    def received_audio(self, kind: int | None = None) -> AudioChunk:
        """All audio received in `kind` (default: ours) concatenated."""
        want = self.kind if kind is None else kind
        data = b"".join(r.payload for r in self.audio_frames if r.kind == want)
        return AudioChunk.from_bytes(data, AUDIO_KIND_RATES[want])

    @property
    def kinds_received(self) -> list[int]:
        return [r.kind for r in self.received]

    def longest_gap_s(self) -> float:
        """The longest time with no frame from the server, from its first frame to the end (or now)."""
        if not self.received:
            return float("inf")
        end = self.ended_at if self.ended_at is not None else time.monotonic()
        edges = [r.at for r in self.received] + [end]
        return max(b - a for a, b in itertools.pairwise(edges))

    # -- internals
    def _end(self, reason: str) -> None:
        if self.end_reason is None:
            self.end_reason = reason
            self.ended_at = time.monotonic()
        self.ended.set()

    def _close_socket(self) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.close()

    async def _inactivity_timer(self) -> None:
        """app_audiosocket's loop: wait up to 2 s for a frame from either side, else hang up."""
        while not self.ended.is_set():
            due = self.last_activity + MAX_WAIT_TIMEOUT_S
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            self._end("timeout")
            self._close_socket()
            return

    async def _receive_loop(self) -> None:
        assert self._reader is not None and self._writer is not None
        buffer = bytearray()
        stop_at: float | None = None  # once the session is over: how long we keep recording
        while True:
            await self._reading.wait()
            try:
                if stop_at is None:
                    data = await self._reader.read(65536)
                else:
                    data = await asyncio.wait_for(self._reader.read(65536), stop_at - time.monotonic())
            except TimeoutError:
                self._close_socket()
                return
            except (ConnectionError, OSError):
                data = b""
            now = time.monotonic()
            if not data:
                if self.closed_by_server_at is None and not self._writer.is_closing():
                    self.closed_by_server_at = now
                self._end("closed")
                self._close_socket()
                return
            buffer += data
            while len(buffer) >= 3:
                kind, length = struct.unpack_from(">BH", buffer)
                if kind == KIND_HANGUP:  # res_audiosocket reads no further than the header
                    length = min(length, len(buffer) - 3)
                if len(buffer) < 3 + length:
                    break
                payload = bytes(buffer[3 : 3 + length])
                del buffer[: 3 + length]
                self.received.append(Received(kind, payload, now))
                if stop_at is not None:
                    continue
                self.last_activity = now
                reason = self._judge(kind, payload)
                if reason is not None:
                    # Asterisk closes the socket at once; we keep reading a moment to record
                    # anything the server wrongly sends after, and whether it closes too.
                    self._end(reason)
                    stop_at = now + self.linger_s

    @staticmethod
    def _judge(kind: int, payload: bytes) -> str | None:
        """res_audiosocket's verdict on a frame from the server: None to carry on, or why it ends."""
        if kind == KIND_HANGUP:
            return "hangup"
        if kind in AUDIO_KIND_RATES:
            if not payload:
                return "protocol_error: invalid message length 0"
            return None
        return f"protocol_error: kind 0x{kind:02x} is not hangup or audio"
