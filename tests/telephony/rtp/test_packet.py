"""RTP packet parse/build (RFC 3550 §5.1) and fuzzing: random bytes raise RtpParseError or nothing."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voxline.telephony.rtp.packet import (
    RtpExtension,
    RtpPacket,
    RtpParseError,
    is_rtcp,
    parse_rtp,
    seq_delta,
    ts_delta,
)


def test_build_known_bytes() -> None:
    packet = RtpPacket(0, 0x1234, 0xDEADBEEF, 0x01020304, b"\xff\x7f", marker=True)
    assert packet.to_bytes() == bytes.fromhex("8080 1234 deadbeef 01020304 ff7f".replace(" ", ""))


def test_parse_sipp_telephone_event_header() -> None:
    # The RTP header of the first packet in sipp's dtmf_2833_1.pcap.
    data = bytes.fromhex("80e51f30000033e00e05384e010a0000")
    packet = parse_rtp(data)
    assert (packet.payload_type, packet.marker, packet.sequence) == (101, True, 0x1F30)
    assert (packet.timestamp, packet.ssrc, packet.payload) == (0x33E0, 0x0E05384E, b"\x01\x0a\x00\x00")


def test_round_trip_with_csrc_extension_and_padding() -> None:
    packet = RtpPacket(
        8,
        65535,
        2**32 - 1,
        7,
        b"abc",
        csrcs=(1, 2, 3),
        extension=RtpExtension(0xBEDE, b"\x01\x02\x03\x04"),
        padding=5,
    )
    data = packet.to_bytes()
    assert len(data) == 12 + 12 + 4 + 4 + 3 + 5
    assert parse_rtp(data) == packet


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x80\x00\x00", "shorter than the 12-byte"),
        (bytes([0x40]) + bytes(11), "version must be 2"),
        (bytes([0x00]) + bytes(11), "version must be 2"),
        (bytes([0x83]) + bytes(11) + bytes(8), "3 CSRCs do not fit"),
        (bytes([0x90]) + bytes(11), "no room for the extension header"),
        (bytes([0x90]) + bytes(11) + struct.pack("!HH", 0xBEDE, 2) + bytes(4), "overruns the packet"),
        (bytes([0xA0]) + bytes(11) + b"\x00", "padding count is 0"),
        (bytes([0xA0]) + bytes(11) + b"\x00\x09", "overruns"),
    ],
)
def test_malformed_packets_say_why(data: bytes, reason: str) -> None:
    with pytest.raises(RtpParseError, match=reason):
        parse_rtp(data)


def test_padding_exactly_filling_the_packet_is_an_empty_payload() -> None:
    packet = parse_rtp(bytes([0xA0]) + bytes(11) + b"\x00\x00\x03")
    assert packet.payload == b"" and packet.padding == 3


def test_build_rejects_out_of_range_fields() -> None:
    with pytest.raises(ValueError, match="payload type"):
        RtpPacket(128, 0, 0, 0)
    with pytest.raises(ValueError, match="sequence"):
        RtpPacket(0, 65536, 0, 0)
    with pytest.raises(ValueError, match="timestamp"):
        RtpPacket(0, 0, 2**32, 0)


def test_rtcp_is_recognised() -> None:
    assert is_rtcp(bytes([0x80, 200]) + bytes(6))  # sender report
    assert not is_rtcp(bytes([0x80, 0]) + bytes(10))


def test_wrap_arithmetic() -> None:
    assert seq_delta(0, 65535) == 1
    assert seq_delta(65535, 0) == -1
    assert seq_delta(10, 5) == 5
    assert ts_delta(80, 2**32 - 80) == 160
    assert ts_delta(2**32 - 80, 80) == -160


@given(st.binary(max_size=200))
def test_fuzz_random_bytes_raise_only_parse_errors(data: bytes) -> None:
    try:
        packet = parse_rtp(data)
    except RtpParseError:
        return
    assert parse_rtp(packet.to_bytes()) == packet


@given(st.binary(min_size=12, max_size=120))
def test_fuzz_version_2_headers_raise_only_parse_errors(data: bytes) -> None:
    # Force version 2 so the fuzzer reaches the CSRC / extension / padding checks.
    data = bytes([0x80 | (data[0] & 0x3F)]) + data[1:]
    with contextlib.suppress(RtpParseError):
        parse_rtp(data)


@given(
    pt=st.integers(0, 127),
    seq=st.integers(0, 0xFFFF),
    ts=st.integers(0, 0xFFFFFFFF),
    ssrc=st.integers(0, 0xFFFFFFFF),
    payload=st.binary(max_size=64),
    marker=st.booleans(),
    csrcs=st.lists(st.integers(0, 0xFFFFFFFF), max_size=15),
    ext=st.none() | st.binary(max_size=16).map(lambda b: RtpExtension(0x1000, b + bytes(-len(b) % 4))),
    padding=st.integers(0, 255),
)
def test_build_parse_round_trip(
    pt: int,
    seq: int,
    ts: int,
    ssrc: int,
    payload: bytes,
    marker: bool,
    csrcs: list[int],
    ext: RtpExtension | None,
    padding: int,
) -> None:
    packet = RtpPacket(pt, seq, ts, ssrc, payload, marker, tuple(csrcs), ext, padding)
    assert parse_rtp(packet.to_bytes()) == packet
