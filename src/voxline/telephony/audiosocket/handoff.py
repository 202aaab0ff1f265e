"""Handing an admitted AudioSocket connection to a job process.

The supervisor accepts the connection, reads the UUID frame and admits the call; then
`JobAudioSocketCall` stands for the call in the supervisor. It stops reading at once (the caller's
frames wait in the kernel for the job), keeps Asterisk's 2-second inactivity timer quiet with
silence frames until the job is assigned, and then gives the connection up: its descriptor travels
to the job, with any bytes already read past the UUID frame, and the job runs `AudioSocketCall` on
it. The supervisor keeps its own descriptor of the connection, unread and unwritten, for one thing
only: if the job dies, it sends the hangup frame and closes, so Asterisk ends the caller's leg.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from typing import Any

from voxline.audio.clock import Clock
from voxline.audio.pcm import AudioChunk
from voxline.capacity import CallSlot
from voxline.telephony.audiosocket.call import DEFAULT_IDLE_TIMEOUT_S, AudioSocketSink
from voxline.telephony.audiosocket.protocol import DEFAULT_AUDIO_KIND, FrameDecoder, hangup_frame
from voxline.telephony.rtp.handoff import REMOTE_HANGUP_CONTROL, ControlLink
from voxline.transports.base import CallIO, Dtmf

__all__ = ["JobAudioSocketCall"]

log = logging.getLogger(__name__)

WRITE_SETTLE_S = 0.5
"""How long a keep-alive frame still in the write buffer may take to leave before the hand-off."""


class JobAudioSocketCall(CallIO):
    """The supervisor's side of an AudioSocket call whose audio a job process handles."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        call_uuid: uuid.UUID,
        decoder: FrameDecoder,
        clock: Clock | None = None,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._decoder = decoder
        self.uuid = call_uuid
        transport = writer.transport
        assert isinstance(transport, asyncio.Transport)
        transport.pause_reading()  # the caller's frames are the job's to read
        super().__init__(uuid.uuid4().hex, 8000, AudioSocketSink(writer, DEFAULT_AUDIO_KIND, clock))
        self.label = str(call_uuid)
        self.capacity_slot: CallSlot | None = None
        self.idle_timeout_s = DEFAULT_IDLE_TIMEOUT_S
        """Passed on to the job's call (it hangs up a peer silent this long)."""
        self._sock: socket.socket | None = None
        """Our descriptor of the connection once handed off (for the hangup frame after a crash)."""
        self._link: ControlLink | None = None
        self._over = asyncio.Event()
        self._closed = False

    @property
    def handed_off(self) -> bool:
        return self._sock is not None

    async def hand_off(self, link: ControlLink) -> tuple[socket.socket, bytes]:
        """Stop the keep-alive and give up the connection: (a descriptor of it for the job, which
        this side closes once sent; the bytes already read past the UUID frame, for the job first)."""
        if self._sock is not None or self._closed:
            raise RuntimeError("this AudioSocket connection was already handed off or closed")
        await self.sink.aclose()
        transport = self._writer.transport
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WRITE_SETTLE_S
        while transport.get_write_buffer_size() > 0 and loop.time() < deadline:  # noqa: ASYNC110
            # one keep-alive frame at most, and the transport has no event for it: never let two
            # writers' bytes mix on the connection
            await asyncio.sleep(0.005)
        self._reader.feed_eof()  # reading is paused: this hands out what the reader already holds
        pending = self._decoder.take_buffered() + await self._reader.read()
        raw = self._writer.get_extra_info("socket")
        if raw is None or transport.is_closing():
            raise ConnectionError("the AudioSocket connection closed before the hand-off")
        self._sock = socket.socket(fileno=os.dup(raw.fileno()))
        for_job = socket.socket(fileno=os.dup(raw.fileno()))
        transport.abort()  # closes only the loop's descriptor: ours and the job's keep the connection
        self._link = link
        return for_job, pending

    async def receive(self) -> AudioChunk | Dtmf | None:
        """Nothing until the call is over (the caller is heard in the job), then None."""
        await self._over.wait()
        return None

    async def hangup(self, reason: str = "normal") -> None:
        """End the call from the supervisor: a live job is told to hang up; after the job is gone
        (crashed) the hangup frame goes out from here."""
        if self.hangup_reason is None:
            self.hangup_reason = reason
        self._over.set()
        if self._closed:
            return
        if self._link is not None:  # the job runs the call: it says goodbye on its socket
            with contextlib.suppress(ConnectionError):
                self._link.send({"type": REMOTE_HANGUP_CONTROL, "reason": reason})
            return
        await self.sink.aclose()
        if self._sock is not None:
            log.info("hanging up AudioSocket call for the job (%s)", reason)
            with contextlib.suppress(OSError):
                self._sock.setblocking(False)
                self._sock.send(hangup_frame())
        elif self._sock is None and not self._writer.transport.is_closing():
            self._writer.write(hangup_frame())
        await self.aclose()

    def job_finished(self) -> None:
        """The job is gone: whatever is still to be said on the connection is said from here
        (the hangup frame, unless the call already ended: the job hung up, or the caller left)."""
        self._link = None

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._over.set()
        await self.sink.aclose()
        if self._sock is not None:
            self._sock.close()
        else:
            self._writer.close()

    def describe(self) -> dict[str, Any]:
        return {"uuid": self.label, "handed_off": self.handed_off}
