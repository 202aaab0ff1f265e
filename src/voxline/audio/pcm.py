"""The one audio type that flows through voxline: mono signed 16-bit PCM with its sample rate."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Int16Array = npt.NDArray[np.int16]
Float32Array = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """A block of mono int16 samples. Immutable so it can be shared between tasks without copies."""

    samples: Int16Array
    sample_rate: int

    def __post_init__(self) -> None:
        if self.samples.dtype != np.int16 or self.samples.ndim != 1:
            raise ValueError(
                f"AudioChunk needs a 1-D int16 array, got {self.samples.dtype} {self.samples.shape}"
            )
        if self.sample_rate <= 0:
            raise ValueError(f"sample rate must be positive, got {self.sample_rate}")

    @property
    def num_samples(self) -> int:
        return int(self.samples.shape[0])

    @property
    def duration_s(self) -> float:
        return self.num_samples / self.sample_rate

    @property
    def duration_ms(self) -> float:
        return 1000.0 * self.num_samples / self.sample_rate

    @classmethod
    def silence(cls, duration_s: float, sample_rate: int) -> AudioChunk:
        return cls(np.zeros(round(duration_s * sample_rate), dtype=np.int16), sample_rate)

    @classmethod
    def from_float32(cls, samples: npt.NDArray[np.floating], sample_rate: int) -> AudioChunk:
        clipped = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
        return cls((clipped * 32767.0).round().astype(np.int16), sample_rate)

    @classmethod
    def from_bytes(cls, data: bytes, sample_rate: int) -> AudioChunk:
        """From little-endian s16 bytes (the wire format of WebSocket, AudioSocket and WAV)."""
        if len(data) % 2:
            raise ValueError(f"s16 PCM needs an even number of bytes, got {len(data)}")
        return cls(np.frombuffer(data, dtype="<i2").astype(np.int16), sample_rate)

    def to_bytes(self) -> bytes:
        return self.samples.astype("<i2").tobytes()

    def to_float32(self) -> Float32Array:
        return (self.samples.astype(np.float32) / 32768.0).astype(np.float32)

    def rms_dbfs(self) -> float:
        if self.num_samples == 0:
            return -120.0
        rms = float(np.sqrt(np.mean(np.square(self.samples.astype(np.float64)))))
        return 20.0 * float(np.log10(max(rms, 1e-9) / 32768.0))

    def slice_s(self, start_s: float, end_s: float | None = None) -> AudioChunk:
        start = max(0, round(start_s * self.sample_rate))
        end = self.num_samples if end_s is None else min(self.num_samples, round(end_s * self.sample_rate))
        return AudioChunk(self.samples[start:end], self.sample_rate)

    @staticmethod
    def concat(chunks: Iterable[AudioChunk], sample_rate: int | None = None) -> AudioChunk:
        parts = list(chunks)
        rate = sample_rate if sample_rate is not None else (parts[0].sample_rate if parts else 16000)
        for part in parts:
            if part.sample_rate != rate:
                raise ValueError(f"cannot concat {part.sample_rate} Hz audio into {rate} Hz")
        if not parts:
            return AudioChunk(np.zeros(0, dtype=np.int16), rate)
        return AudioChunk(np.concatenate([p.samples for p in parts]).astype(np.int16), rate)
