"""The job process's side of a phone call: the media on the descriptor the supervisor handed over.

Two kinds of media reach a job with a descriptor:

- `rtp` (SIP, ARI external media): the RTP UDP socket the supervisor bound and named in its SDP
  answer (or its external-media request), and the `RtpMediaState` its signalling agreed on. The job
  builds the real `RtpSession` on it, so every packet goes between the peer and this process.
  The signalling stays in the supervisor: hanging up asks it to send BYE (or delete the ARI
  channel), a transfer asks it to send REFER and waits for its verdict; it tells this side of
  re-INVITEs (`rtp_media`), keys pressed by SIP INFO or ARI events (`dtmf`) and the caller's end
  (`remote_hangup`).
- `audiosocket`: the accepted TCP connection, with the bytes the supervisor read past the UUID
  frame; the job runs `AudioSocketCall` on it, hang-up frame and all.

Each builder returns a `CallIO` attached to the job's link: its `on_control` takes the
supervisor's control messages for the call.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import socket
import uuid
from collections.abc import Sequence
from typing import Any, Protocol

from voxline.telephony.audiosocket.call import DEFAULT_IDLE_TIMEOUT_S, AudioSocketCall
from voxline.telephony.audiosocket.protocol import FrameDecoder
from voxline.telephony.rtp.call import RtpCall
from voxline.telephony.rtp.handoff import DTMF_CONTROL, MEDIA_CONTROL, REMOTE_HANGUP_CONTROL
from voxline.telephony.rtp.media_state import RtpMediaState, apply_state, open_session_from_state
from voxline.telephony.rtp.session import RtpSession
from voxline.transports.base import CallIO, Dtmf

__all__ = [
    "AUDIOSOCKET",
    "RTP",
    "AudioSocketCallInJob",
    "RtpCallInJob",
    "SupervisorLink",
    "build_audiosocket_call",
    "build_rtp_call",
    "open_audiosocket_media",
    "open_rtp_media",
]

log = logging.getLogger(__name__)

RTP = "rtp"
AUDIOSOCKET = "audiosocket"
GOODBYE_CONTROL = "goodbye"
"""Drain's second signal: end the call now (the supervisor then hangs up its signalling)."""
HANGUP_REQUEST = "hangup"
TRANSFER_REQUEST = "transfer"
DTMF_DIGITS = frozenset("0123456789*#ABCD")
MAX_PENDING_BYTES = 512 * 1024
"""Bytes read past an AudioSocket UUID frame that may come along (a few seconds of audio at most)."""


class SupervisorLink(Protocol):
    """The job's end of its channel to the supervisor (voxline.workers.job.JobLink)."""

    def send(self, body: dict[str, Any], fds: Sequence[int] = ()) -> None: ...

    async def request(self, body: dict[str, Any], timeout_s: float = 30.0) -> dict[str, Any]: ...

    def attach(self, call: Any) -> None:
        """Deliver the call's control messages to `call.on_control(body)`."""


class MediaRequest(Protocol):
    """What the job's media registry hands a builder (voxline.workers.media.MediaContext)."""

    @property
    def call_id(self) -> str: ...

    @property
    def spec(self) -> dict[str, Any]: ...

    @property
    def fds(self) -> list[int]: ...

    @property
    def link(self) -> SupervisorLink: ...


def _default_reason(kind: object) -> str:
    return "node_draining" if kind == GOODBYE_CONTROL else "caller_hangup"


def _digit(body: dict[str, Any]) -> Dtmf | None:
    digit = str(body.get("digit", "")).upper()
    if digit not in DTMF_DIGITS:
        log.warning("ignoring a DTMF control with digit %r", digit[:8])
        return None
    try:
        duration = max(0, min(int(body.get("duration_ms", 0)), 10_000))
    except (TypeError, ValueError):
        duration = 0
    return Dtmf(digit, duration)


class RtpCallInJob(RtpCall):
    """A SIP or ARI call in a job: RTP on this process's socket, the signalling in the supervisor."""

    def __init__(self, call_id: str, session: RtpSession, link: SupervisorLink) -> None:
        super().__init__(call_id, session, on_hangup=self._ask_hangup, on_transfer=self._ask_transfer)
        self.rtp = session
        self._link = link
        link.attach(self)

    async def _ask_hangup(self, reason: str) -> None:
        self._link.send({"type": HANGUP_REQUEST, "reason": reason})

    async def _ask_transfer(self, target: str) -> bool:
        reply = await self._link.request({"type": TRANSFER_REQUEST, "target": target})
        return bool(reply.get("ok"))

    def on_media(self, pcm: bytes) -> None:
        pass  # the caller's audio comes on the RTP socket

    def on_control(self, body: dict[str, Any]) -> None:
        kind = body.get("type")
        if kind == MEDIA_CONTROL:
            try:
                apply_state(self.rtp, RtpMediaState.from_json(body))
            except ValueError as exc:
                log.warning("ignoring an unusable media update: %s", exc)
        elif kind == DTMF_CONTROL:
            if (dtmf := _digit(body)) is not None:
                self.inject_dtmf(dtmf)
        elif kind in (REMOTE_HANGUP_CONTROL, GOODBYE_CONTROL):
            self.remote_hangup(str(body.get("reason") or _default_reason(kind))[:64])
        else:
            log.debug("control %r is not for the call's media", kind)


class AudioSocketCallInJob(AudioSocketCall):
    """An AudioSocket call in a job, on the connection the supervisor accepted and admitted."""

    def __init__(self, *args: Any, link: SupervisorLink, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._link = link
        link.attach(self)

    async def hangup(self, reason: str = "normal") -> None:
        first = not self._closed
        await super().hangup(reason)
        if first:
            self._link.send({"type": HANGUP_REQUEST, "reason": self.hangup_reason or reason})

    def on_media(self, pcm: bytes) -> None:
        pass  # the caller's audio comes on the connection

    def on_control(self, body: dict[str, Any]) -> None:
        kind = body.get("type")
        if kind in (REMOTE_HANGUP_CONTROL, GOODBYE_CONTROL):
            reason = str(body.get("reason") or _default_reason(kind))[:64]
            task = asyncio.get_running_loop().create_task(self.hangup(reason))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
        elif kind == DTMF_CONTROL:
            log.debug("AudioSocket keys come in the stream; a DTMF control is ignored")


def _one_socket(fds: list[int], kind: int) -> socket.socket:
    if len(fds) != 1:
        raise ValueError(f"media needs exactly one descriptor, got {len(fds)}")
    sock = socket.socket(fileno=fds[0])
    if sock.type != kind:
        sock.close()
        raise ValueError(f"the descriptor is a socket of type {sock.type!r}, not {kind!r}")
    return sock


async def open_rtp_media(
    call_id: str, spec: dict[str, Any], fds: list[int], link: SupervisorLink
) -> RtpCallInJob:
    """The job's `rtp` call: `spec["state"]` is the `RtpMediaState`, `fds` the RTP UDP socket."""
    state = RtpMediaState.from_json(dict(spec.get("state") or {}))
    sock = _one_socket(fds, socket.SOCK_DGRAM)
    try:
        session = await open_session_from_state(sock, state, call_id=call_id)
    except BaseException:
        sock.close()
        raise
    log.info(
        "RTP media in the job on %s:%d, %s to %s", session.local_host, session.local_port,
        state.codec, state.remote,
    )  # fmt: skip
    return RtpCallInJob(call_id, session, link)


async def open_audiosocket_media(
    call_id: str, spec: dict[str, Any], fds: list[int], link: SupervisorLink
) -> AudioSocketCallInJob:
    """The job's `audiosocket` call: `fds` the TCP connection, `spec` its UUID and early bytes."""
    try:
        call_uuid = uuid.UUID(str(spec["uuid"]))
        pending = base64.b64decode(str(spec.get("pending", "")), validate=True)
        idle_timeout_s = float(spec.get("idle_timeout_s", DEFAULT_IDLE_TIMEOUT_S))
        if not 0 < idle_timeout_s <= 86400:
            raise ValueError(f"idle timeout {idle_timeout_s} out of range")
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        for fd in fds:
            socket.socket(fileno=fd).close()
        raise ValueError(f"malformed audiosocket media: {exc}") from exc
    if len(pending) > MAX_PENDING_BYTES:
        raise ValueError(f"{len(pending)} early AudioSocket bytes is over {MAX_PENDING_BYTES}")
    sock = _one_socket(fds, socket.SOCK_STREAM)
    try:
        reader, writer = await asyncio.open_connection(sock=sock)
    except BaseException:
        sock.close()
        raise
    decoder = FrameDecoder()
    decoder.feed(pending)
    call = AudioSocketCallInJob(reader, writer, call_uuid, decoder, link=link)
    call.call_id = call_id
    call.idle_timeout_s = idle_timeout_s
    call.sink.start()  # Asterisk hangs up after 2 s without a frame: silence from the first tick
    return call


def audiosocket_spec(call_uuid: uuid.UUID | str, pending: bytes, idle_timeout_s: float) -> dict[str, Any]:
    """The `audiosocket` media spec the supervisor sends with the connection's descriptor."""
    return {
        "kind": AUDIOSOCKET,
        "uuid": str(call_uuid),
        "pending": base64.b64encode(pending).decode(),
        "idle_timeout_s": idle_timeout_s,
    }


def rtp_spec(state: RtpMediaState) -> dict[str, Any]:
    """The `rtp` media spec the supervisor sends with the RTP socket's descriptor."""
    return {"kind": RTP, "state": state.to_json()}


async def build_rtp_call(request: MediaRequest) -> CallIO:
    """The `rtp` builder for the job's media registry."""
    return await open_rtp_media(request.call_id, request.spec, request.fds, request.link)


async def build_audiosocket_call(request: MediaRequest) -> CallIO:
    """The `audiosocket` builder for the job's media registry."""
    return await open_audiosocket_media(request.call_id, request.spec, request.fds, request.link)
