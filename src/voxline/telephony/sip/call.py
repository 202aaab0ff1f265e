"""A SIP call as the conversation sees it: RTP media, with hang-up as BYE and transfer as REFER."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Protocol

from voxline.capacity import CallSlot
from voxline.telephony.rtp.call import RtpCall
from voxline.telephony.rtp.media import RtpMedia
from voxline.telephony.sip.dialog import Dialog
from voxline.telephony.sip.media import CallMedia
from voxline.telephony.sip.message import SipRequest, SipResponse, parse_name_addr, parse_uri

log = logging.getLogger(__name__)

_EXTENSION_RE = re.compile(r"[A-Za-z0-9*#+._-]{1,64}")
_URI_RE = re.compile(r"(sips?|tel):[^\s<>\"]{1,256}", re.IGNORECASE)
_SIPFRAG_RE = re.compile(r"SIP/2\.0\s+(\d{3})")


class DialogSender(Protocol):
    """What a call needs from the endpoint: send an in-dialog request, get its final response."""

    async def send_in_dialog(
        self,
        dialog: Dialog,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        extra: list[tuple[str, str]] | None = None,
    ) -> SipResponse: ...


def refer_target(target: str, dialog: Dialog) -> str:
    """The Refer-To URI: a sip:/sips:/tel: URI as given, or a bare extension at the peer's host."""
    target = target.strip()
    if _URI_RE.fullmatch(target):
        return target
    if _EXTENSION_RE.fullmatch(target):
        host = parse_uri(dialog.remote_target).host
        return f"sip:{target}@{host}"
    raise ValueError(f"not a SIP URI or an extension: {target[:80]!r}")


def sipfrag_status(body: bytes) -> int | None:
    """The status of a message/sipfrag NOTIFY body (RFC 3515 §2.4.5), e.g. b"SIP/2.0 200 OK"."""
    match = _SIPFRAG_RE.match(body.decode("utf-8", "replace").lstrip())
    return int(match.group(1)) if match else None


class SipCall(RtpCall):
    """One SIP dialog with media. The endpoint feeds it BYE, INFO and NOTIFY; it sends BYE and REFER."""

    transfer_timeout_s = 10.0
    """How long to wait for the NOTIFY saying the transfer target answered."""
    bye_notify_grace_s = 1.0
    """After the peer's BYE ends a transfer in flight, how long its final NOTIFY may still take
    (Asterisk sends both once the caller has gone; over UDP either may arrive first)."""
    bye_timeout_s = 5.0

    def __init__(self, call_id: str, session: RtpMedia, dialog: Dialog, sender: DialogSender) -> None:
        super().__init__(call_id, session, on_hangup=self._send_bye, on_transfer=self._send_refer)
        self.dialog = dialog
        self._sender = sender
        self.bye_received = False
        self.ended = asyncio.Event()
        """Set once the dialog is over (BYE either way, or a failed set-up)."""
        self._transfer_result: asyncio.Future[int] | None = None
        self._refer_to: str | None = None
        self.media: CallMedia | None = None
        """The offer/answer state, for re-INVITEs."""
        self.capacity_slot: CallSlot | None = None
        """The call budget's slot taken when the INVITE was admitted (the server's runner adopts it)."""

    @property
    def sip_call_id(self) -> str:
        return self.dialog.call_id

    @property
    def awaiting_notify(self) -> bool:
        """The peer accepted our REFER and has not yet said how the transfer ended."""
        waiter = self._transfer_result
        return self._refer_to is not None and waiter is not None and not waiter.done()

    def bye_from_remote(self) -> None:
        self.bye_received = True
        self.ended.set()
        if self.awaiting_notify:
            # The peer ends our leg once the caller is on the way to the target; its final NOTIFY
            # may still be in flight behind this BYE. Give it a moment, then take the BYE as done.
            log.info("BYE while the transfer to %s awaits its NOTIFY; waiting %.1f s for it",
                     self._refer_to, self.bye_notify_grace_s)  # fmt: skip
            asyncio.get_running_loop().call_later(self.bye_notify_grace_s, self._bye_settles_transfer)
        self.remote_hangup("caller_hangup")

    def _bye_settles_transfer(self) -> None:
        waiter = self._transfer_result
        if waiter is not None and not waiter.done():
            log.info("no NOTIFY after the BYE; the peer ended our leg after accepting the REFER: transferred")
            waiter.set_result(200)

    def notify_received(self, request: SipRequest) -> None:
        """A NOTIFY of the REFER subscription: resolve the transfer once the sipfrag is final."""
        status = sipfrag_status(request.body)
        log.info("transfer progress: %s", status if status is not None else "unreadable sipfrag")
        waiter = self._transfer_result
        if status is not None and status >= 200 and waiter is not None and not waiter.done():
            waiter.set_result(status)

    async def _send_bye(self, reason: str) -> None:
        if self.bye_received or self.ended.is_set():
            return
        self.ended.set()
        response = await self._sender.send_in_dialog(
            self.dialog, "BYE", extra=[("Reason", f'Q.850;cause=16;text="{reason}"')]
        )
        log.info("sent BYE (%s): %d %s", reason, response.status, response.reason)

    async def _send_refer(self, target: str) -> bool:
        try:
            refer_to = refer_target(target, self.dialog)
        except ValueError as exc:
            log.warning("transfer refused: %s", exc)
            return False
        self._transfer_result = asyncio.get_running_loop().create_future()
        self._refer_to = None
        response = await self._sender.send_in_dialog(
            self.dialog,
            "REFER",
            extra=[("Refer-To", f"<{refer_to}>"), ("Referred-By", f"<{_party_uri(self.dialog)}>")],
        )
        if not 200 <= response.status < 300:
            log.warning("REFER to %s rejected: %d %s", refer_to, response.status, response.reason)
            return False
        self._refer_to = refer_to
        try:
            status = await asyncio.wait_for(self._transfer_result, self.transfer_timeout_s)
        except TimeoutError:
            # Blind transfer: the peer accepted the REFER, so our part is done even without news.
            log.info("no final NOTIFY for the transfer to %s; hanging up anyway", refer_to)
            status = 200
        if status >= 300:
            log.warning(
                "transfer to %s failed: %d%s; the call goes on", refer_to, status, _refer_hint(status)
            )
            return False
        log.info("transferred to %s", refer_to)
        self.hangup_reason = "transferred"  # even if the peer's BYE came first: it was the transfer
        await self.hangup("transferred")
        return True


def _refer_hint(status: int) -> str:
    """What a failed transfer's NOTIFY status usually means on Asterisk (see docs/asterisk.md)."""
    if status == 400:
        return (
            " (Asterisk answers 400 when our channel is not bridged to the caller: reach the agent"
            " through Dial(PJSIP/...), not straight from dialplan applications)"
        )
    if status == 404:
        return " (Asterisk: the target does not exist in the endpoint's context)"
    return ""


def _party_uri(dialog: Dialog) -> str:
    return parse_name_addr(dialog.local_party).uri
