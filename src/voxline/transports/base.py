"""What a conversation sees of a call: inbound audio and DTMF, and a paced outbound sink.

The sink is where barge-in becomes real: audio is queued in voxline's memory and released to the
transport one 20 ms frame at a time on a monotonic clock, so `clear()` drops everything the caller
has not heard yet, and `played_s` says exactly how much they did hear.
"""

from __future__ import annotations

import abc
import asyncio
import collections
import contextlib
import logging
from dataclasses import dataclass

import numpy as np

from voxline.audio.clock import Clock, MonotonicClock
from voxline.audio.pcm import AudioChunk
from voxline.audio.resample import StreamResampler, resample
from voxline.dispatch.metadata import CallMetadata

log = logging.getLogger(__name__)

FRAME_S = 0.020
PLAYBACK_STARTS_KEPT = 256
"""How many of its latest playback starts a sink remembers (a call's turn needs one or two)."""


@dataclass(frozen=True, slots=True)
class Dtmf:
    """A key the caller pressed (0-9, *, #, A-D)."""

    digit: str
    duration_ms: int = 0


@dataclass(frozen=True, slots=True)
class SinkMark:
    """A place in a sink's output: `position_s` seconds into the call's outbound audio, in its
    `stretch`-th run of audio (`clear()` starts a new one: it rewinds the position to what was heard)."""

    position_s: float
    stretch: int


@dataclass(frozen=True, slots=True)
class PlaybackStarted:
    """The sink began to play after silence: its first frame left at clock time `at`, from `mark`."""

    at: float
    mark: SinkMark


class PacedSink(abc.ABC):
    """Outbound audio: accepts chunks at any rate, emits `output_rate` frames of 20 ms in real time.

    Subclasses implement `_emit(frame)` (write one frame to the wire) and may override `_idle()`
    (called each tick with nothing to play; RTP sends nothing, a file transport writes silence).
    """

    def __init__(self, output_rate: int, clock: Clock | None = None, frame_s: float = FRAME_S) -> None:
        self.output_rate = output_rate
        self.clock: Clock = clock or MonotonicClock()
        self.frame_samples = round(output_rate * frame_s)
        self.frame_s = self.frame_samples / output_rate
        self._frames: collections.deque[AudioChunk] = collections.deque()
        self._partial = np.zeros(0, dtype=np.int16)
        self._resamplers: dict[int, StreamResampler] = {}
        self._queued_samples = 0
        self._played_samples = 0
        self._task: asyncio.Task[None] | None = None
        self._drained = asyncio.Event()
        self._drained.set()
        self._closed = False
        self.playback_starts: collections.deque[PlaybackStarted] = collections.deque(
            maxlen=PLAYBACK_STARTS_KEPT
        )
        """Each time a frame left after silence (the end of voice-to-voice), latest last; see
        `heard_from`."""
        self.first_frame_at: float | None = None
        """Clock time the call's first frame left."""
        self._stretch = 0
        self._was_idle = True
        self.tick_time = 0.0
        """Nominal clock time of the current frame period (the schedule, free of wake-up jitter)."""

    # -- accounting, in seconds of output audio since the call began
    @property
    def queued_s(self) -> float:
        return self._queued_samples / self.output_rate

    @property
    def played_s(self) -> float:
        return self._played_samples / self.output_rate

    @property
    def is_playing(self) -> bool:
        return bool(self._frames) or self._partial.size > 0

    def mark(self) -> SinkMark:
        """Where audio sent now will be in the output (ask `heard_from` later when it was heard)."""
        return SinkMark(self.queued_s, self._stretch)

    def heard_from(self, mark: SinkMark) -> float | None:
        """The clock time the caller began to hear the audio at `mark`, if it started playing after
        silence (audio sent while the sink was idle); None if it has not (yet), or was cleared unheard."""
        for start in reversed(self.playback_starts):
            if (
                start.mark.stretch == mark.stretch
                and abs(start.mark.position_s - mark.position_s) < self.frame_s / 2
            ):
                return start.at
        return None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="paced-sink")

    async def send(self, chunk: AudioChunk) -> None:
        """Queue audio for the caller (resampled to the output rate). Never blocks on the wire."""
        if self._closed:
            return
        self.start()
        samples = self._to_output_rate(chunk)
        self._queued_samples += samples.size
        buf = np.concatenate([self._partial, samples]) if self._partial.size else samples
        n_full = buf.size // self.frame_samples
        for i in range(n_full):
            frame = buf[i * self.frame_samples : (i + 1) * self.frame_samples]
            self._frames.append(AudioChunk(frame.astype(np.int16, copy=False), self.output_rate))
        self._partial = buf[n_full * self.frame_samples :].astype(np.int16, copy=True)
        if self._frames:
            self._drained.clear()

    def flush(self) -> None:
        """Pad and queue a trailing partial frame (end of an utterance)."""
        # The resamplers hold back a filter's worth of audio (~55 ms at 22.05 -> 8 kHz): release it
        # so the utterance ends with its real last syllable, not cut short.
        for resampler in self._resamplers.values():
            tail = resampler.flush().samples
            if tail.size:
                self._queued_samples += tail.size
                self._partial = np.concatenate([self._partial, tail]).astype(np.int16)
        while self._partial.size >= self.frame_samples:
            self._frames.append(AudioChunk(self._partial[: self.frame_samples].copy(), self.output_rate))
            self._partial = self._partial[self.frame_samples :]
        if self._partial.size:
            pad = np.zeros(self.frame_samples - self._partial.size, dtype=np.int16)
            self._queued_samples += pad.size
            self._frames.append(AudioChunk(np.concatenate([self._partial, pad]), self.output_rate))
            self._partial = np.zeros(0, dtype=np.int16)
        if self._frames:
            self._drained.clear()
        for resampler in self._resamplers.values():
            resampler.reset()

    def clear(self) -> float:
        """Barge-in: drop all audio not yet played. Returns the seconds of audio dropped."""
        dropped = sum(f.num_samples for f in self._frames) + self._partial.size
        self._frames.clear()
        self._partial = np.zeros(0, dtype=np.int16)
        self._queued_samples -= dropped
        for resampler in self._resamplers.values():
            resampler.reset()
        self._drained.set()
        self._was_idle = True  # the next frame starts a new utterance even without an idle tick between
        self._stretch += 1
        self._on_clear()
        return dropped / self.output_rate

    async def drain(self) -> None:
        """Wait until everything queued has been played (at once if the sink is closed)."""
        if self._closed:
            return
        self.flush()
        if self._frames:
            self.start()
            await self._drained.wait()

    async def aclose(self) -> None:
        self._closed = True
        self._drained.set()  # nothing more will play: release anyone waiting in drain()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def set_output_rate(self, rate: int) -> None:
        """Emit frames at another rate from now on (the peer's rate became known, or changed),
        converting what is queued but not yet played; `played_s`/`queued_s` carry on unchanged."""
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

    # -- transport hooks
    @abc.abstractmethod
    async def _emit(self, frame: AudioChunk) -> None:
        """Write one frame to the wire. Must not block for long."""

    async def _idle(self) -> None:  # noqa: B027 - optional hook
        """Called once per frame period when nothing is queued."""

    def _on_clear(self) -> None:  # noqa: B027 - optional hook
        """Called after clear(), e.g. to send a FLUSH to a peer that buffers."""

    # -- internals
    def _to_output_rate(self, chunk: AudioChunk) -> np.ndarray:
        if chunk.sample_rate == self.output_rate:
            return chunk.samples
        resampler = self._resamplers.get(chunk.sample_rate)
        if resampler is None:
            resampler = StreamResampler(chunk.sample_rate, self.output_rate)
            self._resamplers[chunk.sample_rate] = resampler
        return resampler.process(chunk).samples

    async def _run(self) -> None:
        next_tick = self.clock.now()
        while not self._closed:
            self.tick_time = next_tick
            if self._frames:
                frame = self._frames.popleft()
                if self._was_idle:
                    self._was_idle = False
                    now = self.clock.now()
                    self.playback_starts.append(PlaybackStarted(now, SinkMark(self.played_s, self._stretch)))
                    if self.first_frame_at is None:
                        self.first_frame_at = now
                try:
                    await self._emit(frame)
                except Exception:  # a dead wire must not kill the call's other tasks
                    log.exception("sink emit failed; closing sink")
                    self._closed = True
                    self._frames.clear()
                    self._drained.set()
                    return
                self._played_samples += frame.num_samples
                if not self._frames:
                    self._drained.set()
            else:
                self._was_idle = True
                await self._idle()
            next_tick += self.frame_s
            now = self.clock.now()
            if next_tick < now - 0.2:  # we were stalled (e.g. suspended); don't burst to catch up
                next_tick = now
            await self.clock.sleep_until(next_tick)


class CallIO(abc.ABC):
    """One call's audio in and out. Transports subclass this; the conversation consumes it, and
    `voxline.calls.run_call` ends it (one `hangup` unless the call already ended, then `aclose`)."""

    def __init__(self, call_id: str, input_rate: int, sink: PacedSink) -> None:
        self.call_id = call_id
        self.input_rate = input_rate
        self.sink = sink
        self.hangup_reason: str | None = None
        """Why the call ended, set by whoever ended it first: the transport when the caller left
        (so nobody hangs up on them again), or `hangup`."""
        self.label: str | None = None
        """What the far end calls this call (a WebSocket client's call_id, an AudioSocket UUID): kept
        beside the record, never its key."""
        self.metadata: CallMetadata | None = None
        """What the way in knew of the call (caller, dialled number, headers...), and the agent the
        node's dispatch chose for it; None where the way in sets none (a file)."""

    @abc.abstractmethod
    async def receive(self) -> AudioChunk | Dtmf | None:
        """Next inbound audio chunk or key press; None once the caller has hung up."""

    @abc.abstractmethod
    async def hangup(self, reason: str = "normal") -> None:
        """End the call from our side (after the goodbye has been played). Must be safe to call
        more than once; the first reason stays in `hangup_reason`."""

    async def transfer(self, target: str) -> bool:
        """Blind-transfer the caller. Transports that cannot transfer return False."""
        log.warning("transport %s cannot transfer to %s", type(self).__name__, target)
        return False

    async def send_dtmf(self, digits: str, duration_ms: int = 100) -> bool:
        """Send key presses to the far end (e.g. to drive another IVR). False if the transport cannot."""
        log.warning("transport %s cannot send DTMF %s", type(self).__name__, digits)
        return False

    async def aclose(self) -> None:
        await self.sink.aclose()
