"""Audio primitives: PCM chunks, G.711, resampling, WAV I/O and real-time pacing."""

from voxline.audio.pcm import AudioChunk

__all__ = ["AudioChunk"]
