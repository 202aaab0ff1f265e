"""G.711: every int16 input against the scalar ITU reference, known code points, round trips."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from voxline.audio.g711 import (
    alaw_decode,
    alaw_decode_sample,
    alaw_encode,
    alaw_encode_sample,
    ulaw_decode,
    ulaw_decode_sample,
    ulaw_encode,
    ulaw_encode_sample,
)
from voxline.audio.pcm import AudioChunk

ALL_INT16 = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)


def test_tables_match_scalar_reference_for_every_input() -> None:
    ulaw = np.frombuffer(ulaw_encode(ALL_INT16), dtype=np.uint8)
    alaw = np.frombuffer(alaw_encode(ALL_INT16), dtype=np.uint8)
    assert ulaw.tolist() == [ulaw_encode_sample(int(v)) for v in ALL_INT16]
    assert alaw.tolist() == [alaw_encode_sample(int(v)) for v in ALL_INT16]
    codes = bytes(range(256))
    assert ulaw_decode(codes).tolist() == [ulaw_decode_sample(c) for c in range(256)]
    assert alaw_decode(codes).tolist() == [alaw_decode_sample(c) for c in range(256)]


@pytest.mark.parametrize(
    ("sample", "ulaw", "alaw"),
    [
        (0, 0xFF, 0xD5),
        (-1, 0x7F, 0x55),  # G.711 uses the one's complement for negatives: -1 is "minus zero"
        (32767, 0x80, 0xAA),
        (-32768, 0x00, 0x2A),
        (8, 0xFE, 0xD5),
    ],
)
def test_known_encodings(sample: int, ulaw: int, alaw: int) -> None:
    data = np.array([sample], dtype=np.int16)
    assert ulaw_encode(data) == bytes([ulaw])
    assert alaw_encode(data) == bytes([alaw])


def test_known_decodings() -> None:
    assert ulaw_decode(bytes([0x00, 0x80, 0x7F, 0xFF, 0x7E, 0xFE])).tolist() == [-32124, 32124, 0, 0, -8, 8]
    assert alaw_decode(bytes([0xD5, 0x55, 0x2A, 0xAA, 0xD4, 0x54])).tolist() == [
        8,
        -8,
        -32256,
        32256,
        24,
        -24,
    ]


def test_decode_tables_are_odd_symmetric_and_monotonic() -> None:
    ulaw_levels = ulaw_decode(bytes(range(128, 256)))  # positive half, codes descend in level
    alaw_positive = sorted(alaw_decode(bytes(range(128, 256))).tolist())
    assert np.all(np.diff(ulaw_levels.astype(np.int32)) < 0)
    assert len(set(alaw_positive)) == 128
    assert (ulaw_decode(bytes(range(128))) == -ulaw_decode(bytes(range(128, 256)))).all()
    assert (alaw_decode(bytes(range(128))) == -alaw_decode(bytes(range(128, 256)))).all()


def test_matches_cpython_audioop_where_it_is_standard() -> None:
    """An independent implementation: audioop (CPython <= 3.12) agrees on A-law and all decoding.

    For µ-law audioop negates negatives instead of taking the one's complement, so it differs from
    G.711 by one code at a few hundred negative segment boundaries; non-negative inputs must agree.
    """
    if sys.version_info >= (3, 13):
        pytest.skip("audioop was removed in Python 3.13")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop  # an ImportError below 3.13 is a broken Python: fail, do not skip
    codes = bytes(range(256))
    assert (np.frombuffer(audioop.alaw2lin(codes, 2), "<i2") == alaw_decode(codes)).all()
    assert (np.frombuffer(audioop.ulaw2lin(codes, 2), "<i2") == ulaw_decode(codes)).all()
    pcm = ALL_INT16.astype("<i2").tobytes()
    assert audioop.lin2alaw(pcm, 2) == alaw_encode(ALL_INT16)
    theirs = np.frombuffer(audioop.lin2ulaw(pcm, 2), np.uint8)
    ours = np.frombuffer(ulaw_encode(ALL_INT16), np.uint8)
    differ = np.nonzero(theirs != ours)[0]
    assert (ALL_INT16[differ] < 0).all()
    assert (np.abs(theirs[differ].astype(int) - ours[differ].astype(int)) == 1).all()


@given(st.lists(st.integers(-32768, 32767), max_size=200))
def test_round_trip_error_is_within_half_a_quantisation_step(values: list[int]) -> None:
    pcm = np.array(values, dtype=np.int16)
    for encode, decode, max_rel in ((ulaw_encode, ulaw_decode, 1 / 32), (alaw_encode, alaw_decode, 1 / 32)):
        back = decode(encode(pcm)).astype(np.int32)
        err = np.abs(back - pcm.astype(np.int32))
        # log quantisation: error is a fixed fraction of the level, plus the small-signal step
        assert (err <= np.abs(pcm.astype(np.int32)) * max_rel + 140).all()


@given(st.binary(max_size=300))
def test_decode_then_encode_is_identity_except_zero_codes(data: bytes) -> None:
    assert alaw_encode(alaw_decode(data)) == data
    # µ-law has two zeros (0x7F "-0" and 0xFF "+0"); both decode to 0 and re-encode as 0xFF
    assert ulaw_encode(ulaw_decode(data)) == data.replace(b"\x7f", b"\xff")


def test_accepts_audio_chunks_and_rejects_other_dtypes() -> None:
    chunk = AudioChunk(np.array([0, 1000, -1000], dtype=np.int16), 8000)
    assert ulaw_encode(chunk) == ulaw_encode(chunk.samples)
    assert len(alaw_encode(chunk)) == 3
    with pytest.raises(TypeError):
        ulaw_encode(np.zeros(3, dtype=np.float32))
