"""The static-payload-type codecs a phone call carries here: G.711 µ-law (PCMU) and A-law (PCMA)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from voxline.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from voxline.audio.pcm import AudioChunk, Int16Array

__all__ = ["CODECS", "PCMA", "PCMU", "Codec"]


_G711: dict[str, tuple[Callable[[AudioChunk], bytes], Callable[[bytes], Int16Array]]] = {
    "PCMU": (ulaw_encode, ulaw_decode),
    "PCMA": (alaw_encode, alaw_decode),
}


@dataclass(frozen=True)
class Codec:
    name: str
    payload_type: int
    clock_rate: int = 8000

    def __post_init__(self) -> None:
        if self.name not in _G711:
            raise ValueError(f"unsupported codec {self.name!r}; voxline speaks {', '.join(_G711)}")

    def encode(self, audio: AudioChunk) -> bytes:
        """8 kHz int16 audio to G.711 bytes (one byte per sample)."""
        if audio.sample_rate != self.clock_rate:
            raise ValueError(f"{self.name} encodes {self.clock_rate} Hz audio, got {audio.sample_rate} Hz")
        return _G711[self.name][0](audio)

    def decode(self, payload: bytes) -> AudioChunk:
        return AudioChunk(np.asarray(_G711[self.name][1](payload), dtype=np.int16), self.clock_rate)

    def samples_in(self, payload: bytes) -> int:
        """Duration of a payload in timestamp units (G.711: one sample per byte)."""
        return len(payload)


PCMU = Codec("PCMU", 0)
PCMA = Codec("PCMA", 8)
CODECS: dict[str, Codec] = {codec.name: codec for codec in (PCMU, PCMA)}
