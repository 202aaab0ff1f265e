"""Mid-sentence pause turns: the pause is where it should be, as long as asked, with speech around it."""

from __future__ import annotations

import numpy as np
import pytest

from voxline.audio.levels import is_silent
from voxline.audio.pcm import AudioChunk
from voxline.bench.pauses import inner_gaps, pause_utterances, stretch_gap, with_mid_pause
from voxline.bench.utterances import Utterance, caller_utterances

RATE = 8000


def tone(seconds: float, hz: float = 300.0) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return (8000 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * RATE), np.int16)


def sentence(gap_s: float = 0.06) -> AudioChunk:
    """Four "words" (tones) with short gaps, the middle gap at 0.95..0.95+gap_s."""
    parts = [silence(0.2), tone(0.35), silence(0.05), tone(0.35), silence(gap_s)]
    parts += [tone(0.35), silence(0.05), tone(0.35), silence(0.3)]
    return AudioChunk(np.concatenate(parts), RATE)


def silent_run_around(audio: AudioChunk, at_s: float) -> float:
    """Length of the quiet stretch (10 ms windows) that contains `at_s`."""
    window = RATE // 100
    quiet = [is_silent(audio.slice_s(i / 100, (i + 1) / 100)) for i in range(audio.num_samples // window)]
    i = round(at_s * 100)
    assert quiet[i], "no silence at the pause"
    start, end = i, i
    while start > 0 and quiet[start - 1]:
        start -= 1
    while end < len(quiet) and quiet[end]:
        end += 1
    return (end - start) / 100


def test_inner_gaps_finds_the_gaps_between_words_but_not_the_edges() -> None:
    gaps = inner_gaps(sentence())
    starts = [round(g.start_s, 2) for g in gaps]
    assert 0.95 in starts  # the middle gap
    assert all(g.start_s > 0.2 + 0.25 and g.end_s < 1.76 - 0.25 for g in gaps)


def test_stretch_gap_makes_the_pause_exactly_as_long_as_asked() -> None:
    audio = sentence()
    gap = next(g for g in inner_gaps(audio) if round(g.start_s, 2) == 0.95)
    stretched = stretch_gap(audio, gap, 0.35)
    assert stretched.num_samples - audio.num_samples == pytest.approx((0.35 - gap.length_s) * RATE, abs=1)
    assert silent_run_around(stretched, 1.1) == pytest.approx(0.35, abs=0.02)


def test_with_mid_pause_keeps_speech_on_both_sides_and_the_transcript() -> None:
    utterance = Utterance("synthetic", sentence(), "one two three four")
    paused = with_mid_pause(utterance, 0.4)
    assert paused is not None and paused.paused and paused.pause_ms == 400.0
    assert paused.text == utterance.text
    assert paused.pause_at_s is not None
    before = paused.audio.slice_s(0.0, paused.pause_at_s)
    after = paused.audio.slice_s(paused.pause_at_s + 0.4)
    assert not is_silent(before) and not is_silent(after)
    assert silent_run_around(paused.audio, paused.pause_at_s + 0.2) == pytest.approx(0.4, abs=0.02)


def test_with_mid_pause_skips_short_prompts() -> None:
    assert with_mid_pause(Utterance("short", sentence(), "hello world"), 0.3) is None


def test_pause_turns_from_the_recordings_are_seeded_and_in_range() -> None:
    source = caller_utterances()
    first = pause_utterances(source, seed=3)
    again = pause_utterances(source, seed=3)
    assert len(first) >= 12
    assert [(u.name, u.pause_ms) for u in first] == [(u.name, u.pause_ms) for u in again]
    for paused in first:
        assert paused.pause_ms is not None and 250 <= paused.pause_ms <= 420
        assert paused.pause_at_s is not None
        middle = paused.pause_at_s + paused.pause_ms / 2000
        assert silent_run_around(paused.audio, middle) >= paused.pause_ms / 1000 - 0.02
        original = next(u for u in source if u.name == paused.name)
        assert paused.text == original.text
        assert paused.audio.num_samples > original.audio.num_samples
