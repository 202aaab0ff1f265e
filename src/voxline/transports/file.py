"""A simulated caller that speaks WAV files in real time: the transport behind `voxline simulate`.

The caller behaves like a person on a phone line: it sends audio continuously in 20 ms packets
(silence between turns, so endpointing sees real pauses), waits for the agent to finish before
speaking again (or talks over it, to exercise barge-in), and hangs up when its script is done.

Everything is timed on the injected Clock: with a VirtualClock a minute-long call runs in a
fraction of a second. Caller packets are never dropped (a stalled loop delivers them late in a
burst, like a jitter buffer) because losing the script's audio would make results meaningless.

Timing conventions, all on the shared clock and reported relative to the call start:
- a caller packet covering [T, T+20 ms) is delivered at T+20 ms, like a real packetiser;
- an agent frame emitted at tick T is heard over [T, T+20 ms);
- caller-side latency of a turn = first agent speech onset after the turn's end of speech (found
  in the audio itself) minus that end of speech; sample-accurate on both sides.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np

from voxline.audio.clock import Clock, MonotonicClock
from voxline.audio.levels import speech_end_s, speech_start_s
from voxline.audio.pacing import Pacer
from voxline.audio.pcm import AudioChunk, Int16Array
from voxline.audio.resample import resample
from voxline.audio.wav import read_wav, write_stereo_wav
from voxline.transports.base import FRAME_S, CallIO, Dtmf, PacedSink

__all__ = ["CallerTurnRecord", "FileCall", "FileSink"]

log = logging.getLogger(__name__)

ONSET_GAP_S = 0.15
"""Agent silence needed before new agent sound counts as the start of a reply (not a word gap)."""


@dataclass(slots=True)
class CallerTurnRecord:
    """When one caller turn happened, in seconds from the call start."""

    index: int
    source: str
    start_s: float
    end_s: float
    """When the turn's audio (including trailing silence in the file) finished playing."""
    speech_end_s: float | None
    """Just after the last sample of speech in the turn; None for a silent file."""
    reply_onset_s: float | None = None
    """First agent speech onset after `speech_end_s` and before the next turn started."""

    @property
    def latency_s(self) -> float | None:
        if self.speech_end_s is None or self.reply_onset_s is None:
            return None
        return self.reply_onset_s - self.speech_end_s


class _Track:
    """Mono audio placed at absolute sample offsets; gaps are silence."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._parts: list[tuple[int, Int16Array]] = []

    def place(self, t_s: float, samples: Int16Array) -> None:
        if samples.size and np.any(samples):
            self._parts.append((max(0, round(t_s * self.sample_rate)), samples))

    def render(self, min_duration_s: float = 0.0) -> AudioChunk:
        length = max([round(min_duration_s * self.sample_rate)] + [o + s.size for o, s in self._parts])
        out = np.zeros(length, dtype=np.int16)
        for offset, samples in self._parts:
            out[offset : offset + samples.size] = samples
        return AudioChunk(out, self.sample_rate)


class _AgentVoice:
    """Tracks when the agent is audible, from the frames the sink actually emitted."""

    def __init__(self) -> None:
        self.onsets: list[float] = []
        self.last_voice_end: float | None = None

    def frame(self, t_s: float, frame: AudioChunk) -> None:
        start = speech_start_s(frame)
        if start is None:
            return
        end = speech_end_s(frame)
        assert end is not None
        if self.last_voice_end is None or t_s + start - self.last_voice_end >= ONSET_GAP_S:
            self.onsets.append(t_s + start)
        self.last_voice_end = t_s + end

    def first_onset_between(self, after: float, before: float) -> float | None:
        return next((t for t in self.onsets if after <= t < before), None)

    def silent_for(self, now: float) -> float:
        return math.inf if self.last_voice_end is None else now - self.last_voice_end


class FileSink(PacedSink):
    """The agent's side of a FileCall: frames go to a callback (recording + speech tracking)."""

    def __init__(self, output_rate: int, clock: Clock, on_frame: Callable[[float, AudioChunk], None]) -> None:
        super().__init__(output_rate, clock)
        self._on_frame = on_frame

    async def _emit(self, frame: AudioChunk) -> None:
        self._on_frame(self.tick_time, frame)


class FileCall(CallIO):
    """A scripted caller speaking `turns` (WAV paths at any rate/channels, or chunks) in real time.

    - `pause_s`: silence between the end of the agent's reply and the caller's next turn.
    - `barge_in_after_s`: when set, every turn after the first starts this long after the agent's
      reply to the previous turn begins, talking over it.
    - `initial_wait_s`: before turn 1 the caller waits for the greeting to end (+ `pause_s`); if
      the agent says nothing for this long, it starts anyway.
    - `tail_s`: after the last turn, keep listening this long (and until the agent has been quiet
      for `pause_s`), then hang up: `receive()` returns None.
    - `reply_timeout_s`: move on to the next turn if the agent never answers.
    - `record_path`: where `aclose()` saves the stereo recording (left caller, right agent).
    """

    def __init__(
        self,
        turns: Sequence[str | PathLike[str] | AudioChunk],
        *,
        pause_s: float = 1.0,
        barge_in_after_s: float | None = None,
        initial_wait_s: float = 3.0,
        tail_s: float = 6.0,
        reply_timeout_s: float = 20.0,
        sample_rate: int = 16000,
        clock: Clock | None = None,
        call_id: str = "file-call",
        record_path: str | PathLike[str] | None = None,
    ) -> None:
        self.clock: Clock = clock or MonotonicClock()
        super().__init__(call_id, sample_rate, FileSink(sample_rate, self.clock, self._on_agent_frame))
        self.pause_s = pause_s
        self.barge_in_after_s = barge_in_after_s
        self.initial_wait_s = initial_wait_s
        self.tail_s = tail_s
        self.reply_timeout_s = reply_timeout_s
        self.record_path = Path(record_path) if record_path is not None else None
        self._audio = [self._load(turn, sample_rate) for turn in turns]
        self._sources = [f"<chunk {i}>" if isinstance(t, AudioChunk) else str(t) for i, t in enumerate(turns)]
        self._frame_samples = round(FRAME_S * sample_rate)
        self._turns: list[CallerTurnRecord] = []
        self._agent = _AgentVoice()
        self._caller_track = _Track(sample_rate)
        self._agent_track = _Track(sample_rate)
        self._inbox: asyncio.Queue[AudioChunk | Dtmf | None] = asyncio.Queue()
        self._t0: float | None = None
        self._elapsed_s = 0.0
        self._task: asyncio.Task[None] | None = None
        self._ended = False
        self.transferred_to: str | None = None

    @staticmethod
    def _load(turn: str | PathLike[str] | AudioChunk, sample_rate: int) -> AudioChunk:
        if isinstance(turn, AudioChunk):
            return resample(turn, sample_rate)
        return read_wav(turn, target_rate=sample_rate)

    # ------------------------------------------------------------ CallIO

    def start(self) -> None:
        """Start the caller (idempotent; receive() and the agent's first audio also start it)."""
        if self._t0 is None:
            self._t0 = self.clock.now()
            self._task = asyncio.get_running_loop().create_task(self._speak(), name=f"caller-{self.call_id}")

    async def receive(self) -> AudioChunk | Dtmf | None:
        if self._ended and self._inbox.empty():
            return None
        self.start()
        return await self._inbox.get()

    async def hangup(self, reason: str = "normal") -> None:
        if self.hangup_reason is None:
            self.hangup_reason = reason
        self._end()

    async def transfer(self, target: str) -> bool:
        """The line takes the caller on to `target`, as a PBX would: this leg then ends."""
        log.info("the caller is transferred to %s; the scripted call ends here", target)
        self.transferred_to = target
        self._end()
        return True

    async def aclose(self) -> None:
        self._end()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await super().aclose()
        if self.record_path is not None:
            self.save(self.record_path)

    # ------------------------------------------------------------ results

    @property
    def turns(self) -> list[CallerTurnRecord]:
        """The caller turns spoken so far, with the agent's reply onset to each where there was one."""
        origin = self._origin
        for i, record in enumerate(self._turns):
            if record.reply_onset_s is None and record.speech_end_s is not None:
                before = self._turns[i + 1].start_s if i + 1 < len(self._turns) else math.inf
                onset = self._agent.first_onset_between(origin + record.speech_end_s, origin + before)
                record.reply_onset_s = None if onset is None else onset - origin
        return list(self._turns)

    def caller_side_latencies(self) -> list[float | None]:
        """Per caller turn: caller's end of speech -> first agent sound after it (None: no reply)."""
        return [turn.latency_s for turn in self.turns]

    @property
    def agent_onsets_s(self) -> list[float]:
        """Start of every agent utterance, in seconds from the call start."""
        return [t - self._origin for t in self._agent.onsets]

    def recording(self) -> tuple[AudioChunk, AudioChunk]:
        """(caller, agent) tracks on one timeline starting at the call start."""
        return (
            self._caller_track.render(self._elapsed_s),
            self._agent_track.render(self._elapsed_s),
        )

    def save(self, path: str | PathLike[str]) -> None:
        """The whole call as a stereo WAV: left = caller, right = agent."""
        left, right = self.recording()
        write_stereo_wav(path, left, right)

    # ------------------------------------------------------------ internals

    @property
    def _origin(self) -> float:
        return self._t0 if self._t0 is not None else 0.0

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self._inbox.put_nowait(None)

    def _on_agent_frame(self, tick_time: float, frame: AudioChunk) -> None:
        if self._t0 is None:
            self.start()
        t = tick_time - self._origin
        self._agent_track.place(t, frame.samples)
        self._agent.frame(tick_time, frame)
        self._elapsed_s = max(self._elapsed_s, t + frame.duration_s)

    async def _speak(self) -> None:
        """One iteration per 20 ms: deliver the previous packet, then decide the next one."""
        pacer = Pacer(self.clock, FRAME_S, start=self._origin, max_lateness_s=math.inf)
        script = _Script(self, self._audio, self._sources)
        pending: AudioChunk | None = None
        try:
            while not self._ended:
                tick = await pacer.wait()
                if pending is not None:
                    self._inbox.put_nowait(pending)
                if script.finished(tick):
                    log.info("caller script finished; hanging up")
                    if self.hangup_reason is None:
                        self.hangup_reason = "caller-hangup"
                    self._end()
                    return
                samples = script.next_packet(tick, self._frame_samples)
                self._caller_track.place(tick - self._origin, samples)
                self._elapsed_s = max(self._elapsed_s, tick - self._origin + FRAME_S)
                pending = AudioChunk(samples, self.input_rate)
        except Exception:  # a broken script must end the call, not leave the agent waiting forever
            log.exception("file caller failed")
            self._end()


class _Script:
    """The caller's decisions: when each turn starts, from what the agent has been doing."""

    def __init__(self, call: FileCall, audio: list[AudioChunk], sources: list[str]) -> None:
        self.call = call
        self.audio = audio
        self.sources = sources
        self.rate = call.input_rate
        self.turn = -1  # index of the turn being spoken or last spoken
        self.cursor = 0  # next sample of the current turn; negative = silence before it starts
        self.speaking = False
        self.turn_start = 0.0
        self.turn_end = 0.0

    def finished(self, now: float) -> bool:
        if not self.audio:
            return now - self.call._origin >= self.call.tail_s
        if self.speaking or self.turn < len(self.audio) - 1:
            return False
        agent = self.call._agent
        waited = now - self.turn_end
        return (waited >= self.call.tail_s and agent.silent_for(now) >= self.call.pause_s) or (
            waited >= self.call.tail_s + self.call.reply_timeout_s
        )

    def next_packet(self, now: float, n: int) -> Int16Array:
        if not self.speaking:
            start = self._next_start(now)
            if start is not None and start < now + n / self.rate:
                self._begin(max(start, now), now)
        if not self.speaking:
            return np.zeros(n, dtype=np.int16)
        samples = self.audio[self.turn].samples
        out = np.zeros(n, dtype=np.int16)
        lo, hi = self.cursor, self.cursor + n
        src_lo, src_hi = max(lo, 0), min(hi, samples.size)
        if src_hi > src_lo:
            out[src_lo - lo : src_hi - lo] = samples[src_lo:src_hi]
        self.cursor = hi
        if self.cursor >= samples.size:
            self.speaking = False
            self.turn_end = self.turn_start + samples.size / self.rate
            self.call._turns[-1].end_s = self.turn_end - self.call._origin
        return out

    def _begin(self, start: float, now: float) -> None:
        self.turn += 1
        self.speaking = True
        self.turn_start = start
        self.cursor = -round((start - now) * self.rate)
        chunk = self.audio[self.turn]
        speech_end = speech_end_s(chunk)
        origin = self.call._origin
        self.call._turns.append(
            CallerTurnRecord(
                index=self.turn,
                source=self.sources[self.turn],
                start_s=start - origin,
                end_s=start - origin + chunk.duration_s,
                speech_end_s=None if speech_end is None else start - origin + speech_end,
            )
        )

    def _next_start(self, now: float) -> float | None:
        """Clock time the next turn should start at, if already decided; None to keep waiting."""
        call, agent = self.call, self.call._agent
        if self.turn + 1 >= len(self.audio):
            return None
        if self.turn < 0:  # before the first turn: let the greeting finish
            if agent.last_voice_end is not None:
                return agent.last_voice_end + call.pause_s
            if now - call._origin >= call.initial_wait_s:
                return now
            return None
        record = call._turns[-1]
        speech_end = call._origin + (record.speech_end_s if record.speech_end_s is not None else record.end_s)
        onset = agent.first_onset_between(speech_end, math.inf)
        if onset is None:
            return now if now - speech_end >= call.reply_timeout_s else None
        if call.barge_in_after_s is not None:
            return onset + call.barge_in_after_s
        assert agent.last_voice_end is not None  # there was an onset
        return agent.last_voice_end + call.pause_s
