"""Every way SIP refuses traffic is counted for /metrics by reason: allow-list, per-source rate,
digest auth, call capacity and the live-transaction cap (real loopback sockets)."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from voxline.agent.config import SipInboundAuthConfig
from voxline.capacity import CallCapacity
from voxline.server.metrics import TelephonyRefusals, security_lines
from voxline.telephony.sip.message import SipResponse

from .conftest import sip_config
from .rawpeer import UdpPeer, request
from .test_access_control import invite, outsider_peer, started

pytestmark = pytest.mark.timeout(60)

BAD_CREDENTIAL = (
    'Authorization: Digest username="pbx", realm="voxline", nonce="0.bad", uri="sip:agent@127.0.0.1", '
    'response="00000000000000000000000000000000"\r\n'
)


async def test_each_sip_refusal_is_counted_by_reason() -> None:
    refusals = TelephonyRefusals()
    peer = await UdpPeer().open()
    outsider = await outsider_peer()
    budget = CallCapacity(1)
    auth = SipInboundAuthConfig(username="pbx", password=secrets.token_urlsafe(16))
    endpoints = [
        await started(sip_config(allow_from=["127.0.0.1/32"]), refusals=refusals),
        await started(sip_config(requests_per_source_per_s=1.0), refusals=refusals),
        await started(sip_config(auth=auth), refusals=refusals),
        await started(sip_config(), capacity=budget, refusals=refusals),
        await started(sip_config(max_transactions=1), refusals=refusals),
    ]
    listed, rated, authed, full, capped = endpoints
    try:
        port = listed.local_port("udp")
        outsider.send(request("OPTIONS", port, local_port=outsider.port), port)
        assert await outsider.nothing(0.3)

        port = rated.local_port("udp")
        for _ in range(5):  # burst 2
            peer.send(request("OPTIONS", port, local_port=peer.port), port)
        answered = 0
        while not await peer.nothing(0.3):  # what was let through is answered; drain it
            answered += 1
        assert answered <= 3

        port = authed.local_port("udp")
        peer.send(invite(port, peer), port)  # the first challenge of a call: not a refusal
        assert (await peer.final()).status == 401
        peer.send(invite(port, peer, extra=BAD_CREDENTIAL), port)
        assert (await peer.final()).status == 401

        held = budget.try_acquire("websocket")
        port = full.local_port("udp")
        peer.send(invite(port, peer), port)
        assert (await peer.final()).status == 503
        assert held is not None
        held.release()

        capped.answer_delay_s = 1.0  # the INVITE's transaction stays live meanwhile
        port = capped.local_port("udp")
        peer.send(invite(port, peer), port)
        await asyncio.sleep(0.2)
        peer.send(request("OPTIONS", port, local_port=peer.port), port)
        while True:
            message = await peer.receive()
            if isinstance(message, SipResponse) and message.status == 503:
                break
    finally:
        peer.close()
        outsider.close()
        for endpoint in endpoints:
            await endpoint.stop()

    counts = refusals.counts()
    assert counts[("sip", "allow_list")] == 1
    assert counts[("sip", "rate")] == 5 - answered
    assert counts[("sip", "auth")] == 1
    assert counts[("sip", "capacity")] == 1
    assert counts[("sip", "transactions")] == 1
    text = security_lines(records={}, capacity=budget.describe(), refused={}, purged=0, telephony=refusals)
    assert 'voxline_telephony_refused_total{transport="sip",reason="allow_list"} 1' in text
    assert 'voxline_telephony_refused_total{transport="sip",reason="auth"} 1' in text
    assert 'voxline_telephony_refused_total{transport="sip",reason="transactions"} 1' in text
