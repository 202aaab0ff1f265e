"""The wire between the supervisor and a job process: one Unix stream socketpair, framed messages.

Frame: a 4-byte big-endian payload length, a 1-byte kind, the payload.

- `CONTROL` (1): a JSON object with a string "type" (assignment, events, record relays, replies).
  A control message that carries file descriptors says how many in its "fds" field; the descriptors
  travel with SCM_RIGHTS (`socket.send_fds`) on the same socket, attached to the message's bytes,
  so they have always arrived by the time the message is complete.
- `MEDIA` (2): raw PCM16 LE mono audio, one frame (the rate is the call's, fixed by its MediaSpec).

Everything is bounded: a payload over `MAX_MESSAGE` bytes, an unknown kind, bad JSON, a control
message without a type, odd-length audio, more descriptors than announced or than `MAX_FDS` per
read: each is a `ProtocolError`, and the supervisor kills a job that commits one. Outbound bytes a
peer does not read pile up to `MAX_BUFFERED` at most, then the channel fails the same way.

`Channel` is a small asyncio transport of its own (add_reader/add_writer on a non-blocking socket),
because asyncio's stream transports cannot carry descriptors.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import json
import logging
import os
import socket
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

HEADER = struct.Struct(">IB")
MAX_MESSAGE = 1 << 20
"""Largest payload either side accepts (1 MiB): an assignment with its agent is a few KiB."""
MAX_FDS = 8
"""Most descriptors one read may carry (an RTP socket or an AudioSocket connection is one)."""
MAX_BUFFERED = 8 << 20
"""Outbound bytes held for a peer that does not read before the channel gives up on it."""
READ_CHUNK = 256 * 1024


class Kind(enum.IntEnum):
    CONTROL = 1
    MEDIA = 2


class ProtocolError(Exception):
    """The peer broke the protocol (the supervisor kills a job that does)."""


class ChannelClosed(ConnectionError):
    """The peer closed its end, or this end was closed."""


@dataclass(frozen=True, slots=True)
class Control:
    """A control message: its JSON body (with its "type") and the descriptors it brought."""

    body: dict[str, Any]
    fds: list[int] = field(default_factory=list)

    @property
    def type(self) -> str:
        return str(self.body["type"])


Message = Control | bytes
"""What a channel delivers: a `Control`, or one media frame's PCM bytes."""


def encode(kind: Kind, payload: bytes) -> bytes:
    if len(payload) > MAX_MESSAGE:
        raise ProtocolError(f"message of {len(payload)} bytes is over the {MAX_MESSAGE}-byte limit")
    return HEADER.pack(len(payload), kind) + payload


def encode_control(body: dict[str, Any]) -> bytes:
    return encode(Kind.CONTROL, json.dumps(body, separators=(",", ":"), default=str).encode())


class FrameDecoder:
    """Splits a byte stream into (kind, payload) frames, refusing anything out of bounds."""

    def __init__(self, max_message: int = MAX_MESSAGE) -> None:
        self.max_message = max_message
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[Kind, bytes]]:
        self._buf += data
        frames: list[tuple[Kind, bytes]] = []
        while len(self._buf) >= HEADER.size:
            length, kind = HEADER.unpack_from(self._buf)
            if length > self.max_message:
                raise ProtocolError(f"frame of {length} bytes is over the {self.max_message}-byte limit")
            if kind not in Kind._value2member_map_:
                raise ProtocolError(f"unknown frame kind {kind}")
            end = HEADER.size + length
            if len(self._buf) < end:
                break
            frames.append((Kind(kind), bytes(self._buf[HEADER.size : end])))
            del self._buf[:end]
        return frames

    @property
    def pending(self) -> int:
        return len(self._buf)


def parse_control(payload: bytes) -> dict[str, Any]:
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"control message is not JSON: {exc}") from None
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        raise ProtocolError("control message must be a JSON object with a string type")
    return body


class Channel:
    """One end of the socketpair on the running event loop: `send` never blocks, messages are
    delivered to `on_message` in order, and `on_closed(error)` is called once when the channel ends
    (error None: the peer closed; a ProtocolError: the peer broke the protocol)."""

    def __init__(
        self,
        sock: socket.socket,
        on_message: Callable[[Message], None],
        on_closed: Callable[[BaseException | None], None],
        *,
        max_buffered: int = MAX_BUFFERED,
    ) -> None:
        sock.setblocking(False)
        self.sock = sock
        self._on_message = on_message
        self._on_closed = on_closed
        self.max_buffered = max_buffered
        self._decoder = FrameDecoder()
        self._fds: collections.deque[int] = collections.deque()
        self._out: collections.deque[tuple[memoryview, list[int]]] = collections.deque()
        self._out_bytes = 0
        self._drained = asyncio.Event()
        self._drained.set()
        self._loop = asyncio.get_running_loop()
        self.closed = False
        self._writing = False
        self._loop.add_reader(sock.fileno(), self._readable)

    # ------------------------------------------------------------------ sending
    def send(self, body: dict[str, Any], fds: Sequence[int] = ()) -> None:
        """Queue a control message (with descriptors, announced in its "fds" field)."""
        if fds:
            body = {**body, "fds": len(fds)}
        self._write(encode_control(body), list(fds))

    def send_media(self, pcm: bytes) -> None:
        self._write(encode(Kind.MEDIA, pcm), [])

    async def drain(self, timeout_s: float = 5.0) -> None:
        """Wait until everything queued has been written (or the channel closed)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drained.wait(), timeout_s)

    def _write(self, data: bytes, fds: list[int]) -> None:
        if self.closed:
            raise ChannelClosed("channel closed")
        self._out.append((memoryview(data), fds))
        self._out_bytes += len(data)
        if self._out_bytes > self.max_buffered:
            self._fail(ProtocolError(f"peer is not reading ({self._out_bytes} bytes queued)"))
            raise ChannelClosed("peer is not reading")
        self._drained.clear()
        if not self._writing:
            self._flush()

    def _flush(self) -> None:
        try:
            while self._out:
                view, fds = self._out[0]
                if fds:
                    sent = socket.send_fds(self.sock, [view], fds)
                    self._out[0] = (view[sent:], [])
                else:
                    sent = self.sock.send(view)
                    self._out[0] = (view[sent:], [])
                self._out_bytes -= sent
                if sent < len(view):
                    break
                self._out.popleft()
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            self._fail(ChannelClosed(str(exc)))
            return
        if self._out and not self._writing:
            self._writing = True
            self._loop.add_writer(self.sock.fileno(), self._flush)
        elif not self._out:
            if self._writing:
                self._writing = False
                self._loop.remove_writer(self.sock.fileno())
            self._drained.set()

    # ------------------------------------------------------------------ receiving
    def _readable(self) -> None:
        try:
            data, fds, flags, _addr = socket.recv_fds(self.sock, READ_CHUNK, MAX_FDS)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fail(ChannelClosed(str(exc)))
            return
        self._fds.extend(fds)
        if flags & socket.MSG_CTRUNC:
            self._fail(ProtocolError("too many file descriptors in one message"))
            return
        if not data:
            self._fail(None)
            return
        try:
            for kind, payload in self._decoder.feed(data):
                if self.closed:
                    return
                self._deliver(kind, payload)
        except ProtocolError as exc:
            self._fail(exc)

    def _deliver(self, kind: Kind, payload: bytes) -> None:
        if kind is Kind.MEDIA:
            if len(payload) % 2:
                raise ProtocolError(f"audio frame of {len(payload)} bytes is not whole PCM16 samples")
            self._on_message(payload)
            return
        body = parse_control(payload)
        wanted = body.pop("fds", 0)
        if not isinstance(wanted, int) or not 0 <= wanted <= MAX_FDS or wanted > len(self._fds):
            raise ProtocolError(f"message announces {wanted!r} descriptors, {len(self._fds)} arrived")
        fds = [self._fds.popleft() for _ in range(wanted)]
        self._on_message(Control(body, fds))

    # ------------------------------------------------------------------ ending
    def _fail(self, error: BaseException | None) -> None:
        if self.closed:
            return
        self.close()
        self._on_closed(error)

    def close(self) -> None:
        """Stop reading and writing, close the socket and any descriptors nobody claimed."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(Exception):
            self._loop.remove_reader(self.sock.fileno())
        if self._writing:
            with contextlib.suppress(Exception):
                self._loop.remove_writer(self.sock.fileno())
        self._out.clear()
        self._drained.set()
        while self._fds:
            with contextlib.suppress(OSError):
                os.close(self._fds.popleft())
        self.sock.close()
