"""Which RTP codec carries each ARI external-media `format`.

`ulaw`/`alaw` are G.711 (static payload types 0/8). `slin16` is 16-bit linear PCM at 16 kHz in
network byte order (RFC 3551 L16), sent by Asterisk with its static mapping, payload type 118.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from voxline.audio.pcm import AudioChunk
from voxline.telephony.rtp.codecs import PCMA, PCMU, Codec

SLIN16_PAYLOAD_TYPE = 118


@dataclass(frozen=True)
class L16Codec(Codec):
    """Big-endian 16-bit linear PCM (RFC 3551 L16): two bytes per sample, at `clock_rate`."""

    def __post_init__(self) -> None:
        if self.name != "L16":
            raise ValueError(f"L16Codec carries L16, not {self.name!r}")

    def encode(self, audio: AudioChunk) -> bytes:
        if audio.sample_rate != self.clock_rate:
            raise ValueError(f"L16 encodes {self.clock_rate} Hz audio, got {audio.sample_rate} Hz")
        return audio.samples.astype(">i2").tobytes()

    def decode(self, payload: bytes) -> AudioChunk:
        usable = len(payload) - len(payload) % 2  # a stray odd byte cannot be a sample: drop it
        samples = np.frombuffer(payload[:usable], dtype=">i2").astype(np.int16)
        return AudioChunk(samples, self.clock_rate)

    def samples_in(self, payload: bytes) -> int:
        return len(payload) // 2


L16_16K = L16Codec("L16", SLIN16_PAYLOAD_TYPE, 16000)

_BY_FORMAT: dict[str, Codec] = {"ulaw": PCMU, "alaw": PCMA, "slin16": L16_16K}


def codec_for_format(ari_format: str) -> Codec:
    try:
        return _BY_FORMAT[ari_format]
    except KeyError:
        raise ValueError(f"unsupported ARI external media format {ari_format!r}") from None
