"""A blind transfer the way Asterisk ends it: after the 202 to our REFER, a NOTIFY with the sipfrag
and a BYE for our leg, in either order over UDP (issue 11: the BYE first made the call a caller
hang-up). A NOTIFY 400 (Asterisk's answer when our channel is not bridged) keeps the call."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from voxline.telephony.sip.endpoint import SipEndpoint
from voxline.telephony.sip.message import SipRequest, SipResponse, make_response
from voxline.telephony.sip.transaction import Timers
from voxline.transports.base import CallIO

from .conftest import sip_config
from .rawpeer import UdpPeer, request, sdp
from .test_dialog_raw import in_dialog

pytestmark = pytest.mark.timeout(30)


@dataclass
class Transferring:
    """A call handler that transfers at once and remembers what came of it."""

    results: list[bool] = field(default_factory=list)
    reasons: list[str | None] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, call: CallIO) -> None:
        self.results.append(await call.transfer("200"))
        self.reasons.append(call.hangup_reason)
        self.done.set()


@dataclass
class Dialog:
    peer: UdpPeer
    port: int
    invite: bytes
    ok: SipResponse
    refer: SipRequest


@pytest.fixture
async def transferring() -> AsyncIterator[tuple[SipEndpoint, Transferring]]:
    handler = Transferring()
    endpoint = SipEndpoint(sip_config(), handler, timers=Timers(t1=0.1, t2=0.4, t4=0.5))
    await endpoint.start()
    try:
        yield endpoint, handler
    finally:
        await endpoint.stop()


async def call_until_refer(endpoint: SipEndpoint) -> Dialog:
    """Play Asterisk calling the agent: INVITE, ACK, then take the agent's REFER and accept it."""
    peer = await UdpPeer().open()
    port = endpoint.local_port("udp")
    ctype = "Content-Type: application/sdp\r\n"
    invite = request("INVITE", port, local_port=peer.port, body=sdp(40000), extra=ctype)
    peer.send(invite, port)
    ok = await peer.final()
    assert ok.status == 200
    peer.send(in_dialog("ACK", port, peer, invite, ok, 1), port)
    while True:
        message = await peer.receive()
        if isinstance(message, SipRequest) and message.method == "REFER":
            break
    assert "<sip:200@" in (message.headers.get("Refer-To") or "")
    peer.send(make_response(message, 202, "Accepted").to_bytes(), port)
    return Dialog(peer, port, invite, ok, message)


def notify(d: Dialog, cseq: int, status_line: str) -> bytes:
    extra = (
        "Event: refer\r\nSubscription-State: terminated;reason=noresource\r\n"
        "Content-Type: message/sipfrag;version=2.0\r\n"
    )
    return in_dialog("NOTIFY", d.port, d.peer, d.invite, d.ok, cseq, body=status_line, extra=extra)


async def responses(peer: UdpPeer, count: int) -> dict[str, int]:
    """The final statuses of our next `count` transactions, by CSeq method; fails on a BYE from us."""
    got: dict[str, int] = {}
    while len(got) < count:
        message = await peer.receive()
        if isinstance(message, SipRequest):
            assert message.method != "BYE", "the agent sent BYE on a leg the peer had already ended"
            continue
        if message.status >= 200:
            got[(message.headers.get("CSeq") or "").split()[-1]] = message.status
    return got


async def test_notify_200_then_bye_is_a_transfer(transferring: tuple[SipEndpoint, Transferring]) -> None:
    endpoint, handler = transferring
    d = await call_until_refer(endpoint)
    try:
        d.peer.send(notify(d, 2, "SIP/2.0 200 OK\r\n"), d.port)
        d.peer.send(in_dialog("BYE", d.port, d.peer, d.invite, d.ok, 3), d.port)
        await asyncio.wait_for(handler.done.wait(), 5)
        assert handler.results == [True] and handler.reasons == ["transferred"]
    finally:
        d.peer.close()


async def test_bye_overtaking_the_notify_200_is_still_a_transfer(
    transferring: tuple[SipEndpoint, Transferring],
) -> None:
    endpoint, handler = transferring
    d = await call_until_refer(endpoint)
    try:
        d.peer.send(in_dialog("BYE", d.port, d.peer, d.invite, d.ok, 3), d.port)
        await asyncio.sleep(0.2)
        d.peer.send(notify(d, 2, "SIP/2.0 200 OK\r\n"), d.port)  # the older CSeq arrives second
        assert await responses(d.peer, 2) == {"BYE": 200, "NOTIFY": 200}
        await asyncio.wait_for(handler.done.wait(), 5)
        assert handler.results == [True] and handler.reasons == ["transferred"]
    finally:
        d.peer.close()


async def test_bye_with_no_notify_after_an_accepted_refer_is_a_transfer(
    transferring: tuple[SipEndpoint, Transferring],
) -> None:
    endpoint, handler = transferring
    d = await call_until_refer(endpoint)
    try:
        d.peer.send(in_dialog("BYE", d.port, d.peer, d.invite, d.ok, 3), d.port)
        await asyncio.wait_for(handler.done.wait(), 4)  # the grace, not the 10 s NOTIFY timeout
        assert handler.results == [True] and handler.reasons == ["transferred"]
    finally:
        d.peer.close()


async def test_notify_400_unbridged_keeps_the_call_and_says_why(
    transferring: tuple[SipEndpoint, Transferring], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="voxline.telephony.sip")
    endpoint, handler = transferring
    d = await call_until_refer(endpoint)
    try:
        d.peer.send(notify(d, 2, "SIP/2.0 400 Bad Request\r\n"), d.port)
        await asyncio.wait_for(handler.done.wait(), 5)
        assert handler.results == [False]
        assert "not bridged" in caplog.text and "Dial(PJSIP/" in caplog.text
    finally:
        d.peer.close()
