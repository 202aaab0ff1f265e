"""The caller's side: inbound audio → VAD frames → turn events (with the turn's audio) to `emit`.

Times on events are clock seconds. The detector works in audio time (samples counted), and each
frame is mapped to the clock time its last sample arrived, so a transport that delivers audio in
bursts still gets correct silence lengths, and live calls get real latency numbers.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from voxline.agent.config import AgentConfig
from voxline.audio.clock import Clock
from voxline.audio.pcm import AudioChunk, Int16Array
from voxline.audio.resample import StreamResampler
from voxline.conversation.turns import (
    BargeInConfirmed,
    BargeInFalse,
    BargeInPause,
    NoiseDiscarded,
    SpeechEnd,
    SpeechPause,
    SpeechResumed,
    SpeechStart,
    TurnDetector,
    TurnParams,
)
from voxline.engines.base import LanguageGuess, VADStream
from voxline.transports.base import CallIO, Dtmf

log = logging.getLogger(__name__)

MAX_TURN_S = 60.0
"""Audio kept for one turn; a longer monologue loses its oldest audio rather than growing forever."""


@dataclass(frozen=True, slots=True)
class UserTurn:
    """One finished caller turn: its audio (VAD rate, with padding) and clock times."""

    audio: AudioChunk
    t_onset: float
    t_last_speech: float
    t_decided: float
    audio_key: float | None = None
    """Audio-time of the last speech (see TurnDraft.audio_key)."""


@dataclass(frozen=True, slots=True)
class TextTurn:
    """A caller turn given as text instead of audio (`voxline chat`, text-mode evals): from its
    transcript on it takes exactly the path of a heard turn (language policy, answer, tool rounds)."""

    text: str
    t: float
    guess: LanguageGuess | None = None
    """What a language identifier would have said about the turn (auto and on_request modes)."""
    audio_key: None = None

    @property
    def t_onset(self) -> float:
        return self.t

    @property
    def t_last_speech(self) -> float:
        return self.t

    @property
    def t_decided(self) -> float:
        return self.t


@dataclass(frozen=True, slots=True)
class TurnDraft:
    """The caller paused: the turn's audio so far, to transcribe before the turn is confirmed.
    It is the final turn's audio exactly if the UserTurn that follows has the same t_last_speech."""

    audio: AudioChunk
    t_last_speech: float
    audio_key: float
    """Audio-time of the last speech: equal on the draft and the turn when nothing was said since
    (the turn's audio identity, unrelated to keypad keys)."""


@dataclass(frozen=True, slots=True)
class DtmfPressed:
    digit: str
    t: float


@dataclass(frozen=True, slots=True)
class CallerHangup:
    t: float


ListenerEvent = (
    SpeechStart
    | SpeechResumed
    | UserTurn
    | TurnDraft
    | NoiseDiscarded
    | BargeInPause
    | BargeInConfirmed
    | BargeInFalse
    | DtmfPressed
    | CallerHangup
)


class Listener:
    def __init__(
        self,
        call: CallIO,
        vad: VADStream,
        agent: AgentConfig,
        clock: Clock,
        emit: Callable[[ListenerEvent], None],
    ) -> None:
        self._call = call
        self._vad = vad
        self._clock = clock
        self._emit = emit
        self.agent_has_floor = False
        """Set by the conversation whenever it changes: caller speech now is a barge-in."""
        self._rate = vad.sample_rate
        self._frame_samples = vad.frame_samples
        self._frame_s = vad.frame_samples / vad.sample_rate
        self._detector = TurnDetector(TurnParams.from_agent(agent), frame_s=self._frame_s)
        self._pad_s = agent.vad.speech_pad_ms / 1000
        self._resampler: StreamResampler | None = None
        self._input_rate = 0
        """The rate of the chunks the resampler was built for (0: none seen yet)."""
        self._pending = np.zeros(0, dtype=np.int16)
        self._audio_t = 0.0
        self._offset = 0.0
        """Clock time minus audio time at the last frame."""
        self._frames: collections.deque[tuple[float, Int16Array]] = collections.deque()

    @property
    def caller_speaking(self) -> bool:
        """A burst of caller speech (maybe not yet confirmed) is in progress."""
        return self._detector.in_burst

    async def run(self) -> None:
        while True:
            item = await self._call.receive()
            now = self._clock.now()
            if item is None:
                self._emit(CallerHangup(now))
                return
            if isinstance(item, Dtmf):
                self._emit(DtmfPressed(item.digit, now))
                continue
            self.feed(item, now)

    def feed(self, chunk: AudioChunk, now: float) -> None:
        """Process one inbound chunk that arrived at clock time `now`."""
        if chunk.sample_rate != self._input_rate:
            self._use_input_rate(chunk.sample_rate)
        audio = self._resampler.process(chunk) if self._resampler else chunk
        self._pending = np.concatenate([self._pending, audio.samples])
        n = self._frame_samples
        while self._pending.size >= n:
            frame, self._pending = self._pending[:n], self._pending[n:]
            self._audio_t += self._frame_s
            # this frame's last sample arrived `pending` samples before the chunk's last one
            offset = now - self._pending.size / self._rate - self._audio_t
            self._on_frame(frame, offset)

    def _use_input_rate(self, rate: int) -> None:
        """Build the resampler from the rate the audio itself carries, not the call's first guess:
        an AudioSocket call learns its rate only with the first audio frame (8 kHz until then)."""
        if self._input_rate:
            log.info("caller audio changed rate from %d to %d Hz", self._input_rate, rate)
        self._input_rate = rate
        self._resampler = None
        if rate != self._rate:
            # soxr's HQ filter releases upsampled audio in ~100 ms blocks, which would delay every
            # barge-in by up to that much; the quick cubic mode streams with no block delay, and
            # 8 kHz telephone audio has nothing above 4 kHz for a sharper filter to protect.
            quality = "QQ" if rate < self._rate else "HQ"
            self._resampler = StreamResampler(rate, self._rate, quality=quality)

    def end_early(self, audio_key: float, silence_s: float) -> None:
        """The draft taken at the pause `audio_key` reads as a finished request: end the turn after
        `silence_s` of silence (now, if that much has passed). Void if the caller spoke since."""
        for event in self._detector.end_early(audio_key, silence_s, self._audio_t):
            log.debug("turn ended early, %.0f ms after the caller's last word", silence_s * 1000)
            self._end_turn(event, self._offset, decided=self._clock.now())

    def _end_turn(self, event: SpeechEnd, offset: float, decided: float) -> None:
        audio = self._turn_audio(event.t_onset, event.t_last_speech)
        times = (event.t_onset + offset, event.t_last_speech + offset, decided)
        self._emit(UserTurn(audio, *times, audio_key=event.t_last_speech))

    def _on_frame(self, frame: Int16Array, offset: float) -> None:
        probability = self._vad.probability(frame.astype(np.float32) / 32768.0)
        self._frames.append((self._audio_t, frame))
        self._offset = offset
        for event in self._detector.step(self._audio_t, probability, self.agent_has_floor):
            if isinstance(event, SpeechEnd):
                self._end_turn(event, offset, decided=event.t_decided + offset)
            elif isinstance(event, SpeechPause):
                audio = self._turn_audio(event.t_onset, event.t_last_speech)
                self._emit(TurnDraft(audio, event.t_last_speech + offset, audio_key=event.t_last_speech))
            elif isinstance(event, NoiseDiscarded):
                shifted = replace(event, t_onset=event.t_onset + offset, t_end=event.t_end + offset)
                self._emit(shifted)
            else:
                self._emit(replace(event, t_onset=event.t_onset + offset))
        self._trim_frames()

    def _turn_audio(self, onset: float, last_speech: float) -> AudioChunk:
        start, end = onset - self._pad_s, last_speech + self._pad_s
        parts = [f for t_end, f in self._frames if t_end > start and t_end - self._frame_s < end]
        return AudioChunk(np.concatenate(parts) if parts else np.zeros(0, np.int16), self._rate)

    def _trim_frames(self) -> None:
        # Outside a burst only the pre-onset padding is needed; inside one, keep the whole turn.
        keep_s = MAX_TURN_S if self._detector.in_burst else self._pad_s + self._frame_s
        while self._frames and self._frames[0][0] < self._audio_t - keep_s:
            self._frames.popleft()
