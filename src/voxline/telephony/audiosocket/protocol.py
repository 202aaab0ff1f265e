"""Asterisk AudioSocket framing: kinds, encoding, and a streaming decoder that validates as it goes.

A frame is one kind byte, a big-endian 16-bit payload length, then the payload. The decoder checks
the kind and the length as soon as the 3-byte header is in, so a hostile length never makes us buffer
a payload we would refuse anyway.
"""

from __future__ import annotations

import enum
import struct
import uuid
from dataclasses import dataclass

HEADER = struct.Struct(">BH")
HEADER_SIZE = HEADER.size
MAX_PAYLOAD = 0xFFFF


class Kind(enum.IntEnum):
    HANGUP = 0x00
    UUID = 0x01
    DTMF = 0x03
    SLIN_8K = 0x10
    SLIN_12K = 0x11
    SLIN_16K = 0x12
    SLIN_24K = 0x13
    SLIN_32K = 0x14
    SLIN_44K = 0x15
    SLIN_48K = 0x16
    SLIN_96K = 0x17
    SLIN_192K = 0x18
    ERROR = 0xFF


AUDIO_RATES: dict[int, int] = {
    Kind.SLIN_8K: 8000,
    Kind.SLIN_12K: 12000,
    Kind.SLIN_16K: 16000,
    Kind.SLIN_24K: 24000,
    Kind.SLIN_32K: 32000,
    Kind.SLIN_44K: 44100,
    Kind.SLIN_48K: 48000,
    Kind.SLIN_96K: 96000,
    Kind.SLIN_192K: 192000,
}
"""Audio kind -> sample rate of its signed-linear 16-bit little-endian mono payload."""

RATE_KINDS: dict[int, int] = {rate: kind for kind, rate in AUDIO_RATES.items()}

DEFAULT_AUDIO_KIND = Kind.SLIN_8K
"""What a peer speaks until it shows otherwise: the original (and still default) 8 kHz kind."""

MAX_AUDIO_FRAME_S = 0.2
"""Asterisk sends 20 ms frames; ten times that is already suspicious, so anything longer is refused."""


class ErrorCode(enum.IntEnum):
    NONE = 0x00
    CALLER_HANGUP = 0x01
    FRAME_FORWARDING = 0x02
    MEMORY = 0x04


class AudioSocketProtocolError(ValueError):
    """The peer broke the framing rules; the connection cannot be trusted any further."""


@dataclass(frozen=True, slots=True)
class Frame:
    kind: int
    payload: bytes = b""

    @property
    def is_audio(self) -> bool:
        return self.kind in AUDIO_RATES


def is_audio_kind(kind: int) -> bool:
    return kind in AUDIO_RATES


def encode_frame(kind: int, payload: bytes = b"") -> bytes:
    if not 0 <= kind <= 0xFF:
        raise ValueError(f"frame kind must fit in one byte, got {kind}")
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes does not fit a 16-bit length")
    return HEADER.pack(kind, len(payload)) + payload


def hangup_frame() -> bytes:
    return encode_frame(Kind.HANGUP)


def uuid_frame(call_uuid: uuid.UUID) -> bytes:
    return encode_frame(Kind.UUID, call_uuid.bytes)


def max_audio_bytes(kind: int) -> int:
    """The largest audio payload we accept for an audio kind (bounded by the 16-bit length)."""
    rate = AUDIO_RATES[kind]
    return min(MAX_PAYLOAD - MAX_PAYLOAD % 2, 2 * round(rate * MAX_AUDIO_FRAME_S))


def check_header(kind: int, length: int) -> None:
    """Refuse a frame from Asterisk on its header alone (unknown kind, impossible length)."""
    if kind in AUDIO_RATES:
        if length == 0 or length % 2:
            raise AudioSocketProtocolError(
                f"audio kind 0x{kind:02x} needs whole 16-bit samples, got a {length}-byte payload"
            )
        if length > max_audio_bytes(kind):
            raise AudioSocketProtocolError(
                f"audio kind 0x{kind:02x} frame of {length} bytes is longer than "
                f"{MAX_AUDIO_FRAME_S * 1000:.0f} ms at {AUDIO_RATES[kind]} Hz"
            )
        return
    expected = _FIXED_LENGTHS.get(kind)
    if expected is None:
        raise AudioSocketProtocolError(f"unknown frame kind 0x{kind:02x} (length {length})")
    if length != expected:
        raise AudioSocketProtocolError(
            f"{Kind(kind).name} frame must carry {expected} payload bytes, got {length}"
        )


_FIXED_LENGTHS: dict[int, int] = {Kind.HANGUP: 0, Kind.UUID: 16, Kind.DTMF: 1, Kind.ERROR: 1}


class FrameDecoder:
    """Turns a TCP byte stream into validated frames, whatever the chunking.

    After the first AudioSocketProtocolError the decoder stays broken: the stream has lost its frame
    boundaries and nothing after the bad header can be read meaningfully.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._broken: AudioSocketProtocolError | None = None

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def take_buffered(self) -> bytes:
        """Hand out the bytes not yet made into frames (a connection handed to a job goes with them)."""
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    def feed(self, data: bytes) -> None:
        """Add bytes from the wire; take the frames out with `next_frame()`."""
        if self._broken is None:
            self._buffer += data

    def next_frame(self) -> Frame | None:
        """The next complete frame, or None until more bytes arrive. Raises on a bad header."""
        if self._broken is not None:
            raise self._broken
        if len(self._buffer) < HEADER_SIZE:
            return None
        kind, length = HEADER.unpack_from(self._buffer)
        try:
            check_header(kind, length)
        except AudioSocketProtocolError as exc:
            self._broken = exc
            self._buffer.clear()
            raise
        end = HEADER_SIZE + length
        if len(self._buffer) < end:
            return None
        frame = Frame(kind, bytes(self._buffer[HEADER_SIZE:end]))
        del self._buffer[:end]
        return frame
