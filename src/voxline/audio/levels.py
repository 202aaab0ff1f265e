"""Where speech starts and ends in a clip, by energy. Used to time turns from the audio itself."""

from __future__ import annotations

import numpy as np

from voxline.audio.pcm import AudioChunk

DEFAULT_THRESHOLD_DBFS = -45.0
_WINDOW_S = 0.010


def _amplitude(threshold_dbfs: float) -> float:
    return float(32768.0 * 10.0 ** (threshold_dbfs / 20.0))


def _loud_windows(chunk: AudioChunk, threshold_dbfs: float) -> tuple[np.ndarray, int]:
    """Indices of 10 ms windows whose RMS is above the threshold, and the window length."""
    window = max(1, round(chunk.sample_rate * _WINDOW_S))
    n = chunk.num_samples
    padded = np.zeros(-(-n // window) * window, dtype=np.float64)
    padded[:n] = chunk.samples
    rms = np.sqrt(np.mean(np.square(padded.reshape(-1, window)), axis=1))
    return np.nonzero(rms > _amplitude(threshold_dbfs))[0], window


def speech_end_s(chunk: AudioChunk, threshold_dbfs: float = DEFAULT_THRESHOLD_DBFS) -> float | None:
    """Offset (s) just after the last loud sample of the last loud 10 ms window; None if all silent.

    Windowed RMS first, so an isolated click in the trailing noise does not count as speech; then
    the exact last sample above the threshold inside that window, for sample-accurate timing.
    """
    loud, window = _loud_windows(chunk, threshold_dbfs)
    if loud.size == 0:
        return None
    start = int(loud[-1]) * window
    part = np.abs(chunk.samples[start : start + window].astype(np.int32))
    above = np.nonzero(part > _amplitude(threshold_dbfs))[0]
    last = start + (int(above[-1]) if above.size else part.size - 1)
    return (last + 1) / chunk.sample_rate


def speech_start_s(chunk: AudioChunk, threshold_dbfs: float = DEFAULT_THRESHOLD_DBFS) -> float | None:
    """Offset (s) of the first loud sample of the first loud 10 ms window; None if all silent."""
    loud, window = _loud_windows(chunk, threshold_dbfs)
    if loud.size == 0:
        return None
    start = int(loud[0]) * window
    part = np.abs(chunk.samples[start : start + window].astype(np.int32))
    above = np.nonzero(part > _amplitude(threshold_dbfs))[0]
    return (start + (int(above[0]) if above.size else 0)) / chunk.sample_rate


def is_silent(chunk: AudioChunk, threshold_dbfs: float = DEFAULT_THRESHOLD_DBFS) -> bool:
    """True when no 10 ms window of the chunk is louder than the threshold."""
    return _loud_windows(chunk, threshold_dbfs)[0].size == 0


def trim_leading_silence(
    chunk: AudioChunk, keep_s: float = 0.005, threshold_dbfs: float = DEFAULT_THRESHOLD_DBFS
) -> AudioChunk:
    """Drop the silence a synthesizer puts before speech (keeping `keep_s` of it): every
    millisecond of it is a millisecond more the caller waits. An all-silent chunk is kept whole."""
    start = speech_start_s(chunk, threshold_dbfs)
    if start is None or start <= keep_s:
        return chunk
    return chunk.slice_s(start - keep_s)
