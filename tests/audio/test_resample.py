"""Streaming resampling matches one-shot resampling and keeps length and pitch."""

from __future__ import annotations

import numpy as np
import pytest

from voxline.audio.pcm import AudioChunk
from voxline.audio.resample import StreamResampler, resample


def tone(freq: float, seconds: float, rate: int) -> AudioChunk:
    t = np.arange(round(seconds * rate)) / rate
    return AudioChunk.from_float32(0.5 * np.sin(2 * np.pi * freq * t), rate)


def peak_hz(chunk: AudioChunk) -> float:
    spectrum = np.abs(np.fft.rfft(chunk.to_float32() * np.hanning(chunk.num_samples)))
    return float(np.argmax(spectrum)) * chunk.sample_rate / chunk.num_samples


@pytest.mark.parametrize(
    ("src", "dst"), [(8000, 16000), (16000, 8000), (22050, 16000), (44100, 8000), (24000, 48000)]
)
def test_one_shot_lengths_and_pitch(src: int, dst: int) -> None:
    out = resample(tone(1000, 1.0, src), dst)
    assert out.sample_rate == dst
    assert abs(out.num_samples - dst) <= 1
    assert peak_hz(out) == pytest.approx(1000, abs=2)


@pytest.mark.parametrize(("src", "dst"), [(22050, 8000), (8000, 16000), (48000, 16000)])
def test_streaming_in_20ms_chunks_matches_one_shot(src: int, dst: int) -> None:
    clip = tone(1000, 1.0, src)
    stream = StreamResampler(src, dst)
    step = src // 50
    parts = [
        stream.process(AudioChunk(clip.samples[i : i + step], src)) for i in range(0, clip.num_samples, step)
    ]
    parts.append(stream.flush())
    streamed = AudioChunk.concat(parts)
    whole = resample(clip, dst)
    assert abs(streamed.num_samples - whole.num_samples) <= 2
    n = min(streamed.num_samples, whole.num_samples)
    diff = np.abs(streamed.samples[:n].astype(np.int32) - whole.samples[:n].astype(np.int32))
    # same filter, chunk edges invisible: differences are rounding-level, far below the 16384 amplitude
    assert np.percentile(diff, 99) <= 64
    assert peak_hz(streamed) == pytest.approx(1000, abs=2)


def test_same_rate_is_passthrough_and_rate_mismatch_is_rejected() -> None:
    clip = tone(440, 0.1, 16000)
    assert StreamResampler(16000, 16000).process(clip) is clip
    assert resample(clip, 16000) is clip
    with pytest.raises(ValueError, match="expects 8000 Hz"):
        StreamResampler(8000, 16000).process(clip)


def test_reset_starts_a_fresh_stream() -> None:
    stream = StreamResampler(16000, 8000)
    first = stream.process(tone(440, 0.2, 16000))
    stream.reset()
    again = stream.process(tone(440, 0.2, 16000))
    assert first.samples.tolist() == again.samples.tolist()
