"""Placing a call (RFC 3261 §13.2): INVITE with our SDP offer, digest auth, ACK, CANCEL on timeout."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import TYPE_CHECKING

from voxline.logs import call_id_var
from voxline.telephony import CallHandler
from voxline.telephony.sip.auth import credentials_header
from voxline.telephony.sip.call import SipCall
from voxline.telephony.sip.dialog import ALLOWED_METHODS, Dialog
from voxline.telephony.sip.media import CallMedia, open_session
from voxline.telephony.sip.message import (
    Headers,
    SipParseError,
    SipRequest,
    SipResponse,
    format_host,
    new_branch,
    new_call_id,
    new_tag,
    parse_uri,
)
from voxline.telephony.sip.sdp import SdpError, SdpNegotiationError
from voxline.telephony.sip.transaction import ClientTransaction
from voxline.telephony.sip.transport import Peer

if TYPE_CHECKING:
    from voxline.telephony.sip.endpoint import SipEndpoint

log = logging.getLogger(__name__)


class _Invite:
    """The INVITEs of one outbound call: same Call-ID and tags, a new CSeq per (authenticated) retry."""

    def __init__(self, endpoint: SipEndpoint, uri: str, peer: Peer, sdp: bytes) -> None:
        self.endpoint = endpoint
        self.uri = uri
        self.peer = peer
        self.sdp = sdp
        host = endpoint.config.public_host or endpoint.config.host
        registration = endpoint.config.registration
        domain = (registration.domain or parse_uri(registration.registrar).host) if registration else host
        self.from_ = f"<sip:{endpoint.config.user}@{format_host(domain)}>;tag={new_tag()}"
        self.call_id = new_call_id(host)
        self.seq = 0

    def build(self, *auth: tuple[str, str]) -> SipRequest:
        self.seq += 1
        transport = self.peer.transport
        headers = Headers()
        headers.add("Via", f"{self.endpoint.via(transport)};branch={new_branch()};rport")
        headers.add("Max-Forwards", "70")
        headers.add("From", self.from_)
        headers.add("To", f"<{self.uri}>")
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", f"{self.seq} INVITE")
        headers.add("Contact", self.endpoint.contact(transport))
        headers.add("Allow", ", ".join(ALLOWED_METHODS))
        headers.add("Content-Type", "application/sdp")
        for name, value in auth:
            headers.add(name, value)
        return SipRequest("INVITE", self.uri, headers, self.sdp)


def _cancel_for(invite: SipRequest) -> SipRequest:
    """§9.1: same Request-URI, Call-ID, From, To, CSeq number and top Via (so the same branch)."""
    headers = Headers()
    headers.add("Via", invite.headers.get_all("Via")[0])
    for route in invite.headers.get_all("Route"):
        headers.add("Route", route)
    headers.add("Max-Forwards", "70")
    for name in ("From", "To", "Call-ID"):
        headers.add(name, invite.headers.get(name) or "")
    number = (invite.headers.get("CSeq") or "1").split()[0]
    headers.add("CSeq", f"{number} CANCEL")
    return SipRequest("CANCEL", invite.uri, headers)


async def _final_response(
    endpoint: SipEndpoint, txn: ClientTransaction, deadline: float
) -> tuple[SipResponse, bool]:
    """The INVITE's final response, CANCELling it at the deadline; (response, cancelled)."""
    loop = asyncio.get_running_loop()
    provisional = False
    while True:
        try:
            response = await asyncio.wait_for(txn.next_response(), max(0.0, deadline - loop.time()))
        except TimeoutError:
            break
        if response.status >= 200:
            return response, False
        provisional = True
        log.info("call progress: %d %s", response.status, response.reason)
    if not provisional:  # §9.1: no CANCEL before a provisional; Timer B will end it
        txn.close()
        return SipResponse(408, "Request Timeout", Headers()), True
    log.info("no answer in time; sending CANCEL")
    await endpoint.send_request(_cancel_for(txn.request), txn.peer)
    try:
        while (response := await asyncio.wait_for(txn.next_response(), endpoint.timers.timeout)).status < 200:
            pass
    except TimeoutError:
        return SipResponse(408, "Request Timeout", Headers()), True
    return response, True


async def _ack(endpoint: SipEndpoint, dialog: Dialog, invite: SipRequest) -> None:
    peer = dialog.destination()
    seq = int((invite.headers.get("CSeq") or "1").split()[0])
    ack = dialog.request("ACK", endpoint.via(peer.transport), endpoint.contact(peer.transport), seq=seq)
    for name in ("Authorization", "Proxy-Authorization"):
        if (value := invite.headers.get(name)) is not None:
            ack.headers.add(name, value)
    try:
        await endpoint.transport.send(ack.to_bytes(), peer)
    except (OSError, ConnectionError) as exc:
        log.warning("could not send ACK: %s", exc)


async def _reack_retransmissions(
    endpoint: SipEndpoint, txn: ClientTransaction, dialog: Dialog, invite: SipRequest
) -> None:
    """A repeated 2xx means our ACK was lost: the ACK is ours to repeat, not the transaction's."""
    while True:
        await txn.next_response()
        await _ack(endpoint, dialog, invite)


async def place_call(endpoint: SipEndpoint, uri: str, handler: CallHandler, *, timeout_s: float) -> str:
    """Call `uri` and run `handler` once answered; returns why the call ended (or failed)."""
    try:
        target = parse_uri(uri)
    except (SipParseError, ValueError) as exc:
        log.warning("cannot call %r: %s", uri[:100], exc)
        return "bad_uri"
    default = "udp" if "udp" in endpoint.config.transports else "tcp"
    peer = Peer((target.params.get("transport") or default).lower(), target.host, target.port or 5060)
    call_id = uuid.uuid4().hex[:12]
    token = call_id_var.set(call_id)
    try:
        return await _place(endpoint, uri, peer, call_id, handler, timeout_s)
    finally:
        call_id_var.reset(token)


async def _place(
    endpoint: SipEndpoint, uri: str, peer: Peer, call_id: str, handler: CallHandler, timeout_s: float
) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    try:
        session = await open_session(endpoint.config, call_id, endpoint.clock)
    except OSError as exc:
        log.error("no RTP port for the outbound call: %s", exc)
        return "no_media_port"
    media = CallMedia(endpoint.config, session)
    invite = _Invite(endpoint, uri, peer, media.offer())
    log.info("calling %s (SIP Call-ID %s)", uri, invite.call_id)
    endpoint.setting_up += 1
    answered: SipCall | None = None
    reack: asyncio.Task[None] | None = None
    try:
        request = invite.build()
        # Each challenge kind is answered once: a proxy (407) in front of a PBX (401) challenges twice,
        # and the second INVITE must carry both answers. The same kind again means wrong credentials.
        answers: dict[str, tuple[str, str]] = {}
        while True:
            try:
                txn = await endpoint.start_client(request, peer)
            except (OSError, ConnectionError):
                return "unreachable"
            response, cancelled = await _final_response(endpoint, txn, deadline)
            if response.status in (401, 407) and endpoint.config.registration:
                creds = endpoint.config.registration
                answer = credentials_header(request, response, creds.username, creds.password)
                if answer is not None and answer[0] not in answers:
                    answers[answer[0]] = answer
                    request = invite.build(*answers.values())
                    continue
            break
        if not 200 <= response.status < 300:
            log.info("call to %s failed: %d %s", uri, response.status, response.reason)
            return "no_answer" if cancelled or response.status == 408 else f"rejected_{response.status}"
        dialog = Dialog.as_uac(request, response, peer)
        await _ack(endpoint, dialog, request)
        reack = endpoint.spawn(_reack_retransmissions(endpoint, txn, dialog, request), "sip-reack", call_id)
        call = SipCall(call_id, session, dialog, endpoint)
        call.media = media
        endpoint.register_call(call)
        answered = call
        if cancelled:  # answered as our CANCEL crossed it: the call is unwanted now
            await call.hangup("no_answer")
            return "no_answer"
        try:
            media.accept(response.body)
        except (SdpError, SdpNegotiationError) as exc:
            log.warning("unusable SDP answer (%s); hanging up", exc)
            await call.hangup("bad_sdp")
            return "bad_sdp"
    finally:
        endpoint.setting_up -= 1
        if answered is None:
            await session.aclose()
        elif answered.hangup_reason is not None:  # ended during set-up
            await answered.aclose()
            endpoint.calls.pop(answered.dialog.key, None)
            if reack is not None:
                reack.cancel()
    try:
        return await endpoint.run_call(answered, handler)
    finally:
        if reack is not None:
            reack.cancel()
