"""Streaming sample-rate conversion (soxr), keeping filter state across chunks."""

from __future__ import annotations

import numpy as np
import soxr

from voxline.audio.pcm import AudioChunk


class StreamResampler:
    """Converts a stream of chunks from one rate to another without clicks at chunk edges."""

    def __init__(self, in_rate: int, out_rate: int, quality: str = "HQ") -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._quality = quality
        self._stream: soxr.ResampleStream | None = None
        self.reset()

    def reset(self) -> None:
        if self.in_rate != self.out_rate:
            self._stream = soxr.ResampleStream(
                self.in_rate, self.out_rate, 1, dtype="int16", quality=self._quality
            )

    def process(self, chunk: AudioChunk, last: bool = False) -> AudioChunk:
        if chunk.sample_rate != self.in_rate:
            raise ValueError(f"resampler expects {self.in_rate} Hz, got {chunk.sample_rate} Hz")
        if self._stream is None:
            return chunk
        out = self._stream.resample_chunk(chunk.samples, last=last)
        return AudioChunk(np.asarray(out, dtype=np.int16), self.out_rate)

    def flush(self) -> AudioChunk:
        return self.process(AudioChunk(np.zeros(0, dtype=np.int16), self.in_rate), last=True)


def resample(chunk: AudioChunk, out_rate: int) -> AudioChunk:
    """One-shot conversion of a whole clip."""
    if chunk.sample_rate == out_rate:
        return chunk
    out = soxr.resample(chunk.samples, chunk.sample_rate, out_rate, quality="HQ")
    return AudioChunk(np.asarray(out, dtype=np.int16), out_rate)
