"""A call whose media is an RTP session (here, or in a job process); the signalling (SIP or ARI) is
plugged in as callbacks."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from voxline.audio.pcm import AudioChunk
from voxline.telephony.rtp.media import RtpMedia
from voxline.transports.base import CallIO, Dtmf

__all__ = ["RtpCall"]

log = logging.getLogger(__name__)


class RtpCall(CallIO):
    def __init__(
        self,
        call_id: str,
        session: RtpMedia,
        *,
        on_hangup: Callable[[str], Awaitable[None]],
        on_transfer: Callable[[str], Awaitable[bool]] | None = None,
    ) -> None:
        self.session = session
        super().__init__(call_id, session.codec.clock_rate, session.sink)
        self._on_hangup = on_hangup
        self._on_transfer = on_transfer
        self._hung_up = False
        self._extra = {"call_id": call_id}

    @property
    def input_rate(self) -> int:
        """The negotiated codec's audio rate: the call exists before the offer/answer picks it."""
        return self.session.codec.clock_rate

    @input_rate.setter
    def input_rate(self, rate: int) -> None:
        pass  # always the codec's

    def inject_dtmf(self, dtmf: Dtmf) -> None:
        """A key press that came by signalling (SIP INFO), delivered in order with the media."""
        self.session.inject(dtmf)

    def remote_hangup(self, reason: str = "caller_hangup") -> None:
        """The far end hung up (BYE, channel gone): `receive()` returns None, no BYE is sent back."""
        if self.hangup_reason is None:
            self.hangup_reason = reason
        self._hung_up = True
        self.session.set_hold(True)  # nobody is listening any more
        self.session.end_input()

    async def receive(self) -> AudioChunk | Dtmf | None:
        return await self.session.receive()

    async def hangup(self, reason: str = "normal") -> None:
        """End the call from our side; the signalling's callback runs once, however often this is called."""
        if self._hung_up:
            return
        self._hung_up = True
        if self.hangup_reason is None:
            self.hangup_reason = reason
        self.session.set_hold(True)
        self.session.end_input()
        try:
            await self._on_hangup(reason)
        except Exception:  # the dialog may already be gone; the call is over either way
            log.exception("hangup signalling failed", extra=self._extra)

    async def transfer(self, target: str) -> bool:
        if self._on_transfer is None or self._hung_up:
            log.warning("cannot transfer to %s: %s", target, "call ended" if self._hung_up else "no transfer")
            return False
        try:
            return await self._on_transfer(target)
        except Exception:
            log.exception("transfer to %s failed", target, extra=self._extra)
            return False

    async def send_dtmf(self, digits: str, duration_ms: int = 100) -> bool:
        if self._hung_up:
            return False
        try:
            await self.session.send_dtmf(digits, duration_ms)
        except (ValueError, RuntimeError) as exc:
            log.warning("cannot send DTMF %r: %s", digits, exc, extra=self._extra)
            return False
        return True

    async def aclose(self) -> None:
        """Close the sink and the RTP session (the signalling is the caller's to tear down)."""
        await self.sink.aclose()
        await self.session.aclose()
