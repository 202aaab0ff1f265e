"""The slin16 (L16, 16 kHz, big-endian) codec used for wideband ARI external media."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from voxline.audio.pcm import AudioChunk
from voxline.telephony.ari.media import L16_16K, codec_for_format
from voxline.telephony.rtp.codecs import PCMA, PCMU


def test_formats_map_to_codecs() -> None:
    assert codec_for_format("ulaw") is PCMU
    assert codec_for_format("alaw") is PCMA
    assert codec_for_format("slin16") is L16_16K
    with pytest.raises(ValueError, match="g722"):
        codec_for_format("g722")


def test_l16_is_big_endian() -> None:
    chunk = AudioChunk(np.array([1, -2, 0x1234], dtype=np.int16), 16000)
    assert L16_16K.encode(chunk) == b"\x00\x01\xff\xfe\x12\x34"
    with pytest.raises(ValueError):
        L16_16K.encode(AudioChunk(np.zeros(4, dtype=np.int16), 8000))


@given(st.lists(st.integers(-32768, 32767), max_size=400))
def test_l16_round_trip(values: list[int]) -> None:
    chunk = AudioChunk(np.array(values, dtype=np.int16), 16000)
    payload = L16_16K.encode(chunk)
    assert L16_16K.samples_in(payload) == len(values)
    assert np.array_equal(L16_16K.decode(payload).samples, chunk.samples)


@given(st.binary(max_size=101))
def test_l16_decodes_any_payload(payload: bytes) -> None:
    decoded = L16_16K.decode(payload)
    assert decoded.num_samples == len(payload) // 2 and decoded.sample_rate == 16000
