"""The TCP server Asterisk's AudioSocket connects to: one `AudioSocketCall` per connection.

Asterisk opens the connection and must send the call UUID first; the call is handed to `on_call`
only after that. Every connection runs in its own task with its own call id in the log context,
so a hostile or broken peer ends its own connection and nothing else.

A connection is admitted only from a source in `allow_from` (unset: loopback) and only while the
call budget shared with the other ways in has room; the call's id is made here, and the UUID the
peer chose is kept only as the call's label, so no peer can name (and overwrite) another record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence

from voxline.audio.clock import Clock
from voxline.calls.runner import run_call
from voxline.capacity import CallCapacity, CallSlot, Refusal
from voxline.logs import call_id_var
from voxline.server.metrics import TELEPHONY_REFUSALS
from voxline.telephony import CallHandler
from voxline.telephony.access import SourceAllowList
from voxline.telephony.audiosocket.call import READ_SIZE, AudioSocketCall
from voxline.telephony.audiosocket.protocol import (
    AudioSocketProtocolError,
    Frame,
    FrameDecoder,
    Kind,
    hangup_frame,
)

log = logging.getLogger(__name__)

STOP_GRACE_S = 3.0
"""How long stop() lets handlers finish after their calls were hung up, before cancelling them."""


class AudioSocketServer:
    def __init__(
        self,
        host: str,
        port: int,
        on_call: CallHandler,
        *,
        clock: Clock | None = None,
        max_calls: int = 50,
        first_frame_timeout_s: float = 5.0,
        capacity: CallCapacity | None = None,
        allow_from: Sequence[str] | None = None,
        idle_timeout_s: float = 120.0,
    ) -> None:
        self.host = host
        self.port = port
        """The bound port once started (ask for 0 to get any free one)."""
        self._on_call = on_call
        self._clock = clock
        self.max_calls = max_calls
        self.first_frame_timeout_s = first_frame_timeout_s
        self.idle_timeout_s = idle_timeout_s
        self.capacity = capacity if capacity is not None else CallCapacity(max_calls)
        """The process's call budget (the server passes its own); `max_calls` caps AudioSocket alone."""
        self.allow_list = SourceAllowList(allow_from, what="AudioSocket")
        self._server: asyncio.Server | None = None
        self._calls: set[AudioSocketCall] = set()
        self._connections: set[asyncio.Task[None]] = set()
        self._stopping = False

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    async def start(self) -> None:
        self._stopping = False
        self._server = await asyncio.start_server(self._serve_connection, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        log.info("AudioSocket server listening on %s:%d", self.host, self.port)
        self.allow_list.warn_if_open(self.host)

    async def stop(self) -> None:
        """Stop accepting, hang up every call, and wait (briefly) for their handlers to finish."""
        self._stopping = True
        if self._server is not None:
            self._server.close()
        for call in list(self._calls):
            with contextlib.suppress(Exception):
                await call.hangup("server_shutdown")
        if self._connections:
            _, pending = await asyncio.wait(set(self._connections), timeout=STOP_GRACE_S)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=STOP_GRACE_S)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), STOP_GRACE_S)
            self._server = None
        log.info("AudioSocket server stopped")

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        peer = writer.get_extra_info("peername")
        source = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        if not self.allow_list.allows(source):
            TELEPHONY_REFUSALS.count("audiosocket", "allow_list")
            writer.close()  # unanswered: a scanner learns nothing from us
            return
        slot: CallSlot | Refusal
        if self._stopping:
            slot = Refusal("shutting down")
        elif len(self._connections) >= self.max_calls:
            slot = Refusal(f"already at telephony.audiosocket.max_calls={self.max_calls}")
        else:  # the node's budget: its load threshold, the reserved slots, draining
            slot = self.capacity.admit("audiosocket")
        if isinstance(slot, Refusal):
            TELEPHONY_REFUSALS.count("audiosocket", "capacity")
            # AudioSocket cannot carry a reason: the peer gets a hangup frame, the log says why
            log.warning("AudioSocket connection from %s refused: %s", peer, slot.reason)
            await _refuse(writer)
            return
        self._connections.add(task)
        try:
            await self._run_call(reader, writer, peer, slot)
        finally:
            slot.release()
            self._connections.discard(task)

    async def _run_call(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: object, slot: CallSlot
    ) -> None:
        decoder = FrameDecoder()
        try:
            first = await asyncio.wait_for(_first_frame(reader, decoder), self.first_frame_timeout_s)
        except TimeoutError:
            log.warning(
                "AudioSocket peer %s sent no UUID within %.1f s; closing", peer, self.first_frame_timeout_s
            )
            await _refuse(writer)
            return
        except AudioSocketProtocolError as exc:
            log.warning("AudioSocket peer %s broke the protocol before its UUID: %s; closing", peer, exc)
            await _refuse(writer)
            return
        if first is None:
            log.info("AudioSocket peer %s closed the connection before sending its UUID", peer)
            await _refuse(writer)
            return
        if first.kind != Kind.UUID:
            log.warning("AudioSocket peer %s sent kind 0x%02x before its UUID; closing", peer, first.kind)
            await _refuse(writer)
            return
        call_uuid = uuid.UUID(bytes=first.payload)
        call = AudioSocketCall(reader, writer, call_uuid, decoder, self._clock)
        call.capacity_slot = slot
        call.idle_timeout_s = self.idle_timeout_s
        call_id_var.set(call.call_id)  # this task's context only: every log line of the call carries it
        self._calls.add(call)
        call.sink.start()  # keep-alive silence from the first tick (Asterisk hangs up after 2 s without)
        log.info("AudioSocket call from %s started (Asterisk UUID %s)", peer, call_uuid)
        try:
            await run_call(call, self._on_call)  # hangs the call up and closes it
        finally:
            self._calls.discard(call)
            log.info("AudioSocket call ended (%s)", call.hangup_reason)


async def _first_frame(reader: asyncio.StreamReader, decoder: FrameDecoder) -> Frame | None:
    """The first complete frame, or None if the peer closes first."""
    while (frame := decoder.next_frame()) is None:
        try:
            data = await reader.read(READ_SIZE)
        except (ConnectionError, OSError):
            return None
        if not data:
            return None
        decoder.feed(data)
    return frame


async def _refuse(writer: asyncio.StreamWriter) -> None:
    """Hang up a connection that never became a call: a hangup frame, then close."""
    if not writer.transport.is_closing():
        writer.write(hangup_frame())
    writer.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(writer.wait_closed(), 1.0)
