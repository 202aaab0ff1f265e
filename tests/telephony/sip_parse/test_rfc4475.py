"""RFC 4475 torture messages: every valid one parses (and a live endpoint answers it as a UAS
should), every invalid one is refused with the status the RFC names."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from telephony.sip.conftest import sip_config
from telephony.sip.rawpeer import UdpPeer
from voxline.telephony.echo import EchoAgent
from voxline.telephony.sip.endpoint import SipEndpoint
from voxline.telephony.sip.message import (
    SipParseError,
    SipRequest,
    SipResponse,
    parse_cseq,
    parse_message,
    parse_name_addr,
    parse_uri,
)
from voxline.telephony.sip.sdp import negotiate, parse_sdp
from voxline.telephony.sip.transaction import Timers

from . import rfc4475

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize("name", sorted(rfc4475.VALID))
def test_valid_torture_messages_parse(name: str) -> None:
    parse_message(rfc4475.VALID[name])


@pytest.mark.parametrize("name", sorted(rfc4475.INVALID))
def test_invalid_torture_messages_are_refused_with_the_rfcs_status(name: str) -> None:
    data, status = rfc4475.INVALID[name]
    with pytest.raises(SipParseError) as caught:
        parse_message(data)
    assert caught.value.status == status


def test_wsinv_reads_as_the_rfc_says() -> None:
    request = parse_message(rfc4475.WSINV)
    assert isinstance(request, SipRequest)
    assert parse_name_addr(request.headers.get("To") or "").tag == "1918181833n"
    assert parse_name_addr(request.headers.get("From") or "").tag == "98asjd8"
    assert parse_cseq(request.headers.get("CSeq") or "") == (9, "INVITE")
    assert request.headers.get("Max-Forwards") == "0068"
    assert len(request.headers.get_all("Via")) == 3
    contact = parse_name_addr(request.headers.get("Contact") or "")
    assert contact.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}


def test_a_question_mark_in_the_user_part_is_not_uri_headers() -> None:
    request = parse_message(rfc4475.INTMETH)
    assert isinstance(request, SipRequest)
    uri = parse_uri(request.uri)
    assert uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert (uri.host, uri.headers) == ("example.com", None)


@pytest.mark.parametrize("name", ["wsinv", "esc01", "inv2543"])
def test_an_unknown_rtpmap_on_a_stream_we_do_not_use_is_ignored(name: str) -> None:
    request = parse_message(rfc4475.VALID[name])
    media = negotiate(parse_sdp(request.body), ["G722", "PCMU", "PCMA"])
    assert media.codec == "PCMU" and media.remote_port == 49217


def _reachable(data: bytes) -> bytes:
    """The message with `rport` in its top Via, so the endpoint answers our test socket (the RFC's
    Vias name hosts that do not exist here; nothing else changes)."""
    if b"branch" not in data.split(b"\r\n\r\n", 1)[0]:
        return data.replace(b"iftgw.example.com", b"iftgw.example.com;rport", 1)  # inv2543: no branch
    return re.sub(rb"(branch\s*=)", rb"rport;\1", data, count=1)


# what a UAS answers each valid request with (wsinv carries a To tag: a dialog we do not have)
UAS_ANSWERS = {
    "wsinv": 481,
    "intmeth": 501,
    "esc01": 200,
    "escnull": 405,
    "esc02": 501,
    "lwsdisp": 200,
    "semiuri": 200,
    "transports": 200,
    "inv2543": 200,
    "dblreq": 405,
}


@pytest.fixture
async def endpoint() -> AsyncIterator[SipEndpoint]:
    ep = SipEndpoint(sip_config(), EchoAgent(), timers=Timers(t1=0.05, t2=0.2, t4=0.2))
    await ep.start()
    yield ep
    await ep.stop()


@pytest.mark.parametrize("name", sorted(UAS_ANSWERS))
async def test_a_live_endpoint_answers_valid_torture_requests(name: str, endpoint: SipEndpoint) -> None:
    peer = await UdpPeer().open()
    try:
        port = endpoint.local_port("udp")
        peer.send(_reachable(rfc4475.VALID[name]), port)
        answer = await peer.final()
        assert answer.status == UAS_ANSWERS[name], (answer.status, answer.reason)
        if answer.status == 200 and (answer.headers.get("CSeq") or "").endswith("INVITE"):
            assert b"PCMU/8000" in answer.body and b"m=video" not in answer.body  # the audio stream only
        if name == "dblreq":  # the bytes after the REGISTER's body are not a second request (UDP)
            assert await peer.nothing(0.3)
    finally:
        peer.close()


@pytest.mark.parametrize("name", ["badinv01", "badvers", "unkscm", "escruri", "baddn"])
async def test_a_live_endpoint_answers_invalid_torture_requests_at_their_source(
    name: str, endpoint: SipEndpoint
) -> None:
    data, status = rfc4475.INVALID[name]
    peer = await UdpPeer().open()
    try:
        peer.send(data, endpoint.local_port("udp"))
        answer = await peer.final()
        assert isinstance(answer, SipResponse) and answer.status == status
        assert endpoint.calls == {}
    finally:
        peer.close()
