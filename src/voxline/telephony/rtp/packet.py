"""RTP packets (RFC 3550 §5.1): parse from and build to bytes, plus sequence/timestamp arithmetic.

Parsing is strict: anything that is not a well-formed version-2 packet raises `RtpParseError` (and
nothing else), because every datagram on a media port is untrusted input.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = [
    "HEADER_LEN",
    "RtpExtension",
    "RtpPacket",
    "RtpParseError",
    "is_rtcp",
    "parse_rtp",
    "seq_delta",
    "ts_delta",
]

RTP_VERSION = 2
HEADER_LEN = 12
_FIXED = struct.Struct("!BBHII")
_EXT_HEADER = struct.Struct("!HH")


class RtpParseError(ValueError):
    """The bytes are not a valid RTP version 2 packet; the message says why."""


@dataclass(frozen=True, slots=True)
class RtpExtension:
    """The one header extension RFC 3550 allows: a profile-defined 16-bit id and whole 32-bit words."""

    profile: int
    data: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.profile <= 0xFFFF:
            raise ValueError(f"extension profile must fit 16 bits, got {self.profile}")
        if len(self.data) % 4 or len(self.data) // 4 > 0xFFFF:
            raise ValueError(f"extension data must be whole 32-bit words, got {len(self.data)} bytes")


@dataclass(frozen=True, slots=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension: RtpExtension | None = None
    padding: int = 0
    """Padding bytes appended on the wire, the final count byte included (0 = no padding)."""

    def __post_init__(self) -> None:
        if not 0 <= self.payload_type <= 127:
            raise ValueError(f"payload type must be 0-127, got {self.payload_type}")
        if not 0 <= self.sequence <= 0xFFFF:
            raise ValueError(f"sequence number must fit 16 bits, got {self.sequence}")
        for name, value in (
            ("timestamp", self.timestamp),
            ("ssrc", self.ssrc),
            *(("csrc", c) for c in self.csrcs),
        ):
            if not 0 <= value <= 0xFFFFFFFF:
                raise ValueError(f"{name} must fit 32 bits, got {value}")
        if len(self.csrcs) > 15:
            raise ValueError(f"at most 15 CSRCs fit the header, got {len(self.csrcs)}")
        if not 0 <= self.padding <= 255:
            raise ValueError(f"padding must be 0-255 bytes, got {self.padding}")

    def to_bytes(self) -> bytes:
        first = RTP_VERSION << 6 | len(self.csrcs)
        if self.padding:
            first |= 0x20
        if self.extension is not None:
            first |= 0x10
        second = self.payload_type | (0x80 if self.marker else 0)
        parts = [_FIXED.pack(first, second, self.sequence, self.timestamp, self.ssrc)]
        parts.extend(struct.pack("!I", c) for c in self.csrcs)
        if self.extension is not None:
            parts.append(_EXT_HEADER.pack(self.extension.profile, len(self.extension.data) // 4))
            parts.append(self.extension.data)
        parts.append(self.payload)
        if self.padding:
            parts.append(bytes(self.padding - 1) + bytes([self.padding]))
        return b"".join(parts)


def parse_rtp(data: bytes) -> RtpPacket:
    """Parse one datagram. Raises RtpParseError, and only that, for anything malformed."""
    if len(data) < HEADER_LEN:
        raise RtpParseError(f"{len(data)} bytes is shorter than the 12-byte RTP header")
    first, second, sequence, timestamp, ssrc = _FIXED.unpack_from(data)
    version = first >> 6
    if version != RTP_VERSION:
        raise RtpParseError(f"RTP version must be 2, got {version}")
    end = len(data)
    padding = 0
    if first & 0x20:
        padding = data[-1]
        if padding == 0:
            raise RtpParseError("padding flag set but the padding count is 0")
        end -= padding
        if end < HEADER_LEN:
            raise RtpParseError(f"padding of {padding} bytes overruns the {len(data)}-byte packet")
    offset = HEADER_LEN
    csrc_count = first & 0x0F
    if offset + 4 * csrc_count > end:
        raise RtpParseError(f"{csrc_count} CSRCs do not fit in a {len(data)}-byte packet")
    csrcs = struct.unpack_from(f"!{csrc_count}I", data, offset)
    offset += 4 * csrc_count
    extension = None
    if first & 0x10:
        if offset + _EXT_HEADER.size > end:
            raise RtpParseError("extension flag set but no room for the extension header")
        profile, words = _EXT_HEADER.unpack_from(data, offset)
        offset += _EXT_HEADER.size
        if offset + 4 * words > end:
            raise RtpParseError(f"extension of {words} words overruns the packet")
        extension = RtpExtension(profile, bytes(data[offset : offset + 4 * words]))
        offset += 4 * words
    if offset > end:
        raise RtpParseError(f"padding of {padding} bytes overruns the header")
    return RtpPacket(
        payload_type=second & 0x7F,
        sequence=sequence,
        timestamp=timestamp,
        ssrc=ssrc,
        payload=bytes(data[offset:end]),
        marker=bool(second & 0x80),
        csrcs=tuple(csrcs),
        extension=extension,
        padding=padding,
    )


def is_rtcp(data: bytes) -> bool:
    """True for an RTCP packet multiplexed on the RTP port (RFC 5761 §4: packet types 192-223)."""
    return len(data) >= 2 and data[0] >> 6 == RTP_VERSION and 192 <= data[1] <= 223


def seq_delta(seq: int, reference: int) -> int:
    """How far `seq` is ahead of `reference` (negative: behind), modulo the 16-bit wrap."""
    return ((seq - reference + 0x8000) & 0xFFFF) - 0x8000


def ts_delta(timestamp: int, reference: int) -> int:
    """How far `timestamp` is ahead of `reference`, modulo the 32-bit wrap."""
    return ((timestamp - reference + 0x80000000) & 0xFFFFFFFF) - 0x80000000
