"""Turn-taking as a pure state machine: per-frame speech probabilities in, turn events out.

No asyncio and no clock of its own: the caller passes the audio time at the end of each frame, so
the same code runs on live calls and on scripted frames in tests.

A *burst* of speech starts at the first voiced frame. It becomes a user turn once it has lasted
`min_speech` (or `barge_in_min_speech` while the agent talks); shorter bursts are noise. A turn ends
after `end_of_turn_silence` without speech, or sooner once the words before a pause read as a
finished request (`end_early`, which the call decides from the pause's draft transcript). While
the agent talks, a burst pauses the agent after a couple of frames (so it goes quiet fast), and is
then either confirmed or declared false.
"""

from __future__ import annotations

from dataclasses import dataclass

from voxline.agent.config import AgentConfig

# ---------------------------------------------------------------- events (times in seconds)


@dataclass(frozen=True, slots=True)
class SpeechStart:
    """A burst lasted long enough to count as the caller speaking."""

    t_onset: float


@dataclass(frozen=True, slots=True)
class SpeechEnd:
    """The caller's turn is over: enough silence followed the last voiced frame."""

    t_onset: float
    t_last_speech: float
    t_decided: float


@dataclass(frozen=True, slots=True)
class SpeechPause:
    """The caller paused mid-turn long enough that the turn may be over: a cue to start work
    (transcription) speculatively, kept only if the turn then ends with no more speech."""

    t_onset: float
    t_last_speech: float


@dataclass(frozen=True, slots=True)
class SpeechResumed:
    """The caller spoke again after a SpeechPause: whatever was started on the pause is void."""

    t_onset: float


@dataclass(frozen=True, slots=True)
class NoiseDiscarded:
    """A burst ended before it was long enough to be speech (click, cough, line noise)."""

    t_onset: float
    t_end: float


@dataclass(frozen=True, slots=True)
class BargeInPause:
    """Speech began while the agent was talking: stop the agent's audio now (it may resume)."""

    t_onset: float


@dataclass(frozen=True, slots=True)
class BargeInConfirmed:
    """The interrupting burst is long enough to be real speech."""

    t_onset: float


@dataclass(frozen=True, slots=True)
class BargeInFalse:
    """The interrupting burst ended too soon: the agent should resume where it was cut."""

    t_onset: float


TurnEvent = (
    SpeechStart
    | SpeechPause
    | SpeechResumed
    | SpeechEnd
    | NoiseDiscarded
    | BargeInPause
    | BargeInConfirmed
    | BargeInFalse
)


# ---------------------------------------------------------------- parameters


@dataclass(frozen=True, slots=True)
class TurnParams:
    threshold: float = 0.5
    off_threshold: float = 0.35
    """Hysteresis: once voiced, a frame stays voiced down to this probability."""
    min_speech_s: float = 0.15
    end_of_turn_silence_s: float = 0.5
    barge_in_min_speech_s: float = 0.25
    barge_in_pause_s: float = 0.064
    """Speech this long while the agent talks pauses it (two 32 ms frames)."""
    noise_gap_s: float = 0.3
    """Silence that ends a burst not yet confirmed as speech (so a false barge-in resumes soon)."""
    speculative_pause_s: float = 0.12
    """Silence after which a SpeechPause is announced (0 = never)."""

    @classmethod
    def from_agent(cls, agent: AgentConfig) -> TurnParams:
        end_silence = agent.turn.end_of_turn_silence_ms / 1000
        return cls(
            threshold=agent.vad.threshold,
            off_threshold=max(0.05, agent.vad.threshold - 0.15),
            min_speech_s=agent.turn.min_speech_ms / 1000,
            end_of_turn_silence_s=end_silence,
            barge_in_min_speech_s=agent.turn.barge_in_min_speech_ms / 1000,
            noise_gap_s=min(0.3, end_silence),
            speculative_pause_s=agent.turn.speculative_pause_ms / 1000,
        )


# ---------------------------------------------------------------- the machine


class TurnDetector:
    """Feed `step()` once per VAD frame; it returns the events that frame caused (usually none)."""

    def __init__(self, params: TurnParams, frame_s: float = 0.032) -> None:
        self.params = params
        self.frame_s = frame_s
        self.reset()

    def reset(self) -> None:
        self._voiced = False
        self._in_burst = False
        self._confirmed = False
        self._barge = False
        self._paused = False
        self._onset = 0.0
        self._last_speech = 0.0
        self._pause_announced = False
        self._early_end_s: float | None = None

    @property
    def in_burst(self) -> bool:
        """True from the first voiced frame until the burst or turn has ended."""
        return self._in_burst

    @property
    def in_turn(self) -> bool:
        """True while a confirmed user turn is in progress."""
        return self._in_burst and self._confirmed

    def end_early(self, t_last_speech: float, silence_s: float, t_now: float) -> list[SpeechEnd]:
        """The words up to the pause after `t_last_speech` read as a finished request: end this turn
        after `silence_s` of silence instead of `end_of_turn_silence_s`. Returns the SpeechEnd at
        once (decided at `t_now`, the last frame's end) when that much silence has passed already.

        Does nothing unless that pause is the current one: the caller spoke again since (the
        SpeechResumed voids it), or the turn ended, or another burst began."""
        if not (self.in_turn and self._pause_announced and abs(self._last_speech - t_last_speech) < 1e-9):
            return []
        if t_now - self._last_speech >= silence_s - 1e-9:
            self._in_burst = False
            return [SpeechEnd(self._onset, self._last_speech, t_now)]
        self._early_end_s = silence_s
        return []

    def step(self, t_end: float, probability: float, agent_speaking: bool) -> list[TurnEvent]:
        p = self.params
        threshold = p.off_threshold if self._voiced else p.threshold
        self._voiced = probability >= threshold
        events: list[TurnEvent] = []

        if not self._in_burst:
            if not self._voiced:
                return events
            self._in_burst, self._confirmed, self._paused = True, False, False
            self._pause_announced, self._early_end_s = False, None  # a pause of the last turn is over
            self._barge = agent_speaking
            self._onset = t_end - self.frame_s
            self._last_speech = t_end
        elif self._voiced:
            self._last_speech = t_end
            if self._pause_announced:
                events.append(SpeechResumed(self._onset))
            self._pause_announced = False
            self._early_end_s = None  # the words heard so far were not the whole turn
            if not self._confirmed and agent_speaking:
                self._barge = True  # the agent started talking over a burst that had just begun

        span = self._last_speech - self._onset
        silence = t_end - self._last_speech

        if not self._confirmed:
            if self._barge and not self._paused and span >= p.barge_in_pause_s - 1e-9:
                self._paused = True
                events.append(BargeInPause(self._onset))
            needed = max(p.min_speech_s, p.barge_in_min_speech_s) if self._barge else p.min_speech_s
            if span >= needed - 1e-9:
                self._confirmed = True
                if self._barge:
                    events.append(BargeInConfirmed(self._onset))
                events.append(SpeechStart(self._onset))
            elif silence >= p.noise_gap_s - 1e-9:
                self._in_burst = False
                events.append(NoiseDiscarded(self._onset, self._last_speech))
                if self._paused:
                    events.append(BargeInFalse(self._onset))
            return events

        end_silence = p.end_of_turn_silence_s
        if self._early_end_s is not None:
            end_silence = min(end_silence, self._early_end_s)
        if silence >= end_silence - 1e-9:
            self._in_burst = False
            events.append(SpeechEnd(self._onset, self._last_speech, t_end))
        elif (
            p.speculative_pause_s > 0
            and not self._pause_announced
            and silence >= p.speculative_pause_s - 1e-9
        ):
            self._pause_announced = True
            events.append(SpeechPause(self._onset, self._last_speech))
        return events
