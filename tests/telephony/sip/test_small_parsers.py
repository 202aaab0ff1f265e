"""The endpoint's own small parsers: INFO DTMF bodies, lenient error responses, Refer-To, sipfrag."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voxline.telephony.sip.call import refer_target, sipfrag_status
from voxline.telephony.sip.dialog import Dialog
from voxline.telephony.sip.dtmf_info import parse_dtmf_info
from voxline.telephony.sip.malformed import error_response
from voxline.telephony.sip.message import parse_message
from voxline.transports.base import Dtmf

DIALOG = Dialog("c", "a", "b", "<sip:agent@h>;tag=a", "<sip:x@h>;tag=b", "sip:pbx@10.0.0.5:5070")


@pytest.mark.parametrize(
    ("ctype", "body", "expected"),
    [
        ("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n", Dtmf("5", 160)),
        ("application/dtmf-relay", b"Signal= #\nDuration= 250", Dtmf("#", 250)),
        ("application/dtmf-relay", b"Signal=11\r\nDuration=100", Dtmf("#", 100)),
        ("Application/DTMF-Relay; x=y", b"Signal=a", Dtmf("A", 100)),
        ("application/dtmf", b"7", Dtmf("7", 100)),
    ],
)
def test_dtmf_info_bodies(ctype: str, body: bytes, expected: Dtmf) -> None:
    assert parse_dtmf_info(ctype, body) == expected


@pytest.mark.parametrize(
    ("ctype", "body"),
    [
        ("application/dtmf-relay", b"Duration=160"),
        ("application/dtmf-relay", b"Signal=Z"),
        ("application/dtmf-relay", b"Signal=1\r\nDuration=-5"),
        ("application/dtmf", b"99"),
        ("text/plain", b"5"),
    ],
)
def test_dtmf_info_refuses(ctype: str, body: bytes) -> None:
    with pytest.raises(ValueError):
        parse_dtmf_info(ctype, body)


@given(st.text(max_size=40), st.binary(max_size=200))
def test_dtmf_info_fuzz(ctype: str, body: bytes) -> None:
    try:
        dtmf = parse_dtmf_info(ctype, body)
    except ValueError:
        return
    assert dtmf.digit in "0123456789*#ABCD" and dtmf.duration_ms >= 0


def test_error_response_copies_the_dialog_headers() -> None:
    data = (
        b"OPTIONS sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKx\r\nVia: SIP/2.0/TCP 5.6.7.8\r\n"
        b"f: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\ni: abc\r\nCSeq: 1 OPTIONS\r\nX: " + b"y" * 5000 + b"\r\n\r\n"
    )
    reply = error_response(data, 400, "Bad\r\nInjected: yes")
    assert reply is not None
    response = parse_message(reply)
    assert response.headers.get_all("Via") == ["SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKx", "SIP/2.0/TCP 5.6.7.8"]
    assert response.headers.get("Call-ID") == "abc" and "Injected" not in response.headers
    assert len(reply) < 400


@pytest.mark.parametrize(
    "data",
    [b"", b"garbage", b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP x\r\n\r\n",
     b"ACK sip:a SIP/2.0\r\nVia: SIP/2.0/UDP x\r\n\r\n", b"OPTIONS sip:a SIP/2.0\r\nFrom: x\r\n\r\n"],
)  # fmt: skip
def test_error_response_none_when_unanswerable(data: bytes) -> None:
    assert error_response(data, 400, "Bad Request") is None


@given(st.binary(max_size=2000), st.sampled_from([400, 413, 505]), st.text(max_size=50))
def test_error_response_fuzz(data: bytes, status: int, reason: str) -> None:
    reply = error_response(data, status, reason)
    if reply is not None:
        assert reply.startswith(f"SIP/2.0 {status} ".encode())
        assert reply.endswith(b"\r\n\r\n") and reply.count(b"\r\n\r\n") == 1


def test_refer_target() -> None:
    assert refer_target("1234", DIALOG) == "sip:1234@10.0.0.5"
    assert refer_target("sip:sales@example.com", DIALOG) == "sip:sales@example.com"
    assert refer_target(" tel:+15551234 ", DIALOG) == "tel:+15551234"
    for bad in ("", "a b", "<sip:x>", "sip:x\r\nEvil: 1", "x" * 100):
        with pytest.raises(ValueError):
            refer_target(bad, DIALOG)


@given(st.text(max_size=120))
def test_refer_target_never_injects(target: str) -> None:
    try:
        uri = refer_target(target, DIALOG)
    except ValueError:
        return
    assert not any(ch in uri for ch in '\r\n<> "')


def test_sipfrag_status() -> None:
    assert sipfrag_status(b"SIP/2.0 200 OK\r\n") == 200
    assert sipfrag_status(b"SIP/2.0 100 Trying") == 100
    assert sipfrag_status(b"nonsense") is None
