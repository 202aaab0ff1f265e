"""AudioSocket framing: the kind table, encoding, and the streaming decoder (with fuzzing)."""

from __future__ import annotations

import itertools
import struct
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxline.telephony.audiosocket.protocol import (
    AUDIO_RATES,
    HEADER_SIZE,
    AudioSocketProtocolError,
    Frame,
    FrameDecoder,
    Kind,
    encode_frame,
    hangup_frame,
    max_audio_bytes,
    uuid_frame,
)


def decode_all(data: bytes) -> list[Frame]:
    decoder = FrameDecoder()
    decoder.feed(data)
    frames = []
    while (frame := decoder.next_frame()) is not None:
        frames.append(frame)
    return frames


def test_kind_table_follows_current_asterisk() -> None:
    assert AUDIO_RATES == {
        0x10: 8000,
        0x11: 12000,  # not 16 kHz: that was an older draft
        0x12: 16000,
        0x13: 24000,
        0x14: 32000,
        0x15: 44100,
        0x16: 48000,
        0x17: 96000,
        0x18: 192000,
    }


def test_encode_is_kind_big_endian_length_payload() -> None:
    assert encode_frame(0x10, b"\x01\x02" * 160)[:3] == bytes([0x10, 0x01, 0x40])
    assert hangup_frame() == b"\x00\x00\x00"
    call_uuid = uuid.UUID("0f0e0d0c-0b0a-0908-0706-050403020100")
    assert uuid_frame(call_uuid) == b"\x01\x00\x10" + call_uuid.bytes
    with pytest.raises(ValueError):
        encode_frame(0x10, bytes(70000))


def test_decoder_reads_every_kind_asterisk_sends() -> None:
    call_uuid = uuid.uuid4()
    wire = (
        uuid_frame(call_uuid)
        + encode_frame(0x10, bytes(320))
        + encode_frame(0x15, bytes(1764))  # 20 ms at 44.1 kHz
        + encode_frame(0x18, bytes(7680))  # 20 ms at 192 kHz
        + encode_frame(Kind.DTMF, b"#")
        + encode_frame(Kind.ERROR, b"\x01")
        + hangup_frame()
    )
    frames = decode_all(wire)
    assert [f.kind for f in frames] == [0x01, 0x10, 0x15, 0x18, 0x03, 0xFF, 0x00]
    assert frames[0].payload == call_uuid.bytes
    assert [len(f.payload) for f in frames[1:4]] == [320, 1764, 7680]
    assert frames[1].is_audio and not frames[4].is_audio


def test_decoder_waits_for_whole_frames_across_chunks() -> None:
    wire = encode_frame(0x12, bytes(range(256)) * 2 + bytes(128)) + encode_frame(Kind.DTMF, b"7")
    decoder = FrameDecoder()
    got: list[Frame] = []
    for byte in wire:
        decoder.feed(bytes([byte]))
        while (frame := decoder.next_frame()) is not None:
            got.append(frame)
    assert got == decode_all(wire)
    assert decoder.buffered == 0


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (b"\x42\x00\x00", "unknown frame kind 0x42"),
        (b"\x02\x00\x01x", "unknown frame kind 0x02"),
        (encode_frame(0x10, bytes(321)), "whole 16-bit samples"),
        (b"\x10\x00\x00", "whole 16-bit samples"),
        (b"\x01\x00\x0f" + bytes(15), "UUID frame must carry 16"),
        (b"\x03\x00\x02" + b"12", "DTMF frame must carry 1"),
        (b"\x00\x00\x01" + b"x", "HANGUP frame must carry 0"),
        (b"\xff\x00\x00", "ERROR frame must carry 1"),
        (b"\x10\xff\xfe", "longer than 200 ms at 8000 Hz"),
    ],
)
def test_decoder_refuses_bad_headers_at_once(wire: bytes, message: str) -> None:
    decoder = FrameDecoder()
    decoder.feed(wire[:3])  # the header alone is enough to refuse: no waiting for a payload
    with pytest.raises(AudioSocketProtocolError, match=message):
        decoder.next_frame()
    decoder.feed(hangup_frame())
    with pytest.raises(AudioSocketProtocolError):  # the stream has lost its framing for good
        decoder.next_frame()


def test_good_frames_before_a_bad_one_are_still_delivered() -> None:
    decoder = FrameDecoder()
    decoder.feed(encode_frame(Kind.DTMF, b"1") + b"\x99\x00\x00")
    assert decoder.next_frame() == Frame(Kind.DTMF, b"1")
    with pytest.raises(AudioSocketProtocolError):
        decoder.next_frame()


def test_audio_size_limit_scales_with_rate_and_fits_the_length_field() -> None:
    assert max_audio_bytes(0x10) == 3200
    assert max_audio_bytes(0x16) == 19200
    assert max_audio_bytes(0x18) == 65534
    assert decode_all(encode_frame(0x18, bytes(65534)))[0].kind == 0x18


def _audio_frame(kind: int) -> st.SearchStrategy[bytes]:
    samples = st.integers(1, min(800, max_audio_bytes(kind) // 2))
    return samples.map(lambda n: encode_frame(kind, bytes(2 * n)))


def _valid_frame() -> st.SearchStrategy[bytes]:
    audio = st.sampled_from(sorted(AUDIO_RATES)).flatmap(_audio_frame)
    return st.one_of(
        audio,
        st.binary(min_size=16, max_size=16).map(lambda b: encode_frame(Kind.UUID, b)),
        st.sampled_from("0123456789*#").map(lambda d: encode_frame(Kind.DTMF, d.encode())),
        st.integers(0, 255).map(lambda c: encode_frame(Kind.ERROR, bytes([c]))),
        st.just(hangup_frame()),
    )


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=2000), cuts=st.lists(st.integers(0, 2000), max_size=20))
def test_fuzz_decoder_raises_only_protocol_errors(data: bytes, cuts: list[int]) -> None:
    decoder = FrameDecoder()
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    try:
        for start, end in itertools.pairwise(bounds):
            decoder.feed(data[start:end])
            while (frame := decoder.next_frame()) is not None:
                assert isinstance(frame, Frame)
    except AudioSocketProtocolError:
        pass


@settings(max_examples=200, deadline=None)
@given(frames=st.lists(_valid_frame(), max_size=12), cuts=st.lists(st.integers(0, 20000), max_size=30))
def test_fuzz_valid_streams_decode_the_same_however_chunked(frames: list[bytes], cuts: list[int]) -> None:
    wire = b"".join(frames)
    decoder = FrameDecoder()
    got: list[bytes] = []
    bounds = sorted({0, len(wire), *(c for c in cuts if c <= len(wire))})
    for start, end in itertools.pairwise(bounds):
        decoder.feed(wire[start:end])
        while (frame := decoder.next_frame()) is not None:
            got.append(struct.pack(">BH", frame.kind, len(frame.payload)) + frame.payload)
    assert got == frames
    assert decoder.buffered == 0


@settings(max_examples=200, deadline=None)
@given(
    parts=st.lists(st.one_of(_valid_frame(), st.binary(min_size=1, max_size=40)), max_size=10),
    cuts=st.lists(st.integers(0, 20000), max_size=20),
)
def test_fuzz_valid_frames_mixed_with_garbage(parts: list[bytes], cuts: list[int]) -> None:
    wire = b"".join(parts)
    decoder = FrameDecoder()
    bounds = sorted({0, len(wire), *(c for c in cuts if c <= len(wire))})
    decoded = 0
    try:
        for start, end in itertools.pairwise(bounds):
            decoder.feed(wire[start:end])
            while (frame := decoder.next_frame()) is not None:
                decoded += HEADER_SIZE + len(frame.payload)
    except AudioSocketProtocolError:
        return
    assert decoded + decoder.buffered == len(wire)  # nothing lost or invented while the stream held
