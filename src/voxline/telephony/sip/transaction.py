"""SIP transactions (RFC 3261 §17): retransmission and absorption, so the layers above see each
request once and each response once. Timers run on the event loop's clock (signalling, not media).

Server side: a retransmitted request is answered with the last response; an INVITE's final response
is retransmitted (Timer G, T1 doubling up to T2) until the ACK arrives or Timer H (64*T1) fires.
The UAS core must do the same for 2xx (§13.3.1.4) even though that ACK is a new transaction: the
endpoint matches that ACK by dialog and calls `ack_received()` here, so both cases share one timer.

Client side: Timer A/E retransmit over UDP, Timer B/F give up with a synthetic 408; a non-2xx final
to an INVITE is ACKed here (§17.1.1.3), a 2xx is left to the dialog (its ACK is end-to-end).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from voxline.telephony.sip.message import (
    Headers,
    SipRequest,
    SipResponse,
    make_response,
    parse_cseq,
    parse_name_addr,
    parse_via,
)
from voxline.telephony.sip.transport import Peer, response_destination

log = logging.getLogger(__name__)

MAGIC_COOKIE = "z9hG4bK"
Sender = Callable[[bytes, Peer], Awaitable[None]]


@dataclass(frozen=True)
class Timers:
    """RFC 3261 timer base values; tests shrink T1 to exercise timeouts quickly."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    @property
    def timeout(self) -> float:
        """Timers B, F, H and J: 64*T1."""
        return 64 * self.t1


def server_key(request: SipRequest) -> tuple[str, str, str]:
    """The §17.2.3 matching key; an ACK (to a non-2xx) and a CANCEL find their INVITE with method INVITE."""
    via = parse_via(request.headers.get("Via") or "")
    method = "INVITE" if request.method == "ACK" else request.method
    sent_by = f"{via.host}:{via.port or ''}"
    branch = via.branch
    if branch and branch.startswith(MAGIC_COOKIE) and len(branch) > len(MAGIC_COOKIE):
        return branch, sent_by, method
    # An RFC 2543 peer, or the cookie with no identifier after it (RFC 4475 badbranch): no usable
    # branch, so fall back on the request's own identity.
    cseq_number, _ = parse_cseq(request.headers.get("CSeq") or "")
    from_tag = parse_name_addr(request.headers.get("From") or "").tag or ""
    return f"{request.headers.get('Call-ID')}|{cseq_number}|{from_tag}", sent_by, method


def client_key(branch: str, method: str) -> tuple[str, str]:
    return branch, "INVITE" if method == "ACK" else method


class ServerTransaction:
    """One incoming request and the responses we sent to it."""

    def __init__(self, request: SipRequest, peer: Peer, send: Sender, timers: Timers) -> None:
        self.request = request
        self.peer = peer
        self.key = server_key(request)
        self.is_invite = request.method == "INVITE"
        self._send = send
        self._timers = timers
        self.last_response: SipResponse | None = None
        self._acked = asyncio.Event()
        self._ack_timed_out = False
        self._retransmit_task: asyncio.Task[None] | None = None
        self.on_terminated: Callable[[ServerTransaction], None] | None = None

    @property
    def final_sent(self) -> bool:
        return self.last_response is not None and self.last_response.status >= 200

    def response(self, status: int, reason: str | None = None, **kwargs: object) -> SipResponse:
        return make_response(self.request, status, reason, **kwargs)  # type: ignore[arg-type]

    async def respond(self, response: SipResponse) -> None:
        if self.final_sent:
            log.debug("%s already answered; not sending %d", self.request.method, response.status)
            return
        self.last_response = response
        await self._transmit()
        if response.status < 200:
            return
        if self.is_invite:
            self._retransmit_task = asyncio.get_running_loop().create_task(
                self._retransmit_until_ack(), name="sip-invite-final"
            )
        else:
            self._terminate_after(self._timers.timeout if self.peer.transport == "udp" else 0.0)

    async def respond_with(self, status: int, reason: str | None = None, **kwargs: object) -> None:
        await self.respond(self.response(status, reason, **kwargs))

    def retransmission(self) -> None:
        """The peer sent the request again: it did not hear us, so repeat the last response."""
        if self.last_response is not None:
            asyncio.get_running_loop().create_task(self._transmit(), name="sip-resend")

    def ack_received(self) -> None:
        self._acked.set()

    async def wait_ack(self) -> bool:
        """After a final response to an INVITE: True once ACKed, False when Timer H gave up."""
        await self._acked.wait()
        return not self._ack_timed_out

    def close(self) -> None:
        if self._retransmit_task is not None:
            self._retransmit_task.cancel()
        self._acked.set()

    async def _transmit(self) -> None:
        assert self.last_response is not None
        try:
            await self._send(self.last_response.to_bytes(), response_destination(self.request, self.peer))
        except (OSError, ConnectionError, ValueError) as exc:
            log.info("could not send %d to %s: %s", self.last_response.status, self.peer.host, exc)

    async def _retransmit_until_ack(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timers.timeout
        interval = self._timers.t1
        while not self._acked.is_set() and loop.time() < deadline:
            with contextlib.suppress(TimeoutError):
                # Timer G: only unreliable transports need repeats, but the 2xx is repeated on any
                # transport because a UDP hop may lie beyond the TCP one (§13.3.1.4).
                await asyncio.wait_for(self._acked.wait(), interval)
                break
            if self.peer.transport == "udp" or self.last_response_is_2xx:
                await self._transmit()
            interval = min(interval * 2, self._timers.t2)
        if not self._acked.is_set():
            log.warning("no ACK for %d to INVITE within %.0f s", self._status, self._timers.timeout)
            self._ack_timed_out = True
            self._acked.set()
        # Timer I: keep absorbing ACK retransmissions for a while before forgetting the transaction.
        self._terminate_after(self._timers.t4 if self.peer.transport == "udp" else 0.0)

    @property
    def last_response_is_2xx(self) -> bool:
        return self.last_response is not None and 200 <= self.last_response.status < 300

    @property
    def _status(self) -> int:
        return self.last_response.status if self.last_response is not None else 0

    def _terminate_after(self, seconds: float) -> None:
        def terminate() -> None:
            if self.on_terminated is not None:
                self.on_terminated(self)

        asyncio.get_running_loop().call_later(seconds, terminate)


def _synthetic_timeout(request: SipRequest) -> SipResponse:
    return make_response(request, 408, "Request Timeout")


class ClientTransaction:
    """One request we sent: retransmits it over UDP, yields its responses in order."""

    def __init__(self, request: SipRequest, peer: Peer, send: Sender, timers: Timers) -> None:
        self.request = request
        self.peer = peer
        self.is_invite = request.method == "INVITE"
        self.branch = parse_via(request.headers.get("Via") or "").branch or ""
        self.key = client_key(self.branch, request.method)
        self._send = send
        self._timers = timers
        self._responses: asyncio.Queue[SipResponse] = asyncio.Queue()
        self._provisional = asyncio.Event()
        self._final: SipResponse | None = None
        self._ack_bytes: bytes | None = None
        self._task: asyncio.Task[None] | None = None
        self.on_terminated: Callable[[ClientTransaction], None] | None = None

    @property
    def final(self) -> SipResponse | None:
        return self._final

    async def start(self) -> None:
        """Send the request (raises OSError/ConnectionError if it cannot leave) and arm the timers."""
        await self._send(self.request.to_bytes(), self.peer)
        self._task = asyncio.get_running_loop().create_task(self._timers_run(), name="sip-client-txn")

    async def next_response(self) -> SipResponse:
        return await self._responses.get()

    def response_received(self, response: SipResponse) -> None:
        if self._final is not None:
            # A retransmitted final: our ACK to a non-2xx was lost, so send it again.
            if self._ack_bytes is not None:
                asyncio.get_running_loop().create_task(self._send_quietly(self._ack_bytes))
            elif response.status >= 200:
                self._responses.put_nowait(response)  # a 2xx again: the dialog re-ACKs
            return
        if response.status < 200:
            self._provisional.set()
            self._responses.put_nowait(response)
            return
        self._final = response
        if self.is_invite and response.status >= 300:
            self._ack_bytes = self._ack_for(response).to_bytes()
            asyncio.get_running_loop().create_task(self._send_quietly(self._ack_bytes))
        self._responses.put_nowait(response)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _timers_run(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        interval = self._timers.t1
        reliable = self.peer.transport != "udp"
        while self._final is None:
            if loop.time() - start >= self._timers.timeout and not (
                self.is_invite and self._provisional.is_set()
            ):
                log.info("%s to %s:%s timed out", self.request.method, self.peer.host, self.peer.port)
                self._final = _synthetic_timeout(self.request)
                self._responses.put_nowait(self._final)
                break
            await asyncio.sleep(interval if not reliable else self._timers.t1)
            if self._final is not None:
                break
            if reliable or (self.is_invite and self._provisional.is_set()):
                continue  # Timer A stops on a provisional; TCP never retransmits
            await self._send_quietly(self.request.to_bytes())
            if self._provisional.is_set():
                interval = self._timers.t2  # Timer E in Proceeding
            else:
                interval = min(interval * 2, self._timers.t2) if not self.is_invite else interval * 2
        # Timer D/K: linger to absorb retransmitted finals, then forget.
        await asyncio.sleep(self._timers.timeout if self.is_invite else self._timers.t4)
        if self.on_terminated is not None:
            self.on_terminated(self)

    async def _send_quietly(self, data: bytes) -> None:
        try:
            await self._send(data, self.peer)
        except (OSError, ConnectionError) as exc:
            log.info("could not send to %s:%s: %s", self.peer.host, self.peer.port, exc)

    def _ack_for(self, response: SipResponse) -> SipRequest:
        """The ACK to a non-2xx final (§17.1.1.3): same branch and Request-URI, To from the response."""
        headers = Headers()
        headers.add("Via", self.request.headers.get_all("Via")[0])
        for route in self.request.headers.get_all("Route"):
            headers.add("Route", route)
        headers.add("Max-Forwards", "70")
        headers.add("From", self.request.headers.get("From") or "")
        headers.add("To", response.headers.get("To") or self.request.headers.get("To") or "")
        headers.add("Call-ID", self.request.headers.get("Call-ID") or "")
        number, _ = parse_cseq(self.request.headers.get("CSeq") or "")
        headers.add("CSeq", f"{number} ACK")
        return SipRequest("ACK", self.request.uri, headers)
