"""The codecs a phone call carries here: G.711 µ-law (PCMU) and A-law (PCMA) at 8 kHz, and G.722
(wideband, 16 kHz audio) from the `G722` package (libg722, a bit-exact ITU-T G.722 at 64 kbit/s).

`clock_rate` is the audio's sample rate; `timestamp_rate` is the RTP clock. They differ only for
G.722, whose RTP clock is 8000 although it carries 16 kHz audio: RFC 3551 §4.5.2 kept the rate of
the codec's first definition by mistake, and every implementation follows it (`G722/8000` in SDP,
timestamps advancing 160 per 20 ms packet of 320 samples).
"""

from __future__ import annotations

import array
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from voxline.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from voxline.audio.pcm import AudioChunk, Int16Array

__all__ = ["CODECS", "G722", "PCMA", "PCMU", "Codec", "G722Codec"]


_G711: dict[str, tuple[Callable[[AudioChunk], bytes], Callable[[bytes], Int16Array]]] = {
    "PCMU": (ulaw_encode, ulaw_decode),
    "PCMA": (alaw_encode, alaw_decode),
}


@dataclass(frozen=True)
class Codec:
    name: str
    payload_type: int
    clock_rate: int = 8000
    """The sample rate of the audio it carries."""

    def __post_init__(self) -> None:
        if self.name not in _G711:
            raise ValueError(f"unsupported codec {self.name!r}; voxline speaks {', '.join([*_G711, 'G722'])}")

    @property
    def timestamp_rate(self) -> int:
        """The RTP clock: timestamp units per second."""
        return self.clock_rate

    def for_stream(self) -> Codec:
        """The codec for one RTP stream: itself when stateless; a fresh coder state otherwise."""
        return self

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


G722_BIT_RATE = 64000


def _g722_coder() -> Any:
    try:
        from G722 import G722 as Coder
    except ImportError as exc:  # a dependency; say what is missing rather than fail obscurely
        raise RuntimeError("G.722 needs the 'G722' package (pip install G722)") from exc
    return Coder(16000, G722_BIT_RATE, use_numpy=False)


@dataclass(frozen=True)
class G722Codec(Codec):
    """ITU-T G.722 at 64 kbit/s: 16 kHz audio, one byte per two samples, an 8 kHz RTP clock.

    SB-ADPCM keeps state from frame to frame, so every stream needs its own (`for_stream`): the
    encoder and decoder of a call never share one, and two calls never share anything.
    """

    name: str = "G722"
    payload_type: int = 9
    clock_rate: int = 16000
    _encoder: Any = field(default=None, init=False, compare=False, repr=False)
    _decoder: Any = field(default=None, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.name != "G722" or self.clock_rate != 16000:
            raise ValueError("G722Codec carries G722 at 16000 Hz")

    @property
    def timestamp_rate(self) -> int:
        return 8000

    def for_stream(self) -> G722Codec:
        fresh = dataclasses.replace(self)
        object.__setattr__(fresh, "_encoder", _g722_coder())
        object.__setattr__(fresh, "_decoder", _g722_coder())
        return fresh

    def encode(self, audio: AudioChunk) -> bytes:
        if audio.sample_rate != 16000:
            raise ValueError(f"G722 encodes 16000 Hz audio, got {audio.sample_rate} Hz")
        if self._encoder is None:
            raise RuntimeError("G722Codec.encode needs a stream's codec: call for_stream() first")
        samples = array.array("h")
        samples.frombytes(audio.samples.astype(np.int16).tobytes())
        return bytes(self._encoder.encode(samples))

    def decode(self, payload: bytes) -> AudioChunk:
        if self._decoder is None:
            raise RuntimeError("G722Codec.decode needs a stream's codec: call for_stream() first")
        decoded = self._decoder.decode(payload)
        return AudioChunk(np.frombuffer(decoded, dtype=np.int16).copy(), 16000)

    def samples_in(self, payload: bytes) -> int:
        """One byte is two 16 kHz samples: one tick of the 8 kHz RTP clock."""
        return len(payload)


PCMU = Codec("PCMU", 0)
PCMA = Codec("PCMA", 8)
G722 = G722Codec()
CODECS: dict[str, Codec] = {codec.name: codec for codec in (PCMU, PCMA, G722)}
