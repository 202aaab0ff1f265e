"""The supervisor's side of a phone call whose media runs in a job process.

A listener in `workers.mode: process` makes its calls with media that can be handed over (a SIP or
ARI call on a `JobRtpSession`, a `JobAudioSocketCall`). `media_for_job` gives up the socket:
the media spec and the descriptor go in the pool's assignment (`WorkerPool.run(media=...)`), and
the call's later changes (re-INVITE, DTMF by signalling, the caller's BYE) go to the job as control
messages. The job's requests come back through the pool's bridge to the call: hang up (BYE, the
ARI channel deleted) and transfer (REFER, answered with the NOTIFY's verdict). `job_ended` marks
the job gone; the supervisor's `run_call` then ends the call on the wire if nobody did (after a
crash: BYE, the AudioSocket hangup frame, the ARI hangup, with `worker_crashed`).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from voxline.conversation.metrics import CallReport
from voxline.telephony.audiosocket.handoff import JobAudioSocketCall
from voxline.telephony.job_media import (
    HANGUP_REQUEST,
    TRANSFER_REQUEST,
    audiosocket_spec,
    rtp_spec,
)
from voxline.telephony.rtp.call import RtpCall
from voxline.telephony.rtp.handoff import ControlLink, JobRtpSession
from voxline.transports.base import CallIO
from voxline.workers.media import MediaSpec

__all__ = [
    "LateLink",
    "hand_off_media",
    "hands_off_media",
    "job_ended",
    "media_for_job",
    "on_job_request",
    "run_with_own_media",
]

log = logging.getLogger(__name__)


def hands_off_media(call: CallIO) -> bool:
    """Is this call's media handed to its job (rather than piped through the supervisor)?"""
    if isinstance(call, JobAudioSocketCall):
        return True
    return isinstance(call, RtpCall) and isinstance(call.session, JobRtpSession)


async def hand_off_media(call: CallIO, link: ControlLink) -> tuple[dict[str, Any], socket.socket]:
    """(the media spec, the descriptor for the job): send both in the assignment, then close the
    socket here. From now on the call's changes go to the job through `link`."""
    if isinstance(call, JobAudioSocketCall):
        sock, pending = await call.hand_off(link)
        return audiosocket_spec(call.uuid, pending, call.idle_timeout_s), sock
    if isinstance(call, RtpCall) and isinstance(call.session, JobRtpSession):
        session = call.session
        sock = session.hand_off(link, lambda: call.hangup_reason)
        return rtp_spec(session.state()), sock
    raise TypeError(f"{type(call).__name__} has no media to hand to a job")


async def on_job_request(call: CallIO, body: dict[str, Any]) -> dict[str, Any] | None:
    """Carry out a job's request on the call's signalling, as the pool's `CallBridge` does; the
    reply for a request that wants one."""
    kind = body.get("type")
    if kind == HANGUP_REQUEST:
        await call.hangup(str(body.get("reason") or "normal")[:64])  # BYE, or the ARI channel deleted
        return None
    if kind == TRANSFER_REQUEST:
        target = str(body.get("target") or "")[:256]
        return {"ok": await call.transfer(target)}
    log.debug("job request %r is not for the call's signalling", kind)
    return None


def job_ended(call: CallIO) -> None:
    """The call's job is gone (it reported the call over, or died): nothing is forwarded to it any
    more, and the supervisor's `run_call` ends the call on the wire unless that is done already
    (BYE, the ARI hangup, the AudioSocket hangup frame; after a crash with `worker_crashed`)."""
    if isinstance(call, JobAudioSocketCall):
        call.job_finished()
    elif isinstance(call, RtpCall) and isinstance(call.session, JobRtpSession):
        call.session.job_gone()


class LateLink:
    """The link a call's media is handed over with before its job is known: control messages wait
    here (bounded) until the pool has sent the assignment, then go to the job in order."""

    limit = 256

    def __init__(self) -> None:
        self._target: ControlLink | None = None
        self._waiting: list[dict[str, Any]] = []

    def send(self, body: dict[str, Any]) -> None:
        if self._target is not None:
            self._target.send(body)
        elif len(self._waiting) < self.limit:
            self._waiting.append(body)
        else:
            log.warning("no job yet for the call; dropped a %s", body.get("type"))

    def bind(self, target: ControlLink) -> None:
        self._target = target
        waiting, self._waiting = self._waiting, []
        for body in waiting:
            target.send(body)


async def media_for_job(call: CallIO) -> MediaSpec | None:
    """The MediaSpec that hands the call's own socket to its job (the pool sends the descriptor in
    the assignment and closes it here); None for a call whose audio is piped (WebSocket)."""
    if not hands_off_media(call):
        return None
    link = LateLink()
    spec, sock = await hand_off_media(call, link)
    kind = str(spec.pop("kind"))
    return MediaSpec(kind, spec, fds=[sock.detach()], on_assigned=link.bind)


async def run_with_own_media(call: CallIO, run_in_job: Callable[..., Awaitable[CallReport]]) -> CallReport:
    """Run `call` in a job with its own socket handed over (`run_in_job(call, media=...)`, the
    server's pool handler); a WebSocket call's audio is piped as before."""
    media = await media_for_job(call)
    try:
        report: CallReport = await run_in_job(call, media=media)
        return report
    finally:
        if media is not None:
            job_ended(call)
