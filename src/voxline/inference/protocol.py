"""The speech server's wire format, shared by the server and its clients.

One request per connection: the client connects to the Unix socket, sends one REQUEST frame, reads
frames until END or ERROR, and closes. A connection costs well under a millisecond on a Unix socket,
and it makes cancellation and crashes simple: a client that closes its end cancels its request (a TTS
stream stops after the sentence under way), and a server that dies leaves its clients an EOF.

A frame is a 4-byte big-endian payload length, a 1-byte kind, then the payload. A REQUEST payload is
a 4-byte header length, a JSON header (which carries the key), then the raw body (PCM16 LE audio for
STT, nothing for TTS). AUDIO payloads are a 4-byte sample rate then PCM16 LE samples. Every length is
checked against a limit before anything is read, so a peer cannot make the other side buffer more
than it agreed to.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from voxline.audio.pcm import AudioChunk

KEY_ENV = "VOXLINE_SPEECH_KEY"
"""The per-process key reaches the server in its environment, never on its command line."""

REQUEST = 1
RESULT = 2
AUDIO = 3
END = 4
ERROR = 5

MAX_HEADER_BYTES = 64 * 1024
MAX_REQUEST_BYTES = 4 * 1024 * 1024
"""A request's whole payload: 60 s of 16 kHz audio is 1.9 MB, 60 s at 32 kHz 3.8 MB. A caller turn is
cut far shorter than that (limits.max_turn_s); more is a broken or hostile client."""
MAX_REPLY_FRAME_BYTES = 4 * 1024 * 1024
"""One result or audio frame from the server (a TTS sentence arrives in one or a few frames)."""
MAX_TEXT_CHARS = 4000
"""Text for one synthesis request: a reply sentence is a few hundred characters."""

_FRAME = struct.Struct(">IB")
_U32 = struct.Struct(">I")

# error codes (ERROR frames' "code")
BUSY = "busy"
TOO_LARGE = "too_large"
UNAUTHORIZED = "unauthorized"
UNKNOWN_MODEL = "unknown_model"
BAD_REQUEST = "bad_request"
FAILED = "failed"


class ProtocolError(Exception):
    """The peer broke the protocol (a frame over its limit, a malformed header)."""


@dataclass(frozen=True, slots=True)
class SpeechEndpoint:
    """Where a job finds the node's speech server: the socket path and the key. Plain values, so it
    crosses the process boundary in the job's assignment (`services.speech`)."""

    path: str
    key: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "key": self.key}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpeechEndpoint:
        return cls(str(data["path"]), str(data["key"]))

    def __repr__(self) -> str:  # never log the key
        return f"SpeechEndpoint(path={self.path!r}, key='***')"

    @property
    def socket_path(self) -> Path:
        return Path(self.path)


def frame(kind: int, payload: bytes) -> bytes:
    return _FRAME.pack(len(payload), kind) + payload


def request_frame(header: dict[str, Any], body: bytes = b"") -> bytes:
    head = json.dumps(header, separators=(",", ":")).encode()
    return frame(REQUEST, _U32.pack(len(head)) + head + body)


def json_frame(kind: int, value: dict[str, Any]) -> bytes:
    return frame(kind, json.dumps(value, separators=(",", ":")).encode())


def error_frame(code: str, message: str) -> bytes:
    return json_frame(ERROR, {"code": code, "message": message})


def audio_frame(chunk: AudioChunk) -> bytes:
    return frame(AUDIO, _U32.pack(chunk.sample_rate) + chunk.to_bytes())


def parse_audio(payload: bytes) -> AudioChunk:
    if len(payload) < 4 or len(payload) % 2:
        raise ProtocolError(f"an audio frame of {len(payload)} bytes")
    (rate,) = _U32.unpack_from(payload)
    return AudioChunk(np.frombuffer(payload, dtype="<i2", offset=4).astype(np.int16), rate)


def parse_request(payload: bytes) -> tuple[dict[str, Any], bytes]:
    if len(payload) < 4:
        raise ProtocolError("a request without a header")
    (head_len,) = _U32.unpack_from(payload)
    if head_len > MAX_HEADER_BYTES or 4 + head_len > len(payload):
        raise ProtocolError(f"a request header of {head_len} bytes")
    try:
        header = json.loads(payload[4 : 4 + head_len])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"a malformed request header: {exc}") from exc
    if not isinstance(header, dict):
        raise ProtocolError("a request header that is not an object")
    return header, payload[4 + head_len :]


def key_matches(given: object, key: str) -> bool:
    return isinstance(given, str) and hmac.compare_digest(given.encode(), key.encode())


async def read_frame_head(reader: asyncio.StreamReader, limit: int) -> tuple[int, int]:
    """(kind, payload length), refusing a length over `limit` before any of the payload is read.
    Raises asyncio.IncompleteReadError at EOF."""
    length, kind = _FRAME.unpack(await reader.readexactly(_FRAME.size))
    if length > limit:
        raise FrameTooLarge(length, limit)
    return kind, length


async def read_frame(reader: asyncio.StreamReader, limit: int) -> tuple[int, bytes]:
    kind, length = await read_frame_head(reader, limit)
    return kind, await reader.readexactly(length)


class FrameTooLarge(ProtocolError):
    def __init__(self, length: int, limit: int) -> None:
        super().__init__(f"a frame of {length} bytes is over the limit of {limit}")
        self.length = length
        self.limit = limit
