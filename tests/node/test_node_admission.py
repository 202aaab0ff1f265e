"""Admission on every way in, over real loopback sockets: the app served by uvicorn, its SIP endpoint
and its AudioSocket server, one node budget for all. Over the load threshold each way in refuses
with its own words; two INVITEs racing for the last slot get one 200 and one 503; a draining node
refuses everything new while its call goes on."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import websockets
from node_harness import Dialog, Node, node_app, options

from server.ws_harness import LiveServer, tone
from telephony.asterisk_audiosocket import AsteriskAudioSocket
from telephony.sip.rawpeer import UdpPeer
from voxline.telephony.sip.message import SipResponse

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def node() -> Iterator[tuple[Node, LiveServer]]:
    built = node_app(capacity_calls=1, threshold=0.9)
    with LiveServer(built.app) as server:
        yield built, server


@pytest.fixture
async def peer() -> AsyncIterator[UdpPeer]:
    p = await UdpPeer().open()
    yield p
    p.close()


async def next_event(ws: Any, kind: str, within_s: float = 10.0) -> dict[str, Any]:
    while True:
        msg = await asyncio.wait_for(ws.recv(), within_s)
        if isinstance(msg, str) and (event := json.loads(msg))["type"] == kind:
            return dict(event)


async def start_call(ws: Any) -> None:
    await ws.send(json.dumps({"type": "start", "sample_rate": 16000, "format": "s16le"}))
    await next_event(ws, "ready")


async def echoes(ws: Any) -> bool:
    """The call is alive: 0.2 s of tone sent comes back as audio."""
    await ws.send(tone(0.2, 16000).to_bytes())
    while True:
        msg = await asyncio.wait_for(ws.recv(), 5.0)
        if isinstance(msg, bytes):
            return True


async def ws_refusal(url: str) -> tuple[str, int | None, str | None]:
    async with websockets.connect(url) as ws:
        error = await next_event(ws, "error")
        await ws.wait_closed()
        return str(error["message"]), ws.close_code, ws.close_reason


async def sip_answer(peer: UdpPeer, message: bytes, port: int) -> SipResponse:
    peer.send(message, port)
    return await peer.final()


async def test_over_the_threshold_every_way_in_refuses_with_a_reason(
    node: tuple[Node, LiveServer], peer: UdpPeer, caplog: pytest.LogCaptureFixture
) -> None:
    built, server = node
    caplog.set_level(logging.WARNING)
    sip, audiosocket = built.ports()["sip"], built.ports()["audiosocket"]
    assert (await sip_answer(peer, options(sip, peer.port), sip)).status == 200
    async with websockets.connect(f"{server.ws}/ws/call") as first:  # the node's one call
        await start_call(first)
        assert await echoes(first)
        busy = "the node is busy (load 1.00, threshold 0.90); try again later"

        message, code, reason = await ws_refusal(f"{server.ws}/ws/call")
        assert (message, code, reason) == (busy, 1013, "over load threshold")

        probe = await sip_answer(peer, options(sip, peer.port), sip)
        assert (probe.status, probe.headers.get("Retry-After")) == (503, "5")
        invite = await sip_answer(peer, Dialog(sip, peer.port).invite(), sip)
        assert (invite.status, invite.headers.get("Retry-After")) == (503, "5")

        refused = AsteriskAudioSocket(audiosocket)
        await refused.connect()
        assert await refused.wait_ended(3.0)
        assert refused.kinds_received == [0x00]  # a hangup frame; the reason is in the log
        await refused.close()
        assert "AudioSocket connection from ('127.0.0.1', " in caplog.text and busy in caplog.text

        async with httpx.AsyncClient(base_url=server.http) as http:
            health = (await http.get("/health")).json()
            metrics = (await http.get("/metrics")).text
        load = health["load"]
        assert (load["load"], load["calls"], load["reserved"], load["accepting"]) == (1.0, 1, 0, False)
        assert load["refused"] == {"capacity": 0, "load": 3, "draining": 0}
        assert health["capacity"]["refused"] == {"websocket": 1, "sip": 1, "audiosocket": 1}
        expected = [
            "voxline_node_load 1", "voxline_node_load_threshold 0.9", "voxline_node_capacity_calls 1",
            "voxline_node_calls 1", "voxline_node_calls_reserved 0", "voxline_node_accepting 0",
            'voxline_node_refused_total{reason="load"} 3', "voxline_node_draining 0",
        ]  # fmt: skip
        assert set(expected) <= set(metrics.splitlines())
        assert await echoes(first)  # the call in progress never noticed
    for _ in range(100):  # its slot is freed as the call ends
        if built.state.capacity.active == 0:
            break
        await asyncio.sleep(0.05)
    assert (await sip_answer(peer, options(sip, peer.port), sip)).status == 200


async def test_two_invites_racing_for_the_last_slot_get_one_200_and_one_503(
    node: tuple[Node, LiveServer],
) -> None:
    """The capacity race: both INVITEs arrive before either call has started (the first one's
    200 OK waits for its ACK); the first holds a reserved slot, so the second is refused."""
    built, _ = node
    sip = built.ports()["sip"]
    assert built.telephony.sip is not None
    built.telephony.sip.answer_delay_s = 0.3  # a slow answer widens the window
    one, two = await UdpPeer().open(), await UdpPeer().open()
    try:
        first, second = Dialog(sip, one.port), Dialog(sip, two.port)
        one.send(first.invite(), sip)
        two.send(second.invite(), sip)
        answers = await asyncio.gather(one.final(5.0), two.final(5.0))
        assert sorted(a.status for a in answers) == [200, 503]
        winner, peer, dialog = (
            (answers[0], one, first) if answers[0].status == 200 else (answers[1], two, second)
        )
        loser = answers[1] if winner is answers[0] else answers[0]
        assert loser.headers.get("Retry-After") == "5"
        load = built.state.capacity.describe_load()
        assert (load["reserved"], load["calls"]) == (1, 0)  # answered, not ACKed: reserved only
        to = winner.headers.get("To") or ""
        dialog.to_tag = to.split("tag=", 1)[1].split(";")[0]
        peer.send(dialog.request("ACK", 1), sip)
        for _ in range(100):
            load = built.state.capacity.describe_load()
            if load["calls"] == 1:
                break
            await asyncio.sleep(0.02)
        assert (load["reserved"], load["calls"]) == (0, 1)  # the call started: its slot now
        peer.send(dialog.request("BYE", 2), sip)
        assert (await peer.final()).status == 200
        for _ in range(100):
            if built.state.capacity.active == 0:
                break
            await asyncio.sleep(0.02)
        assert built.state.capacity.active == 0
    finally:
        one.close()
        two.close()


async def test_a_draining_node_refuses_every_new_call_and_keeps_the_one_in_progress(
    peer: UdpPeer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    built = node_app(capacity_calls=4)
    with LiveServer(built.app) as server:
        sip, audiosocket = built.ports()["sip"], built.ports()["audiosocket"]
        async with websockets.connect(f"{server.ws}/ws/call") as call:
            await start_call(call)
            drain = built.state.drain
            loop = server._server.servers[0].get_loop()  # the server's loop, as the signal handler uses
            loop.call_soon_threadsafe(drain.begin)
            for _ in range(100):
                if drain.draining:
                    break
                await asyncio.sleep(0.02)
            draining = "the node is draining (shutting down); call another node"
            assert await ws_refusal(f"{server.ws}/ws/call") == (draining, 1013, "draining")
            probe = await sip_answer(peer, options(sip, peer.port), sip)
            assert (probe.status, probe.headers.get("Retry-After")) == (503, "60")
            invite = await sip_answer(peer, Dialog(sip, peer.port).invite(), sip)
            assert (invite.status, invite.headers.get("Retry-After")) == (503, "60")
            refused = AsteriskAudioSocket(audiosocket)
            await refused.connect()
            assert await refused.wait_ended(3.0)
            await refused.close()
            assert draining in caplog.text
            async with httpx.AsyncClient(base_url=server.http) as http:
                health = await http.get("/health")
            assert health.status_code == 503 and health.json()["status"] == "draining"
            assert health.json()["drain"]["calls_left"] == 1
            assert await echoes(call)  # the call in progress goes on
