"""RFC 4733 receiving: one Dtmf per event, checked with sipp's packaged captures and by hand."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voxline.telephony.rtp.packet import RtpPacket, RtpParseError, parse_rtp
from voxline.telephony.rtp.telephone_event import (
    EVENT_DIGITS,
    DtmfReceiver,
    TelephoneEvent,
    parse_telephone_event,
)
from voxline.transports.base import Dtmf

from .pcap import SIPP_PCAPS, udp_payloads

SIPP_DIGITS = {**{str(d): str(d) for d in range(10)}, "star": "*", "pound": "#"}


def event_packet(
    event: int, ts: int, duration: int, end: bool = False, seq: int = 0, ssrc: int = 7
) -> RtpPacket:
    return RtpPacket(101, seq, ts, ssrc, TelephoneEvent(event, end, 10, duration).to_bytes())


@pytest.mark.parametrize("name", sorted(SIPP_DIGITS))
def test_sipp_capture_gives_exactly_one_digit(name: str) -> None:
    path = SIPP_PCAPS / f"dtmf_2833_{name}.pcap"
    if not path.exists():
        pytest.skip("sip-tester pcaps not installed")
    receiver = DtmfReceiver()
    heard: list[Dtmf] = []
    captures = udp_payloads(path)
    assert len(captures) == 10  # start, 6 updates, end sent three times
    for t, payload in captures:
        heard += receiver.feed(parse_rtp(payload), t)
    heard += receiver.expire(captures[-1][0] + 10)
    assert [d.digit for d in heard] == [SIPP_DIGITS[name]]
    assert heard[0].duration_ms == 2240 * 1000 // 8000  # the end packets' duration field


def test_retransmitted_and_late_end_packets_do_not_repeat_the_digit() -> None:
    receiver = DtmfReceiver()
    heard = receiver.feed(event_packet(5, 1000, 160), 0.0)
    heard += receiver.feed(event_packet(5, 1000, 400), 0.05)
    heard += receiver.feed(event_packet(5, 1000, 800, end=True), 0.10)
    heard += receiver.feed(event_packet(5, 1000, 800, end=True), 0.12)
    heard += receiver.feed(event_packet(5, 1000, 400), 0.13)  # a delayed update
    heard += receiver.feed(event_packet(5, 1000, 800, end=True), 0.14)
    heard += receiver.expire(5.0)
    assert heard == [Dtmf("5", 100)]


def test_same_digit_twice_is_two_events() -> None:
    receiver = DtmfReceiver()
    heard = []
    for ts in (1000, 3000):
        heard += receiver.feed(event_packet(1, ts, 160), 0.0)
        heard += receiver.feed(event_packet(1, ts, 800, end=True), 0.1)
    assert [d.digit for d in heard] == ["1", "1"]


def test_event_whose_end_packets_were_all_lost_is_reported_late() -> None:
    receiver = DtmfReceiver(stale_s=0.5)
    assert receiver.feed(event_packet(11, 1000, 400), 1.0) == []
    assert receiver.next_deadline() == 1.5
    assert receiver.expire(1.4) == []
    assert receiver.expire(1.5) == [Dtmf("#", 50)]
    assert receiver.feed(event_packet(11, 1000, 800, end=True), 1.6) == []


def test_next_event_finishes_one_whose_end_was_lost() -> None:
    receiver = DtmfReceiver()
    receiver.feed(event_packet(1, 1000, 400), 0.0)
    assert [d.digit for d in receiver.feed(event_packet(2, 5000, 160), 0.2)] == ["1"]


def test_non_dtmf_events_are_ignored() -> None:
    receiver = DtmfReceiver()
    assert receiver.feed(event_packet(16, 1000, 800, end=True), 0.0) == []  # hook flash
    assert receiver.expire(10.0) == []


def test_short_payload_is_a_parse_error() -> None:
    with pytest.raises(RtpParseError, match="4 bytes"):
        DtmfReceiver().feed(RtpPacket(101, 0, 0, 0, b"\x01\x0a"), 0.0)


def test_event_bytes_round_trip() -> None:
    event = TelephoneEvent(11, True, 10, 800)
    assert event.to_bytes() == bytes.fromhex("0b8a0320")
    assert parse_telephone_event(event.to_bytes()) == event
    assert EVENT_DIGITS[11] == "#"


@given(st.lists(st.binary(max_size=8), max_size=30))
def test_fuzz_payloads_never_crash_the_receiver(payloads: list[bytes]) -> None:
    receiver = DtmfReceiver()
    for n, payload in enumerate(payloads):
        try:
            digits = receiver.feed(RtpPacket(101, n, n // 3, 1, payload), n * 0.01)
        except RtpParseError:
            continue
        assert all(d.digit in EVENT_DIGITS for d in digits)
