"""Turn-taking on virtual time: 32 ms frames with scripted speech probabilities."""

from __future__ import annotations

import pytest

from voxline.agent.config import AgentConfig
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
    TurnEvent,
    TurnParams,
)

FRAME = 0.032


def run(
    script: list[tuple[float, float]], agent_speaking: bool = False, speculative_pause_s: float = 0.0
) -> list[tuple[float, TurnEvent]]:
    """script: (seconds, probability) segments. Returns (frame end time, event) pairs."""
    detector = TurnDetector(TurnParams(speculative_pause_s=speculative_pause_s), frame_s=FRAME)
    events: list[tuple[float, TurnEvent]] = []
    t = 0.0
    for seconds, probability in script:
        for _ in range(round(seconds / FRAME)):
            t = round(t + FRAME, 6)
            events += [(t, e) for e in detector.step(t, probability, agent_speaking)]
    return events


def kinds(events: list[tuple[float, TurnEvent]]) -> list[type]:
    return [type(e) for _, e in events]


def test_a_turn_starts_after_min_speech_and_ends_after_silence() -> None:
    events = run([(0.32, 0.0), (0.96, 0.9), (0.8, 0.0)])
    assert kinds(events) == [SpeechStart, SpeechEnd]
    (t_start, start), (t_end, end) = events
    assert start.t_onset == pytest.approx(0.32)
    assert t_start - start.t_onset == pytest.approx(0.16)  # 5 frames ≥ 150 ms
    assert isinstance(end, SpeechEnd)
    assert end.t_last_speech == pytest.approx(1.28)
    assert end.t_decided - end.t_last_speech == pytest.approx(0.512)  # first frame ≥ 500 ms
    assert t_end == end.t_decided


def test_short_burst_is_noise() -> None:
    events = run([(0.32, 0.0), (0.096, 1.0), (1.0, 0.0)])
    assert kinds(events) == [NoiseDiscarded]
    noise = events[0][1]
    assert isinstance(noise, NoiseDiscarded)
    assert noise.t_end - noise.t_onset == pytest.approx(0.096)


def test_a_pause_shorter_than_end_of_turn_silence_does_not_split_the_turn() -> None:
    events = run([(0.64, 0.9), (0.32, 0.0), (0.64, 0.9), (0.7, 0.0)])
    assert kinds(events) == [SpeechStart, SpeechEnd]
    end = events[1][1]
    assert isinstance(end, SpeechEnd)
    assert end.t_onset == pytest.approx(0.0) and end.t_last_speech == pytest.approx(1.6)


def test_hysteresis_keeps_a_dipping_voice_voiced() -> None:
    # 0.4 would not start speech (threshold 0.5) but keeps it going (off threshold 0.35)
    events = run([(0.32, 0.9), (0.64, 0.4), (0.6, 0.1)])
    end = events[-1][1]
    assert isinstance(end, SpeechEnd)
    assert end.t_last_speech == pytest.approx(0.96)
    assert kinds(run([(0.64, 0.4), (0.6, 0.0)])) == []


def test_barge_in_pauses_within_three_frames_then_confirms() -> None:
    events = run([(0.64, 0.9), (0.7, 0.0)], agent_speaking=True)
    assert kinds(events) == [BargeInPause, BargeInConfirmed, SpeechStart, SpeechEnd]
    t_pause, pause = events[0]
    assert t_pause - pause.t_onset <= 3 * FRAME + 1e-9
    t_confirm, confirm = events[1]
    assert t_confirm - confirm.t_onset >= 0.25


def test_a_cough_during_agent_speech_is_a_false_barge_in() -> None:
    events = run([(0.128, 1.0), (0.5, 0.0)], agent_speaking=True)
    assert kinds(events) == [BargeInPause, NoiseDiscarded, BargeInFalse]
    t_false = events[-1][0]
    assert t_false - 0.128 <= 0.32  # resumes soon after the cough ends, not after a full turn gap


def test_a_single_frame_blip_does_not_pause_the_agent() -> None:
    assert kinds(run([(0.032, 1.0), (0.5, 0.0)], agent_speaking=True)) == [NoiseDiscarded]


def test_params_from_agent_config() -> None:
    agent = AgentConfig.model_validate(
        {"vad": {"threshold": 0.6}, "turn": {"end_of_turn_silence_ms": 700, "min_speech_ms": 200}}
    )
    params = TurnParams.from_agent(agent)
    assert params.threshold == 0.6 and params.off_threshold == pytest.approx(0.45)
    assert params.end_of_turn_silence_s == 0.7 and params.min_speech_s == 0.2


def test_a_pause_is_announced_once_per_gap_before_the_turn_ends() -> None:
    # speech, a 320 ms pause (announced, turn goes on), speech again, then the real end
    events = run([(0.64, 0.9), (0.32, 0.0), (0.64, 0.9), (0.7, 0.0)], speculative_pause_s=0.2)
    # the caller going on after an announced pause is announced too: work begun on it is void
    assert kinds(events) == [SpeechStart, SpeechPause, SpeechResumed, SpeechPause, SpeechEnd]
    first_pause, _, second_pause, end = (e[1] for e in events[1:])
    assert isinstance(first_pause, SpeechPause) and isinstance(second_pause, SpeechPause)
    assert isinstance(end, SpeechEnd)
    assert events[2][0] == pytest.approx(0.64 + 0.32 + 0.032)  # the first voiced frame after the pause
    assert first_pause.t_last_speech < second_pause.t_last_speech
    # the last announced pause and the end share the same last speech: the draft can be reused
    assert second_pause.t_last_speech == end.t_last_speech
    assert events[3][0] - second_pause.t_last_speech == pytest.approx(0.224)  # first frame ≥ 200 ms


# ---------------------------------------------------------------- ending a finished request early


class Scripted:
    """A detector stepped frame by frame, so a test can call `end_early` between frames."""

    def __init__(self) -> None:
        self.detector = TurnDetector(TurnParams(speculative_pause_s=0.12), frame_s=FRAME)
        self.t = 0.0
        self.events: list[tuple[float, TurnEvent]] = []

    def play(self, seconds: float, probability: float) -> list[TurnEvent]:
        new: list[tuple[float, TurnEvent]] = []
        for _ in range(round(seconds / FRAME)):
            self.t = round(self.t + FRAME, 6)
            new += [(self.t, e) for e in self.detector.step(self.t, probability, False)]
        self.events += new
        return [e for _, e in new]

    def pause(self) -> SpeechPause:
        pauses = [e for _, e in self.events if isinstance(e, SpeechPause)]
        return pauses[-1]


def test_a_finished_request_ends_after_the_shorter_silence() -> None:
    s = Scripted()
    s.play(0.96, 0.9)
    s.play(0.16, 0.0)  # the pause is announced at 128 ms; the draft's words come back at 160 ms
    key = s.pause().t_last_speech
    assert s.detector.end_early(key, 0.25, s.t) == []  # not yet 250 ms of silence
    events = s.play(0.5, 0.0)
    assert kinds([(0, e) for e in events]) == [SpeechEnd]
    end = events[0]
    assert isinstance(end, SpeechEnd) and end.t_last_speech == key
    assert end.t_decided - key == pytest.approx(0.256)  # the first frame ≥ 250 ms, not 512 ms
    assert not s.detector.in_burst


def test_a_finished_request_whose_words_come_late_ends_at_once() -> None:
    s = Scripted()
    s.play(0.96, 0.9)
    s.play(0.32, 0.0)  # STT took longer than the shorter silence
    key = s.pause().t_last_speech
    (end,) = s.detector.end_early(key, 0.25, s.t)
    assert end.t_last_speech == key and end.t_decided == s.t and not s.detector.in_burst
    assert s.play(0.5, 0.0) == []  # the turn is over: no second end


def test_speech_after_the_pause_voids_an_early_end() -> None:
    s = Scripted()
    s.play(0.96, 0.9)
    s.play(0.16, 0.0)
    key = s.pause().t_last_speech
    s.detector.end_early(key, 0.25, s.t)
    assert kinds([(0, e) for e in s.play(0.32, 0.9)]) == [SpeechResumed]
    # the same words again are stale now: the caller went on after them
    assert s.detector.end_early(key, 0.25, s.t) == []
    s.play(0.384, 0.0)  # longer than the early silence, shorter than end_of_turn_silence: no end
    assert s.detector.in_burst
    events = s.play(0.2, 0.0)
    assert kinds([(0, e) for e in events]) == [SpeechEnd]
    assert isinstance(events[0], SpeechEnd) and events[0].t_decided - events[0].t_last_speech >= 0.5


def test_no_early_end_without_a_pause_or_once_the_turn_is_over() -> None:
    s = Scripted()
    s.play(0.96, 0.9)
    assert s.detector.end_early(s.t, 0.0, s.t) == []  # speaking, no pause announced
    s.play(0.6, 0.0)  # the turn ends on its own
    assert s.detector.end_early(s.pause().t_last_speech, 0.25, s.t) == []


def test_a_new_turn_does_not_resume_the_last_turns_pause() -> None:
    # the pause before the last turn's end must not make the next turn's speech a SpeechResumed
    s = Scripted()
    s.play(0.96, 0.9)
    s.play(0.6, 0.0)
    events = s.play(0.96, 0.9)
    assert kinds([(0, e) for e in events]) == [SpeechStart]
