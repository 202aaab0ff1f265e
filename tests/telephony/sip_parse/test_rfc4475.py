"""RFC 4475 torture messages: every valid one parses (and a live endpoint answers it as a UAS
should), every invalid one is refused with the status the RFC names."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from telephony.sip.conftest import sip_config
from telephony.sip.rawpeer import TcpPeer, UdpPeer
from voxline.agent.config import SipInboundAuthConfig
from voxline.telephony.echo import EchoAgent
from voxline.telephony.sip.endpoint import SipEndpoint
from voxline.telephony.sip.inbound_auth import InviteAuthenticator
from voxline.telephony.sip.message import (
    MAX_HEADER_LINE,
    MAX_MESSAGE_BYTES,
    SipParseError,
    SipRequest,
    SipResponse,
    parse_cseq,
    parse_message,
    parse_name_addr,
    parse_uri,
    parse_via,
)
from voxline.telephony.sip.sdp import negotiate, parse_sdp
from voxline.telephony.sip.transaction import Timers, server_key

from . import rfc4475, rfc5118

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
    head, sep, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    top = next(i for i, line in enumerate(lines) if re.match(rb"(?i)(via|v)\s*:", line))
    folded = top + 1 < len(lines) and lines[top + 1][:1] in (b" ", b"\t")
    if b"branch" in lines[top] or folded:
        return re.sub(rb"(branch\s*=)", rb"rport;\1", data, count=1)
    lines[top] += b";rport"  # a top Via with no branch (inv2543, longreq)
    return b"\r\n".join(lines) + sep + body


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
    "longreq": 200,
    "mpart01": 405,  # MESSAGE: a method we know and do not take
    "baddate": 200,  # the Date is never read, so the RFC's repair (accept) is ours
    "badbranch": 200,  # matched as an RFC 2543 transaction
    "unksm2": 405,  # a registrar would answer 400 (To is not a SIP URI); we are not one
    "bext01": 420,
    "invut": 415,
    "regaut01": 405,
    "zeromf": 200,  # Max-Forwards 0 stops proxies; an endpoint answers as usual
    "cparam01": 405,
    "cparam02": 405,
    "regescrt": 405,
    "sdp01": 406,
    "ipv6-good": 405,
    "port-ambiguous": 405,
    "port-unambiguous": 405,
    "via-received-param-with-delim": 481,  # a BYE for a dialog we do not have
    "via-received-param-no-delim": 200,
    "mult-ip-in-header": 481,
    "mult-ip-in-sdp": 488,  # its audio is on IPv6, our RTP socket on IPv4: Warning 301
    "ipv4-mapped-ipv6": 200,
    "ipv6-correct-abnf-2-colons": 200,
    "ipv6-bug-abnf-3-colons": 200,
}

LIVE = {**rfc4475.VALID, **rfc4475.TOLERATED, **rfc5118.VALID}


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
        peer.send(_reachable(LIVE[name]), port)
        answer = await peer.final()
        assert answer.status == UAS_ANSWERS[name], (answer.status, answer.reason)
        if answer.status == 200 and (answer.headers.get("CSeq") or "").endswith("INVITE"):
            assert b"PCMU/8000" in answer.body and b"m=video" not in answer.body  # the audio stream only
        if name == "dblreq":  # the bytes after the REGISTER's body are not a second request (UDP)
            assert await peer.nothing(0.3)
    finally:
        peer.close()


@pytest.mark.parametrize("name", ["badinv01", "badvers", "unkscm", "escruri", "baddn", "regbadct"])
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


@pytest.mark.parametrize("name", sorted(rfc4475.TOLERATED))
def test_invalid_messages_the_rfc_lets_a_receiver_repair_parse(name: str) -> None:
    parse_message(rfc4475.TOLERATED[name])


def test_longreq_keeps_every_long_value() -> None:
    request = parse_message(rfc4475.LONGREQ)
    assert isinstance(request, SipRequest)
    vias = request.headers.get_all("Via")
    assert len(vias) == 34 and parse_via(vias[0]).host == "sip33.example.com"
    assert parse_via(vias[-1]).branch == "very" + "long" * 50 + "branchvalue"
    sender = parse_name_addr(request.headers.get("From") or "")
    assert sender.tag == "12" + "982" * 50 + "424"
    assert (request.headers.get("Call-ID") or "") == "longreq.one" + "really" * 20 + "longcallid"
    assert request.headers.get("Unknown-" + "Long" * 20 + "-Name") is not None
    assert len(rfc4475.LONGREQ) < MAX_MESSAGE_BYTES


def test_a_request_over_our_bounds_is_refused_with_513() -> None:
    """longreq fits; the same request with a header line past MAX_HEADER_LINE, or a datagram past
    MAX_MESSAGE_BYTES, is answered 513 Message Too Large (RFC 3261 §21.5.14)."""
    long_line = rfc4475.LONGREQ.replace(b"longreq.one", b"longreq.one" + b"x" * MAX_HEADER_LINE, 1)
    padding = b"".join(b"X-Pad: " + b"p" * 4000 + b"\r\n" for _ in range(17))
    huge = rfc4475.LONGREQ.replace(b"CSeq:", padding + b"CSeq:", 1)
    for data in (long_line, huge):
        with pytest.raises(SipParseError) as caught:
            parse_message(data)
        assert caught.value.status == 513, caught.value


def test_the_multipart_body_is_framed_by_content_length_alone() -> None:
    request = parse_message(rfc4475.MPART01)
    assert isinstance(request, SipRequest)
    assert len(request.body) == int(request.headers.get("Content-Length") or "")
    assert b"\x00" in request.body and request.body.endswith(b"--++--")


def test_the_broadcast_via_response_parses() -> None:
    response = parse_message(rfc4475.BCAST)
    assert isinstance(response, SipResponse) and response.status == 200
    assert parse_via(response.headers.get_all("Via")[1]).host == "255.255.255.255"


def test_a_require_lists_each_tag_once_and_proxy_require_is_ignored() -> None:
    request = parse_message(rfc4475.BEXT01)
    assert request.headers.get_all("Require") == [
        "nothingSupportedHere",
        "nothingSuppHere",
        "nothingSupportedHere",
    ]


def test_a_bare_magic_cookie_falls_back_on_rfc2543_matching() -> None:
    request = parse_message(rfc4475.BADBRANCH)
    assert isinstance(request, SipRequest)
    branch, _, method = server_key(request)
    assert "badbranch.sadonfo23i420jv0as0derf3j3n" in branch and method == "OPTIONS"


def test_an_unknown_authorization_scheme_on_an_invite_is_challenged_with_digest() -> None:
    """regaut01: a server that wants credentials challenges a scheme it does not know."""
    request = parse_message(rfc4475.REGAUT01.replace(b"REGISTER", b"INVITE"))
    assert isinstance(request, SipRequest)
    auth = InviteAuthenticator(SipInboundAuthConfig(username="u", password="p", realm="voxline"))
    challenge = auth.check(request)
    assert challenge is not None and challenge.startswith("Digest ")


@pytest.mark.parametrize("name", sorted(rfc5118.VALID))
def test_valid_ipv6_torture_messages_parse(name: str) -> None:
    parse_message(rfc5118.VALID[name])


@pytest.mark.parametrize("name", sorted(rfc5118.INVALID))
def test_invalid_ipv6_torture_messages_are_refused(name: str) -> None:
    data, status = rfc5118.INVALID[name]
    with pytest.raises(SipParseError) as caught:
        parse_message(data)
    assert caught.value.status == status


def test_ipv6_references_read_as_the_rfc_says() -> None:
    ambiguous = parse_message(rfc5118.VALID["port-ambiguous"])
    assert isinstance(ambiguous, SipRequest)
    uri = parse_uri(ambiguous.uri)
    assert (uri.host, uri.port) == ("2001:db8::10:5070", None)
    unambiguous = parse_message(rfc5118.VALID["port-unambiguous"])
    assert isinstance(unambiguous, SipRequest)
    uri = parse_uri(unambiguous.uri)
    assert (uri.host, uri.port) == ("2001:db8::10", 5070)
    two, three = (
        parse_message(rfc5118.VALID[f"ipv6-{k}"]) for k in ("correct-abnf-2-colons", "bug-abnf-3-colons")
    )
    assert isinstance(two, SipRequest) and isinstance(three, SipRequest)
    assert parse_uri(two.uri).host == parse_uri(three.uri).host == "2001:db8::c000:201"
    mapped = parse_message(rfc5118.VALID["ipv4-mapped-ipv6"])
    assert parse_via(mapped.headers.get("Via") or "").host == "::ffff:c000:20a"
    assert parse_sdp(mapped.body).connection == "::ffff:c000:202"


@pytest.mark.parametrize("host", rfc5118.INVALID_HOSTS)
def test_malformed_ipv6_references_are_refused(host: str) -> None:
    with pytest.raises(SipParseError):
        parse_uri(f"sip:user@{host}")
    with pytest.raises(SipParseError):
        parse_via(f"SIP/2.0/UDP {host};branch=z9hG4bK1")


@pytest.mark.parametrize("name", (*rfc4475.INVALID_RESPONSES, "bcast"))
async def test_a_live_endpoint_drops_responses_it_cannot_use(name: str, endpoint: SipEndpoint) -> None:
    """scalarlg and bigcode are invalid, bcast matches no transaction of ours: all three are dropped
    unanswered, and the endpoint still answers the next request."""
    data = rfc4475.VALID.get(name) or rfc4475.INVALID[name][0]
    peer = await UdpPeer().open()
    try:
        port = endpoint.local_port("udp")
        peer.send(data, port)
        assert await peer.nothing(0.3)
        peer.send(_reachable(rfc4475.ZEROMF), port)
        assert (await peer.final()).status == 200
    finally:
        peer.close()


@pytest.mark.parametrize(
    ("name", "header", "values"),
    [
        ("bext01", "Unsupported", ["nothingSupportedHere", "nothingSuppHere"]),  # Require's, once each
        ("invut", "Accept", ["application/sdp"]),
    ],
)
async def test_a_live_endpoint_says_what_it_refused(
    name: str, header: str, values: list[str], endpoint: SipEndpoint
) -> None:
    peer = await UdpPeer().open()
    try:
        peer.send(_reachable(rfc4475.VALID[name]), endpoint.local_port("udp"))
        answer = await peer.final()
        assert answer.headers.get_all(header) == values
        assert endpoint.calls == {}
    finally:
        peer.close()


async def test_a_live_endpoint_explains_its_406(endpoint: SipEndpoint) -> None:
    """sdp01: the caller accepts only text/nobodyKnowsThis; we can only answer with SDP."""
    peer = await UdpPeer().open()
    try:
        peer.send(_reachable(rfc4475.SDP01), endpoint.local_port("udp"))
        answer = await peer.final()
        assert answer.status == 406 and "application/sdp" in (answer.headers.get("Warning") or "")
        assert endpoint.calls == {} and not any(endpoint.capacity.describe()["active"].values())  # type: ignore[attr-defined]
    finally:
        peer.close()


async def test_ipv6_media_on_an_ipv4_endpoint(endpoint: SipEndpoint) -> None:
    """RFC 5118 §4.8/4.9 on our IPv4 RTP socket: an IPv4-mapped c= is its IPv4 address (the call is
    answered, media goes to 192.0.2.2); audio on a real IPv6 address is refused with 488 and
    Warning 301 rather than answered and then sent nowhere."""
    peer = await UdpPeer().open()
    try:
        port = endpoint.local_port("udp")
        peer.send(_reachable(rfc5118.VALID["mult-ip-in-sdp"]), port)
        refused = await peer.final()
        assert refused.status == 488 and (refused.headers.get("Warning") or "").startswith("301 ")
        peer.send(_reachable(rfc5118.VALID["ipv4-mapped-ipv6"]), port)
        assert (await peer.final()).status == 200
        (call,) = endpoint.calls.values()
        assert call.media is not None and call.media.negotiated is not None
        assert call.media.negotiated.remote_host == "192.0.2.2"
    finally:
        peer.close()


async def test_longreq_is_answered_over_tcp_too(endpoint: SipEndpoint) -> None:
    peer = await TcpPeer.connect(endpoint.local_port("tcp"))
    try:
        peer.send(rfc4475.LONGREQ)
        answer = await peer.final()
        assert answer.status == 200 and len(answer.headers.get_all("Via")) == 34
    finally:
        peer.writer.close()


async def test_past_our_bounds_a_live_endpoint_answers_513(endpoint: SipEndpoint) -> None:
    """A header line over MAX_HEADER_LINE in a datagram, or a TCP message over MAX_MESSAGE_BYTES:
    513 Message Too Large at the source (and the TCP connection, whose framing is lost, closed)."""
    udp = await UdpPeer().open()
    tcp = await TcpPeer.connect(endpoint.local_port("tcp"))
    try:
        long_line = rfc4475.LONGREQ.replace(b"longreq.one", b"longreq.one" + b"x" * MAX_HEADER_LINE, 1)
        udp.send(_reachable(long_line), endpoint.local_port("udp"))
        assert (await udp.final()).status == 513
        padding = b"".join(b"X-Pad: " + b"p" * 4000 + b"\r\n" for _ in range(17))
        tcp.send(rfc4475.LONGREQ.replace(b"Max-Forwards:", padding + b"Max-Forwards:", 1))  # after the Vias
        assert (await tcp.final()).status == 513
        assert await tcp.closed()
        assert endpoint.calls == {}
    finally:
        udp.close()
        tcp.writer.close()
