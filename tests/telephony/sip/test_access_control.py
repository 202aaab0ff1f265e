"""SIP access control on real loopback sockets: the source allow-list, digest authentication of
INVITEs, the shared call budget (503 + Retry-After), the live-transaction cap, idle TCP, names in
SDP and in-dialog targets (never resolved on the event loop), and a spoofed INVITE (no media)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator

import pytest

from voxline.agent.config import SipConfig, SipInboundAuthConfig
from voxline.capacity import CallCapacity
from voxline.telephony.echo import EchoAgent
from voxline.telephony.sip.digest import authorization, parse_challenge
from voxline.telephony.sip.endpoint import SipEndpoint
from voxline.telephony.sip.message import SipResponse, parse_message
from voxline.telephony.sip.transaction import Timers
from voxline.transports.base import CallIO

from .conftest import sip_config
from .rawpeer import TcpPeer, UdpPeer, request, sdp
from .test_dialog_raw import in_dialog


class LoopGaps:
    """The event loop's longest pause while the block runs: a call that blocks it (a name resolved on
    the loop) shows as a gap as long as the call."""

    def __init__(self) -> None:
        self.gaps: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LoopGaps:
        self._task = asyncio.create_task(self._tick())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _tick(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.005)
            now = time.monotonic()
            self.gaps.append(now - last)
            last = now

    @property
    def longest(self) -> float:
        return max(self.gaps, default=0.0)


pytestmark = pytest.mark.timeout(60)

SDP_TYPE = "Content-Type: application/sdp\r\n"
OUTSIDER = "127.0.0.2"


async def started(config: SipConfig, **kwargs: object) -> SipEndpoint:
    endpoint = SipEndpoint(config, EchoAgent(), timers=Timers(t1=0.05, t2=0.2, t4=0.2), **kwargs)  # type: ignore[arg-type]
    await endpoint.start()
    return endpoint


@pytest.fixture
async def peer() -> AsyncIterator[UdpPeer]:
    p = await UdpPeer().open()
    yield p
    p.close()


async def outsider_peer() -> UdpPeer:
    p = UdpPeer()
    loop = asyncio.get_running_loop()
    from .rawpeer import _Collector

    p.transport, _ = await loop.create_datagram_endpoint(
        lambda: _Collector(p.queue), local_addr=(OUTSIDER, 0)
    )
    p.port = int(p.transport.get_extra_info("sockname")[1])
    return p


def invite(
    port: int, peer: UdpPeer, *, media_port: int = 40000, extra: str = "", host: str = "127.0.0.1"
) -> bytes:
    body = sdp(media_port).replace("c=IN IP4 127.0.0.1", f"c=IN IP4 {host}")
    return request("INVITE", port, local_port=peer.port, body=body, extra=SDP_TYPE + extra)


async def test_a_source_outside_the_allow_list_gets_no_answer_at_all(peer: UdpPeer) -> None:
    endpoint = await started(sip_config(allow_from=["127.0.0.1/32"]))
    outsider = await outsider_peer()
    try:
        port = endpoint.local_port("udp")
        outsider.send(request("OPTIONS", port, local_port=outsider.port), port)
        outsider.send(invite(port, outsider), port)
        assert await outsider.nothing(0.5)  # not even a 403: a scanner learns nothing
        tcp_reader, tcp_writer = await asyncio.open_connection(
            "127.0.0.1", endpoint.local_port("tcp"), local_addr=(OUTSIDER, 0)
        )
        tcp_writer.write(request("OPTIONS", port, transport="TCP"))
        try:
            answer = await asyncio.wait_for(tcp_reader.read(), 2.0)
        except ConnectionResetError:
            answer = b""
        assert answer == b""  # closed unanswered
        tcp_writer.close()
        peer.send(request("OPTIONS", port, local_port=peer.port), port)  # the listed source is served
        assert (await peer.final()).status == 200
        assert endpoint.admission.allow_list.refused >= 3 and endpoint.transport.dropped >= 3
        assert endpoint.calls == {}
    finally:
        outsider.close()
        await endpoint.stop()


def test_allow_from_rejects_what_is_not_a_network() -> None:
    with pytest.raises(ValueError, match="not an IP network"):
        SipConfig(allow_from=["pbx.example.com"])


async def test_digest_challenge_then_answer_then_replay(peer: UdpPeer) -> None:
    auth = SipInboundAuthConfig(username="pbx", password=secrets.token_urlsafe(16))
    endpoint = await started(sip_config(auth=auth))
    port = endpoint.local_port("udp")
    try:
        first = invite(port, peer)
        peer.send(first, port)
        challenge_response = await peer.final()
        assert challenge_response.status == 401
        challenge = parse_challenge(challenge_response.headers.get("WWW-Authenticate") or "")
        uri = f"sip:agent@127.0.0.1:{port}"

        def credential(password: str) -> str:
            value = authorization(challenge, method="INVITE", uri=uri, username="pbx", password=password)
            return f"Authorization: {value}\r\n"

        peer.send(invite(port, peer, extra=credential("wrong-password")), port)
        assert (await peer.final()).status == 401
        good = credential(auth.password)
        peer.send(invite(port, peer, extra=good), port)
        ok = await peer.final()
        assert ok.status == 200 and ok.body
        peer.send(invite(port, peer, extra=good), port)  # the same credential on a new INVITE: a replay
        assert (await peer.final()).status == 401
        assert endpoint.admission.authenticator is not None
        assert endpoint.admission.authenticator.failures == 2
    finally:
        await endpoint.stop()


async def test_over_the_shared_budget_invite_and_options_get_503_with_retry_after(peer: UdpPeer) -> None:
    budget = CallCapacity(1)
    endpoint = await started(sip_config(), capacity=budget)
    port = endpoint.local_port("udp")
    try:
        held = budget.try_acquire("websocket")  # a web call holds the only slot
        assert held is not None
        peer.send(request("OPTIONS", port, local_port=peer.port), port)
        options = await peer.final()
        assert options.status == 503 and options.headers.get("Retry-After")
        peer.send(invite(port, peer), port)
        refused = await peer.final()
        assert refused.status == 503 and refused.headers.get("Retry-After") == "5"
        assert budget.refused["sip"] == 1
        held.release()
        peer.send(invite(port, peer), port)
        assert (await peer.final()).status == 200
        assert budget.describe()["active"] == {"sip": 1}  # the SIP call counts against the one budget
    finally:
        await endpoint.stop()
    assert budget.active == 0  # stopping released it


async def test_a_cap_on_live_transactions_answers_503_statelessly(peer: UdpPeer) -> None:
    endpoint = await started(sip_config(max_transactions=1))
    endpoint.answer_delay_s = 1.0  # the INVITE's transaction stays live meanwhile
    port = endpoint.local_port("udp")
    try:
        peer.send(invite(port, peer), port)
        await asyncio.sleep(0.2)
        peer.send(request("OPTIONS", port, local_port=peer.port), port)
        statuses = []
        while 503 not in statuses:
            message = await peer.receive()
            assert isinstance(message, SipResponse)
            statuses.append(message.status)
        assert 200 not in statuses
    finally:
        await endpoint.stop()


async def test_an_idle_tcp_connection_is_closed() -> None:
    endpoint = await started(sip_config(tcp_idle_timeout_s=0.3))
    try:
        tcp = await TcpPeer.connect(endpoint.local_port("tcp"))
        started_at = time.monotonic()
        assert await tcp.closed(3.0)
        assert 0.25 < time.monotonic() - started_at < 2.0
    finally:
        await endpoint.stop()


async def test_a_host_name_in_sdp_is_refused_with_488_without_stalling_the_loop(peer: UdpPeer) -> None:
    endpoint = await started(sip_config())
    port = endpoint.local_port("udp")
    loop = LoopGaps()
    try:
        async with loop:
            for i in range(10):
                peer.send(invite(port, peer, host=f"slow-{i}.voxline-test.invalid"), port)
                refused = await peer.final()
                assert refused.status == 488
        print(f"\n10 INVITEs with a host name in c=: 488 each; loop gap max {loop.longest * 1000:.1f} ms")
        assert loop.longest < 0.25  # a resolution on the loop would stall it for the resolver's timeout
        assert endpoint.calls == {}
    finally:
        await endpoint.stop()


async def test_a_name_to_send_to_is_resolved_off_the_loop_with_a_timeout() -> None:
    endpoint = await started(sip_config(dns_timeout_s=0.5))
    try:
        async with LoopGaps() as loop:
            began = time.monotonic()
            with pytest.raises(OSError):
                await endpoint.transport.resolve("in-dialog-target.voxline-test.invalid", 5060)
            elapsed = time.monotonic() - began
        assert elapsed < 0.5 + 0.3
        assert loop.longest < 0.25
        assert await endpoint.transport.resolve("127.0.0.1", 5060) == "127.0.0.1"
    finally:
        await endpoint.stop()


async def test_a_spoofed_invite_never_produces_media(peer: UdpPeer) -> None:
    """An INVITE from a forged source: its 200 OK goes to that source, nobody ACKs it, so the
    address its SDP names (the victim) receives no RTP at all, and the call is torn down."""
    victim = await UdpPeer().open()
    agent = EchoAgent()
    endpoint = SipEndpoint(sip_config(), agent, timers=Timers(t1=0.05, t2=0.2, t4=0.2))
    await endpoint.start()
    port = endpoint.local_port("udp")
    try:
        peer.send(invite(port, peer, media_port=victim.port), port)
        ok = await peer.final()
        assert ok.status == 200  # answered, but never ACKed (a forged source never sees this)
        assert await victim.nothing(64 * 0.05 + 0.5)  # Timer H runs out: not one packet to the victim
        assert agent.calls_started == 0
        for _ in range(160):  # our BYE to the Contact goes unanswered too: its transaction times out
            if not endpoint.calls:
                break
            await asyncio.sleep(0.05)
        assert endpoint.calls == {} and endpoint.capacity.active == 0
        retransmitted = 0
        while not peer.queue.empty():
            data, _ = peer.queue.get_nowait()
            message = parse_message(data)
            retransmitted += isinstance(message, SipResponse) and message.status == 200
        assert retransmitted >= 3  # the 200s went to the transaction's source, not elsewhere
    finally:
        victim.close()
        await endpoint.stop()


async def test_a_retransmission_from_another_source_is_answered_at_the_first_source(peer: UdpPeer) -> None:
    """RFC 3261 §17.2.3/§18.2.2: a copy of a request matches its transaction by branch, and the
    transaction answers where the request came from: a forger replaying it is not answered."""
    endpoint = await started(sip_config(requests_per_source_per_s=1000))
    outsider = await outsider_peer()
    port = endpoint.local_port("udp")
    try:
        options = request("OPTIONS", port, local_port=peer.port)
        peer.send(options, port)
        assert (await peer.final()).status == 200
        outsider.send(options, port)  # the same request (same branch) from somewhere else
        assert await outsider.nothing(0.4)
        again = await peer.final()
        assert again.status == 200  # the transaction's answer, repeated to its own source
    finally:
        outsider.close()
        await endpoint.stop()


async def test_a_host_name_in_contact_is_resolved_off_the_loop_when_we_send_bye(peer: UdpPeer) -> None:
    """The caller's Contact names a host that never resolves: our BYE to it waits for the lookup in a
    thread (bounded by dns_timeout_s), and the event loop keeps running meanwhile."""
    ended: list[str] = []

    async def hang_up_at_once(call: CallIO) -> None:
        await call.hangup("agent_ended")
        ended.append(call.call_id)

    endpoint = SipEndpoint(
        sip_config(dns_timeout_s=1.0), hang_up_at_once, timers=Timers(t1=0.05, t2=0.2, t4=0.2)
    )
    await endpoint.start()
    port = endpoint.local_port("udp")
    loop = LoopGaps()
    try:
        async with loop:
            invite = request("INVITE", port, local_port=peer.port, body=sdp(40000), extra=SDP_TYPE).replace(
                f"Contact: <sip:tester@127.0.0.1:{peer.port}>".encode(),
                b"Contact: <sip:tester@contact.voxline-test.invalid>",
            )
            peer.send(invite, port)
            ok = await peer.final()
            assert ok.status == 200
            peer.send(in_dialog("ACK", port, peer, invite, ok, 1), port)
            for _ in range(100):
                if not endpoint.calls:
                    break
                await asyncio.sleep(0.05)
            assert ended and endpoint.calls == {}  # the BYE could not be sent; the call still ended
        assert loop.longest < 0.25
    finally:
        await endpoint.stop()
