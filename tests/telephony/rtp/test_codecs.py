"""The G.711 codecs as RTP payload formats (G.722: test_g722.py)."""

from __future__ import annotations

import numpy as np
import pytest

from voxline.audio.g711 import alaw_encode, ulaw_encode
from voxline.audio.pcm import AudioChunk
from voxline.telephony.rtp import CODECS, PCMA, PCMU, Codec
from voxline.telephony.rtp.codecs import G722


def test_static_payload_types() -> None:
    assert (PCMU.payload_type, PCMA.payload_type) == (0, 8)
    assert CODECS == {"PCMU": PCMU, "PCMA": PCMA, "G722": G722}
    assert G722.payload_type == 9
    assert PCMU.clock_rate == PCMA.clock_rate == 8000


@pytest.mark.parametrize(("codec", "encode"), [(PCMU, ulaw_encode), (PCMA, alaw_encode)])
def test_encode_matches_g711_and_decodes_back(codec: Codec, encode: object) -> None:
    rng = np.random.default_rng(0)
    audio = AudioChunk(rng.integers(-32768, 32767, 160, dtype=np.int16), 8000)
    payload = codec.encode(audio)
    assert callable(encode) and payload == encode(audio)
    decoded = codec.decode(payload)
    assert decoded.sample_rate == 8000 and decoded.num_samples == 160
    assert codec.encode(decoded) == payload  # decoding lands on reconstruction levels: stable


def test_a_hand_built_codec_uses_its_own_law() -> None:
    audio = AudioChunk(np.arange(-800, 800, 10, dtype=np.int16), 8000)
    assert Codec("PCMA", 8).encode(audio) == alaw_encode(audio)


def test_wrong_rate_and_unknown_codec_are_refused() -> None:
    with pytest.raises(ValueError, match="8000 Hz"):
        PCMU.encode(AudioChunk.silence(0.02, 16000))
    with pytest.raises(ValueError, match="unsupported codec"):
        Codec("G729", 18)
