"""The media-only echo agent: plays the caller's audio straight back. No models.

Used to test the ways in (SIP, AudioSocket, ARI) with real peers and to measure how many calls one
process carries when the models are not the limit.
"""

from __future__ import annotations

import logging

from voxline.audio.pcm import AudioChunk
from voxline.transports.base import CallIO, Dtmf

log = logging.getLogger(__name__)


class EchoAgent:
    """A `CallHandler` that echoes audio and remembers the DTMF it heard (for tests)."""

    def __init__(self, hang_up_on: str | None = None) -> None:
        self.hang_up_on = hang_up_on
        """A digit that makes the agent hang up (e.g. "#"), so peers can test a server-side BYE."""
        self.digits: dict[str, list[str]] = {}
        self.calls_started = 0
        self.calls_finished = 0
        self.samples_echoed: dict[str, int] = {}

    async def __call__(self, call: CallIO) -> None:
        self.calls_started += 1
        digits = self.digits.setdefault(call.call_id, [])
        self.samples_echoed[call.call_id] = 0
        try:
            while (item := await call.receive()) is not None:
                if isinstance(item, Dtmf):
                    log.info("echo agent heard DTMF %s", item.digit)
                    digits.append(item.digit)
                    if item.digit == self.hang_up_on:
                        await call.sink.drain()
                        await call.hangup("agent_ended")
                        return
                elif isinstance(item, AudioChunk):
                    self.samples_echoed[call.call_id] += item.num_samples
                    await call.sink.send(item)
        finally:
            self.calls_finished += 1
