"""SDP offers and answers for a G.711/G.722 voice endpoint (RFC 4566 syntax, RFC 3264 offer/answer).

We only ever answer: parse the caller's offer, pick the first codec of our preference it carries
(its payload type numbers are kept, as RFC 3264 §6.1 asks), find its 8 kHz telephone-event payload
(RFC 4733 DTMF must share the audio clock), and build the answer.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

MAX_SDP_BYTES = 65535
MAX_SDP_LINES = 1000
MAX_MEDIA = 32

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
STATIC_PAYLOADS: dict[int, tuple[str, int]] = {
    0: ("PCMU", 8000),
    3: ("GSM", 8000),
    4: ("G723", 8000),
    8: ("PCMA", 8000),
    9: ("G722", 8000),
    13: ("CN", 8000),
    18: ("G729", 8000),
}
DEFAULT_PAYLOAD_TYPES = {"PCMU": 0, "PCMA": 8, "G722": 9}
_RTP_PROTOS = ("RTP/AVP", "RTP/AVPF")
_TOKEN_RE = re.compile(r"[A-Za-z0-9.!%*_+`'~-]+")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class SdpError(ValueError):
    """The body is not SDP we can read: answer 400."""


class SdpNegotiationError(ValueError):
    """The offer is readable but nothing in it is acceptable: answer 488 Not Acceptable Here.

    `warning` is the RFC 3261 §20.43 Warning code and text the 488 carries."""

    def __init__(self, reason: str, warning: tuple[int, str] = (304, "no common codec")) -> None:
        super().__init__(reason)
        self.warning = warning


@dataclass
class MediaDescription:
    media: str
    port: int
    proto: str
    formats: list[int]
    rtpmap: dict[int, tuple[str, int]] = field(default_factory=dict)
    fmtp: dict[int, str] = field(default_factory=dict)
    direction: str = "sendrecv"  # effective: the media's attribute, else the session's
    ptime: int | None = None
    connection: str | None = None  # this m= section's own c= address


@dataclass
class SessionDescription:
    origin: str
    connection: str | None
    media: list[MediaDescription]
    direction: str = "sendrecv"


def _connection_address(value: str) -> str:
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise SdpError(f"bad c= line {value[:80]!r}")
    address = parts[2].split("/", 1)[0]  # multicast TTL / count suffix
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        if not re.fullmatch(r"[A-Za-z0-9.-]+", address):  # an FQDN is legal, if rare
            raise SdpError(f"bad connection address {address[:80]!r}") from None
        return address


def _int(text: str, what: str, high: int) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 6 or int(text) > high:
        raise SdpError(f"bad {what} {text[:20]!r}")
    return int(text)


def _media_line(value: str) -> MediaDescription:
    parts = value.split()
    if len(parts) < 3:
        raise SdpError(f"bad m= line {value[:80]!r}")
    media, port_text, proto = parts[0], parts[1].split("/", 1)[0], parts[2]
    port = _int(port_text, "media port", 65535)
    formats: list[int] = []
    for fmt in parts[3:]:
        if proto.upper().startswith("RTP/"):  # RTP formats are payload type numbers
            formats.append(_int(fmt, "payload type", 127))
        elif fmt.isdigit() and len(fmt) <= 3:
            formats.append(int(fmt))
    return MediaDescription(media, port, proto, formats)


def _media_attribute(media: MediaDescription, name: str, value: str) -> None:
    if name == "rtpmap":
        pt_text, _, encoding = value.partition(" ")
        pt = _int(pt_text, "rtpmap payload type", 127)
        pieces = encoding.strip().split("/")
        if len(pieces) < 2 or not pieces[0] or not pieces[1].isdigit() or len(pieces[1]) > 8:
            # An rtpmap we cannot read maps nothing: that format stays unknown, the rest of the
            # offer stands (RFC 4475's INVITEs carry `a=rtpmap:31 LPC` on a stream we do not use).
            log.debug("ignoring unreadable rtpmap %r", value[:80])
            return
        media.rtpmap[pt] = (pieces[0].upper(), int(pieces[1]))
    elif name == "fmtp":
        pt_text, _, params = value.partition(" ")
        if pt_text.isdigit() and len(pt_text) <= 3:
            media.fmtp[int(pt_text)] = params.strip()
    elif name == "ptime":
        media.ptime = _int(value.strip().split(".", 1)[0], "ptime", 10_000)
    elif name in DIRECTIONS:
        media.direction = name


def parse_sdp(data: bytes | str) -> SessionDescription:
    """Parse an SDP body. Raises SdpError for anything that is not well-formed SDP."""
    if isinstance(data, bytes):
        if len(data) > MAX_SDP_BYTES:
            raise SdpError("SDP too large")
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise SdpError("SDP is not UTF-8") from None
    if len(data) > MAX_SDP_BYTES:
        raise SdpError("SDP too large")
    lines = [line.rstrip("\r") for line in data.split("\n")]
    lines = [line for line in lines if line.strip()]  # peers add blank trailing lines
    if len(lines) > MAX_SDP_LINES:
        raise SdpError("too many SDP lines")
    if not lines or lines[0].strip() != "v=0":
        raise SdpError("SDP must start with v=0")
    origin: str | None = None
    session_connection: str | None = None
    session_direction = "sendrecv"
    media: list[MediaDescription] = []
    media_direction: list[str | None] = []
    for line in lines[1:]:
        if len(line) < 2 or line[1] != "=" or not line[0].isalpha() or _CONTROL_RE.search(line):
            raise SdpError(f"bad SDP line {line[:80]!r}")
        kind, value = line[0], line[2:]
        current = media[-1] if media else None
        if kind == "o":
            origin = value
        elif kind == "c":
            address = _connection_address(value)
            if current is None:
                session_connection = address
            else:
                current.connection = address
        elif kind == "m":
            if len(media) >= MAX_MEDIA:
                raise SdpError("too many m= lines")
            media.append(_media_line(value))
            media_direction.append(None)
        elif kind == "a":
            name, _, attr_value = value.partition(":")
            if current is None:
                if name in DIRECTIONS:
                    session_direction = name
            else:
                _media_attribute(current, name, attr_value)
                if name in DIRECTIONS:
                    media_direction[-1] = name
    if origin is None:
        raise SdpError("SDP without o= line")
    for m, own in zip(media, media_direction, strict=True):
        m.direction = own or session_direction
        for pt in m.formats:
            if pt not in m.rtpmap and pt in STATIC_PAYLOADS:
                m.rtpmap[pt] = STATIC_PAYLOADS[pt]
    return SessionDescription(origin, session_connection, media, session_direction)


@dataclass(frozen=True)
class NegotiatedMedia:
    codec: str  # "G722" | "PCMU" | "PCMA"
    payload_type: int
    dtmf_payload_type: int | None
    remote_host: str
    remote_port: int
    direction: str  # the remote's direction attribute, as offered
    on_hold: bool  # sendonly / inactive / c=0.0.0.0 / port 0


def _payload_for(media: MediaDescription, codec: str, rate: int) -> int | None:
    for pt in media.formats:
        if media.rtpmap.get(pt) == (codec, rate):
            return pt
    return None


def negotiate(offer: SessionDescription, codecs: Sequence[str]) -> NegotiatedMedia:
    """Choose the first of OUR codecs (preference order) the offer's first usable audio stream has."""
    wanted = [c.upper() for c in codecs]
    audio = [m for m in offer.media if m.media == "audio" and m.proto.upper() in _RTP_PROTOS]
    audio.sort(key=lambda m: m.port == 0)  # a disabled stream (port 0) only if nothing else is offered
    if not audio:
        raise SdpNegotiationError("offer has no plain RTP audio stream")
    for media in audio:
        for codec in wanted:
            pt = _payload_for(media, codec, 8000)
            if pt is None:
                continue
            host = media.connection or offer.connection
            if host is None:
                raise SdpError("audio stream without a connection address")
            on_hold = (
                media.direction in ("sendonly", "inactive") or host in ("0.0.0.0", "::") or media.port == 0
            )
            return NegotiatedMedia(
                codec=codec,
                payload_type=pt,
                dtmf_payload_type=_payload_for(media, "TELEPHONE-EVENT", 8000),
                remote_host=host,
                remote_port=media.port,
                direction=media.direction,
                on_hold=on_hold,
            )
    raise SdpNegotiationError(f"no common codec: we take {wanted}")


def answer_direction(offered: str) -> str:
    """The direction attribute that answers `offered` (RFC 3264 §6.1)."""
    return {"sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}.get(offered, "sendrecv")


def build_sdp(
    host: str,
    port: int,
    *,
    codecs: Sequence[str],
    payload_types: Mapping[str, int] | None = None,
    dtmf_payload_type: int | None = 101,
    direction: str = "sendrecv",
    session_id: int,
    version: int,
    ptime: int = 20,
) -> bytes:
    """An SDP body with one audio stream offering `codecs` (payload types default to the static ones)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"SDP host must be an IP address, got {host!r}") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"bad RTP port {port}")
    if direction not in DIRECTIONS:
        raise ValueError(f"bad direction {direction!r}")
    if not codecs:
        raise ValueError("no codecs to offer")
    types = {**DEFAULT_PAYLOAD_TYPES, **{k.upper(): v for k, v in (payload_types or {}).items()}}
    family = "IP6" if address.version == 6 else "IP4"
    rtpmap: list[str] = []
    pts: list[int] = []
    for codec in (c.upper() for c in codecs):
        if codec not in types or not _TOKEN_RE.fullmatch(codec):
            raise ValueError(f"no payload type for codec {codec!r}")
        pts.append(types[codec])
        # G722 too: its RTP clock is 8000 though it carries 16 kHz audio (RFC 3551 §4.5.2)
        rtpmap.append(f"a=rtpmap:{types[codec]} {codec}/8000")
    if dtmf_payload_type is not None:
        pts.append(dtmf_payload_type)
        rtpmap += [f"a=rtpmap:{dtmf_payload_type} telephone-event/8000", f"a=fmtp:{dtmf_payload_type} 0-16"]
    if any(not 0 <= pt <= 127 for pt in pts) or len(set(pts)) != len(pts):
        raise ValueError(f"bad payload types {pts}")
    lines = [
        "v=0",
        f"o=voxline {int(session_id)} {int(version)} IN {family} {address}",
        "s=voxline",
        f"c=IN {family} {address}",
        "t=0 0",
        f"m=audio {port} RTP/AVP {' '.join(map(str, pts))}",
        *rtpmap,
        f"a=ptime:{int(ptime)}",
        f"a={direction}",
    ]
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


__all__ = [
    "DIRECTIONS", "MediaDescription", "NegotiatedMedia", "SdpError", "SdpNegotiationError",
    "SessionDescription", "answer_direction", "build_sdp", "negotiate", "parse_sdp",
]  # fmt: skip
