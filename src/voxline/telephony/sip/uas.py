"""Answering INVITEs (RFC 3261 §13.3): 100 Trying at once, 180 Ringing, 200 OK with our SDP answer,
then, once the caller ACKs, the call handler; and re-INVITEs (hold/unhold, a new media address).

The handler, and so the greeting's RTP, waits for the ACK: an INVITE with a forged source never
sees our 200 (it goes to the forged address), cannot ACK it without the 200's To tag, and so never
gets media sent to the address its SDP named. Digest authentication and the call budget are
checked before anything is allocated.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import TYPE_CHECKING

from voxline.capacity import CallSlot, Refusal
from voxline.logs import call_id_var
from voxline.telephony.sip.call import SipCall
from voxline.telephony.sip.dialog import ALLOWED_METHODS, Dialog
from voxline.telephony.sip.media import CallMedia, open_session
from voxline.telephony.sip.message import SipRequest, new_tag, parse_cseq
from voxline.telephony.sip.sdp import SdpError, SdpNegotiationError
from voxline.telephony.sip.transaction import ServerTransaction

if TYPE_CHECKING:
    from voxline.telephony.sip.endpoint import SipEndpoint

log = logging.getLogger(__name__)

SDP = "application/sdp"


def _is_sdp(request: SipRequest) -> bool:
    content_type = request.headers.get("Content-Type") or ""
    return content_type.split(";", 1)[0].strip().lower() == SDP


def _accepts_sdp(request: SipRequest) -> bool:
    """May our answer carry SDP? No Accept (or an empty one) means application/sdp (§20.1)."""
    ranges = [value.split(";", 1)[0].strip().lower() for value in request.headers.get_all("Accept")]
    return not ranges or any(r in (SDP, "application/*", "*/*") for r in ranges)


async def _refuse_body(txn: ServerTransaction) -> bool:
    """Answer 415 to a body we cannot read; True if we did."""
    if txn.request.body and not _is_sdp(txn.request):
        log.warning("INVITE body is not SDP: 415")
        await txn.respond_with(415, extra=[("Accept", SDP)])
        return True
    return False


async def _negotiate(txn: ServerTransaction, media: CallMedia) -> bytes | None:
    """Our SDP for the 200 (an answer, or an offer when the INVITE had none); None once refused."""
    if not txn.request.body:
        return media.offer()
    try:
        media.accept(txn.request.body)
    except SdpNegotiationError as exc:
        log.warning("no common media: %s: 488", exc)
        code, text = exc.warning
        await txn.respond_with(488, extra=[("Warning", f'{code} - "{text}"')])
        return None
    except SdpError as exc:
        log.warning("bad SDP: %s: 400", exc)
        await txn.respond_with(400, "Bad SDP")
        return None
    return media.answer()


async def _authenticated(endpoint: SipEndpoint, txn: ServerTransaction) -> bool:
    """With `telephony.sip.auth` set, a new INVITE without valid credentials gets 401."""
    authenticator = endpoint.admission.authenticator
    if authenticator is None:
        return True
    challenge = authenticator.check(txn.request)
    if challenge is None:
        return True
    if "Authorization" in txn.request.headers:  # a wrong credential, not the first challenge of a call
        endpoint.admission.refusals.count("sip", "auth")
    await txn.respond_with(401, to_tag=new_tag(), extra=[("WWW-Authenticate", challenge)])
    return False


async def answer_invite(endpoint: SipEndpoint, txn: ServerTransaction) -> None:
    """A new call. Everything it opened is released if it ends before the 200 OK goes out."""
    if not _accepts_sdp(txn.request):
        log.warning(
            "INVITE accepts no SDP in the answer (Accept: %s): 406", txn.request.headers.get("Accept")
        )
        warning = ("Warning", '399 voxline "our answer can only be application/sdp"')
        await txn.respond_with(406, to_tag=new_tag(), extra=[warning])
        return
    if not await _authenticated(endpoint, txn):
        return
    slot: CallSlot | Refusal
    if not endpoint.accepting:
        slot = Refusal("not accepting calls")
    elif endpoint.active_calls >= endpoint.max_calls:
        slot = Refusal(f"at telephony.sip.max_calls={endpoint.max_calls}")
    else:  # the node's budget: its load threshold, the reserved slots, draining
        slot = endpoint.capacity.admit("sip")
    if isinstance(slot, Refusal):
        endpoint.admission.refusals.count("sip", "capacity")
        log.warning("INVITE refused: %s: 503", slot.reason)
        retry = ("Retry-After", str(slot.retry_after_s))
        await txn.respond_with(503, to_tag=new_tag(), extra=[retry])
        return
    handed_over = False
    try:
        handed_over = await _set_up(endpoint, txn, slot)
    finally:
        if not handed_over:
            slot.release()


async def _set_up(endpoint: SipEndpoint, txn: ServerTransaction, slot: CallSlot) -> bool:
    """Answer the INVITE; True once the call (and its slot) went to the task that runs it."""
    request = txn.request
    await txn.respond_with(100)
    call_id = uuid.uuid4().hex[:12]
    call_id_var.set(call_id)
    log.info("INVITE from %s (SIP Call-ID %s)", request.headers.get("From"), request.headers.get("Call-ID"))
    if await _refuse_body(txn):
        return False
    endpoint.setting_up += 1
    call: SipCall | None = None
    try:
        try:
            session = await open_session(endpoint.config, call_id, endpoint.clock)
        except OSError as exc:
            log.error("no RTP port free: %s: 503", exc)
            await txn.respond_with(503, extra=[("Retry-After", "5")])
            return False
        session.await_confirmation()  # no media, and no latching on a stranger, before the ACK
        media = CallMedia(endpoint.config, session)
        local_tag = new_tag()
        call = SipCall(call_id, session, Dialog.as_uas(request, local_tag, txn.peer), endpoint)
        call.media = media
        call.capacity_slot = slot
        sdp = await _negotiate(txn, media)
        if sdp is None:
            return False
        contact = ("Contact", endpoint.contact(txn.peer.transport))
        if not txn.final_sent:
            await txn.respond(txn.response(180, to_tag=local_tag, extra=[contact]))
        if endpoint.answer_delay_s > 0:
            await asyncio.sleep(endpoint.answer_delay_s)
        if txn.final_sent:  # CANCELled (487 already sent) while we were setting up
            log.info("call cancelled before answer")
            return False
        seq, _ = parse_cseq(request.headers.get("CSeq") or "")
        endpoint.register_call(call)
        endpoint.awaiting_ack[(call.dialog.key, seq)] = txn
        extra = [contact, ("Allow", ", ".join(ALLOWED_METHODS)), ("Supported", "replaces")]
        await txn.respond(txn.response(200, to_tag=local_tag, body=sdp, content_type=SDP, extra=extra))
        answered, call = call, None
    finally:
        endpoint.setting_up -= 1
        if call is not None:  # set-up ended early: release the media
            await call.aclose()
    endpoint.spawn(_run_after_ack(endpoint, answered, txn, seq, slot), "sip-call", call_id)
    return True


async def _run_after_ack(
    endpoint: SipEndpoint, call: SipCall, txn: ServerTransaction, seq: int, slot: CallSlot
) -> None:
    """Run the handler once our 2xx is ACKed; §13.3.1.4: no ACK within 64*T1 means the dialog
    is dead: send BYE and free everything, with no media ever sent."""
    try:
        if not await txn.wait_ack():
            endpoint.awaiting_ack.pop((call.dialog.key, seq), None)
            log.warning("no ACK for our 200 OK; hanging up (no media was sent)")
            try:
                await call.hangup("no_ack")
            finally:
                await call.aclose()
                endpoint.calls.pop(call.dialog.key, None)
            return
        call.session.media_confirmed()
        await endpoint.run_call(call, endpoint.on_call)
    finally:
        slot.release()


async def reinvite(endpoint: SipEndpoint, txn: ServerTransaction, call: SipCall) -> None:
    """A re-INVITE: new SDP (hold, unhold, new address, new codec) answered with ours; a refusal
    leaves the call as it was (§14.2)."""
    if call.media is None or any(key[0] == call.dialog.key for key in endpoint.awaiting_ack):
        log.info("re-INVITE while another is pending: 491")
        await txn.respond_with(491, "Request Pending", extra=[("Retry-After", "1")])
        return
    if await _refuse_body(txn):
        return
    sdp = await _negotiate(txn, call.media)
    if sdp is None:
        return
    call.dialog.update_target(txn.request)
    seq, _ = parse_cseq(txn.request.headers.get("CSeq") or "")
    endpoint.awaiting_ack[(call.dialog.key, seq)] = txn
    log.info(
        "re-INVITE accepted%s", " (hold)" if call.media.negotiated and call.media.negotiated.on_hold else ""
    )
    contact = ("Contact", endpoint.contact(txn.peer.transport))
    await txn.respond_with(200, body=sdp, content_type=SDP, extra=[contact])
    endpoint.spawn(_forget_ack(endpoint, call, txn, seq), "sip-reinvite-ack", call.call_id)


async def _forget_ack(endpoint: SipEndpoint, call: SipCall, txn: ServerTransaction, seq: int) -> None:
    if not await txn.wait_ack():
        endpoint.awaiting_ack.pop((call.dialog.key, seq), None)
        log.warning("no ACK for the re-INVITE's 200 OK")


def late_answer(endpoint: SipEndpoint, call: SipCall, ack: SipRequest) -> None:
    """The SDP answer in an ACK, when the INVITE came without an offer (§13.2.1)."""
    if call.media is None or not _is_sdp(ack):
        return
    try:
        call.media.accept(ack.body)
    except (SdpError, SdpNegotiationError) as exc:
        log.warning("unusable SDP answer in ACK (%s); hanging up", exc)
        endpoint.spawn(call.hangup("bad_sdp"), "sip-bad-ack", call.call_id)
