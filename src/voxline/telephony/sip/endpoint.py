"""The SIP user agent: routes requests to transactions and dialogs, runs one handler per call.

Every request runs in its own task, so a slow or failing call never holds up another; every error
becomes one response and one log line. Setting up and answering INVITEs lives in `uas`, placing
calls in `uac`, registering with a PBX in `registration`.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Coroutine
from typing import Any

from voxline.agent.config import SipConfig
from voxline.audio.clock import Clock
from voxline.calls.runner import run_call
from voxline.capacity import CallCapacity
from voxline.logs import call_id_var
from voxline.server.metrics import TELEPHONY_REFUSALS, TelephonyRefusals
from voxline.telephony import CallHandler
from voxline.telephony.sip import uac, uas
from voxline.telephony.sip.admission import SipAdmission
from voxline.telephony.sip.call import SipCall
from voxline.telephony.sip.dialog import ALLOWED_METHODS, Dialog, DialogKey, incoming_key
from voxline.telephony.sip.dtmf_info import parse_dtmf_info
from voxline.telephony.sip.message import (
    SipMessage,
    SipRequest,
    SipResponse,
    format_host,
    make_response,
    parse_cseq,
    parse_name_addr,
    parse_via,
)
from voxline.telephony.sip.registration import Registration
from voxline.telephony.sip.transaction import ClientTransaction, ServerTransaction, Timers, server_key
from voxline.telephony.sip.transport import Peer, SipTransport, response_destination

log = logging.getLogger(__name__)

ALLOWED = ALLOWED_METHODS
ALLOW_HEADER = ("Allow", ", ".join(ALLOWED))
KNOWN_METHODS = frozenset(
    {*ALLOWED, "REGISTER", "SUBSCRIBE", "PUBLISH", "MESSAGE", "UPDATE", "PRACK", "REFER"}
)
RETRY_AFTER_S = 5


class SipEndpoint:
    """A SIP user agent that answers (and places) calls and hands each to a `CallHandler`."""

    def __init__(
        self,
        config: SipConfig,
        on_call: CallHandler,
        *,
        clock: Clock | None = None,
        timers: Timers | None = None,
        answer_delay_s: float = 0.0,
        capacity: CallCapacity | None = None,
        refusals: TelephonyRefusals = TELEPHONY_REFUSALS,
    ) -> None:
        self.config = config
        self.on_call = on_call
        self.clock = clock
        self.timers = timers or Timers()
        self.answer_delay_s = answer_delay_s
        """Time between 180 Ringing and 200 OK (lets a proxy forward the 180 first; tests CANCEL)."""
        self.max_calls = config.max_calls
        self.accepting = True
        """False while draining or overloaded: OPTIONS and new INVITEs get 503 with Retry-After."""
        self.admission = SipAdmission(config, capacity, refusals)
        self.capacity = self.admission.capacity
        self.transport = SipTransport(
            config.host,
            config.port,
            list(config.transports),
            self._on_message,
            admit=self.admission.admit,
            idle_timeout_s=config.tcp_idle_timeout_s,
            dns_timeout_s=config.dns_timeout_s,
        )
        self.calls: dict[DialogKey, SipCall] = {}
        self.setting_up = 0
        self.awaiting_ack: dict[tuple[DialogKey, int], ServerTransaction] = {}
        self._server_txns: dict[tuple[str, str, str], ServerTransaction] = {}
        self._client_txns: dict[tuple[str, str], ClientTransaction] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._registration: Registration | None = None
        self.refused_over_transactions = 0
        self._cap_logged_at = -10.0

    # -- public API
    @property
    def active_calls(self) -> int:
        return len(self.calls) + self.setting_up

    @property
    def has_capacity(self) -> bool:
        return self.accepting and self.active_calls < self.max_calls and self.capacity.has_room()

    def local_port(self, transport: str = "udp") -> int:
        return self.transport.local_port(transport)

    async def start(self) -> None:
        await self.transport.start()
        self.admission.allow_list.warn_if_open(self.config.host)
        log.info(
            "SIP listening on %s %s",
            self.config.host,
            {t: self.local_port(t) for t in self.config.transports},
        )
        if self.config.registration is not None:
            self._registration = Registration(self, self.config.registration)
            self._registration.start()

    async def stop(self) -> None:
        """Stop taking calls, BYE every active one, then close the sockets."""
        self.accepting = False
        if self._registration is not None:
            await self._registration.stop()
        calls = list(self.calls.values())
        await asyncio.gather(*(call.hangup("shutdown") for call in calls), return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for txn in list(self._server_txns.values()):
            txn.close()
        for client in list(self._client_txns.values()):
            client.close()
        await self.transport.aclose()

    async def call(self, uri: str, on_call: CallHandler | None = None, *, timeout_s: float = 30) -> str:
        """Place a call to `uri`, run the handler on it once answered; returns why it ended."""
        return await uac.place_call(self, uri, on_call or self.on_call, timeout_s=timeout_s)

    # -- helpers for uas/uac/registration/calls
    def via(self, transport: str) -> str:
        host = format_host(self.config.public_host or self.config.host)
        return f"SIP/2.0/{transport.upper()} {host}:{self.local_port(transport)}"

    def contact(self, transport: str) -> str:
        host = format_host(self.config.public_host or self.config.host)
        suffix = ";transport=tcp" if transport == "tcp" else ""
        return f"<sip:{self.config.user}@{host}:{self.local_port(transport)}{suffix}>"

    def spawn(
        self, coro: Coroutine[Any, Any, Any], name: str, call_id: str | None = None
    ) -> asyncio.Task[Any]:
        """Run a task we keep track of (stop() cancels it); `call_id` labels its log lines."""
        context = contextvars.copy_context()
        if call_id is not None:
            context.run(call_id_var.set, call_id)
        task = asyncio.get_running_loop().create_task(coro, name=name, context=context)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def start_client(self, request: SipRequest, peer: Peer) -> ClientTransaction:
        txn = ClientTransaction(request, peer, self.transport.send, self.timers)
        self._client_txns[txn.key] = txn
        txn.on_terminated = lambda t: self._forget_client(t)
        try:
            await txn.start()
        except (OSError, ConnectionError) as exc:
            self._forget_client(txn)
            txn.close()
            log.warning("could not send %s to %s:%s: %s", request.method, peer.host, peer.port, exc)
            raise
        return txn

    async def send_request(self, request: SipRequest, peer: Peer) -> SipResponse:
        """Send a non-INVITE request; its final response (a synthetic 408/503 if none can come)."""
        try:
            txn = await self.start_client(request, peer)
        except (OSError, ConnectionError):
            return make_response(request, 503, "Service Unavailable")
        while (response := await txn.next_response()).status < 200:
            pass
        return response

    async def send_in_dialog(
        self,
        dialog: Dialog,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        extra: list[tuple[str, str]] | None = None,
    ) -> SipResponse:
        peer = dialog.destination()
        request = dialog.request(
            method,
            self.via(peer.transport),
            self.contact(peer.transport),
            body=body,
            content_type=content_type,
            extra=extra,
        )
        return await self.send_request(request, peer)

    def register_call(self, call: SipCall) -> None:
        self.calls[call.dialog.key] = call

    async def run_call(self, call: SipCall, handler: CallHandler) -> str:
        """Run an answered call (`run_call` hangs it up and closes its media), then forget its dialog."""
        log.info("call %s started (SIP Call-ID %s)", call.call_id, call.sip_call_id)
        try:
            await run_call(call, handler)
        finally:
            self.calls.pop(call.dialog.key, None)
        reason = call.hangup_reason or "normal"
        log.info("call %s ended: %s", call.call_id, reason)
        return reason

    # -- incoming messages
    def _on_message(self, message: SipMessage, peer: Peer) -> None:
        if isinstance(message, SipResponse):
            self._on_response(message)
            return
        try:
            key = server_key(message)
        except ValueError as exc:  # the parser checked the Via and CSeq; this is a last line of defence
            log.warning("cannot match %s to a transaction: %s", message.method, exc)
            return
        if message.method == "ACK":
            self._on_ack(message, key)
            return
        existing = self._server_txns.get(key)
        if existing is not None:
            existing.retransmission()
            return
        if len(self._server_txns) >= self.config.max_transactions:
            self._refuse_stateless(message, peer)
            return
        txn = ServerTransaction(message, peer, self.transport.send, self.timers)
        self._server_txns[key] = txn
        txn.on_terminated = self._forget_server
        self.spawn(self._handle(txn), f"sip-{message.method.lower()}")

    def _refuse_stateless(self, request: SipRequest, peer: Peer) -> None:
        """503 without a transaction: too many are live (a flood); nothing is kept for this one."""
        self.refused_over_transactions += 1
        self.admission.refusals.count("sip", "transactions")
        now = asyncio.get_running_loop().time()
        if now - self._cap_logged_at >= 10.0:  # a flood must not flood the log too
            self._cap_logged_at = now
            log.warning(
                "%d SIP transactions live: new requests get 503 (%d so far)",
                len(self._server_txns),
                self.refused_over_transactions,
            )
        response = make_response(request, 503, extra=[("Retry-After", str(RETRY_AFTER_S))])
        self.spawn(self._send_quietly(response.to_bytes(), response_destination(request, peer)), "sip-503")

    async def _send_quietly(self, data: bytes, peer: Peer) -> None:
        try:
            await self.transport.send(data, peer)
        except (OSError, ConnectionError) as exc:
            log.info("could not send to %s:%s: %s", peer.host, peer.port, exc)

    def _on_response(self, response: SipResponse) -> None:
        branch = parse_via(response.headers.get("Via") or "").branch or ""
        _, method = parse_cseq(response.headers.get("CSeq") or "")
        txn = self._client_txns.get((branch, method))
        if txn is None:
            log.debug("stray %d response to %s", response.status, method)
            return
        txn.response_received(response)

    def _on_ack(self, ack: SipRequest, key: tuple[str, str, str]) -> None:
        txn = self._server_txns.get(key)
        if txn is not None and txn.final_sent and not txn.last_response_is_2xx:
            txn.ack_received()
            return
        seq, _ = parse_cseq(ack.headers.get("CSeq") or "")
        dialog_key = incoming_key(ack)
        pending = self.awaiting_ack.pop((dialog_key, seq), None)
        if pending is not None:
            pending.ack_received()
        call = self.calls.get(dialog_key)
        if call is not None and ack.body:
            uas.late_answer(self, call, ack)
        elif pending is None:
            log.debug("ACK matches no transaction or dialog; dropped")

    async def _handle(self, txn: ServerTransaction) -> None:
        try:
            await self._dispatch(txn)
        except Exception:
            log.exception("failed to handle %s", txn.request.method)
            await txn.respond_with(500, "Server Internal Error")
        finally:
            if not txn.final_sent and not txn.is_invite:
                await txn.respond_with(500, "Server Internal Error")

    async def _dispatch(self, txn: ServerTransaction) -> None:
        request = txn.request
        method = request.method
        if method not in ALLOWED:
            status = 405 if method in KNOWN_METHODS else 501
            log.info("%s not supported: %d", method[:32], status)
            await txn.respond_with(status, extra=[ALLOW_HEADER])
            return
        # §8.2.2.3: a UAS honours Require and ignores Proxy-Require (RFC 4475 bext01)
        required = list(dict.fromkeys(request.headers.get_all("Require")))  # each tag once
        if required and method != "CANCEL":
            log.info("%s requires unsupported extensions %s: 420", method, required)
            await txn.respond_with(420, "Bad Extension", extra=[("Unsupported", ", ".join(required))])
            return
        if method == "CANCEL":
            await self._on_cancel(txn)
            return
        if parse_name_addr(request.headers.get("To") or "").tag is None:
            await self._out_of_dialog(txn)
            return
        call = self.calls.get(incoming_key(request))
        if call is None:
            log.info("%s for an unknown dialog: 481", method)
            await txn.respond_with(481, "Call/Transaction Does Not Exist")
            return
        call_id_var.set(call.call_id)
        # The NOTIFY closing a transfer may be overtaken by the BYE that follows it (two
        # transactions, UDP): it is still the transfer's verdict, so its older CSeq is let through.
        late_notify = method == "NOTIFY" and call.awaiting_notify
        if not call.dialog.accepts_remote_seq(request) and not late_notify:
            log.warning("%s with an out-of-order CSeq: 500", method)
            await txn.respond_with(500, "Server Internal Error", extra=[("Retry-After", "1")])
            return
        await self._in_dialog(txn, call)

    async def _out_of_dialog(self, txn: ServerTransaction) -> None:
        method = txn.request.method
        if method == "INVITE":
            await uas.answer_invite(self, txn)
        elif method == "OPTIONS":
            await self._on_options(txn)
        else:
            log.info("%s outside a dialog: 481", method)
            await txn.respond_with(481, "Call/Transaction Does Not Exist")

    async def _in_dialog(self, txn: ServerTransaction, call: SipCall) -> None:
        method = txn.request.method
        if method == "BYE":
            log.info("BYE from the far end")
            await txn.respond_with(200)
            call.bye_from_remote()
        elif method == "INVITE":
            await uas.reinvite(self, txn, call)
        elif method == "INFO":
            await self._on_info(txn, call)
        elif method == "NOTIFY":
            await txn.respond_with(200)
            call.notify_received(txn.request)
        else:  # OPTIONS inside a dialog: a keep-alive
            await txn.respond_with(200, extra=[ALLOW_HEADER])

    async def _on_options(self, txn: ServerTransaction) -> None:
        if not self.has_capacity:  # full, over the load threshold or draining
            await txn.respond_with(503, extra=[("Retry-After", str(self.capacity.retry_after_s))])
            return
        extra = [ALLOW_HEADER, ("Accept", "application/sdp"), ("Contact", self.contact(txn.peer.transport))]
        await txn.respond_with(200, extra=extra)

    async def _on_info(self, txn: ServerTransaction, call: SipCall) -> None:
        content_type = txn.request.headers.get("Content-Type")
        if not txn.request.body or content_type is None:
            await txn.respond_with(200)  # an empty INFO is a keep-alive
            return
        try:
            dtmf = parse_dtmf_info(content_type, txn.request.body)
        except ValueError as exc:
            log.warning("INFO refused: %s", exc)
            media_type = content_type.split(";", 1)[0].strip().lower()
            if media_type.startswith("application/dtmf"):
                await txn.respond_with(400, "Bad DTMF")
            else:
                await txn.respond_with(415, extra=[("Accept", "application/dtmf-relay, application/dtmf")])
            return
        await txn.respond_with(200)
        log.info("DTMF %s by SIP INFO", dtmf.digit)
        call.inject_dtmf(dtmf)

    async def _on_cancel(self, txn: ServerTransaction) -> None:
        invite_key = (*txn.key[:2], "INVITE")
        invite = self._server_txns.get(invite_key)
        if invite is None:
            log.info("CANCEL for no pending INVITE: 481")
            await txn.respond_with(481, "Call/Transaction Does Not Exist")
            return
        await txn.respond_with(200)
        if invite.final_sent:
            return  # too late: the call was answered (or refused) already
        log.info("INVITE cancelled by the caller")
        await invite.respond_with(487, "Request Terminated")

    def _forget_server(self, txn: ServerTransaction) -> None:
        if self._server_txns.get(txn.key) is txn:
            del self._server_txns[txn.key]

    def _forget_client(self, txn: ClientTransaction) -> None:
        if self._client_txns.get(txn.key) is txn:
            del self._client_txns[txn.key]
