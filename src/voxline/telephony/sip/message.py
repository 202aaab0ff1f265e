"""SIP messages: parse what the network sends, build what we answer (RFC 3261 §7, §20, §25).

The parser is strict where a mistake would corrupt call state (start line, CSeq, Content-Length,
mandatory headers, size limits) and lenient where real peers differ harmlessly (compact header names,
folded lines, bare LF line ends, leading CRLF keep-alives). Every rejection is a `SipParseError`
carrying the status a UAS should answer; nothing else escapes, and all work is linear in the input.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

MAX_MESSAGE_BYTES = 65535
MAX_HEADERS = 100
MAX_HEADER_LINE = 8192

MAGIC_COOKIE = "z9hG4bK"

_TOKEN_RE = re.compile(r"[A-Za-z0-9.!%*_+`'~-]+")
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9_.-]+")
_VERSION_RE = re.compile(r"SIP/(\d+)\.(\d+)", re.IGNORECASE)
_VIA_RE = re.compile(
    r"\s*([A-Za-z0-9.!%*_+`'~-]+)\s*/\s*([A-Za-z0-9.!%*_+`'~-]+)\s*/\s*([A-Za-z0-9.!%*_+`'~-]+)\s+(\S.*)",
    re.DOTALL,
)
_FORBIDDEN_CHARS = frozenset("\r\n\x00")

COMPACT_FORMS = {
    "a": "accept-contact", "b": "referred-by", "c": "content-type", "d": "request-disposition",
    "e": "content-encoding", "f": "from", "i": "call-id", "j": "reject-contact", "k": "supported",
    "l": "content-length", "m": "contact", "n": "identity-info", "o": "event", "r": "refer-to",
    "s": "subject", "t": "to", "u": "allow-events", "v": "via", "x": "session-expires", "y": "identity",
}  # fmt: skip

_CANONICAL = {
    name.lower(): name
    for name in (
        "Via", "From", "To", "Call-ID", "CSeq", "Contact", "Max-Forwards", "Content-Length", "Content-Type",
        "Content-Encoding", "Content-Disposition", "Route", "Record-Route", "Allow", "Supported", "Require",
        "Proxy-Require", "Unsupported", "Expires", "Min-Expires", "User-Agent", "Server", "Subject",
        "Accept", "Accept-Encoding", "Accept-Language", "Authorization", "Proxy-Authorization",
        "WWW-Authenticate", "Proxy-Authenticate", "Event", "Allow-Events", "Refer-To", "Referred-By",
        "Session-Expires", "Min-SE", "RSeq", "RAck", "P-Asserted-Identity", "Reason", "Timestamp",
        "Warning", "Date", "Retry-After", "Organization", "Accept-Contact", "Reject-Contact",
        "Request-Disposition", "Identity", "Identity-Info", "MIME-Version", "Subscription-State",
        "Replaces", "Path", "Service-Route", "Privacy", "Call-Info", "Alert-Info", "Error-Info",
    )
}  # fmt: skip

# Headers whose grammar is a comma-separated list: several values may share one line.
_LIST_HEADERS = frozenset(
    {
        "via", "route", "record-route", "contact", "allow", "supported", "require", "proxy-require",
        "unsupported", "accept", "accept-encoding", "accept-language", "allow-events", "content-encoding",
        "content-language", "in-reply-to", "path", "service-route", "alert-info", "call-info",
        "error-info", "warning", "reason", "p-asserted-identity", "history-info", "accept-contact",
        "reject-contact", "request-disposition",
    }
)  # fmt: skip
_SINGLE_HEADERS = ("From", "To", "Call-ID", "CSeq", "Max-Forwards")

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


class SipParseError(ValueError):
    """A message we cannot accept. `status`/`reason` is the response to send if it was a request.

    `partial` is the request as far as it could be read (start line and headers), so the caller can
    address an error response with `make_response`; None when even that was impossible.
    """

    def __init__(self, reason: str, status: int = 400, *, partial: SipRequest | None = None) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.partial = partial


def _key(name: str) -> str:
    lower = name.strip().lower()
    return COMPACT_FORMS.get(lower, lower) if len(lower) == 1 else lower


def canonical_name(name: str) -> str:
    """The conventional spelling of a header name; compact forms expand (`v` → `Via`)."""
    key = _key(name)
    return _CANONICAL.get(key, name.strip() if len(name.strip()) > 1 else key.title())


def split_list(value: str, sep: str = ",") -> list[str]:
    """Split at `sep` outside quoted strings and <...>; items stripped, empty items dropped."""
    items: list[str] = []
    start = 0
    in_quote = escaped = False
    depth = 0
    for i, ch in enumerate(value):
        if in_quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_quote = False
        elif ch == '"':
            in_quote = True
        elif ch == "<":
            depth += 1
        elif ch == ">" and depth:
            depth -= 1
        elif ch == sep and not depth:
            items.append(value[start:i])
            start = i + 1
    items.append(value[start:])
    return [item.strip(" \t") for item in items if item.strip(" \t")]


def _check_value(name: str, value: str) -> None:
    if not _TOKEN_RE.fullmatch(name):
        raise ValueError(f"invalid header name {name!r}")
    if any(ch in _FORBIDDEN_CHARS for ch in value):
        raise ValueError(f"header {name} value contains CR, LF or NUL (header injection?)")


class Headers:
    """Ordered, case-insensitive, multi-valued SIP headers. Compact names expand to full ones."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = []
        for name, value in items:
            self.add(name, value)

    def _append(self, name: str, value: str) -> None:
        self._items.append((canonical_name(name), value))

    def get(self, name: str) -> str | None:
        """The first value (for list headers, the first item, e.g. the topmost Via)."""
        values = self.get_all(name)
        return values[0] if values else None

    def get_all(self, name: str) -> list[str]:
        """Every value in order; comma-joined lines of list headers (Via, Route, ...) split into items."""
        key = _key(name)
        values = [v for n, v in self._items if n.lower() == key]
        if key in _LIST_HEADERS:
            return [item for v in values for item in split_list(v)]
        return values

    def add(self, name: str, value: str) -> None:
        _check_value(name, value)
        self._append(name, value.strip(" \t"))

    def set(self, name: str, value: str) -> None:
        """Replace every value of `name`, keeping the position of the first one."""
        _check_value(name, value)
        key = _key(name)
        out: list[tuple[str, str]] = []
        placed = False
        for n, v in self._items:
            if n.lower() != key:
                out.append((n, v))
            elif not placed:
                out.append((n, value.strip(" \t")))  # keep the spelling already on the wire
                placed = True
        if not placed:
            out.append((canonical_name(name), value.strip(" \t")))
        self._items = out

    def remove(self, name: str) -> None:
        key = _key(name)
        self._items = [(n, v) for n, v in self._items if n.lower() != key]

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = _key(name)
        return any(n.lower() == key for n, _ in self._items)

    def items(self) -> list[tuple[str, str]]:
        """The header lines as stored (one entry per line, list values not split)."""
        return list(self._items)

    def copy(self) -> Headers:
        other = Headers()
        other._items = list(self._items)
        return other

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._items == other._items

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


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
        if not _TOKEN_RE.fullmatch(self.method):
            raise ValueError(f"invalid method {self.method!r}")
        if not self.uri or any(ch.isspace() or ch in _FORBIDDEN_CHARS for ch in self.uri):
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
        if any(ch in _FORBIDDEN_CHARS for ch in self.reason):
            raise ValueError("reason phrase contains CR, LF or NUL")
        return _serialize(f"SIP/2.0 {self.status} {self.reason}", self.headers, self.body)


SipMessage = SipRequest | SipResponse


# --- grammar pieces: host, port, parameters, quoted strings ---------------------------------------


def _parse_host(text: str) -> str:
    """A host as used on sockets: IPv6 references lose their brackets."""
    if text.startswith("["):
        if not text.endswith("]"):
            raise SipParseError(f"bad IPv6 reference {text!r}")
        try:
            return str(ipaddress.IPv6Address(text[1:-1]))
        except ValueError:
            raise SipParseError(f"bad IPv6 address {text!r}") from None
    if not _HOSTNAME_RE.fullmatch(text):
        raise SipParseError(f"bad host {text!r}")
    return text


def format_host(host: str) -> str:
    """The host as written in a URI or Via: IPv6 addresses in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _parse_hostport(text: str) -> tuple[str, int | None]:
    text = text.strip(" \t")
    if text.startswith("["):
        end = text.find("]")
        host_part, rest = (text[: end + 1], text[end + 1 :]) if end >= 0 else (text, "")
    else:
        host_part, colon, rest = text.partition(":")
        rest = colon + rest
    host = _parse_host(host_part.strip(" \t"))
    if not rest:
        return host, None
    port_text = rest[1:].strip(" \t") if rest.startswith(":") else ""
    if not port_text.isascii() or not port_text.isdigit() or len(port_text) > 5 or int(port_text) > 65535:
        raise SipParseError(f"bad port in {text!r}")
    return host, int(port_text)


def _parse_params(text: str) -> dict[str, str | None]:
    """`;name=value;flag` into a dict with lower-case names (values keep their case and quotes)."""
    params: dict[str, str | None] = {}
    for item in split_list(text, ";"):
        name, eq, value = item.partition("=")
        name = name.strip(" \t").lower()
        if not _TOKEN_RE.fullmatch(name):
            raise SipParseError(f"bad parameter {item!r}")
        value = value.strip(" \t")
        if eq and not value:
            raise SipParseError(f"empty parameter value {item!r}")
        params[name] = value if eq else None
    return params


def _format_params(params: dict[str, str | None]) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


def _unquote(text: str) -> str:
    if len(text) < 2 or not (text.startswith('"') and text.endswith('"')):
        raise SipParseError(f"bad quoted string {text!r}")
    return re.sub(r"\\(.)", r"\1", text[1:-1], flags=re.DOTALL)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --- Via, URI, name-addr, CSeq ----------------------------------------------------------------


@dataclass
class Via:
    transport: str
    host: str
    port: int | None
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"SIP/2.0/{self.transport} {format_host(self.host)}{port}{_format_params(self.params)}"


def parse_via(value: str) -> Via:
    """One via-parm (`SIP/2.0/UDP host:port;branch=...`); split comma lists with `Headers.get_all`."""
    match = _VIA_RE.fullmatch(value.strip(" \t"))
    if not match:
        raise SipParseError(f"bad Via {value!r}")
    name, version, transport, rest = match.groups()
    if name.upper() != "SIP" or version != "2.0":
        raise SipParseError(f"bad Via protocol {name}/{version}")
    sent_by, _, params = rest.partition(";")
    host, port = _parse_hostport(sent_by)
    return Via(transport.upper(), host, port, _parse_params(params))


@dataclass
class SipUri:
    scheme: str
    user: str | None
    host: str
    port: int | None
    params: dict[str, str | None] = field(default_factory=dict)
    password: str | None = None
    headers: str | None = None  # the raw `?h=v&...` part, without the '?'

    def __str__(self) -> str:
        userinfo = ""
        if self.user is not None:
            userinfo = self.user + (f":{self.password}" if self.password is not None else "") + "@"
        port = f":{self.port}" if self.port is not None else ""
        tail = f"?{self.headers}" if self.headers else ""
        return f"{self.scheme}:{userinfo}{format_host(self.host)}{port}{_format_params(self.params)}{tail}"


def parse_uri(value: str) -> SipUri:
    """A sip: or sips: URI (RFC 3261 §19.1). Other schemes raise 416 Unsupported URI Scheme."""
    text = value.strip(" \t")
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip(" \t")
    scheme, colon, rest = text.partition(":")
    if not colon or not _TOKEN_RE.fullmatch(scheme):
        raise SipParseError(f"bad URI {value!r}")
    scheme = scheme.lower()
    if scheme not in ("sip", "sips"):
        raise SipParseError(f"unsupported URI scheme {scheme!r}", 416)
    if any(ch.isspace() or ch in '<>"' for ch in rest):
        raise SipParseError(f"bad characters in URI {value!r}")
    rest, _, headers = rest.partition("?")
    userinfo, at, hostpart = rest.rpartition("@")
    user = password = None
    if at:
        user, pcolon, pw = userinfo.partition(":")
        password = pw if pcolon else None
        if not user:
            raise SipParseError(f"empty user in URI {value!r}")
    hostport, _, params = hostpart.partition(";")
    host, port = _parse_hostport(hostport)
    return SipUri(scheme, user, host, port, _parse_params(params), password, headers or None)


@dataclass
class NameAddr:
    display: str | None
    uri: str
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def with_tag(self, tag: str) -> NameAddr:
        if not _TOKEN_RE.fullmatch(tag):
            raise ValueError(f"invalid tag {tag!r}")
        return replace(self, params={**self.params, "tag": tag})

    def __str__(self) -> str:
        display = f"{_quote(self.display)} " if self.display else ""
        return f"{display}<{self.uri}>{_format_params(self.params)}"


def parse_name_addr(value: str) -> NameAddr:
    """From/To/Contact/Route value: `"Name" <uri>;tag=x`, `Name <uri>` or a bare `uri;tag=x`."""
    text = value.strip(" \t")
    display: str | None = None
    if text.startswith('"'):
        end = _quoted_end(text)
        display = _unquote(text[: end + 1])
        text = text[end + 1 :].lstrip(" \t")
        if not text.startswith("<"):
            raise SipParseError(f"display name without <uri> in {value!r}")
    elif not text.startswith("<") and "<" in text:
        # RFC 3261 wants tokens here; peers send any text (accents, parentheses), so accept all but '"'.
        name, _, rest = text.partition("<")
        if '"' in name:
            raise SipParseError(f"bad display name in {value!r}")
        display = " ".join(name.split()) or None
        text = "<" + rest
    if text.startswith("<"):
        end = text.find(">")
        if end < 0:
            raise SipParseError(f"unterminated <uri> in {value!r}")
        uri, params = text[1:end].strip(" \t"), text[end + 1 :].strip(" \t")
        if params and not params.startswith(";"):
            raise SipParseError(f"junk after <uri> in {value!r}")
    else:
        # Without brackets, everything after the first ';' is a header parameter, not a URI parameter.
        uri, _, params = text.partition(";")
    if not uri or ":" not in uri or any(ch.isspace() or ch in '<>"' for ch in uri):
        raise SipParseError(f"bad URI in {value!r}")
    return NameAddr(display, uri, _parse_params(params))


def _quoted_end(text: str) -> int:
    escaped = False
    for i in range(1, len(text)):
        if escaped:
            escaped = False
        elif text[i] == "\\":
            escaped = True
        elif text[i] == '"':
            return i
    raise SipParseError(f"unterminated quoted string in {text!r}")


def parse_cseq(value: str) -> tuple[int, str]:
    number, _, method = value.strip(" \t").partition(" ")
    method = method.strip(" \t")
    if not number.isascii() or not number.isdigit() or len(number) > 10 or int(number) >= 2**31:
        raise SipParseError(f"bad CSeq number {value!r}")
    if not _TOKEN_RE.fullmatch(method):
        raise SipParseError(f"bad CSeq method {value!r}")
    return int(number), method


# --- parsing whole messages --------------------------------------------------------------------


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
    if "\x00" in text:
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
        if not colon or not _TOKEN_RE.fullmatch(name):
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
    if len(parts) != 3 or not _TOKEN_RE.fullmatch(parts[0]):
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
        parse_uri(request.uri)
    except SipParseError as exc:
        raise _fail(exc.reason, exc.status, partial=request) from None
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
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
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
    "MAGIC_COOKIE", "MAX_HEADERS", "MAX_HEADER_LINE", "MAX_MESSAGE_BYTES", "REASON_PHRASES", "Headers",
    "NameAddr", "SipMessage", "SipParseError", "SipRequest", "SipResponse", "SipUri", "Via",
    "canonical_name", "format_host", "make_response", "max_forwards", "new_branch", "new_call_id", "new_tag",
    "parse_cseq", "parse_message", "parse_name_addr", "parse_uri", "parse_via", "split_list",
    "split_stream",
]  # fmt: skip
