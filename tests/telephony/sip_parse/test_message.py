from __future__ import annotations

import pytest

from voxline.telephony.sip.message import (
    MAX_HEADER_LINE,
    MAX_HEADERS,
    MAX_MESSAGE_BYTES,
    Headers,
    NameAddr,
    SipParseError,
    SipRequest,
    SipResponse,
    Via,
    make_response,
    max_forwards,
    new_branch,
    new_call_id,
    new_tag,
    parse_cseq,
    parse_message,
    parse_name_addr,
    parse_uri,
    parse_via,
)

from . import samples


def parse_request(data: bytes, **kwargs: bool) -> SipRequest:
    message = parse_message(data, **kwargs)
    assert isinstance(message, SipRequest)
    return message


def minimal(extra: str = "", *, method: str = "OPTIONS", cseq: str | None = None) -> str:
    return (
        f"{method} sip:agent@127.0.0.1 SIP/2.0\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK1\n"
        "From: <sip:a@127.0.0.1>;tag=1\n"
        "To: <sip:agent@127.0.0.1>\n"
        "Call-ID: abc@127.0.0.1\n"
        f"CSeq: {cseq or '1 ' + method}\n" + extra
    )


# --- real-world messages ---------------------------------------------------------------------


def test_sipp_invite() -> None:
    req = parse_request(samples.SIPP_INVITE)
    assert (req.method, req.uri) == ("INVITE", "sip:service@127.0.0.1:5060")
    assert req.body.decode() == samples.SIPP_SDP
    assert parse_name_addr(req.headers.get("From") or "").tag == "4242SIPpTag001"
    assert parse_cseq(req.headers.get("cseq") or "") == (1, "INVITE")
    assert parse_via(req.headers.get("Via") or "").branch == "z9hG4bK-4242-1-0"
    assert parse_name_addr(req.headers.get("Contact") or "").uri == "sip:sipp@127.0.0.1:5061"


def test_baresip_invite_lists_and_rport() -> None:
    req = parse_request(samples.BARESIP_INVITE)
    via = parse_via(req.headers.get("Via") or "")
    assert via == Via("UDP", "127.0.0.1", 36147, {"branch": "z9hG4bK0b8a0b6f3b1e2c8b", "rport": None})
    assert str(via) == "SIP/2.0/UDP 127.0.0.1:36147;branch=z9hG4bK0b8a0b6f3b1e2c8b;rport"
    assert req.headers.get_all("Allow")[:3] == ["INVITE", "ACK", "BYE"]
    assert len(req.headers.get_all("Allow")) == 11
    assert req.headers.get_all("Supported") == ["replaces", "norefersub"]


def test_multi_via_folded_lines_and_ipv6() -> None:
    req = parse_request(samples.ASTERISK_VIA_KAMAILIO_INVITE)
    vias = [parse_via(v) for v in req.headers.get_all("Via")]
    assert [v.host for v in vias] == ["10.0.0.2", "10.0.0.1", "2001:db8::9"]
    assert vias[1].params == {"rport": "5060", "received": "10.0.0.1", "branch": "z9hG4bKPj8c1e"}
    assert vias[2].transport == "TCP" and vias[2].port == 5070
    assert vias[2].params["received"] == "2001:db8::1"
    assert str(vias[2]).startswith("SIP/2.0/TCP [2001:db8::9]:5070;")
    assert req.headers.get("Via") == "SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKcydzigwkX"
    allow = req.headers.get_all("Allow")
    assert allow[4:6] == ["BYE", "REFER"] and len(allow) == 11  # the fold became one value
    sender = parse_name_addr(req.headers.get("From") or "")
    assert sender.display == 'Alice "Ali" Smith' and sender.tag == "as6a1b2c3d"
    assert max_forwards(req.headers) == 69


def test_compact_headers_expand() -> None:
    req = parse_request(samples.KAMAILIO_OPTIONS_COMPACT)
    assert [name for name, _ in req.headers.items()][:6] == [
        "Via",
        "To",
        "From",
        "Call-ID",
        "CSeq",
        "Contact",
    ]
    assert req.headers.get("i") == req.headers.get("Call-ID") == "0a1b2c3d-4e5f@127.0.0.1"
    assert "m" in req.headers and "contact" in req.headers and "Supported" in req.headers
    uri = parse_uri(req.uri)
    assert (uri.host, uri.port, uri.params) == ("2001:db8::5", 5080, {"transport": "udp"})
    assert str(uri) == req.uri


def test_response_parses() -> None:
    resp = parse_message(samples.ASTERISK_200_OK)
    assert isinstance(resp, SipResponse)
    assert (resp.status, resp.reason, resp.body) == (200, "OK", b"")
    assert parse_cseq(resp.headers.get("CSeq") or "") == (2, "BYE")


@pytest.mark.parametrize("data", samples.ALL_MESSAGES)
def test_round_trip(data: bytes) -> None:
    first = parse_message(data)
    again = parse_message(first.to_bytes())
    assert again == first
    assert again.to_bytes() == first.to_bytes()


def test_lf_only_and_leading_keepalive_crlf() -> None:
    head, body = samples.SIPP_INVITE.split(b"\r\n\r\n", 1)
    raw = b"\r\n\r\n" + head.replace(b"\r\n", b"\n") + b"\n\n" + body
    req = parse_request(raw)
    assert req.method == "INVITE" and req.headers.get("Subject") == "Performance Test"


# --- bodies and Content-Length ---------------------------------------------------------------


def test_udp_longer_body_is_truncated() -> None:
    req = parse_request(samples.message(minimal(), "abcdef", length=3))
    assert req.body == b"abc"


def test_udp_shorter_body_is_400() -> None:
    with pytest.raises(SipParseError) as err:
        parse_message(samples.message(minimal(), "abc", length=10))
    assert err.value.status == 400
    assert err.value.partial is not None and err.value.partial.method == "OPTIONS"


def test_udp_without_content_length_takes_rest() -> None:
    raw = samples.crlf(minimal() + "\n").encode() + b"hello"
    assert parse_request(raw).body == b"hello"


def test_stream_mode_requires_exact_length() -> None:
    raw = samples.message(minimal(), "abcdef", length=3)
    with pytest.raises(SipParseError):
        parse_message(raw, stream=True)
    no_length = samples.crlf(minimal() + "\n").encode()
    assert parse_request(no_length, stream=True).body == b""


@pytest.mark.parametrize("value", ["abc", "-1", "1e3", "99999999999", "１２"])
def test_bad_content_length(value: str) -> None:
    raw = samples.crlf(minimal(f"Content-Length: {value}\n") + "\n").encode()
    with pytest.raises(SipParseError) as err:
        parse_message(raw)
    assert err.value.status == 400


def test_conflicting_content_lengths() -> None:
    raw = samples.crlf(minimal("Content-Length: 0\nl: 2\n") + "\n").encode() + b"ab"
    with pytest.raises(SipParseError, match="conflicting"):
        parse_message(raw)


def test_huge_content_length_is_413() -> None:
    raw = samples.message(minimal(), "", length=MAX_MESSAGE_BYTES + 1)
    with pytest.raises(SipParseError) as err:
        parse_message(raw)
    assert err.value.status == 413


# --- limits ------------------------------------------------------------------------------------


def test_message_too_large() -> None:
    raw = samples.message(minimal(), "x" * MAX_MESSAGE_BYTES)
    with pytest.raises(SipParseError) as err:
        parse_message(raw)
    assert err.value.status == 513


def test_header_count_limit() -> None:
    fill = MAX_HEADERS - 6  # six headers in `minimal` plus Content-Length
    assert parse_request(samples.message(minimal("X-H: 1\n" * fill)))
    with pytest.raises(SipParseError) as err:
        parse_message(samples.message(minimal("X-H: 1\n" * (fill + 1))))
    assert err.value.status == 513


def test_header_line_limit() -> None:
    ok = "X-Long: " + "a" * (MAX_HEADER_LINE - 8) + "\n"
    assert parse_request(samples.message(minimal(ok)))
    with pytest.raises(SipParseError) as err:
        parse_message(samples.message(minimal("X-Long: " + "a" * MAX_HEADER_LINE + "\n")))
    assert err.value.status == 513


def test_folded_header_limit_counts_the_whole_header() -> None:
    folded = "X-Long: a\n" + " " + "b" * 4000 + "\n" + " " + "c" * 4000 + "\n" + " " + "d" * 4000 + "\n"
    with pytest.raises(SipParseError) as err:
        parse_message(samples.message(minimal(folded)))
    assert err.value.status == 513


# --- malformed start lines and headers ----------------------------------------------------------


def test_wrong_version_is_505_with_partial_request() -> None:
    raw = samples.message(minimal().replace("SIP/2.0\n", "SIP/3.0\n", 1))
    with pytest.raises(SipParseError) as err:
        parse_message(raw)
    assert err.value.status == 505
    assert err.value.partial is not None
    response = make_response(err.value.partial, err.value.status)
    assert response.reason == "Version Not Supported"
    assert response.headers.get("Call-ID") == "abc@127.0.0.1"


@pytest.mark.parametrize(
    "start",
    [
        "INVITE sip:a@b",
        "INVITE  sip:a@b SIP/2.0",
        "INVITE sip:a@b SIP/2.0 extra",
        "INV(ITE sip:a@b SIP/2.0",
        "INVITE nocolon SIP/2.0",
        "INVITE sip:a@b HTTP/1.1",
        "SIP/2.0 2000 OK",
        "SIP/2.0 099 Odd",
        "SIP/2.0 abc OK",
        "",
    ],
)
def test_bad_start_line(start: str) -> None:
    raw = samples.message(start + "\n" + minimal().split("\n", 1)[1])
    with pytest.raises(SipParseError) as err:
        parse_message(raw)
    assert err.value.status == 400


def test_unsupported_uri_scheme_is_416() -> None:
    raw = samples.message(minimal().replace("sip:agent@127.0.0.1 SIP", "tel:+15551234 SIP", 1))
    with pytest.raises(SipParseError) as err:
        parse_message(raw)
    assert err.value.status == 416


@pytest.mark.parametrize("missing", ["Via", "From", "To", "Call-ID", "CSeq"])
def test_missing_mandatory_header(missing: str) -> None:
    lines = [line for line in minimal().splitlines() if not line.startswith(missing + ":")]
    with pytest.raises(SipParseError, match=f"missing {missing}") as err:
        parse_message(samples.message("\n".join(lines)))
    assert err.value.status == 400


def test_missing_max_forwards_is_tolerated() -> None:
    req = parse_request(samples.message(minimal()))
    assert max_forwards(req.headers) == 70


@pytest.mark.parametrize(
    ("extra", "cseq"),
    [
        ("", "1 INVITE"),  # method mismatch
        ("", "x OPTIONS"),
        ("", "2147483648 OPTIONS"),
        ("", "1"),
        ("Max-Forwards: ten\n", None),
        ("Call-ID: second@x\n", None),
        ("To: <sip:other@x>\n", None),
        ("Broken header line\n", None),
        ("Bad Name: x\n", None),
    ],
)
def test_malformed_headers_are_400(extra: str, cseq: str | None) -> None:
    with pytest.raises(SipParseError) as err:
        parse_message(samples.message(minimal(extra, cseq=cseq)))
    assert err.value.status == 400


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\xfeOPTIONS sip:a@b SIP/2.0\r\n\r\n",
        samples.message(minimal("X-Evil: a\x00b\n")),
        samples.message(minimal("X-Evil: a\rVia: SIP/2.0/UDP evil;branch=z9hG4bKx\n")),
        samples.message(" folded-first\n" + minimal()),
        b"\r\n\r\n",
        b"",
    ],
)
def test_hostile_bytes_are_400(raw: bytes) -> None:
    with pytest.raises(SipParseError) as err:
        parse_message(raw)
    assert err.value.status == 400


@pytest.mark.parametrize(
    "via",
    ["SIP/2.0/UDP", "SIP/1.0/UDP host", "SIP/2.0/UDP host:99999", "SIP/2.0/UDP [::1", "SIP/2.0/UDP a b;c"],
)
def test_bad_via(via: str) -> None:
    with pytest.raises(SipParseError):
        parse_via(via)


def test_via_with_spaces_around_separators() -> None:
    via = parse_via("SIP / 2.0 / udp  host.example.com : 5060 ;branch=z9hG4bKx ; rport")
    assert via == Via("UDP", "host.example.com", 5060, {"branch": "z9hG4bKx", "rport": None})


# --- URIs and name-addr ------------------------------------------------------------------------


def test_uri_parts() -> None:
    uri = parse_uri("sips:alice:secret@[2001:db8::1]:5061;transport=tls;lr?subject=hi&priority=urgent")
    assert (uri.scheme, uri.user, uri.password, uri.host, uri.port) == (
        "sips",
        "alice",
        "secret",
        "2001:db8::1",
        5061,
    )
    assert uri.params == {"transport": "tls", "lr": None}
    assert uri.headers == "subject=hi&priority=urgent"
    assert str(uri) == "sips:alice:secret@[2001:db8::1]:5061;transport=tls;lr?subject=hi&priority=urgent"


@pytest.mark.parametrize(
    "bad", ["sip:", "sip:@host", "sip:a@", "sip:a@ho st", "sip:a@[zz::1]", "sip:a@h:x", "nope"]
)
def test_bad_uris(bad: str) -> None:
    with pytest.raises(SipParseError):
        parse_uri(bad)


def test_name_addr_forms() -> None:
    assert parse_name_addr("sip:a@b;tag=x") == NameAddr(None, "sip:a@b", {"tag": "x"})
    assert parse_name_addr("Bob Smith <sip:b@h;transport=tcp>;tag=9") == NameAddr(
        "Bob Smith", "sip:b@h;transport=tcp", {"tag": "9"}
    )
    assert parse_name_addr("Zoë (Büro) <sip:z@h>").display == "Zoë (Büro)"
    tagged = parse_name_addr("<sip:b@h>").with_tag("abc")
    assert str(tagged) == "<sip:b@h>;tag=abc" and tagged.tag == "abc"
    assert str(parse_name_addr('"a\\"b" <sip:c@d>')) == '"a\\"b" <sip:c@d>'


@pytest.mark.parametrize(
    "bad", ['"unterminated <sip:a@b>', "<sip:a@b", "<sip:a@b> junk", '"x" sip:a@b', "<>"]
)
def test_bad_name_addr(bad: str) -> None:
    with pytest.raises(SipParseError):
        parse_name_addr(bad)


# --- building ----------------------------------------------------------------------------------


def test_make_response_copies_headers_and_adds_tag() -> None:
    req = parse_request(samples.ASTERISK_VIA_KAMAILIO_INVITE)
    tag = new_tag()
    resp = make_response(
        req,
        200,
        to_tag=tag,
        body=b"v=0\r\n",
        content_type="application/sdp",
        extra=[("Contact", "<sip:agent@10.0.0.5>")],
    )
    assert resp.reason == "OK"
    assert resp.headers.get_all("Via") == req.headers.get_all("Via")
    assert resp.headers.get("To") == f"<sip:agent@10.0.0.2>;tag={tag}"
    for name in ("From", "Call-ID", "CSeq"):
        assert resp.headers.get(name) == req.headers.get(name)
    again = parse_message(resp.to_bytes())
    assert isinstance(again, SipResponse)
    assert again.body == b"v=0\r\n" and again.headers.get("Content-Length") == "5"
    assert again.headers.get("Content-Type") == "application/sdp"


def test_make_response_keeps_existing_to_tag() -> None:
    req = parse_request(
        samples.message(minimal().replace("To: <sip:agent@127.0.0.1>", "To: <sip:x@y>;tag=old"))
    )
    assert make_response(req, 481, to_tag="new").headers.get("To") == "<sip:x@y>;tag=old"
    assert make_response(req, 481).reason == "Call/Transaction Does Not Exist"


def test_identifiers() -> None:
    assert new_branch().startswith("z9hG4bK") and new_branch() != new_branch()
    assert new_tag() != new_tag()
    assert new_call_id("::1").endswith("@[::1]")
    headers = Headers([("Call-ID", new_call_id("10.0.0.1"))])
    assert (
        headers.get(
            "i",
        )
        is not None
    )


# --- header injection ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-A", "ok\r\nVia: evil"),
        ("X-A", "a\nb"),
        ("X-A", "a\x00"),
        ("X-A\r\nVia", "v"),
        ("Bad Name", "v"),
        ("", "v"),
    ],
)
def test_headers_refuse_injection(name: str, value: str) -> None:
    headers = Headers()
    with pytest.raises(ValueError):
        headers.add(name, value)
    with pytest.raises(ValueError):
        headers.set(name, value)
    assert len(headers) == 0


def test_building_refuses_injection() -> None:
    req = parse_request(samples.message(minimal()))
    with pytest.raises(ValueError):
        make_response(req, 200, extra=[("Warning", '399 x "a"\r\nContact: <sip:evil>')])
    with pytest.raises(ValueError):
        make_response(req, 200, to_tag="t\r\nX: 1")
    with pytest.raises(ValueError):
        SipRequest("BYE", "sip:a@b SIP/2.0\r\nVia: x", Headers()).to_bytes()
    with pytest.raises(ValueError):
        SipResponse(200, "OK\r\nVia: x", Headers()).to_bytes()
    with pytest.raises(ValueError):
        parse_name_addr("<sip:a@b>").with_tag("x;evil=1")


def test_headers_api() -> None:
    headers = Headers([("v", "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2"), ("X-A", "1")])
    headers.add("Via", "SIP/2.0/UDP c;branch=z9hG4bK3")
    assert [parse_via(v).host for v in headers.get_all("VIA")] == ["a", "b", "c"]
    copy = headers.copy()
    headers.set("x-a", "2")
    headers.remove("via")
    assert headers.items() == [("X-A", "2")]
    assert copy.get("X-A") == "1" and "Via" in copy and 5 not in copy
    copy.set("Content-Length", "99")
    assert SipResponse(200, "OK", copy).to_bytes().count(b"Content-Length: 0\r\n") == 1


def test_parse_error_is_a_value_error_with_status() -> None:
    err = SipParseError("bad thing", 505)
    assert isinstance(err, ValueError) and (err.status, err.reason, err.partial) == (505, "bad thing", None)
    assert SipParseError("x").status == 400


def test_encoded_crlf_in_a_value_stays_literal() -> None:
    req = parse_request(samples.message(minimal("Subject: hi%0D%0AVia: SIP/2.0/UDP evil\n")))
    assert req.headers.get_all("Via") == ["SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK1"]
    response = make_response(req, 200, extra=[("Subject", req.headers.get("Subject") or "")])
    assert response.to_bytes().count(b"\r\nVia:") == 1
