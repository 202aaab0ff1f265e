"""Level helpers: finding and trimming silence around speech."""

from __future__ import annotations

import numpy as np
import pytest

from voxline.audio.levels import speech_start_s, trim_leading_silence
from voxline.audio.pcm import AudioChunk


def test_trim_leading_silence_keeps_a_sliver_and_all_the_speech() -> None:
    rate = 22050
    lead = np.zeros(round(0.04 * rate), dtype=np.int16)
    t = np.arange(round(0.3 * rate)) / rate
    voice = (8000 * np.sin(2 * np.pi * 220 * t)).astype(np.int16)
    chunk = AudioChunk(np.concatenate([lead, voice]), rate)
    trimmed = trim_leading_silence(chunk, keep_s=0.005)
    assert trimmed.duration_s == pytest.approx(0.305, abs=0.002)
    assert speech_start_s(trimmed) == pytest.approx(0.005, abs=0.002)
    silent = AudioChunk(np.zeros(1000, dtype=np.int16), rate)
    assert trim_leading_silence(silent) is silent
