"""Re-chunking a stream of AudioChunks into fixed-size frames (VAD windows, 20 ms packets)."""

from __future__ import annotations

import numpy as np

from voxline.audio.pcm import AudioChunk, Int16Array

__all__ = ["FrameSplitter"]


class FrameSplitter:
    """Accepts chunks of any length at one rate; returns whole frames of `frame_samples` each.

    Leftover samples wait for the next push, so no sample is lost or duplicated at chunk edges.
    """

    def __init__(self, frame_samples: int, sample_rate: int) -> None:
        if frame_samples <= 0:
            raise ValueError(f"frame size must be positive, got {frame_samples}")
        self.frame_samples = frame_samples
        self.sample_rate = sample_rate
        self._pending: Int16Array = np.zeros(0, dtype=np.int16)

    @classmethod
    def for_duration(cls, frame_s: float, sample_rate: int) -> FrameSplitter:
        return cls(round(frame_s * sample_rate), sample_rate)

    @property
    def pending_samples(self) -> int:
        return int(self._pending.size)

    def push(self, chunk: AudioChunk) -> list[AudioChunk]:
        if chunk.sample_rate != self.sample_rate:
            raise ValueError(f"frame splitter expects {self.sample_rate} Hz, got {chunk.sample_rate} Hz")
        buf = np.concatenate([self._pending, chunk.samples]) if self._pending.size else chunk.samples
        n_full = buf.size // self.frame_samples
        frames = [
            AudioChunk(buf[i * self.frame_samples : (i + 1) * self.frame_samples].copy(), self.sample_rate)
            for i in range(n_full)
        ]
        self._pending = buf[n_full * self.frame_samples :].copy()
        return frames

    def flush(self, pad: bool = True) -> AudioChunk | None:
        """The leftover samples as a last frame (zero-padded to full size unless `pad` is False)."""
        if self._pending.size == 0:
            return None
        rest = self._pending
        if pad:
            rest = np.concatenate([rest, np.zeros(self.frame_samples - rest.size, dtype=np.int16)])
        self._pending = np.zeros(0, dtype=np.int16)
        return AudioChunk(rest, self.sample_rate)

    def reset(self) -> None:
        self._pending = np.zeros(0, dtype=np.int16)
