"""Hostile input: the parsers raise only their own errors, never hang, and what they accept round-trips."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voxline.telephony.sip.digest import DigestError, parse_challenge
from voxline.telephony.sip.message import (
    MAX_MESSAGE_BYTES,
    SipParseError,
    SipRequest,
    parse_message,
    parse_name_addr,
    parse_uri,
    parse_via,
    split_stream,
)
from voxline.telephony.sip.sdp import SdpError, SdpNegotiationError, negotiate, parse_sdp

from . import samples

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SDPS = [samples.SIPP_SDP.encode(), samples.BARESIP_SDP.encode(), samples.ASTERISK_SDP.encode()]
# Bytes that matter to the grammar: separators, quotes, brackets, line ends, non-ASCII.
SPECIAL = st.sampled_from(list(b' \t\r\n:;,="<>[]@/\\\x00\xff0123456789abz'))


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 8))):
        pos = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "delete", "replace", "duplicate"]))
        if action == "insert":
            data[pos:pos] = bytes(draw(st.lists(SPECIAL, min_size=1, max_size=4)))
        elif action == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
        elif action == "replace" and pos < len(data):
            data[pos] = draw(SPECIAL)
        else:
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 64))]
    return bytes(data)


def check_round_trip(data: bytes) -> None:
    """Whatever parses must serialize to something that parses to the same message."""
    try:
        message = parse_message(data)
    except SipParseError:
        return
    again = parse_message(message.to_bytes())
    assert type(again) is type(message) and again.body == message.body
    if isinstance(message, SipRequest) and isinstance(again, SipRequest):
        assert (again.method, again.uri) == (message.method, message.uri)
    strip = [(n, v) for n, v in message.headers.items() if n != "Content-Length"]
    assert [(n, v) for n, v in again.headers.items() if n != "Content-Length"] == strip


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes(data: bytes) -> None:
    check_round_trip(data)


@FUZZ
@given(mutated(samples.ALL_MESSAGES))
def test_mutated_messages(data: bytes) -> None:
    check_round_trip(data)


@FUZZ
@given(st.text(max_size=300))
def test_header_value_parsers(text: str) -> None:
    for parse in (parse_via, parse_uri, parse_name_addr):
        with contextlib.suppress(SipParseError):
            str(parse(text))


@FUZZ
@given(mutated(samples.ALL_MESSAGES), st.lists(st.integers(1, 300), min_size=1, max_size=20))
def test_split_stream_any_chunking(data: bytes, cuts: list[int]) -> None:
    buffer = bytearray()
    pos = 0
    for cut in cuts * 50:
        buffer += data[pos : pos + cut]
        pos += cut
        try:
            for message in split_stream(buffer):
                with contextlib.suppress(SipParseError):
                    parse_message(message, stream=True)
        except SipParseError:
            return
        if pos >= len(data):
            break


@FUZZ
@given(st.one_of(st.binary(max_size=1024), mutated(SDPS)))
def test_sdp(data: bytes) -> None:
    try:
        offer = parse_sdp(data)
    except SdpError:
        return
    with contextlib.suppress(SdpError, SdpNegotiationError):
        negotiate(offer, ["PCMU", "PCMA"])


@FUZZ
@given(st.text(max_size=400))
def test_digest_challenges(text: str) -> None:
    with contextlib.suppress(DigestError):
        parse_challenge("Digest " + text)


HOSTILE = [
    b'OPTIONS sip:a@b SIP/2.0\r\nFrom: "' + b"\\" * 60000 + b"\r\n\r\n",
    b"OPTIONS sip:a@b SIP/2.0\r\nVia: " + b"<" * 60000 + b"\r\n\r\n",
    b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h" + b";a" * 30000 + b"\r\n\r\n",
    b"OPTIONS sip:a@b SIP/2.0\r\nX: a\r\n" + b" b\r\n" * 16000 + b"\r\n",
    b"OPTIONS sip:a@b SIP/2.0\r\n" + b"\n" * 60000,
    b"SIP/2.0 200 " + b"x" * 60000 + b"\r\n\r\n",
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("data", HOSTILE)
def test_pathological_inputs_fail_cleanly(data: bytes) -> None:
    assert len(data) <= MAX_MESSAGE_BYTES
    with pytest.raises(SipParseError):
        parse_message(data)
    with pytest.raises(SipParseError):
        parse_name_addr(data.decode("latin-1"))


@pytest.mark.timeout(60)
def test_pathological_sdp_and_digest() -> None:
    with pytest.raises(SdpError):
        parse_sdp(b"v=0\r\no=x\r\nm=audio 4000 RTP/AVP 0\r\n" + b"a=rtpmap:" * 7000)
    parse_sdp(b"v=0\r\no=x\r\n" + b"a=x\r\n" * 990)  # many unknown attributes are fine
    with pytest.raises(DigestError):
        parse_challenge('Digest realm="' + "\\" * 8000)
