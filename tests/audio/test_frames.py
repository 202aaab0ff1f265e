"""FrameSplitter and the energy-based speech boundaries."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from voxline.audio.frames import FrameSplitter
from voxline.audio.levels import is_silent, speech_end_s, speech_start_s
from voxline.audio.pcm import AudioChunk


@given(st.lists(st.integers(0, 700), max_size=30), st.integers(1, 600))
def test_splitter_preserves_every_sample_in_order(sizes: list[int], frame: int) -> None:
    splitter = FrameSplitter(frame, 16000)
    total = sum(sizes)
    source = (np.arange(total) % 30000).astype(np.int16)
    out: list[AudioChunk] = []
    pos = 0
    for size in sizes:
        out.extend(splitter.push(AudioChunk(source[pos : pos + size], 16000)))
        pos += size
    assert all(f.num_samples == frame for f in out)
    assert splitter.pending_samples == total % frame
    last = splitter.flush()
    if total % frame:
        assert last is not None
        assert last.num_samples == frame
        out.append(last)
    else:
        assert last is None
    joined = np.concatenate([f.samples for f in out]) if out else np.zeros(0, np.int16)
    assert joined[:total].tolist() == source.tolist()
    assert not joined[total:].any()


def test_splitter_unpadded_flush_rate_check_and_duration() -> None:
    splitter = FrameSplitter.for_duration(0.032, 16000)
    assert splitter.frame_samples == 512
    assert splitter.push(AudioChunk.silence(0.01, 16000)) == []
    rest = splitter.flush(pad=False)
    assert rest is not None
    assert rest.num_samples == 160
    with pytest.raises(ValueError, match="expects 16000"):
        splitter.push(AudioChunk.silence(0.01, 8000))


def test_speech_boundaries_are_sample_accurate() -> None:
    rate = 8000
    speech = AudioChunk.from_float32(0.3 * np.sin(2 * np.pi * 440 * np.arange(4000) / rate + 0.5), rate)
    noise = AudioChunk((np.random.default_rng(1).normal(0, 20, 2000)).astype(np.int16), rate)  # ~-64 dBFS
    clip = AudioChunk.concat([noise, speech, noise])
    assert speech_start_s(clip) == pytest.approx(0.25, abs=2 / rate)
    assert speech_end_s(clip) == pytest.approx(0.75, abs=2 / rate)
    assert is_silent(noise)
    assert not is_silent(clip)
    assert speech_end_s(noise) is None
    assert speech_start_s(AudioChunk.silence(0.1, rate)) is None


def test_an_isolated_click_is_not_speech() -> None:
    samples = np.zeros(8000, dtype=np.int16)
    samples[4000] = 1000  # peak -30 dBFS, but its 10 ms window is below -45 dBFS
    assert is_silent(AudioChunk(samples, 8000))
