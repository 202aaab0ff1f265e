"""SIP messages: parse what the network sends, build what we answer (RFC 3261 §7, §20, §25).

The parser is strict where a mistake would corrupt call state (start line, CSeq, Content-Length,
mandatory headers, size limits) and lenient where real peers differ harmlessly (compact header names,
folded lines, bare LF line ends, leading CRLF keep-alives). Every rejection is a `SipParseError`
carrying the status a UAS should answer; nothing else escapes, and all work is linear in the input.

The grammar of single header values lives beside this module: `headers` (names, lists, `Headers`),
`addresses` (hosts, URIs, Via, name-addr) and `errors` (`SipParseError`). Their public names are
re-exported here, so `voxline.telephony.sip.message` stays the one place to import from.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from voxline.telephony.sip.addresses import (
    NameAddr,
    SipUri,
    Via,
    format_host,
    parse_name_addr,
    parse_uri,
    parse_via,
)
from voxline.telephony.sip.errors import SipParseError
from voxline.telephony.sip.headers import (
    COMPACT_FORMS,
    FORBIDDEN_CHARS,
    TOKEN_RE,
    Headers,
    canonical_name,
    split_list,
)

MAX_MESSAGE_BYTES = 65535
MAX_HEADERS = 100
MAX_HEADER_LINE = 8192

MAGIC_COOKIE = "z9hG4bK"

_VERSION_RE = re.compile(r"SIP/(\d+)\.(\d+)", re.IGNORECASE)

_SINGLE_HEADERS = ("From", "To", "Call-ID", "CSeq", "Max-Forwards")
_BARE_NUL_RE = re.compile(r"(?<!\\)\x00")

REASON_PHRASES = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued", 183: "Session Progress",
    200: "OK", 202: "Accepted", 300: "Multiple Choices", 301: "Moved Permanently",
    302: "Moved Temporarily", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable", 407: "Proxy Authentication Required",
    408: "Request Timeout", 410: "Gone", 413: "Request Entity Too Large", 414: "Request-URI Too Long",
    415: "Unsupported Media Type", 416: "Unsupported URI Scheme", 420: "Bad Extension",
    421: "Extension Required", 423: "Interval Too Brief", 480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist", 482: "Loop Detected", 483: "Too Many Hops",
    484: "Address Incomplete", 485: "Ambiguous", 486: "Busy Here", 487: "Request Terminated",
    488: "Not Acceptable Here", 489: "Bad Event", 491: "Request Pending", 493: "Undecipherable",
    500: "Server Internal Error", 501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Server Time-out", 505: "Version Not Supported", 513: "Message Too Large",
    600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}  # fmt: skip


def _serialize(start_line: str, headers: Headers, body: bytes) -> bytes:
    lines = [start_line]
    wrote_length = False
    for name, value in headers.items():
        if name == "Content-Length":
            if wrote_length:
                continue
            value, wrote_length = str(len(body)), True
        lines.append(f"{name}: {value}")
    if not wrote_length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


@dataclass
class SipRequest:
    method: str
    uri: str
    headers: Headers
    body: bytes = b""

    def to_bytes(self) -> bytes:
        """The wire form, Content-Length set from the body."""
        if not TOKEN_RE.fullmatch(self.method):
            raise ValueError(f"invalid method {self.method!r}")
        if not self.uri or any(ch.isspace() or ch in FORBIDDEN_CHARS for ch in self.uri):
            raise ValueError(f"invalid Request-URI {self.uri!r}")
        return _serialize(f"{self.method} {self.uri} SIP/2.0", self.headers, self.body)


@dataclass
class SipResponse:
    status: int
    reason: str
    headers: Headers
    body: bytes = b""

    def to_bytes(self) -> bytes:
        if not 100 <= self.status <= 699:
            raise ValueError(f"invalid status {self.status}")
        if any(ch in FORBIDDEN_CHARS for ch in self.reason):
            raise ValueError("reason phrase contains CR, LF or NUL")
        return _serialize(f"SIP/2.0 {self.status} {self.reason}", self.headers, self.body)


SipMessage = SipRequest | SipResponse


# --- parsing whole messages --------------------------------------------------------------------


def parse_cseq(value: str) -> tuple[int, str]:
    number, _, method = value.strip(" \t").partition(" ")
    method = method.strip(" \t")
    if not number.isascii() or not number.isdigit() or len(number) > 10 or int(number) >= 2**31:
        raise SipParseError(f"bad CSeq number {value!r}")
    if not TOKEN_RE.fullmatch(method):
        raise SipParseError(f"bad CSeq method {value!r}")
    return int(number), method


def _fail(reason: str, status: int = 400, partial: SipRequest | None = None) -> SipParseError:
    return SipParseError(reason, status, partial=partial)


def _header_end(data: bytes, start: int) -> tuple[int, int]:
    """(end of header block, start of body); (-1, -1) if the blank line has not arrived."""
    crlf = data.find(b"\r\n\r\n", start)
    lf = data.find(b"\n\n", start)
    if lf >= 0 and (crlf < 0 or lf < crlf):
        return lf, lf + 2
    return (crlf, crlf + 4) if crlf >= 0 else (-1, -1)


def _skip_crlf(data: bytes | bytearray) -> int:
    start = 0
    while start < len(data) and data[start] in (13, 10):
        start += 1
    return start


def _content_length(values: list[str]) -> int | None:
    if not values:
        return None
    if len(set(values)) > 1:
        raise _fail("conflicting Content-Length headers")
    text = values[0]
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        raise _fail(f"bad Content-Length {text!r}")
    if int(text) > MAX_MESSAGE_BYTES:
        raise _fail("body too large", 413)
    return int(text)


def _split_lines(head: bytes) -> list[str]:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise _fail("header section is not UTF-8") from None
    if _BARE_NUL_RE.search(text):  # a NUL is legal only as a quoted-pair (RFC 4475 intmeth)
        raise _fail("NUL in header section")
    lines = [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
    for line in lines:
        if "\r" in line:
            raise _fail("bare CR in header section")
        if len(line) > MAX_HEADER_LINE:
            raise _fail("header line too long", 513)
    return lines


def _parse_headers(lines: list[str]) -> Headers:
    """Unfold continuation lines (RFC 3261 §7.3.1) and collect `name: value` pairs."""
    headers = Headers()
    current: list[str] = []

    def finish() -> None:
        line = " ".join(current)
        if len(line) > MAX_HEADER_LINE:
            raise _fail("header too long", 513)
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")
        if not colon or not TOKEN_RE.fullmatch(name):
            raise _fail(f"malformed header line {line[:80]!r}")
        if len(headers) >= MAX_HEADERS:
            raise _fail("too many header fields", 513)
        headers._append(name, value.strip(" \t"))

    for line in lines:
        if line[:1] in (" ", "\t"):
            if not current:
                raise _fail("continuation line without a header")
            current.append(line.strip(" \t"))
            continue
        if current:
            finish()
        current = [line]
    if current:
        finish()
    return headers


def _check_version(version: str, partial: SipRequest | None) -> None:
    match = _VERSION_RE.fullmatch(version)
    if not match:
        raise _fail(f"bad SIP version {version[:40]!r}", partial=partial)
    if (match.group(1), match.group(2)) != ("2", "0"):
        raise _fail(f"SIP version {version} not supported", 505, partial=partial)


def _parse_start(line: str, headers: Headers) -> SipMessage:
    if line[:4].upper() == "SIP/":
        version, _, rest = line.partition(" ")
        code, _, reason = rest.partition(" ")
        _check_version(version, None)
        if len(code) != 3 or not code.isascii() or not code.isdigit() or not 100 <= int(code) <= 699:
            raise _fail(f"bad status code {code[:40]!r}")
        return SipResponse(int(code), reason.strip(" \t"), headers)
    parts = line.split(" ")
    if len(parts) != 3 or not TOKEN_RE.fullmatch(parts[0]):
        raise _fail(f"malformed start line {line[:80]!r}")
    method, uri, version = parts
    request = SipRequest(method, uri, headers)
    _check_version(version, request)
    if ":" not in uri or any(ch.isspace() or ch in '<>"' for ch in uri):
        raise _fail(f"bad Request-URI {uri[:80]!r}", partial=request)
    return request


def _check_request(request: SipRequest) -> None:
    headers = request.headers
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        if name not in headers:
            raise _fail(f"missing {name} header", partial=request)
    for name in _SINGLE_HEADERS:
        if len(headers.get_all(name)) > 1:
            raise _fail(f"more than one {name} header", partial=request)
    try:
        _, cseq_method = parse_cseq(headers.get("CSeq") or "")
        parse_via(headers.get("Via") or "")
        parse_name_addr(headers.get("From") or "")
        parse_name_addr(headers.get("To") or "")
        for contact in headers.get_all("Contact"):
            if contact != "*":  # a REGISTER's "remove every binding"
                parse_name_addr(contact)
        request_uri = parse_uri(request.uri)
    except SipParseError as exc:
        raise _fail(exc.reason, exc.status, partial=request) from None
    if request_uri.headers is not None:  # RFC 3261 §19.1.5: not allowed in a Request-URI (RFC 4475 escruri)
        raise _fail("headers in the Request-URI", partial=request)
    if cseq_method != request.method:
        raise _fail("CSeq method does not match the request method", partial=request)
    max_forwards = headers.get("Max-Forwards")
    if max_forwards is not None and not (max_forwards.isascii() and max_forwards.isdigit()):
        raise _fail(f"bad Max-Forwards {max_forwards[:20]!r}", partial=request)
    if not headers.get("Call-ID"):
        raise _fail("empty Call-ID", partial=request)


def _check_response(response: SipResponse) -> None:
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        if name not in response.headers:
            raise _fail(f"response without {name} header")
    parse_cseq(response.headers.get("CSeq") or "")
    parse_via(response.headers.get("Via") or "")


def parse_message(data: bytes, *, stream: bool = False) -> SipMessage:
    """Parse one SIP message: a UDP datagram, or (stream=True) one message framed by `split_stream`.

    Over UDP a body longer than Content-Length is truncated and a shorter one is an error (RFC 3261
    §18.3); over a stream the body must match exactly and a missing Content-Length means 0.
    """
    data = bytes(data)
    if len(data) > MAX_MESSAGE_BYTES:
        raise _fail("message too large", 513)
    start = _skip_crlf(data)
    if start == len(data):
        raise _fail("empty message (keep-alive?)")
    head_end, body_start = _header_end(data, start)
    if head_end < 0:
        head_end = body_start = len(data)
    lines = _split_lines(bytes(data[start:head_end]))
    headers = _parse_headers(lines[1:])
    message = _parse_start(lines[0], headers)
    partial = message if isinstance(message, SipRequest) else None
    try:
        length = _content_length(headers.get_all("Content-Length"))
    except SipParseError as exc:
        raise _fail(exc.reason, exc.status, partial) from None
    body = bytes(data[body_start:])
    if length is None and stream:
        length = 0
    if length is not None:
        if len(body) < length or (stream and len(body) > length):
            raise _fail(f"body is {len(body)} bytes, Content-Length says {length}", partial=partial)
        body = body[:length]
    message.body = body
    if isinstance(message, SipRequest):
        _check_request(message)
    else:
        _check_response(message)
    return message


def _stream_content_length(head: bytes) -> int:
    for raw in head.split(b"\n"):
        name, colon, value = raw.partition(b":")
        if colon and name.strip(b" \t").lower() in (b"content-length", b"l"):
            text = value.strip(b" \t\r")
            if not text.isdigit() or len(text) > 10:
                raise _fail(f"bad Content-Length {text[:20]!r}")
            if int(text) > MAX_MESSAGE_BYTES:
                raise _fail("body too large", 413)
            return int(text)
    return 0


def split_stream(buffer: bytearray) -> list[bytes]:
    """Pop every complete message off a TCP/TLS receive buffer (framed by Content-Length).

    CRLF keep-alives between messages are discarded. Raises SipParseError when the peer cannot be
    framed (oversized header block or body, bad Content-Length): the connection should then close,
    since the buffer's remaining contents can no longer be trusted.
    """
    messages: list[bytes] = []
    while True:
        del buffer[: _skip_crlf(buffer)]
        if not buffer:
            return messages
        head_end, body_start = _header_end(bytes(buffer[: MAX_MESSAGE_BYTES + 4]), 0)
        if head_end < 0:
            if len(buffer) > MAX_MESSAGE_BYTES:
                raise _fail("header block too large", 513)
            return messages
        length = _stream_content_length(bytes(buffer[:head_end]))
        if body_start + length > MAX_MESSAGE_BYTES:
            raise _fail("message too large", 513)
        if len(buffer) < body_start + length:
            return messages
        messages.append(bytes(buffer[: body_start + length]))
        del buffer[: body_start + length]


# --- building responses and identifiers --------------------------------------------------------


def make_response(
    request: SipRequest,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    body: bytes = b"",
    content_type: str | None = None,
    extra: Sequence[tuple[str, str]] = (),
) -> SipResponse:
    """A response to `request` per RFC 3261 §8.2.6: Via (all), From, To (+tag), Call-ID, CSeq copied."""
    headers = Headers()
    copied: tuple[str, ...] = ("Via", "From", "To", "Call-ID", "CSeq")
    if request.method == "INVITE" and 100 < status < 300:
        # §12.1.1: a dialog-making response carries the proxies' Record-Route set back to the caller,
        # so its ACK, BYE and INFO pass through them to us (a load balancer needs that).
        copied += ("Record-Route",)
    for name in copied:
        for value in request.headers.get_all(name):
            if name == "To" and to_tag is not None:
                try:
                    has_tag = parse_name_addr(value).tag is not None
                except SipParseError:
                    has_tag = True  # unreadable: copy as is rather than guess where a tag would go
                if not has_tag:
                    # Append to the peer's own text: To must compare equal to the request's, plus the tag.
                    value = f"{value};tag={to_tag}"
            headers.add(name, value)
    for name, value in extra:
        headers.add(name, value)
    if content_type is not None:
        headers.add("Content-Type", content_type)
    phrase = reason if reason is not None else REASON_PHRASES.get(status, "Unknown")
    return SipResponse(status, phrase, headers, body)


def max_forwards(headers: Headers) -> int:
    """Max-Forwards, or 70 when a (non-conforming) peer left it out, as RFC 3261 §8.1.1.6 suggests."""
    value = headers.get("Max-Forwards")
    return int(value) if value is not None and value.isascii() and value.isdigit() else 70


def new_tag() -> str:
    return secrets.token_hex(8)


def new_branch() -> str:
    """A transaction id with the RFC 3261 magic cookie, so peers know it is globally unique."""
    return MAGIC_COOKIE + secrets.token_hex(12)


def new_call_id(host: str) -> str:
    return f"{secrets.token_hex(16)}@{format_host(host)}"


__all__ = [
    "COMPACT_FORMS", "MAGIC_COOKIE", "MAX_HEADERS", "MAX_HEADER_LINE", "MAX_MESSAGE_BYTES", "REASON_PHRASES",
    "Headers", "NameAddr", "SipMessage", "SipParseError", "SipRequest", "SipResponse", "SipUri", "Via",
    "canonical_name", "format_host", "make_response", "max_forwards", "new_branch", "new_call_id", "new_tag",
    "parse_cseq", "parse_message", "parse_name_addr", "parse_uri", "parse_via", "split_list",
    "split_stream",
]  # fmt: skip
