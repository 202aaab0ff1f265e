"""Handing a call's RTP socket to a job process: the supervisor keeps the signalling, the job the media.

The supervisor binds the socket (its port goes in the SDP answer or the ARI external-media request)
and makes a `JobRtpSession` on it instead of an `RtpSession`: it takes the offer/answer, hold, a new
remote address, confirmation (the ACK) and key presses that came by signalling exactly as a session
does, and keeps them as one `RtpMediaState`. When the call's job is assigned, `hand_off` gives up the
socket (its fd travels to the job, which builds the real `RtpSession` on it from the state) and from
then on every change is sent to the job as a control message. No RTP packet ever passes through the
supervisor: the job's socket is the one the peer sends to.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Callable
from typing import Any, Protocol

from voxline.audio.clock import Clock
from voxline.audio.pcm import AudioChunk
from voxline.telephony.rtp.codecs import PCMU, Codec
from voxline.telephony.rtp.media import RtpMedia
from voxline.telephony.rtp.media_state import RtpMediaState
from voxline.telephony.rtp.session import RtpSession, bind_rtp_socket
from voxline.telephony.rtp.stats import RtpStats
from voxline.transports.base import Dtmf, PacedSink

__all__ = ["ControlLink", "JobRtpSession", "open_call_rtp"]

log = logging.getLogger(__name__)

MEDIA_CONTROL = "rtp_media"
"""Control kind (supervisor to job): the call's RTP state changed (re-INVITE, hold, confirmation)."""
DTMF_CONTROL = "dtmf"
REMOTE_HANGUP_CONTROL = "remote_hangup"


class ControlLink(Protocol):
    """Where the supervisor's side of a call sends control messages (a JSON object with its "type")
    for its job; never blocks (voxline.workers.protocol.Channel)."""

    def send(self, body: dict[str, Any]) -> None: ...


async def open_call_rtp(
    host: str,
    port_min: int,
    port_max: int,
    *,
    in_job: bool,
    codec: Codec = PCMU,
    dtmf_payload_type: int | None = 101,
    jitter_ms: int = 60,
    call_id: str = "",
    clock: Clock | None = None,
) -> RtpMedia:
    """A call's RTP on a port bound here: a session of our own, or (`in_job`) one whose socket
    will be handed to the call's job process."""
    if in_job:
        return JobRtpSession.open(
            host, port_min, port_max, codec=codec, dtmf_payload_type=dtmf_payload_type,
            jitter_ms=jitter_ms, call_id=call_id,
        )  # fmt: skip
    return await RtpSession.open(
        host, port_min, port_max, codec=codec, dtmf_payload_type=dtmf_payload_type,
        jitter_ms=jitter_ms, call_id=call_id, clock=clock,
    )  # fmt: skip


class _NoSink(PacedSink):
    """The supervisor plays nothing on a call whose media is a job's: its sink is never started."""

    async def _emit(self, frame: AudioChunk) -> None:
        return None


class JobRtpSession:
    """The supervisor's side of an RTP session handled in a job process (see the module docstring)."""

    def __init__(
        self,
        sock: socket.socket,
        *,
        codec: Codec = PCMU,
        dtmf_payload_type: int | None = 101,
        jitter_ms: int = 60,
        call_id: str = "",
    ) -> None:
        self._sock: socket.socket | None = sock
        address = sock.getsockname()
        self.local_host: str = str(address[0])
        self.local_port: int = int(address[1])
        self.call_id = call_id
        self.codec = codec
        self.dtmf_payload_type = dtmf_payload_type
        self.jitter_ms = jitter_ms
        self.sink: PacedSink = _NoSink(codec.clock_rate)
        self.stats = RtpStats()
        """Empty here: the job's session counts the packets."""
        self._remote: tuple[str, int] | None = None
        self._on_hold = False
        self._learn_sources = True
        self._inband_dtmf = False
        self._confirmed = True
        self._link: ControlLink | None = None
        self._early_dtmf: list[Dtmf] = []
        self._why_ended: Callable[[], str | None] = lambda: None
        self._gone = False
        self._over = asyncio.Event()
        self.input_ended = False

    @classmethod
    def open(
        cls,
        host: str,
        port_min: int = 20000,
        port_max: int = 20999,
        *,
        codec: Codec = PCMU,
        dtmf_payload_type: int | None = 101,
        jitter_ms: int = 60,
        call_id: str = "",
    ) -> JobRtpSession:
        """Bind the call's RTP socket here, as `RtpSession.open` would; the job gets it later."""
        sock = bind_rtp_socket(host, port_min, port_max)
        return cls(
            sock, codec=codec, dtmf_payload_type=dtmf_payload_type, jitter_ms=jitter_ms, call_id=call_id
        )

    # -- the state, as the signalling sets it
    @property
    def remote(self) -> tuple[str, int] | None:
        return self._remote

    @property
    def confirmed(self) -> bool:
        return self._confirmed

    @confirmed.setter
    def confirmed(self, value: bool) -> None:
        self._confirmed = value
        self._changed()

    @property
    def learn_sources(self) -> bool:
        return self._learn_sources

    @learn_sources.setter
    def learn_sources(self, value: bool) -> None:
        self._learn_sources = value
        self._changed()

    @property
    def inband_dtmf(self) -> bool:
        return self._inband_dtmf

    @inband_dtmf.setter
    def inband_dtmf(self, value: bool) -> None:
        self._inband_dtmf = value
        self._changed()

    @property
    def handed_off(self) -> bool:
        return self._link is not None

    def state(self) -> RtpMediaState:
        return RtpMediaState(
            codec=self.codec.name,
            payload_type=self.codec.payload_type,
            dtmf_payload_type=self.dtmf_payload_type,
            remote=self._remote,
            on_hold=self._on_hold,
            inband_dtmf=self._inband_dtmf,
            learn_sources=self._learn_sources,
            confirmed=self._confirmed,
            jitter_ms=self.jitter_ms,
        )

    def set_remote(self, host: str, port: int) -> None:
        try:
            host = str(ipaddress.ip_address(host))
        except ValueError:
            raise ValueError(f"RTP remote must be an IP address, not {host[:80]!r}") from None
        self._remote = (host, port)
        self._changed()

    def set_codec(self, codec: Codec, dtmf_payload_type: int | None) -> None:
        if codec.timestamp_rate != self.codec.timestamp_rate:
            raise ValueError(f"cannot switch the RTP clock from {self.codec.timestamp_rate} Hz mid-call")
        self.codec = codec
        self.dtmf_payload_type = dtmf_payload_type
        self._changed()

    def set_hold(self, on_hold: bool) -> None:
        self._on_hold = on_hold
        self._changed()

    def await_confirmation(self) -> None:
        self.confirmed = False

    def media_confirmed(self) -> None:
        self.confirmed = True

    # -- what happens to the call, told to its job
    def end_input(self) -> None:
        """The call is over (BYE either way, the channel gone): the job's call ends too."""
        if self.input_ended:
            return
        self.input_ended = True
        self._over.set()
        if self._link is not None:
            self._send({"type": REMOTE_HANGUP_CONTROL, "reason": self._why_ended() or "caller_hangup"})

    def inject(self, item: Dtmf) -> None:
        """A key press by signalling (SIP INFO, an ARI event), for the job's conversation."""
        if self._gone:
            return
        if self._link is None:
            self._early_dtmf.append(item)
            return
        self._send({"type": DTMF_CONTROL, "digit": item.digit, "duration_ms": item.duration_ms})

    async def receive(self) -> AudioChunk | Dtmf | None:
        """Nothing until the call is over (the caller is heard in the job), then None."""
        await self._over.wait()
        return None

    async def send_dtmf(self, digits: str, duration_ms: int = 100) -> None:
        raise RuntimeError("the job process sends this call's DTMF on its RTP socket")

    # -- the hand-off
    def hand_off(
        self, link: ControlLink, why_ended: Callable[[], str | None] = lambda: None
    ) -> socket.socket:
        """Give up the socket (send its fd to the job, then close it here) and forward every change
        from now on through `link`; `why_ended` names the reason a call ended here (the call's
        `hangup_reason`). Key presses that came before are forwarded at once."""
        sock = self._sock
        if sock is None:
            raise RuntimeError("this RTP socket was already handed off or closed")
        self._sock = None
        if self._gone:
            raise RuntimeError("this RTP session's job is already gone")
        self._link = link
        self._why_ended = why_ended
        for item in self._early_dtmf:
            self.inject(item)
        self._early_dtmf.clear()
        if self.input_ended:
            self.input_ended = False
            self.end_input()
        return sock

    def job_gone(self) -> None:
        """The job ended (or died): nothing is forwarded any more."""
        self._link = None
        self._gone = True

    def _changed(self) -> None:
        if self._link is not None:
            self._send({"type": MEDIA_CONTROL, **self.state().to_json()})

    def _send(self, body: dict[str, Any]) -> None:
        if self._link is None:
            return
        try:
            self._link.send(body)
        except ConnectionError:  # the job died: the supervisor's call ends it on the wire
            log.debug("job gone; %s not forwarded", body.get("type"))
            self._link = None

    async def aclose(self) -> None:
        self._over.set()
        await self.sink.aclose()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
