"""G.711 µ-law and A-law, bit-exact with the ITU-T reference (G.711 / G.191 software tools).

The scalar functions below follow the segment/bias algorithm of the recommendation literally; they
are slow but easy to check against the standard. At import they fill lookup tables (65536 entries
for encoding, indexed by the int16 value's bit pattern; 256 for decoding), so the vectorised
functions used on the hot path are one numpy `take` per frame.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from voxline.audio.pcm import AudioChunk, Int16Array

__all__ = [
    "alaw_decode",
    "alaw_decode_sample",
    "alaw_encode",
    "alaw_encode_sample",
    "ulaw_decode",
    "ulaw_decode_sample",
    "ulaw_encode",
    "ulaw_encode_sample",
]

_ALAW_EVEN_BITS = 0x55  # A-law inverts every even bit on the wire
_ULAW_BIAS = 33  # 0x84 (132) on the 16-bit scale, applied here to the 14-bit magnitude (132 >> 2)
_ULAW_MAX_BIASED = 0x1FFF  # 13-bit ceiling of the biased magnitude


# ---------------------------------------------------------------- scalar reference


def alaw_encode_sample(sample: int) -> int:
    """One int16 sample to an A-law byte (12-bit magnitude, one's complement for negatives)."""
    magnitude = (~sample) >> 4 if sample < 0 else sample >> 4  # 0 .. 2047
    if magnitude > 15:
        segment = 1
        while magnitude > 16 + 15:
            magnitude >>= 1
            segment += 1
        magnitude -= 16  # drop the implicit leading 1 of the segment
        magnitude += segment << 4
    if sample >= 0:
        magnitude |= 0x80
    return magnitude ^ _ALAW_EVEN_BITS


def alaw_decode_sample(code: int) -> int:
    """One A-law byte to its int16 reconstruction level (the middle of the quantisation interval)."""
    value = (code ^ _ALAW_EVEN_BITS) & 0x7F
    segment = value >> 4
    mantissa = value & 0x0F
    if segment > 0:
        mantissa += 16  # restore the implicit leading 1
    level = (mantissa << 4) + 0x08
    if segment > 1:
        level <<= segment - 1
    return level if code > 127 else -level


def ulaw_encode_sample(sample: int) -> int:
    """One int16 sample to a µ-law byte (14-bit magnitude plus bias, bits inverted)."""
    biased = ((~sample) >> 2 if sample < 0 else sample >> 2) + _ULAW_BIAS
    biased = min(biased, _ULAW_MAX_BIASED)
    segment = 1
    rest = biased >> 6
    while rest:
        segment += 1
        rest >>= 1
    high_nibble = 0x08 - segment
    low_nibble = 0x0F - ((biased >> segment) & 0x0F)
    code = (high_nibble << 4) | low_nibble
    if sample >= 0:
        code |= 0x80
    return code


def ulaw_decode_sample(code: int) -> int:
    """One µ-law byte to its int16 reconstruction level."""
    sign = -1 if code < 0x80 else 1
    inverted = ~code & 0xFF
    exponent = (inverted >> 4) & 0x07
    mantissa = inverted & 0x0F
    step = 4 << (exponent + 1)
    return sign * ((0x80 << exponent) + step * mantissa + step // 2 - 4 * _ULAW_BIAS)


# ---------------------------------------------------------------- lookup tables


def _encode_table(encode: object) -> npt.NDArray[np.uint8]:
    assert callable(encode)
    # Index i is the int16 whose bit pattern is i, so `samples.view(np.uint16)` indexes directly.
    values = np.arange(65536, dtype=np.uint16).view(np.int16)
    return np.array([encode(int(v)) for v in values], dtype=np.uint8)


def _decode_table(decode: object) -> Int16Array:
    assert callable(decode)
    return np.array([decode(code) for code in range(256)], dtype=np.int16)


_ULAW_ENCODE = _encode_table(ulaw_encode_sample)
_ALAW_ENCODE = _encode_table(alaw_encode_sample)
_ULAW_DECODE = _decode_table(ulaw_decode_sample)
_ALAW_DECODE = _decode_table(alaw_decode_sample)
for _table in (_ULAW_ENCODE, _ALAW_ENCODE, _ULAW_DECODE, _ALAW_DECODE):
    _table.setflags(write=False)


# ---------------------------------------------------------------- vectorised API


def _as_int16(audio: AudioChunk | npt.NDArray[np.integer]) -> Int16Array:
    samples = audio.samples if isinstance(audio, AudioChunk) else np.asarray(audio)
    if samples.dtype != np.int16:
        raise TypeError(f"G.711 encodes int16 samples, got {samples.dtype}")
    return np.ascontiguousarray(samples.reshape(-1))


def ulaw_encode(audio: AudioChunk | npt.NDArray[np.integer]) -> bytes:
    """int16 PCM (any rate; G.711 is meant for 8 kHz) to µ-law bytes, one per sample."""
    return _ULAW_ENCODE[_as_int16(audio).view(np.uint16)].tobytes()


def alaw_encode(audio: AudioChunk | npt.NDArray[np.integer]) -> bytes:
    """int16 PCM to A-law bytes, one per sample."""
    return _ALAW_ENCODE[_as_int16(audio).view(np.uint16)].tobytes()


def ulaw_decode(data: bytes) -> Int16Array:
    """µ-law bytes to int16 samples (a new, writable array)."""
    return _ULAW_DECODE[np.frombuffer(data, dtype=np.uint8)]


def alaw_decode(data: bytes) -> Int16Array:
    """A-law bytes to int16 samples (a new, writable array)."""
    return _ALAW_DECODE[np.frombuffer(data, dtype=np.uint8)]
