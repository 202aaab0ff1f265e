"""The supervisor's side of a phone call whose media runs in a job process.

A listener in `workers.mode: process` makes its calls with media that can be handed over (a SIP or
ARI call on a `JobRtpSession`, a `JobAudioSocketCall`). When the pool assigns the call's job,
`hand_off_media` gives up the socket: the media spec and the descriptor go in the assignment, and
the call's later changes (re-INVITE, DTMF by signalling, the caller's BYE) go to the job as control
messages. The job's requests come back through `on_job_request`: hang up (BYE, the ARI channel
deleted) and transfer (REFER, answered with the NOTIFY's verdict). `job_ended` says how the job
ended; after a crash the supervisor's `run_call` then ends the call on the wire (BYE, the
AudioSocket hangup frame, the ARI hangup).
"""

from __future__ import annotations

import logging
import socket
from typing import Any

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

__all__ = ["hand_off_media", "hands_off_media", "job_ended", "on_job_request"]

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
    """Carry out a job's request on the call's signalling; the reply for a request that wants one."""
    kind = body.get("type")
    if kind == HANGUP_REQUEST:
        reason = str(body.get("reason") or "normal")[:64]
        if isinstance(call, JobAudioSocketCall):
            call.hangup_reason = call.hangup_reason or reason
            call.job_finished(crashed=False)  # the job sent the hangup frame on its own socket
        else:
            await call.hangup(reason)  # BYE, or the ARI channel deleted
        return None
    if kind == TRANSFER_REQUEST:
        target = str(body.get("target") or "")[:256]
        return {"ok": await call.transfer(target)}
    log.debug("job request %r is not for the call's signalling", kind)
    return None


def job_ended(call: CallIO, *, crashed: bool) -> None:
    """The job is gone. After a crash the supervisor ends the call on the wire (its `run_call`
    hangs up with the report's reason, `worker_crashed`)."""
    if isinstance(call, JobAudioSocketCall):
        call.job_finished(crashed=crashed)
    elif isinstance(call, RtpCall) and isinstance(call.session, JobRtpSession):
        call.session.job_gone()
    if crashed:
        log.warning("the call's job died; ending the call from here")
