"""In-band DTMF: find keypad tones in call audio, for peers that negotiate no telephone-event.

The audio is taken to 8 kHz and cut into blocks of 102 samples (12.75 ms, the block length the
classic detectors use: short enough for a 40 ms tone to fill two whole blocks, long enough to tell
the eight frequencies apart). Each block gets the power at the four row and four column
frequencies, Goertzel's single-bin DFT at each exact frequency (here as one matrix product for all
eight), and passes as a key only if:

- the strongest row and the strongest column are each loud enough (`min_level_dbfs`);
- twist: the column is at most 4 dB stronger than the row (reverse twist) or at most 8 dB weaker
  (normal twist), the limits telephone networks allow;
- each stands 8 dB clear of the other frequencies in its group (speech spreads energy; a key does not);
- together they carry most of the block's energy (`min_tone_fraction`): speech and noise carry
  their energy elsewhere, and a key over speech is still mostly key.

A key starts after `hits_to_begin` consecutive matching blocks (about 25 ms) and ends after
`misses_to_end` blocks without it, or with a different key; it is reported when it ends, with
its duration. A key shorter than `min_duration_ms` is dropped (ITU-T Q.24: 40 ms must be taken,
well under that refused).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from voxline.audio.pcm import AudioChunk, Int16Array
from voxline.audio.resample import StreamResampler

__all__ = ["DtmfDetector", "DtmfKey"]

RATE = 8000
BLOCK = 102
ROWS = (697.0, 770.0, 852.0, 941.0)
COLS = (1209.0, 1336.0, 1477.0, 1633.0)
KEYS = ("123A", "456B", "789C", "*0#D")


@dataclass(frozen=True, slots=True)
class DtmfKey:
    digit: str
    duration_ms: int


def _bins() -> np.ndarray:
    n = np.arange(BLOCK)
    freqs = np.array(ROWS + COLS)
    return np.exp(-2j * np.pi * np.outer(freqs, n) / RATE)


class DtmfDetector:
    """Feed audio of any rate, in any chunking; get the keys that ended in it."""

    def __init__(
        self,
        *,
        min_level_dbfs: float = -36.0,
        normal_twist_db: float = 8.0,
        reverse_twist_db: float = 4.0,
        relative_peak_db: float = 8.0,
        min_tone_fraction: float = 0.6,
        hits_to_begin: int = 2,
        misses_to_end: int = 3,
        min_duration_ms: int = 30,
    ) -> None:
        # A sine of amplitude A over the block has energy A^2 * BLOCK / 2; the level is per tone.
        amplitude = 32768 * 10 ** (min_level_dbfs / 20)
        self._min_energy = amplitude**2 * BLOCK / 2
        self._normal_twist = 10 ** (normal_twist_db / 10)
        self._reverse_twist = 10 ** (reverse_twist_db / 10)
        self._relative_peak = 10 ** (relative_peak_db / 10)
        self._min_fraction = min_tone_fraction
        self._hits_to_begin = hits_to_begin
        self._misses_to_end = misses_to_end
        self._min_blocks = int(np.ceil(min_duration_ms / (1000 * BLOCK / RATE)))
        self._bins = _bins()
        self._resampler: StreamResampler | None = None
        self._input_rate = RATE
        self._pending = np.zeros(0, dtype=np.float64)
        self._candidate: str | None = None
        self._candidate_hits = 0
        self._current: str | None = None
        self._current_blocks = 0
        self._misses = 0

    def feed(self, chunk: AudioChunk) -> list[DtmfKey]:
        """The keys that ended within this chunk (usually none)."""
        samples = self._to_8k(chunk)
        self._pending = np.concatenate([self._pending, samples.astype(np.float64)])
        keys: list[DtmfKey] = []
        while self._pending.size >= BLOCK:
            block, self._pending = self._pending[:BLOCK], self._pending[BLOCK:]
            key = self._step(self.classify(block))
            if key is not None:
                keys.append(key)
        return keys

    def flush(self) -> list[DtmfKey]:
        """The key still sounding when the audio ended, if it was long enough."""
        key = self._finish()
        self._candidate, self._candidate_hits = None, 0
        return [key] if key is not None else []

    def classify(self, block: np.ndarray) -> str | None:
        """The key one 8 kHz block of `BLOCK` samples holds, if it passes every check."""
        spectrum = self._bins @ block
        power = (spectrum.real**2 + spectrum.imag**2) * (2 / BLOCK)  # energy of each component
        rows, cols = power[:4], power[4:]
        r, c = int(np.argmax(rows)), int(np.argmax(cols))
        row, col = rows[r], cols[c]
        if row < self._min_energy or col < self._min_energy:
            return None
        if col > row * self._reverse_twist or row > col * self._normal_twist:
            return None
        if np.any(np.delete(rows, r) * self._relative_peak > row):
            return None
        if np.any(np.delete(cols, c) * self._relative_peak > col):
            return None
        total = float(np.dot(block, block))
        if row + col < self._min_fraction * total:
            return None
        return KEYS[r][c]

    def _to_8k(self, chunk: AudioChunk) -> Int16Array:
        if chunk.sample_rate == RATE:
            return chunk.samples
        if self._resampler is None or self._input_rate != chunk.sample_rate:
            self._resampler = StreamResampler(chunk.sample_rate, RATE)
            self._input_rate = chunk.sample_rate
        return self._resampler.process(chunk).samples

    def _step(self, digit: str | None) -> DtmfKey | None:
        ended: DtmfKey | None = None
        if self._current is not None:
            if digit == self._current:
                self._current_blocks += 1 + self._misses  # a dropout inside the key is part of it
                self._misses = 0
                return None
            self._misses += 1
            if digit is None and self._misses < self._misses_to_end:
                return None
            ended = self._finish()
        if digit is not None and digit == self._candidate:
            self._candidate_hits += 1
        else:
            self._candidate, self._candidate_hits = digit, 1 if digit is not None else 0
        if self._candidate is not None and self._candidate_hits >= self._hits_to_begin:
            self._current, self._current_blocks, self._misses = self._candidate, self._candidate_hits, 0
            self._candidate, self._candidate_hits = None, 0
        return ended

    def _finish(self) -> DtmfKey | None:
        digit, blocks = self._current, self._current_blocks
        self._current, self._current_blocks, self._misses = None, 0, 0
        if digit is None or blocks < self._min_blocks:
            return None
        return DtmfKey(digit, round(1000 * blocks * BLOCK / RATE))
