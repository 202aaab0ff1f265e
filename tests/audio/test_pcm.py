"""AudioChunk helpers."""

from __future__ import annotations

import numpy as np
import pytest

from voxline.audio.pcm import AudioChunk


def test_validation() -> None:
    with pytest.raises(ValueError, match="1-D int16"):
        AudioChunk(np.zeros(4, dtype=np.float32), 8000)
    with pytest.raises(ValueError, match="1-D int16"):
        AudioChunk(np.zeros((2, 2), dtype=np.int16), 8000)
    with pytest.raises(ValueError, match="positive"):
        AudioChunk(np.zeros(4, dtype=np.int16), 0)


def test_durations_and_silence() -> None:
    chunk = AudioChunk.silence(0.02, 8000)
    assert chunk.num_samples == 160
    assert chunk.duration_s == pytest.approx(0.02)
    assert chunk.duration_ms == pytest.approx(20.0)
    assert chunk.rms_dbfs() <= -120.0


def test_bytes_round_trip_is_little_endian() -> None:
    chunk = AudioChunk(np.array([1, -2, 32767, -32768], dtype=np.int16), 16000)
    data = chunk.to_bytes()
    assert data[:2] == b"\x01\x00"
    assert AudioChunk.from_bytes(data, 16000).samples.tolist() == [1, -2, 32767, -32768]
    with pytest.raises(ValueError, match="even number"):
        AudioChunk.from_bytes(b"\x00\x00\x00", 16000)


def test_float_conversion_clips_and_scales() -> None:
    chunk = AudioChunk.from_float32(np.array([0.0, 0.5, -2.0, 2.0]), 8000)
    assert chunk.samples.tolist() == [0, 16384, -32767, 32767]
    back = chunk.to_float32()
    assert back.dtype == np.float32
    assert back[1] == pytest.approx(0.5, abs=1e-4)


def test_rms_of_full_scale_square_is_zero_dbfs() -> None:
    chunk = AudioChunk(np.array([32767, -32767] * 50, dtype=np.int16), 8000)
    assert chunk.rms_dbfs() == pytest.approx(0.0, abs=0.01)


def test_slice_and_concat() -> None:
    chunk = AudioChunk(np.arange(100, dtype=np.int16), 100)
    assert chunk.slice_s(0.1, 0.2).samples.tolist() == list(range(10, 20))
    assert chunk.slice_s(0.95).num_samples == 5
    joined = AudioChunk.concat([chunk.slice_s(0, 0.5), chunk.slice_s(0.5)])
    assert joined.samples.tolist() == chunk.samples.tolist()
    assert AudioChunk.concat([], sample_rate=8000).num_samples == 0
    with pytest.raises(ValueError, match="cannot concat"):
        AudioChunk.concat([chunk, AudioChunk.silence(0.1, 200)])
