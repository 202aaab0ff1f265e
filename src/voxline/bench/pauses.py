"""Mid-sentence pause turns: a recorded sentence with one inter-word gap stretched into a pause.

A caller who stops to think in the middle of a sentence ("I'd like to ... check my balance") must
not get an answer to half a sentence. These turns test exactly that: the words and their order are
untouched; only a natural gap between two words near the middle is lengthened (by inserting
silence) to a pause of `min_pause_s`..`max_pause_s`, drawn from a seeded generator.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from voxline.audio.levels import speech_end_s, speech_start_s
from voxline.audio.pcm import AudioChunk
from voxline.bench.utterances import Utterance, words

WINDOW_S = 0.010
QUIET_DBFS = -45.0
"""A 10 ms window below this is a gap between words (the recordings' noise floor sits far below)."""
MIN_GAP_S = 0.030
EDGE_S = 0.25
"""A gap this close to the first or last sound is a breath at the edge, not between two words."""
MIN_WORDS = 4


@dataclass(frozen=True)
class Gap:
    start_s: float
    end_s: float

    @property
    def length_s(self) -> float:
        return self.end_s - self.start_s


def inner_gaps(audio: AudioChunk) -> list[Gap]:
    """Quiet stretches (>= MIN_GAP_S) strictly inside the speech, away from its edges."""
    first, last = speech_start_s(audio, QUIET_DBFS), speech_end_s(audio, QUIET_DBFS)
    if first is None or last is None:
        return []
    window = round(audio.sample_rate * WINDOW_S)
    n = audio.num_samples // window
    frames = audio.samples[: n * window].astype(np.float64).reshape(n, window)
    rms = np.sqrt(np.mean(np.square(frames), axis=1))
    quiet = rms < 32768.0 * 10.0 ** (QUIET_DBFS / 20.0)
    gaps: list[Gap] = []
    run_start: int | None = None
    for i, is_quiet in enumerate([*quiet.tolist(), False]):
        if is_quiet and run_start is None:
            run_start = i
        elif not is_quiet and run_start is not None:
            gap = Gap(run_start * WINDOW_S, i * WINDOW_S)
            if gap.length_s >= MIN_GAP_S and gap.start_s > first + EDGE_S and gap.end_s < last - EDGE_S:
                gaps.append(gap)
            run_start = None
    return gaps


def stretch_gap(audio: AudioChunk, gap: Gap, pause_s: float) -> AudioChunk:
    """The audio with silence inserted in the middle of `gap` so that it lasts `pause_s` in all."""
    extra = max(0, round((pause_s - gap.length_s) * audio.sample_rate))
    cut = round((gap.start_s + gap.end_s) / 2 * audio.sample_rate)
    samples = np.concatenate([audio.samples[:cut], np.zeros(extra, np.int16), audio.samples[cut:]])
    return AudioChunk(samples, audio.sample_rate)


def with_mid_pause(utterance: Utterance, pause_s: float) -> Utterance | None:
    """`utterance` with its most central inter-word gap stretched to `pause_s`; None if it has none
    (too few words, or no gap shorter than the pause wanted)."""
    if len(words(utterance.text)) < MIN_WORDS:
        return None
    audio = utterance.audio
    first, last = speech_start_s(audio, QUIET_DBFS), speech_end_s(audio, QUIET_DBFS)
    gaps = [g for g in inner_gaps(audio) if g.length_s < pause_s]
    if first is None or last is None or not gaps:
        return None
    middle = (first + last) / 2
    gap = min(gaps, key=lambda g: abs((g.start_s + g.end_s) / 2 - middle))
    return replace(
        utterance,
        audio=stretch_gap(audio, gap, pause_s),
        pause_ms=round(pause_s * 1000, 1),
        pause_at_s=gap.start_s,
    )


def pause_utterances(
    utterances: Sequence[Utterance],
    *,
    seed: int = 5,
    min_pause_s: float = 0.25,
    max_pause_s: float = 0.42,
    limit: int | None = None,
) -> list[Utterance]:
    """Pause turns made from the multi-word `utterances` that have a usable gap (reproducible)."""
    rng = random.Random(seed)
    out: list[Utterance] = []
    for utterance in utterances:
        if limit is not None and len(out) >= limit:
            break
        paused = with_mid_pause(utterance, rng.uniform(min_pause_s, max_pause_s))
        if paused is not None:
            out.append(paused)
    return out
