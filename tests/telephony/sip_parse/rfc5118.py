"""RFC 5118 "SIP Torture Test Messages for IPv6", section 4, written out from the RFC's text.

(The IPv6 torture messages are RFC 5118's, the companion of RFC 4475, which has none.) Each entry:
name -> message bytes. `VALID` parse; `INVALID` maps a name to the status a UAS answers.
"""

from __future__ import annotations

from .rfc4475 import _crlf, _fit

_REGISTER_TAIL = (
    "To: sip:user@example.com\n"
    "From: sip:user@example.com;tag=81x2\n"
    "Via: SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bKas3-111\n"
    "Call-ID: SSG9559905523997077@hlau_4100\n"
    "Max-Forwards: 70\n"
    'Contact: "Caller" <sip:caller@[2001:db8::1]>\n'
    "CSeq: 98176 REGISTER\n"
    "Content-Length: 0\n\n"
)


def _register(request_uri: str) -> bytes:
    return _crlf(f"REGISTER {request_uri} SIP/2.0\n" + _REGISTER_TAIL)


def _options_abnf(host: str) -> bytes:
    return _crlf(
        f"OPTIONS sip:user@[{host}] SIP/2.0\n"
        f"To: sip:user@[{host}]\n"
        "From: sip:user@example.com;tag=810x2\n"
        "Via: SIP/2.0/UDP lab1.east.example.com;branch=z9hG4bKas3-111\n"
        "Call-ID: G9559905523997077@hlau_4100\n"
        "CSeq: 689 OPTIONS\n"
        "Max-Forwards: 70\n"
        "Content-Length: 0\n\n"
    )


VALID: dict[str, bytes] = {
    # 4.1: an IPv6 reference in the Request-URI, Via and Contact
    "ipv6-good": _register("sip:[2001:db8::10]"),
    # 4.3: [2001:db8::10:5070] is one address, with no port
    "port-ambiguous": _register("sip:[2001:db8::10:5070]"),
    # 4.4: the port after the brackets
    "port-unambiguous": _register("sip:[2001:db8::10]:5070"),
    # 4.5: received holding an IPv6 reference, brackets and all
    "via-received-param-with-delim": _crlf(
        "BYE sip:[2001:db8::10] SIP/2.0\n"
        "To: sip:user@example.com;tag=bd76ya\n"
        "From: sip:user@example.com;tag=81x2\n"
        "Via: SIP/2.0/UDP [2001:db8::9:1];received=[2001:db8::9:255];branch=z9hG4bKas3-111\n"
        "Call-ID: SSG9559905523997077@hlau_4100\n"
        "Max-Forwards: 70\n"
        "CSeq: 321 BYE\n"
        "Content-Length: 0\n\n"
    ),
    # 4.6: received holding a bare IPv6 address
    "via-received-param-no-delim": _crlf(
        "OPTIONS sip:[2001:db8::10] SIP/2.0\n"
        "To: sip:user@example.com\n"
        "From: sip:user@example.com;tag=81x2\n"
        "Via: SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255;branch=z9hG4bKas3\n"
        "Call-ID: SSG95523997077@hlau_4100\n"
        "Max-Forwards: 70\n"
        'Contact: "Caller" <sip:caller@[2001:db8::9:1]>\n'
        "CSeq: 921 OPTIONS\n"
        "Content-Length: 0\n\n"
    ),
    # 4.7: IPv6 and IPv4 in one Via list
    "mult-ip-in-header": _crlf(
        "BYE sip:user@host.example.net SIP/2.0\n"
        "Via: SIP/2.0/UDP [2001:db8::9:1]:6050;branch=z9hG4bKas3-111\n"
        "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKjhja8781hjuaij65144\n"
        "Via: SIP/2.0/TCP [2001:db8::9:255];branch=z9hG4bK451jj;received=192.0.2.200\n"
        "Call-ID: 997077@lau_4100\n"
        "Max-Forwards: 70\n"
        "CSeq: 89187 BYE\n"
        "To: sip:user@example.net;tag=9817--94\n"
        "From: sip:user@example.com;tag=81x2\n"
        "Content-Length: 0\n\n"
    ),
    # 4.8: an IPv6 session with a stream on IPv4
    "mult-ip-in-sdp": _fit(
        _crlf(
            "INVITE sip:user@[2001:db8::10] SIP/2.0\n"
            "To: sip:user@[2001:db8::10]\n"
            "From: sip:user@example.com;tag=81x2\n"
            "Via: SIP/2.0/UDP [2001:db8::20];branch=z9hG4bKas3-111\n"
            "Call-ID: SSG9559905523997077@hlau_4100\n"
            'Contact: "Caller" <sip:caller@[2001:db8::20]>\n'
            "CSeq: 8612 INVITE\n"
            "Max-Forwards: 70\n"
            "Content-Type: application/sdp\n"
            "Content-Length: 268\n"
            "\n"
            "v=0\n"
            "o=assistant 971731711378798081 0 IN IP6 2001:db8::20\n"
            "s=Live video feed\n"
            "c=IN IP6 2001:db8::20\n"
            "t=0 0\n"
            "m=audio 6000 RTP/AVP 0\n"
            "a=rtpmap:0 PCMU/8000\n"
            "m=video 6024 RTP/AVP 107\n"
            "c=IN IP4 192.0.2.1\n"
            "a=rtpmap:107 H263-1998/90000\n"
        )
    ),
    # 4.9: IPv4-mapped IPv6 addresses in Via, Contact and SDP
    "ipv4-mapped-ipv6": _fit(
        _crlf(
            "INVITE sip:user@example.com SIP/2.0\n"
            "To: sip:user@example.com\n"
            "From: sip:user@east.example.com;tag=81x2\n"
            "Via: SIP/2.0/UDP [::ffff:192.0.2.10]:19823;branch=z9hG4bKbh19\n"
            "Via: SIP/2.0/UDP [::ffff:192.0.2.2];branch=z9hG4bKas3-111\n"
            "Call-ID: SSG9559905523997077@hlau_4100\n"
            'Contact: "T. desk phone" <sip:ted@[::ffff:192.0.2.2]>\n'
            "CSeq: 612 INVITE\n"
            "Max-Forwards: 70\n"
            "Content-Type: application/sdp\n"
            "Content-Length: 236\n"
            "\n"
            "v=0\n"
            "o=assistant 971731711378798081 0 IN IP6 ::ffff:192.0.2.2\n"
            "s=Call me soon, please!\n"
            "c=IN IP6 ::ffff:192.0.2.2\n"
            "t=0 0\n"
            "m=audio 6000 RTP/AVP 0\n"
            "a=rtpmap:0 PCMU/8000\n"
            "m=video 6024 RTP/AVP 107\n"
            "a=rtpmap:107 H263-1998/90000\n"
        )
    ),
    # 4.10: the IPv6 reference as it should be written
    "ipv6-correct-abnf-2-colons": _options_abnf("2001:db8::192.0.2.1"),
    # 4.10: the form the RFC 3261 ABNF bug allows; RFC 5118 says to tolerate it
    "ipv6-bug-abnf-3-colons": _options_abnf("2001:db8:::192.0.2.1"),
}

INVALID: dict[str, tuple[bytes, int]] = {
    # 4.2: an IPv6 address in a URI without brackets
    "ipv6-bad": (_register("sip:2001:db8::10"), 400),
}

INVALID_HOSTS = (
    "[2001:db8::10",  # unterminated
    "[2001:db8::10]]",
    "[2001:db8:::10]",  # three colons, no IPv4 tail: not the ABNF bug, just wrong
    "[2001:db8::1::2]",  # two '::'
    "[2001:db8::g]",
    "[192.0.2.1]",  # IPv4 in brackets
    "[::ffff:192.0.2.256]",
    "[]",
)
"""Host references voxline must refuse: RFC 5118 tolerates only the 3261 ABNF bug's `::` + `:IPv4`."""
