from __future__ import annotations

import pytest

from voxline.telephony.sip.message import MAX_MESSAGE_BYTES, SipParseError, parse_message, split_stream

from . import samples


def test_pops_complete_messages_and_keeps_the_rest() -> None:
    buffer = bytearray(
        samples.SIPP_INVITE + b"\r\n\r\n" + samples.ASTERISK_200_OK + samples.BARESIP_INVITE[:50]
    )
    assert split_stream(buffer) == [samples.SIPP_INVITE, samples.ASTERISK_200_OK]
    assert buffer == samples.BARESIP_INVITE[:50]
    buffer += samples.BARESIP_INVITE[50:]
    assert split_stream(buffer) == [samples.BARESIP_INVITE]
    assert buffer == b""


def test_byte_by_byte_arrival() -> None:
    stream = b"\r\n".join(samples.ALL_MESSAGES)
    buffer = bytearray()
    popped: list[bytes] = []
    for i in range(len(stream)):
        buffer += stream[i : i + 1]
        popped += split_stream(buffer)
    assert popped == samples.ALL_MESSAGES
    assert [parse_message(m, stream=True) for m in popped] == [parse_message(m) for m in samples.ALL_MESSAGES]


def test_keepalives_only() -> None:
    buffer = bytearray(b"\r\n\r\n\r\n")
    assert split_stream(buffer) == [] and buffer == b""


def test_body_waits_for_content_length() -> None:
    head, body = samples.SIPP_INVITE.split(b"\r\n\r\n", 1)
    buffer = bytearray(head + b"\r\n\r\n" + body[:-1])
    assert split_stream(buffer) == []
    buffer += body[-1:]
    assert split_stream(buffer) == [samples.SIPP_INVITE]


def test_compact_content_length_frames() -> None:
    raw = b"OPTIONS sip:a@b SIP/2.0\r\nl: 3\r\n\r\nabcNEXT"
    buffer = bytearray(raw)
    assert split_stream(buffer) == [raw[:-4]] and buffer == b"NEXT"


def test_endless_header_block_is_refused() -> None:
    buffer = bytearray(b"OPTIONS sip:a@b SIP/2.0\r\n" + b"X: y\r\n" * (MAX_MESSAGE_BYTES // 6 + 1))
    with pytest.raises(SipParseError) as err:
        split_stream(buffer)
    assert err.value.status == 513


@pytest.mark.parametrize(("length", "status"), [(b"12x", 400), (b"99999999", 413), (b"65530", 513)])
def test_bad_or_huge_content_length(length: bytes, status: int) -> None:
    buffer = bytearray(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: " + length + b"\r\n\r\n")
    with pytest.raises(SipParseError) as err:
        split_stream(buffer)
    assert err.value.status == status
