"""Addresses in SIP headers: hosts, SIP URIs, Via and name-addr values (RFC 3261 §19.1, §20, §25).

Hosts come out in socket form (IPv6 without brackets) and go back in with `format_host`. Parameter
names are lower-cased; values keep their case and quotes. Anything malformed raises `SipParseError`.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace

from voxline.telephony.sip.errors import SipParseError
from voxline.telephony.sip.headers import TOKEN_RE, split_list

_HOSTNAME_RE = re.compile(r"[A-Za-z0-9_.-]+")
_ABNF_BUG_RE = re.compile(r"([0-9A-Fa-f:]*::):(\d{1,3}(?:\.\d{1,3}){3})")
"""`2001:db8:::192.0.2.1`: RFC 3261's IPv6address ABNF derives `::` then `:IPv4address`; RFC 5118
§4.10 says to tolerate it (and only it) as the two-colon form."""
_VIA_RE = re.compile(
    r"\s*([A-Za-z0-9.!%*_+`'~-]+)\s*/\s*([A-Za-z0-9.!%*_+`'~-]+)\s*/\s*([A-Za-z0-9.!%*_+`'~-]+)\s+(\S.*)",
    re.DOTALL,
)


# --- grammar pieces: host, port, parameters, quoted strings ---------------------------------------


def _parse_host(text: str) -> str:
    """A host as used on sockets: IPv6 references lose their brackets."""
    if text.startswith("["):
        if not text.endswith("]"):
            raise SipParseError(f"bad IPv6 reference {text!r}")
        literal = text[1:-1]
        bug = _ABNF_BUG_RE.fullmatch(literal)
        if bug is not None:
            literal = bug.group(1) + bug.group(2)
        try:
            return str(ipaddress.IPv6Address(literal))
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
    """`;name=value;flag` into a dict with lower-case names (values keep their case and quotes).
    An empty parameter (`;;`, a trailing `;`) is malformed (RFC 4475 §3.1.2.1)."""
    params: dict[str, str | None] = {}
    text = text.strip(" \t")
    if not text:
        return params
    for item in split_list(text[1:] if text.startswith(";") else text, ";", keep_empty=True):
        name, eq, value = item.partition("=")
        name = name.strip(" \t").lower()
        if not TOKEN_RE.fullmatch(name):
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


# --- Via, URI, name-addr -----------------------------------------------------------------------


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
    if not colon or not TOKEN_RE.fullmatch(scheme):
        raise SipParseError(f"bad URI {value!r}")
    scheme = scheme.lower()
    if scheme not in ("sip", "sips"):
        raise SipParseError(f"unsupported URI scheme {scheme!r}", 416)
    if any(ch.isspace() or ch in '<>"' for ch in rest):
        raise SipParseError(f"bad characters in URI {value!r}")
    # The user part may hold '?' (RFC 3261 user-unreserved); '@' is never unescaped after it, so
    # the first '@' ends the userinfo, and headers start at the first '?' after that.
    userinfo, at, hostpart = rest.partition("@")
    if not at:
        userinfo, hostpart = "", rest
    hostpart, _, headers = hostpart.partition("?")
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
        if not TOKEN_RE.fullmatch(tag):
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
        # RFC 3261 wants tokens here; peers send any text (accents, parentheses), so accept all but
        # '"' and ',' (which splits a list header: RFC 4475 §3.1.2.15).
        name, _, rest = text.partition("<")
        if '"' in name or "," in name:
            raise SipParseError(f"bad display name in {value!r}")
        display = " ".join(name.split()) or None
        text = "<" + rest
    if text.startswith("<"):
        end = text.find(">")
        if end < 0:
            raise SipParseError(f"unterminated <uri> in {value!r}")
        uri, params = text[1:end], text[end + 1 :].strip(" \t")
        if uri != uri.strip(" \t"):  # LAQUOT/RAQUOT: no whitespace inside <> (RFC 4475 §3.1.2.14)
            raise SipParseError(f"whitespace inside <uri> in {value!r}")
        if params and not params.startswith(";"):
            raise SipParseError(f"junk after <uri> in {value!r}")
    else:
        # Without brackets, everything after the first ';' is a header parameter, not a URI parameter.
        uri, _, params = text.partition(";")
        uri = uri.rstrip(" \t")  # `sip:a@b ;tag=1`: whitespace may precede the ';' (RFC 4475 wsinv)
        if "?" in uri:  # RFC 3261 §20: a URI with '?', ',' or ';' must be in <> (RFC 4475 regbadct)
            raise SipParseError(f"URI with headers outside <> in {value!r}")
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
