"""RFC 4475 "SIP Torture Test Messages", written out from the RFC's text: every message of sections
3.1.1, 3.1.2, 3.2, 3.3 and 3.4, each with what a UAS must do with it (the IPv6 ones are RFC 5118's:
rfc5118.py).

Lines end in CRLF; `\\x00`, `\\x07`, `\\x7f` and the UTF-8 text are the bytes the RFC describes. Each
entry: name -> message bytes in VALID (parses) and TOLERATED (invalid, but the RFC lets a receiver
repair and accept it), or name -> (message bytes, status) in INVALID: the status a UAS answers (400,
416, 505, ...) when the parser itself must refuse it (an invalid response is dropped instead).
Messages that parse but that the application layer refuses (415, 420, 501, ...) are checked against
a live endpoint in test_rfc4475.py.
"""

from __future__ import annotations

SDP_150 = (
    "v=0\n"
    "o=mhandley 29739 7272939 IN IP4 192.0.2.{o}\n"
    "s=-\n"
    "c=IN IP4 192.0.2.{c}\n"
    "t=0 0\n"
    "m=audio 49217 RTP/AVP 0 12\n"
    "m=video 3227 RTP/AVP 31\n"
    "a=rtpmap:31 LPC\n"
)
"""The SDP most torture INVITEs carry: an audio stream we can take (PCMU) and a video stream
with an rtpmap we do not know (LPC, no clock rate): it must be ignored, not refused."""


def _crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def _fit(data: bytes) -> bytes:
    """Content-Length set to the body actually carried, where the length is not what is tested (our
    SDP bodies differ from the RFC's by a few bytes where their addresses do)."""
    head, sep, body = data.partition(b"\r\n\r\n")
    lines = [
        line.split(b":", 1)[0] + b": " + str(len(body)).encode()
        if line.split(b":", 1)[0].strip().lower() in (b"content-length", b"l")
        else line
        for line in head.split(b"\r\n")
    ]
    return b"\r\n".join(lines) + sep + body


def _sdp(o: int, c: int) -> str:
    return SDP_150.format(o=o, c=c)


WSINV = _crlf(
    "INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0\n"
    "TO :\n"
    " sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n\n"
    'from   : "J Rosenberg \\\\\\""       <sip:jdrosen@example.com>\n'
    "  ;\n"
    "  tag = 98asjd8\n"
    "MaX-fOrWaRdS: 0068\n"
    "Call-ID: wsinv.ndaksdj@192.0.2.1\n"
    "Content-Length   : 150\n"
    "cseq: 0009\n"
    "  INVITE\n"
    "Via  : SIP  /   2.0\n"
    " /UDP\n"
    "    192.0.2.2;branch=390skdjuw\n"
    "s :\n"
    "NewFangledHeader:   newfangled value\n"
    " continued newfangled value\n"
    "UnknownHeaderWithUnusualValue: ;;,,;;,;\n"
    "Content-Type: application/sdp\n"
    "Route:\n"
    " <sip:services.example.com;lr;unknownwith=value;unknown-no-value>\n"
    "v:  SIP  / 2.0  / TCP     spindle.example.com   ;\n"
    "  branch  =   z9hG4bK9ikj8  ,\n"
    " SIP  /    2.0   / UDP  192.168.255.111   ; branch=\n"
    " z9hG4bK30239\n"
    'm:"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam =\n'
    "      newvalue ;\n"
    "  secondparam ; q = 0.33\n"
    "\n" + _sdp(3, 4)
)

INTMETH = _crlf(
    "!interesting-Method0123456789_*+`.%indeed'~ "
    "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    "@example.com SIP/2.0\n"
    "Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~\n"
    'To: "BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f" '
    "<sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com>\n"
    "From: token1~` token2'+_ token3*%!.- <sip:mundane@example.com>"
    ";fromParam''~+*_!.-%=\"\u0440\u0430\u0431\u043e\u0442\u0430\u044e\u0449\u0438\u0439\""
    ";tag=_token~1'+`*%!-.\n"
    "Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{\n"
    "CSeq: 139122385 !interesting-Method0123456789_*+`.%indeed'~\n"
    "Max-Forwards: 255\n"
    "extensionHeader-!.%*+_`'~:\ufeff\u5927\u505c\u96fb\n"
    "Content-Length: 0\n\n"
)

ESC01 = _crlf(
    "INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0\n"
    "To: sip:%75se%72@example.com\n"
    "From: <sip:I%20have%20spaces@example.net>;tag=938\n"
    "Max-Forwards: 87\n"
    "i: esc01.239409asdfakjkn23onasd0-3234\n"
    "CSeq: 234234 INVITE\n"
    "Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bKkdjuw\n"
    "C: application/sdp\n"
    "Contact:\n"
    "  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>\n"
    "Content-Length: 150\n"
    "\n" + _sdp(1, 1)
)

ESCNULL = _crlf(
    "REGISTER sip:example.com SIP/2.0\n"
    "To: sip:null-%00-null@example.com\n"
    "From: sip:null-%00-null@example.com;tag=839923423\n"
    "Max-Forwards: 70\n"
    "Call-ID: escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd\n"
    "CSeq: 14398234 REGISTER\n"
    "Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw\n"
    "Contact: <sip:%00@host5.example.com>\n"
    "Contact: <sip:%00%00@host5.example.com>\n"
    "L:0\n\n"
)

ESC02 = _crlf(
    "RE%47IST%45R sip:registrar.example.com SIP/2.0\n"
    'To: "%Z%45" <sip:resource@example.com>\n'
    'From: "%Z%45" <sip:resource@example.com>;tag=f232jadfj23\n'
    "Call-ID: esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf\n"
    "Via: SIP/2.0/TCP host.example.com;branch=z9hG4bK209asDfjb\n"
    "CSeq: 29344 RE%47IST%45R\n"
    "Max-Forwards: 70\n"
    "Contact: <sip:alias1@host1.example.com>\n"
    "C%6Fntact: <sip:alias2@host2.example.com>\n"
    "Contact: <sip:alias3@host3.example.com>\n"
    "l: 0\n\n"
)

LWSDISP = _crlf(
    "OPTIONS sip:user@example.com SIP/2.0\n"
    "To: sip:user@example.com\n"
    "From: caller<sip:caller@example.com>;tag=323\n"
    "Max-Forwards: 70\n"
    "Call-ID: lwsdisp.1234abcd@funky.example.com\n"
    "CSeq: 60 OPTIONS\n"
    "Via: SIP/2.0/UDP funky.example.com;branch=z9hG4bKkdjuw\n"
    "l: 0\n\n"
)

SEMIURI = _crlf(
    "OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0\n"
    "To: sip:j_user@example.com\n"
    "From: sip:caller@example.org;tag=33242\n"
    "Max-Forwards: 3\n"
    "Call-ID: semiuri.0ha0isndaksdj\n"
    "CSeq: 8 OPTIONS\n"
    "Accept: application/sdp, application/pkcs7-mime,\n"
    "        multipart/mixed, multipart/signed,\n"
    "        message/sip, message/sipfrag\n"
    "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKkdjuw\n"
    "l: 0\n\n"
)

TRANSPORTS = _crlf(
    "OPTIONS sip:user@example.com SIP/2.0\n"
    "To: sip:user@example.com\n"
    "From: <sip:caller@example.com>;tag=323\n"
    "Max-Forwards: 70\n"
    "Call-ID:  transports.kijh4akdnaqjkwendsasfdj\n"
    "Accept: application/sdp\n"
    "CSeq: 60 OPTIONS\n"
    "Via: SIP/2.0/UDP t1.example.com;branch=z9hG4bKkdjuw\n"
    "Via: SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf\n"
    "Via: SIP/2.0/TLS t3.example.com;branch=z9hG4bK2980unddj\n"
    "Via: SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en\n"
    "Via: SIP/2.0/TCP t5.example.com;branch=z9hG4bK0a9idfnee\n"
    "l: 0\n\n"
)

UNREASON = _crlf(
    "SIP/2.0 200 = 2**3 * 5**2 \u043d\u043e \u0441\u0442\u043e "
    "\u0434\u0435\u0432\u044f\u043d\u043e\u0441\u0442\u043e "
    "\u0434\u0435\u0432\u044f\u0442\u044c - \u043f\u0440\u043e\u0441\u0442\u043e\u0435\n"
    "Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923\n"
    "Call-ID: unreason.1234ksdfak3j2erwedfsASdf\n"
    "CSeq: 35 INVITE\n"
    "From: sip:user@example.com;tag=11141343\n"
    "To: sip:user@example.edu;tag=2229\n"
    "Content-Type: application/sdp\n"
    "Contact: <sip:user@host198.example.com>\n"
    "Content-Length: 0\n\n"
)

NOREASON = _crlf(
    "SIP/2.0 100 \n"
    "Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe\n"
    "Call-ID: noreason.asndj203insdf99223ndf\n"
    "CSeq: 35 INVITE\n"
    "From: <sip:user@example.com>;tag=39ansfi3\n"
    "To: <sip:user@example.edu>;tag=902jndnke3\n"
    "Content-Length: 0\n"
    "Contact: <sip:user@host105.example.com>\n\n"
)

INV2543 = _crlf(
    "INVITE sip:UserB@example.com SIP/2.0\n"
    "Via: SIP/2.0/UDP iftgw.example.com\n"
    "From: <sip:+13035551111@ift.client.example.net;user=phone>\n"
    "Record-Route: <sip:UserB@example.com;maddr=ss1.example.com>\n"
    "To: sip:+16505552222@ss1.example.net;user=phone\n"
    "Call-ID: inv2543.1717@ift.client.example.com\n"
    "CSeq: 56 INVITE\n"
    "Content-Type: application/sdp\n"
    "Content-Length: 150\n"
    "\n" + _sdp(1, 1)
)
"""3.4.1 (RFC 2543 syntax: no branch, no From tag): a UAS should answer it, not refuse it."""

DBLREQ = _crlf(
    "REGISTER sip:example.com SIP/2.0\n"
    "To: sip:j.user@example.com\n"
    "From: sip:j.user@example.com;tag=43251j3j324\n"
    "Max-Forwards: 8\n"
    "I: dblreq.0ha0isndaksdj99sdfafnl3lk233412\n"
    "Contact: sip:j.user@host.example.com\n"
    "CSeq: 8 REGISTER\n"
    "Via: SIP/2.0/UDP 192.0.2.125;branch=z9hG4bKkdjuw23492\n"
    "Content-Length: 0\n\n\n"
    "INVITE sip:joe@example.com SIP/2.0\n"
    "t: sip:joe@example.com\n"
    "From: sip:caller@example.net;tag=141334\n"
    "Max-Forwards: 8\n"
    "Call-ID: dblreq.0ha0isnda977644900765@192.0.2.15\n"
    "CSeq: 8 INVITE\n"
    "Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw380234\n"
    "Content-Type: application/sdp\n"
    "Content-Length: 150\n"
    "\n" + _sdp(15, 15)
)
"""3.1.1.8: over UDP the bytes after the REGISTER's Content-Length are not a second message."""

VALID: dict[str, bytes] = {
    "wsinv": WSINV,
    "intmeth": INTMETH,
    "esc01": ESC01,
    "escnull": ESCNULL,
    "esc02": ESC02,
    "lwsdisp": LWSDISP,
    "semiuri": SEMIURI,
    "transports": TRANSPORTS,
    "unreason": UNREASON,
    "noreason": NOREASON,
    "inv2543": INV2543,
    "dblreq": DBLREQ,
}

_OPTIONS_HEAD = (
    "To: sip:user@example.com\n"
    "From: sip:caller@example.net;tag=134161461246\n"
    "Max-Forwards: 7\n"
    "Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw\n"
)

INVALID: dict[str, tuple[bytes, int]] = {
    # 3.1.2.1: extraneous header field separators
    "badinv01": (
        _fit(
            _crlf(
                "INVITE sip:user@example.com SIP/2.0\n"
                "To: sip:j.user@example.com\n"
                "From: sip:caller@example.net;tag=134161461246\n"
                "Max-Forwards: 7\n"
                "Call-ID: badinv01.0ha0isndaksdjasdf3234nas\n"
                "CSeq: 8 INVITE\n"
                "Via: SIP/2.0/UDP 192.0.2.15;;,;,,\n"
                'Contact: "Joe" <sip:joe@example.org>;;;;\n'
                "Content-Length: 150\n"
                "Content-Type: application/sdp\n"
                "\n" + _sdp(15, 15)
            )
        ),
        400,
    ),
    # 3.1.2.2: Content-Length larger than the message (over UDP)
    "clerr": (
        _crlf(
            "INVITE sip:user@example.com SIP/2.0\n"
            "Max-Forwards: 80\n"
            "To: sip:j.user@example.com\n"
            "From: sip:caller@example.net;tag=93942939o2\n"
            "Contact: <sip:caller@hungry.example.net>\n"
            "Call-ID: clerr.0ha0isndaksdjweiafasdk3\n"
            "CSeq: 8 INVITE\n"
            "Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bK-39234-23523\n"
            "Content-Type: application/sdp\n"
            "Content-Length: 9999\n"
            "\n" + _sdp(155, 155)
        ),
        400,
    ),
    # 3.1.2.3: negative Content-Length
    "ncl": (
        _crlf(
            "INVITE sip:user@example.com SIP/2.0\n"
            "Max-Forwards: 254\n"
            "To: sip:j.user@example.com\n"
            "From: sip:caller@example.net;tag=32394234\n"
            "Call-ID: ncl.0ha0isndaksdj2193423r542w35\n"
            "CSeq: 0 INVITE\n"
            "Via: SIP/2.0/UDP 192.0.2.53;branch=z9hG4bKkdjuw\n"
            "Contact: <sip:caller@example53.example.net>\n"
            "Content-Type: application/sdp\n"
            "Content-Length: -999\n"
            "\n" + _sdp(53, 53)
        ),
        400,
    ),
    # 3.1.2.4: request scalar fields with overlarge values
    "scalar02": (
        _crlf(
            "REGISTER sip:example.com SIP/2.0\n"
            "Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bK342sdfoi3\n"
            "To: <sip:user@example.com>\n"
            "From: <sip:user@example.com>;tag=239232jh3\n"
            "CSeq: 36893488147419103232 REGISTER\n"
            "Call-ID: scalar02.23o0pd9vanlq3wnrlnewofjas9ui32\n"
            "Max-Forwards: 300\n"
            "Expires: 1000000000000000000000000000000000000000000000000000000000000000000000000000000000000\n"
            "Contact: <sip:user@host129.example.com>\n"
            "  ;expires=280297596632815\n"
            "Content-Length: 0\n\n"
        ),
        400,
    ),
    # 3.1.2.6: unterminated quoted string in a display name
    "quotbal": (
        _fit(
            _crlf(
                "INVITE sip:user@example.com SIP/2.0\n"
                'To: "Mr. J. User <sip:j.user@example.com>\n'
                "From: sip:caller@example.net;tag=93334\n"
                "Max-Forwards: 10\n"
                "Call-ID: quotbal.aksdj\n"
                "Contact: <sip:caller@host59.example.net>\n"
                "CSeq: 8 INVITE\n"
                "Via: SIP/2.0/UDP 192.0.2.59:5050;branch=z9hG4bKkdjuw39234\n"
                "Content-Type: application/sdp\n"
                "Content-Length: 150\n"
                "\n" + _sdp(15, 15)
            )
        ),
        400,
    ),
    # 3.1.2.7: <> enclosing the Request-URI
    "ltgtruri": (
        _fit(
            _crlf(
                "INVITE <sip:user@example.com> SIP/2.0\n"
                "To: sip:user@example.com\n"
                "From: sip:caller@example.net;tag=39291\n"
                "Max-Forwards: 23\n"
                "Call-ID: ltgtruri.1@192.0.2.5\n"
                "CSeq: 1 INVITE\n"
                "Via: SIP/2.0/UDP 192.0.2.5\n"
                "Contact: <sip:caller@host5.example.net>\n"
                "Content-Type: application/sdp\n"
                "Content-Length: 150\n"
                "\n" + _sdp(5, 5)
            )
        ),
        400,
    ),
    # 3.1.2.8: embedded LWS in the Request-URI
    "lwsruri": (
        _fit(
            _crlf(
                "INVITE sip:user@example.com; lr SIP/2.0\n"
                "To: sip:user@example.com;tag=3xfe-9921883-z9f\n"
                "From: sip:caller@example.net;tag=231413434\n"
                "Max-Forwards: 5\n"
                "Call-ID: lwsruri.asdfasdoeoi2323-asdfwrn23-asd834rk423\n"
                "CSeq: 2130706432 INVITE\n"
                "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKkdjuw2395\n"
                "Contact: <sip:caller@host1.example.net>\n"
                "Content-Type: application/sdp\n"
                "Content-Length: 150\n"
                "\n" + _sdp(1, 1)
            )
        ),
        400,
    ),
    # 3.1.2.9: multiple SP separating Request-Line elements
    "lwsstart": (
        _fit(
            _crlf(
                "INVITE  sip:user@example.com  SIP/2.0\n"
                "Max-Forwards: 8\n"
                "To: sip:user@example.com\n"
                "From: sip:caller@example.net;tag=8814\n"
                "Call-ID: lwsstart.dfknq234oi243099adsdfnawe3@example.com\n"
                "CSeq: 1893884 INVITE\n"
                "Via: SIP/2.0/UDP host1.example.com;branch=z9hG4bKkdjuw3923\n"
                "Contact: <sip:caller@host1.example.net>\n"
                "Content-Type: application/sdp\n"
                "Content-Length: 150\n"
                "\n" + _sdp(1, 1)
            )
        ),
        400,
    ),
    # 3.1.2.10: SP characters at the end of the Request-Line
    "trws": (
        _crlf(
            "OPTIONS sip:remote-target@example.com SIP/2.0  \n"
            "Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK299342093\n"
            "To: <sip:remote-target@example.com>\n"
            "From: <sip:local-resource@example.com>;tag=329429089\n"
            "Call-ID: trws.oicu34958239neffasdhr2345r\n"
            "Accept: application/sdp\n"
            "CSeq: 238923 OPTIONS\n"
            "Max-Forwards: 70\n"
            "Content-Length: 0\n\n"
        ),
        400,
    ),
    # 3.1.2.11: escaped headers in a SIP Request-URI
    "escruri": (
        _fit(
            _crlf(
                "INVITE sip:user@example.com?Route=%3Csip:example.com%3E SIP/2.0\n"
                "To: sip:user@example.com\n"
                "From: sip:caller@example.net;tag=341518\n"
                "Max-Forwards: 7\n"
                "Contact: <sip:caller@host39923.example.net>\n"
                "Call-ID: escruri.23940-asdfhj-aje3br-234q098w-fawerh2q-h4n5\n"
                "CSeq: 149209342 INVITE\n"
                "Via: SIP/2.0/UDP host-of-the-hour.example.com;branch=z9hG4bKkdjuw\n"
                "Content-Type: application/sdp\n"
                "Content-Length: 150\n"
                "\n" + _sdp(1, 1)
            )
        ),
        400,
    ),
    # 3.1.2.14: spaces within an addr-spec
    "badaspec": (
        _crlf(
            "OPTIONS sip:user@example.org SIP/2.0\n"
            "Via: SIP/2.0/UDP host4.example.com:5060;branch=z9hG4bKkdju43234\n"
            "Max-Forwards: 70\n"
            'From: "Bell, Alexander" <sip:a.g.bell@example.com>;tag=433423\n'
            'To: "Watson, Thomas" < sip:t.watson@example.org >\n'
            "Call-ID: badaspec.sdf0234n2nds0a099u23h3hnnw009cdkne3\n"
            "Accept: application/sdp\n"
            "CSeq: 3923239 OPTIONS\n"
            "l: 0\n\n"
        ),
        400,
    ),
    # 3.1.2.15: non-token characters in an unquoted display name
    "baddn": (
        _crlf(
            "OPTIONS sip:t.watson@example.org SIP/2.0\n"
            "Via:     SIP/2.0/UDP c.example.com:5060;branch=z9hG4bKkdjuw\n"
            "Max-Forwards:      70\n"
            "From:    Bell, Alexander <sip:a.g.bell@example.com>;tag=43\n"
            "To:      Watson, Thomas <sip:t.watson@example.org>\n"
            "Call-ID: baddn.31415@c.example.com\n"
            "Accept: application/sdp\n"
            "CSeq:    3923239 OPTIONS\n"
            "l: 0\n\n"
        ),
        400,
    ),
    # 3.1.2.16: unknown protocol version
    "badvers": (
        _crlf(
            "OPTIONS sip:t.watson@example.org SIP/7.0\n"
            "Via:     SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw\n"
            "Max-Forwards:     70\n"
            "From:    A. Bell <sip:a.g.bell@example.com>;tag=qweoiqpe\n"
            "To:      T. Watson <sip:t.watson@example.org>\n"
            "Call-ID: badvers.31417@c.example.com\n"
            "CSeq:    1 OPTIONS\n"
            "l: 0\n\n"
        ),
        505,
    ),
    # 3.1.2.17: start-line and CSeq method mismatch
    "mismatch01": (
        _crlf(
            "OPTIONS sip:user@example.com SIP/2.0\n" + _OPTIONS_HEAD + "Call-ID: mismatch01.dj0234sxdfl3\n"
            "CSeq: 8 INVITE\n"
            "l: 0\n\n"
        ),
        400,
    ),
    # 3.1.2.18: unknown method with a CSeq method mismatch
    "mismatch02": (
        _fit(
            _crlf(
                "NEWMETHOD sip:user@example.com SIP/2.0\n"
                + _OPTIONS_HEAD
                + "Call-ID: mismatch02.dj0234sxdfl3\n"
                "CSeq: 8 INVITE\n"
                "Contact: <sip:caller@host.example.net>\n"
                "Content-Type: application/sdp\n"
                "l: 150\n"
                "\n" + _sdp(1, 1)
            )
        ),
        400,
    ),
    # 3.3.1: missing Call-ID, From and To
    "insuf": (
        _fit(
            _crlf(
                "INVITE sip:user@example.com SIP/2.0\n"
                "CSeq: 193942 INVITE\n"
                "Via: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf\n"
                "Content-Type: application/sdp\n"
                "l: 150\n"
                "\n" + _sdp(95, 95)
            )
        ),
        400,
    ),
    # 3.3.2: Request-URI with an unknown scheme
    "unkscm": (
        _crlf(
            "OPTIONS nobodyKnowsThisScheme:totallyopaquecontent SIP/2.0\n"
            "To: sip:user@example.com\n"
            "From: sip:caller@example.net;tag=384\n"
            "Max-Forwards: 3\n"
            "Call-ID: unkscm.nasdfasser0q239nwsdfasdkl34\n"
            "CSeq: 3923423 OPTIONS\n"
            "Via: SIP/2.0/TCP host9.example.com;branch=z9hG4bKkdjuw39234\n"
            "Content-Length: 0\n\n"
        ),
        416,
    ),
    # 3.3.3: Request-URI with a known but atypical scheme
    "novelsc": (
        _crlf(
            "OPTIONS soap.beep://192.0.2.103:3002 SIP/2.0\n"
            "To: sip:user@example.com\n"
            "From: sip:caller@example.net;tag=384\n"
            "Max-Forwards: 3\n"
            "Call-ID: novelsc.asdfasser0q239nwsdfasdkl34\n"
            "CSeq: 3923423 OPTIONS\n"
            "Via: SIP/2.0/TCP host9.example.com;branch=z9hG4bKkdjuw39234\n"
            "Content-Length: 0\n\n"
        ),
        416,
    ),
    # 3.3.7: multiple values in single-value required fields
    "multi01": (
        _fit(
            _crlf(
                "INVITE sip:user@company.com SIP/2.0\n"
                "Contact: <sip:caller@host25.example.net>\n"
                "Via: SIP/2.0/UDP 192.0.2.25;branch=z9hG4bKkdjuw\n"
                "Max-Forwards: 70\n"
                "CSeq: 5 INVITE\n"
                "Call-ID: multi01.98asdh@192.0.2.1\n"
                "CSeq: 59 INVITE\n"
                "Call-ID: multi01.98asdh@192.0.2.2\n"
                "From: sip:caller@example.com;tag=3413415\n"
                "To: sip:user@example.com\n"
                "To: sip:other@example.net\n"
                "From: sip:caller@example.net;tag=2923420123\n"
                "Content-Type: application/sdp\n"
                "l: 154\n"
                "Contact: <sip:caller@host36.example.net>\n"
                "Max-Forwards: 5\n"
                "\n" + _sdp(25, 25)
            )
        ),
        400,
    ),
    # 3.3.8: multiple Content-Length values
    "mcl01": (
        _crlf(
            "OPTIONS sip:user@example.com SIP/2.0\n"
            "Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bK293423\n"
            "To: sip:user@example.com\n"
            "From: sip:other@example.net;tag=3923942\n"
            "Call-ID: mcl01.fhn2323orihawfdoa3o4r52o3irsdf\n"
            "CSeq: 15932 OPTIONS\n"
            "Content-Length: 13\n"
            "Max-Forwards: 60\n"
            "Content-Length: 5\n"
            "Content-Type: text/plain\n"
            "\n"
            "There's no way to know how many octets are supposed to be here.\n"
        ),
        400,
    ),
}


# --- the rest of RFC 4475 (3.1.1.7, 3.1.1.11, 3.1.2.5, 3.1.2.12/13, 3.1.2.19, 3.2, 3.3) ----------


def _rep(text: str, count: int) -> str:
    """The RFC's `<repeat count=N>text</repeat>` notation (§2.3)."""
    return text * count


_LONG_VIAS = "".join(
    f"{('Via', 'v', 'V')[n % 3]}: SIP/2.0/TCP sip{n}.example.com\n" for n in range(33, 0, -1)
)

LONGREQ = _fit(
    _crlf(
        "INVITE sip:user@example.com SIP/2.0\n"
        f'To: "I have a user name of {_rep("extremely", 10)} proportion"'
        f"<sip:user@example.com:6000;unknownparam1=very{_rep('long', 20)}value;"
        f"longparam{_rep('name', 25)}=shortvalue;very{_rep('long', 25)}ParameterNameWithNoValue>\n"
        f"F: sip:{_rep('amazinglylongcallername', 5)}@example.net;tag=12{_rep('982', 50)}424;"
        f"unknownheaderparam{_rep('name', 20)}=unknowheaderparam{_rep('value', 15)};"
        f"unknownValuelessparam{_rep('name', 10)}\n"
        f"Call-ID: longreq.one{_rep('really', 20)}longcallid\n"
        "CSeq: 3882340 INVITE\n"
        f"Unknown-{_rep('Long', 20)}-Name: unknown-{_rep('long', 20)}-value; "
        f"unknown-{_rep('long', 20)}-parameter-name = unknown-{_rep('long', 20)}-parameter-value\n"
        + _LONG_VIAS
        + f"Via: SIP/2.0/TCP host1.example.com;received=192.0.2.5;branch=very{_rep('long', 50)}branchvalue\n"
        "Max-Forwards: 70\n"
        f"Contact: <sip:{_rep('amazinglylongcallername', 5)}@host5.example.net>\n"
        "Content-Type: application/sdp\n"
        "l: 150\n"
        "\n" + _sdp(1, 1)
    )
)
"""3.1.1.7: long values everywhere (a 34-entry Via list, long tags, names, parameters): still far
inside our bounds (65535 bytes a message, 8192 a header line, 100 header fields)."""

_SIGNATURE = bytes(range(256)) + b"\x00\x00\r\n--+\x00" + bytes(range(255, -1, -1))
"""A stand-in for the RFC's binary PKCS#7 signature: every byte value, NULs, a CRLF and a near-boundary."""

MPART01 = _fit(
    _crlf(
        "MESSAGE sip:kumiko@example.org SIP/2.0\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-;rport\n"
        "Max-Forwards: 70\n"
        "Route: <sip:127.0.0.1:5080>\n"
        "Identity: r5mwreLuyDRYBi/0TiPwEsY3rEVsk/G2WxhgTV1PF7hHuLPqr+aNk9UbTxasV6UX\n"
        "  hrC5mi1kvVHSRDQYNE7mzN0WNEljRpOhkDKUYYkexIU9k6PASNrxnyZsqlEjPZQXLGP4FNHK\n"
        "Identity-Info: <https://example.com/cert>;alg=rsa-sha1\n"
        "Contact: <sip:fluffy@127.0.0.1:5070>\n"
        "To: <sip:kumiko@example.org>\n"
        "From: <sip:fluffy@example.com>;tag=2fb0dcc9\n"
        "Call-ID: 3d9485ad0c49859b@Zmx1ZmZ5LW1hYy0xNi5sb2NhbA..\n"
        "CSeq: 1 MESSAGE\n"
        "Accept: multipart/signed, text/plain, application/pkcs7-signature, application/sipfrag\n"
        "Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, MESSAGE\n"
        'Content-Type: multipart/signed;boundary=++;micalg=sha1;protocol="application/pkcs7-signature"\n'
        "Content-Length: 0\n"
        "\n"
    )[:-2]
    + b"\r\n--++\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\n"
    b"Content-ID: <1234@example.com>\r\n\r\nHello\r\n--++\r\n"
    b"Content-Type: application/pkcs7-signature;name=smime.p7s\r\n"
    b"Content-Transfer-Encoding: binary\r\nContent-Disposition: attachment;handling=required;"
    b"filename=smime.p7s\r\n\r\n" + _SIGNATURE + b"\r\n--++--"
)
"""3.1.1.11: a multipart/signed body whose second part is binary, NULs included: framed by
Content-Length alone, never read as text."""

BADDATE = _fit(
    _crlf(
        "INVITE sip:user@example.com SIP/2.0\n"
        "To: sip:user@example.com\n"
        "From: sip:caller@example.net;tag=2234923\n"
        "Max-Forwards: 70\n"
        "Call-ID: baddate.239423mnsadf3j23lj42--sedfnm234\n"
        "CSeq: 1392934 INVITE\n"
        "Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw\n"
        "Date: Fri, 01 Jan 2010 16:00:00 EST\n"
        "Contact: <sip:caller@host5.example.net>\n"
        "Content-Type: application/sdp\n"
        "Content-Length: 150\n"
        "\n" + _sdp(5, 5)
    )
)
"""3.1.2.12: a Date in EST, not GMT. Invalid, but the RFC lets an element that does not use the Date
accept it (only one that needs the date should refuse it): we never read Date."""

BADBRANCH = _crlf(
    "OPTIONS sip:user@example.com SIP/2.0\n"
    "To: sip:user@example.com\n"
    "From: sip:caller@example.org;tag=33242\n"
    "Max-Forwards: 3\n"
    "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK\n"
    "Accept: application/sdp\n"
    "Call-ID: badbranch.sadonfo23i420jv0as0derf3j3n\n"
    "CSeq: 8 OPTIONS\n"
    "l: 0\n\n"
)
"""3.2.1: the RFC 3261 magic cookie with no identifier after it: reject with 400, or fall back on
RFC 2543 transaction matching (we fall back)."""

UNKSM2 = _crlf(
    "REGISTER sip:example.com SIP/2.0\n"
    "To: isbn:2983792873\n"
    "From: <http://www.example.com>;tag=3234233\n"
    "Call-ID: unksm2.daksdj@hyphenated-host.example.com\n"
    "CSeq: 234902 REGISTER\n"
    "Max-Forwards: 70\n"
    "Via: SIP/2.0/UDP 192.0.2.21:5060;branch=z9hG4bKkdjuw\n"
    "Contact: <name:John_Smith>\n"
    "l: 0\n\n"
)

BEXT01 = _crlf(
    "OPTIONS sip:user@example.com SIP/2.0\n"
    "To: sip:j_user@example.com\n"
    "From: sip:caller@example.net;tag=242etr\n"
    "Max-Forwards: 6\n"
    "Call-ID: bext01.0ha0isndaksdj\n"
    "Require: nothingSupportedHere, nothingSuppHere,\n"
    " nothingSupportedHere\n"
    "Proxy-Require: noProxiesSupportThis, nothingSupportedHere\n"
    "CSeq: 8 OPTIONS\n"
    "Via: SIP/2.0/TLS fold-and-staple.example.com;branch=z9hG4bKkdjuw\n"
    "l: 0\n\n"
)

INVUT = _crlf(
    "INVITE sip:user@example.com SIP/2.0\n"
    "Contact: <sip:caller@host5.example.net>\n"
    "To: sip:j.user@example.com\n"
    "From: sip:caller@example.net;tag=8392034\n"
    "Max-Forwards: 70\n"
    "Call-ID: invut.0ha0isndaksdjadsfij34n23d\n"
    "CSeq: 235448 INVITE\n"
    "Via: SIP/2.0/UDP somehost.example.com;branch=z9hG4bKkdjuw\n"
    "Content-Type: application/unknownformat\n"
    "Content-Length: 40\n"
    "\n"
    "<audio>\n"
    ' <pcmu port="443"/>\n'
    "</audio>\n"
)

REGAUT01 = _crlf(
    "REGISTER sip:example.com SIP/2.0\n"
    "To: sip:j.user@example.com\n"
    "From: sip:j.user@example.com;tag=87321hj23128\n"
    "Max-Forwards: 8\n"
    "Call-ID: regaut01.0ha0isndaksdj\n"
    "CSeq: 9338 REGISTER\n"
    "Via: SIP/2.0/TCP 192.0.2.253;branch=z9hG4bKkdjuw\n"
    "Authorization: NoOneKnowsThisScheme opaque-data=here\n"
    "Content-Length:0\n\n"
)

BCAST = _fit(
    _crlf(
        "SIP/2.0 200 OK\n"
        "Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923\n"
        "Via: SIP/2.0/UDP 255.255.255.255;branch=z9hG4bK1saber23\n"
        "Call-ID: bcast.0384840201234ksdfak3j2erwedfsASdf\n"
        "CSeq: 35 INVITE\n"
        "From: sip:user@example.com;tag=11141343\n"
        "To: sip:user@example.edu;tag=2229\n"
        "Content-Length: 155\n"
        "Content-Type: application/sdp\n"
        "Contact: <sip:user@host28.example.com>\n"
        "\n" + _sdp(198, 198)
    )
)
"""3.3.10: a 200 whose second Via is the broadcast address: well formed; an endpoint discards it."""

ZEROMF = _crlf(
    "OPTIONS sip:user@example.com SIP/2.0\n"
    "Call-ID: zeromf.jfasdlfnm2o2l43r5u0asdfas\n"
    "CSeq: 39234321 OPTIONS\n"
    "Via: SIP/2.0/UDP host1.example.com;branch=z9hG4bKkdjuw2349i\n"
    "Max-Forwards: 0\n"
    "To: <sip:user@example.com>\n"
    "From: <sip:caller@example.net>;tag=3ghsd41\n"
    "l: 0\n\n"
)
"""3.3.11: Max-Forwards 0. A proxy answers 483; an endpoint processes it as if it were positive."""

CPARAM01 = _crlf(
    "REGISTER sip:example.com SIP/2.0\n"
    "Via: SIP/2.0/UDP saturn.example.com:5060;branch=z9hG4bKkdjuw\n"
    "Max-Forwards: 70\n"
    "From: sip:watson@example.com;tag=DkfVgjkrtMwaerKKpe\n"
    "To: sip:watson@example.com\n"
    "Call-ID: cparam01.70710@saturn.example.com\n"
    "CSeq: 2 REGISTER\n"
    "Contact: sip:+19725552222@gw1.example.net;unknownparam\n"
    "l: 0\n\n"
)

CPARAM02 = _crlf(
    "REGISTER sip:example.com SIP/2.0\n"
    "Via: SIP/2.0/UDP saturn.example.com:5060;branch=z9hG4bKkdjuw\n"
    "Max-Forwards: 70\n"
    "From: sip:watson@example.com;tag=838293\n"
    "To: sip:watson@example.com\n"
    "Call-ID: cparam02.70710@saturn.example.com\n"
    "CSeq: 3 REGISTER\n"
    "Contact: <sip:+19725552222@gw1.example.net;unknownparam>\n"
    "l: 0\n\n"
)

REGESCRT = _crlf(
    "REGISTER sip:example.com SIP/2.0\n"
    "To: sip:user@example.com\n"
    "From: sip:user@example.com;tag=8\n"
    "Max-Forwards: 70\n"
    "Call-ID: regescrt.k345asrl3fdbv@192.0.2.1\n"
    "CSeq: 14398234 REGISTER\n"
    "Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw\n"
    "M: <sip:user@example.com?Route=%3Csip:sip.example.com%3E>\n"
    "L:0\n\n"
)

SDP01 = _fit(
    _crlf(
        "INVITE sip:user@example.com SIP/2.0\n"
        "To: sip:j_user@example.com\n"
        "Contact: <sip:caller@host15.example.net>\n"
        "From: sip:caller@example.net;tag=234\n"
        "Max-Forwards: 5\n"
        "Call-ID: sdp01.ndaksdj9342dasdd\n"
        "Accept: text/nobodyKnowsThis\n"
        "CSeq: 8 INVITE\n"
        "Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw\n"
        "Content-Length: 150\n"
        "Content-Type: application/sdp\n"
        "\n" + _sdp(15, 15)
    )
)
"""3.3.15: the caller accepts no body we could answer with (no SDP): 406 Not Acceptable."""

VALID.update(
    {
        "longreq": LONGREQ,
        "mpart01": MPART01,
        "badbranch": BADBRANCH,
        "unksm2": UNKSM2,
        "bext01": BEXT01,
        "invut": INVUT,
        "regaut01": REGAUT01,
        "bcast": BCAST,
        "zeromf": ZEROMF,
        "cparam01": CPARAM01,
        "cparam02": CPARAM02,
        "regescrt": REGESCRT,
        "sdp01": SDP01,
    }
)

TOLERATED: dict[str, bytes] = {"baddate": BADDATE}
"""Messages the RFC calls invalid but lets a receiver repair and accept."""

INVALID.update(
    {
        # 3.1.2.5: response scalar fields with overlarge values (a receiver discards it)
        "scalarlg": (
            _crlf(
                "SIP/2.0 503 Service Unavailable\n"
                "Via: SIP/2.0/TCP host129.example.com;branch=zzz;received=192.0.2.129\n"
                "To: <sip:user@example.com>\n"
                "From: <sip:other@example.net>;tag=2easdjfejw\n"
                "CSeq: 9292394834772304023312 OPTIONS\n"
                "Call-ID: scalarlg.noase0of0234hn2qofoaf0232aewf2394r\n"
                "Retry-After: 949302838503028349304023988\n"
                'Warning: 1812 overture "In Progress"\n'
                "Content-Length: 0\n\n"
            ),
            400,
        ),
        # 3.1.2.13: a URI with headers (escaped) outside <> in Contact
        "regbadct": (
            _crlf(
                "REGISTER sip:example.com SIP/2.0\n"
                "To: sip:user@example.com\n"
                "From: sip:user@example.com;tag=998332\n"
                "Max-Forwards: 70\n"
                "Call-ID: regbadct.k345asrl3fdbv@10.0.0.1\n"
                "CSeq: 1 REGISTER\n"
                "Via: SIP/2.0/UDP 135.180.130.133:5060;branch=z9hG4bKkdjuw\n"
                "Contact: sip:user@example.com?Route=%3Csip:sip.example.com%3E\n"
                "l: 0\n\n"
            ),
            400,
        ),
        # 3.1.2.19: a response status code over three digits (a receiver discards it)
        "bigcode": (
            _crlf(
                "SIP/2.0 4294967301 better not break the receiver\n"
                "Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe\n"
                "Call-ID: bigcode.asdof3uj203asdnf3429uasdhfas3ehjasdfas9i\n"
                "CSeq: 353494 INVITE\n"
                "From: <sip:user@example.com>;tag=39ansfi3\n"
                "To: <sip:user@example.edu>;tag=902jndnke3\n"
                "Content-Length: 0\n"
                "Contact: <sip:user@host105.example.com>\n\n"
            ),
            400,
        ),
    }
)

INVALID_RESPONSES = ("scalarlg", "bigcode")
"""Invalid responses: nothing to answer, the receiver drops them."""
