"""A call over a WebSocket (the browser page, or any client that speaks this small protocol).

Protocol
--------
Client → server:

1. First frame, JSON text: ``{"type": "start", "sample_rate": 16000, "format": "s16le"}``.
   ``sample_rate`` must be an integer in 8000..48000 and ``format`` must be ``"s16le"``; otherwise
   the server sends ``{"type": "error", "message": ...}`` and closes with code 1003.
   An optional ``"call_id"`` string (1-64 characters) is kept as the call's *label* only: the
   server always makes the call id itself, so no client can name (or overwrite) another call.
   An optional ``"agent"`` names the node's agent for the call (refused with an error frame if the
   node has no such agent), and an optional ``"metadata"`` object (up to 16 fields of strings,
   numbers or booleans, values up to 256 characters) is kept on the call's record and may fill the
   agent's ``{placeholders}`` (``context:`` with ``source: field:<name>``).
2. Then any number of binary frames: signed 16-bit little-endian mono PCM at ``sample_rate``, up to
   ``max_frame_bytes`` (64 KiB by default; 20 ms is what the web page sends). A frame with an odd byte
   count is refused with an error frame and dropped; the call goes on. A larger frame ends the call:
   an error frame, then close 1009. Audio is taken at most ~2 s ahead of real time (InboundPacer);
   a faster sender is slowed by TCP back-pressure. After 50 bad frames the call is closed (1008).
3. Optional JSON text frames: ``{"type": "dtmf", "digit": "5"}`` (0-9, *, #, A-D) and
   ``{"type": "hangup"}``. Anything else (bad JSON, unknown type, bad digit) gets an error frame; the
   call goes on.

Server → client:

- ``{"type": "ready", "call_id": ..., "label": ..., "agent": ...}`` once the start frame is accepted
  (``call_id`` is the server's id of the call's record; ``label`` is the client's ``call_id``, or
  null; ``agent`` the node's agent that took the call).
- Binary frames of s16le mono audio at the client's ``sample_rate``, 20 ms each, paced in real time,
  so the client can play them as they come with a small jitter buffer.
- The conversation's events as JSON text (``state``, ``user_text``, ``agent_said``, ``agent_text``,
  ``metrics``, ``language``, ``dtmf``, ``digits``, ``tool_call``, ``error``): each is a typed dataclass
  in ``voxline.conversation.events``, whose docstring lists every wire shape, serialised by its
  ``to_wire``.
- ``{"type": "clear"}`` when the agent's audio is cut (barge-in): the client must drop whatever it
  still has buffered for playback, at once.
- ``{"type": "hangup", "reason": ...}`` when the server ends the call, followed by a close (1000).

A client disconnect ends the call: ``receive()`` returns None.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from voxline.audio.clock import Clock
from voxline.audio.pcm import AudioChunk
from voxline.dispatch.metadata import CallMetadata
from voxline.dispatch.sources import websocket_metadata
from voxline.transports.base import CallIO, Dtmf, PacedSink
from voxline.transports.inbound_pacing import InboundPacer

log = logging.getLogger(__name__)

MIN_RATE = 8000
MAX_RATE = 48000
DTMF_DIGITS = frozenset("0123456789*#ABCD")
CLOSE_NORMAL = 1000
CLOSE_UNSUPPORTED = 1003
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
DEFAULT_MAX_FRAME_BYTES = 64 * 1024
MAX_CLIENT_ERRORS = 50
"""Bad frames a call tolerates (each gets an error frame) before it is closed with 1008: a client
spraying garbage must not fill the log and its own unread outbox for the length of a call."""
LOGGED_CLIENT_ERRORS = 5


def new_call_id() -> str:
    """A server-made call id: 128 random bits, so ids can be neither chosen nor guessed."""
    return uuid.uuid4().hex


class StartRejected(ValueError):
    """The client's start frame was missing or invalid (already reported to the client)."""


def parse_start(text: str) -> tuple[int, str | None]:
    """Validate a start frame; returns (sample_rate, call_id or None). Raises ValueError with the reason."""
    try:
        msg = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the first frame must be a JSON start message: {exc.msg}") from exc
    if not isinstance(msg, dict) or msg.get("type") != "start":
        raise ValueError('the first frame must be {"type": "start", "sample_rate": ..., "format": "s16le"}')
    rate = msg.get("sample_rate")
    if not isinstance(rate, int) or isinstance(rate, bool) or not MIN_RATE <= rate <= MAX_RATE:
        raise ValueError(f"sample_rate must be an integer from {MIN_RATE} to {MAX_RATE}, got {rate!r}")
    fmt = msg.get("format", "s16le")
    if fmt != "s16le":
        raise ValueError(f'format must be "s16le", got {fmt!r}')
    call_id = msg.get("call_id")
    if call_id is not None and (not isinstance(call_id, str) or not 0 < len(call_id) <= 64):
        raise ValueError("call_id must be a string of 1 to 64 characters")
    return rate, call_id


class _Outbox:
    """Everything the server sends, in order, written by one task (a WebSocket has one writer).

    Audio and events share the queue so a `clear` can never overtake audio sent before it, and so
    `clear` can also drop audio frames that were emitted but not yet written.
    """

    def __init__(self, websocket: WebSocket) -> None:
        self._ws = websocket
        self._items: collections.deque[bytes | str] = collections.deque()
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self.dead = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="websocket-outbox")

    def put(self, item: bytes | str) -> None:
        if self.dead:
            return
        self._items.append(item)
        self._idle.clear()
        self._wakeup.set()

    def drop_audio(self) -> None:
        self._items = collections.deque(i for i in self._items if isinstance(i, str))

    async def drained(self, within_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), within_s)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        try:
            while True:
                if not self._items:
                    self._idle.set()
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                item = self._items.popleft()
                if isinstance(item, bytes):
                    await self._ws.send_bytes(item)
                else:
                    await self._ws.send_text(item)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the peer went away; the receive side will notice and end the call
            log.info("websocket send failed (%s); dropping outbound audio and events", exc)
            self.dead = True
            self._items.clear()
            self._idle.set()


class WebSocketSink(PacedSink):
    """Paced 20 ms frames at the client's rate, written as binary frames."""

    def __init__(self, outbox: _Outbox, output_rate: int, clock: Clock | None = None) -> None:
        super().__init__(output_rate, clock)
        self._outbox = outbox

    async def _emit(self, frame: AudioChunk) -> None:
        if self._outbox.dead:
            raise ConnectionError("websocket closed")
        self._outbox.put(frame.to_bytes())

    def _on_clear(self) -> None:
        self._outbox.drop_audio()
        self._outbox.put(json.dumps({"type": "clear"}))


class WebSocketCall(CallIO):
    """One call on an accepted WebSocket whose start frame has been read. Use `WebSocketCall.accept`."""

    def __init__(
        self,
        websocket: WebSocket,
        call_id: str,
        sample_rate: int,
        clock: Clock | None = None,
        *,
        label: str | None = None,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    ) -> None:
        self._ws = websocket
        self._outbox = _Outbox(websocket)
        super().__init__(call_id, sample_rate, WebSocketSink(self._outbox, sample_rate, clock))
        self.label = label
        self.max_frame_bytes = max_frame_bytes
        self._inbound = InboundPacer(sample_rate)
        self._client_errors = 0
        self._ended = False
        self._outbox.start()

    @classmethod
    async def accept(
        cls,
        websocket: WebSocket,
        clock: Clock | None = None,
        start_timeout_s: float = 10.0,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        route: Callable[[CallMetadata], CallMetadata] | None = None,
    ) -> WebSocketCall:
        """Accept the socket, read and validate the start frame, and send `ready`.

        Raises StartRejected (after telling the client and closing) if the start frame is bad, or
        if `route` (the node's dispatch) raises ValueError for its metadata: no agent for it.
        """
        await websocket.accept()
        try:
            message = await asyncio.wait_for(websocket.receive(), start_timeout_s)
        except TimeoutError:
            await _refuse(websocket, "no start message received", CLOSE_POLICY)
            raise StartRejected("no start message") from None
        if message["type"] == "websocket.disconnect":
            raise StartRejected("client left before starting")
        text = message.get("text")
        try:
            if text is None:
                raise ValueError("the first frame must be a JSON text start message, not binary")
            if len(text) > max_frame_bytes:
                raise ValueError(f"the start frame is over {max_frame_bytes} bytes")
            rate, label = parse_start(text)
            metadata = websocket_metadata(json.loads(text))
            if route is not None:
                metadata = route(metadata)
        except ValueError as exc:
            await _refuse(websocket, str(exc), CLOSE_UNSUPPORTED)
            raise StartRejected(str(exc)) from None
        call = cls(websocket, new_call_id(), rate, clock, label=label, max_frame_bytes=max_frame_bytes)
        call.metadata = metadata
        call.send_event(
            {
                "type": "ready",
                "call_id": call.call_id,
                "label": label,
                "sample_rate": rate,
                "agent": metadata.agent,
            }
        )
        return call

    def send_event(self, event: dict[str, Any]) -> None:
        """Queue a JSON event for the client (sync, so it can be the conversation's on_event)."""
        if not self._ended:
            self._outbox.put(json.dumps(event, default=str, ensure_ascii=False))

    async def receive(self) -> AudioChunk | Dtmf | None:
        while not self._ended:
            try:
                message = await self._ws.receive()
            except (WebSocketDisconnect, RuntimeError):
                message = {"type": "websocket.disconnect"}
            if message["type"] == "websocket.disconnect":
                self._ended = True
                self.hangup_reason = self.hangup_reason or "caller_disconnected"
                return None
            data = message.get("bytes")
            text = message.get("text")
            size = len(data) if data is not None else len(text or "")
            if size > self.max_frame_bytes:
                reason = f"frame of {size} bytes is over the {self.max_frame_bytes}-byte limit"
                await self._end_for_abuse("frame_too_large", reason, CLOSE_TOO_BIG, "frame too large")
                return None
            if self._client_errors >= MAX_CLIENT_ERRORS:
                reason = f"{self._client_errors} bad frames: closing the call"
                await self._end_for_abuse("protocol_errors", reason, CLOSE_POLICY, "too many bad frames")
                return None
            if data is not None:
                if len(data) % 2:
                    self._error(f"audio frames must hold whole s16le samples, got {len(data)} bytes")
                    continue
                if data:
                    await self._inbound.admit(len(data) // 2)
                    return AudioChunk.from_bytes(data, self.input_rate)
                continue
            result = self._control(text or "")
            if result is not None:
                return result
        return None

    def _control(self, text: str) -> Dtmf | None:
        """Handle a text frame: a Dtmf to return, or None (hangup sets the ended flag)."""
        try:
            msg = json.loads(text)
        except json.JSONDecodeError:
            self._error("text frames must be JSON")
            return None
        kind = msg.get("type") if isinstance(msg, dict) else None
        if kind == "dtmf":
            digit = str(msg.get("digit", "")).upper()
            if len(digit) == 1 and digit in DTMF_DIGITS:
                return Dtmf(digit)
            self._error(f"bad DTMF digit {msg.get('digit')!r}")
        elif kind == "hangup":
            self._ended = True
            self.hangup_reason = "caller_hangup"
        else:
            self._error(f"unknown message type {kind!r}")
        return None

    async def _end_for_abuse(self, hangup_reason: str, message: str, code: int, close_reason: str) -> None:
        """End the call at once (an oversized frame, a stream of bad ones): a flood is not worth parsing."""
        self._ended = True
        self.hangup_reason = hangup_reason
        await self.sink.aclose()
        self._outbox.drop_audio()
        log.warning("websocket call closed: %s", message)
        self._outbox.put(json.dumps({"type": "error", "message": message}))
        await self._outbox.drained(within_s=1.0)
        await _close(self._ws, code, close_reason)

    def _error(self, message: str) -> None:
        self._client_errors += 1
        if self._client_errors <= LOGGED_CLIENT_ERRORS:
            log.warning("websocket client error: %s", message)
        self._outbox.put(json.dumps({"type": "error", "message": message}))

    async def hangup(self, reason: str = "normal") -> None:
        """Tell the client why, let queued frames go out, then close the socket."""
        if self.hangup_reason is None:
            self.hangup_reason = reason
        if self._ended and self._ws.client_state != WebSocketState.CONNECTED:
            return
        # Stop the sink first: no audio may follow the hangup event (normally it is already drained).
        await self.sink.aclose()
        self._outbox.put(json.dumps({"type": "hangup", "reason": reason}))
        self._ended = True
        await self._outbox.drained(within_s=2.0)
        await _close(self._ws, CLOSE_NORMAL)

    async def aclose(self) -> None:
        await super().aclose()
        self._ended = True
        await self._outbox.drained(within_s=1.0)
        await self._outbox.aclose()
        await _close(self._ws, CLOSE_NORMAL)


async def _refuse(websocket: WebSocket, message: str, code: int) -> None:
    log.warning("refusing websocket call: %s", message)
    with contextlib.suppress(Exception):
        await websocket.send_text(json.dumps({"type": "error", "message": message}))
    await _close(websocket, code)


async def _close(websocket: WebSocket, code: int, reason: str | None = None) -> None:
    if websocket.client_state == WebSocketState.CONNECTED:
        with contextlib.suppress(Exception):  # already closing from the other side
            await websocket.close(code, reason)
