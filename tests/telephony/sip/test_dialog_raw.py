"""A whole dialog driven by hand over UDP: 2xx retransmission until ACK, re-INVITE hold, INFO, BYE."""

from __future__ import annotations

import asyncio

import pytest

from voxline.telephony.sip.message import SipResponse, parse_name_addr

from .conftest import Running
from .rawpeer import UdpPeer, request, sdp

pytestmark = pytest.mark.timeout(30)


def in_dialog(
    method: str, port: int, peer: UdpPeer, invite: bytes, ok: SipResponse, cseq: int, **kw: str
) -> bytes:
    """A request in the dialog `ok` set up, reusing the INVITE's From and Call-ID."""
    original = invite.decode()
    from_line = next(line for line in original.split("\r\n") if line.startswith("From:"))
    call_id = ok.headers.get("Call-ID") or ""
    to_tag = parse_name_addr(ok.headers.get("To") or "").tag
    data = request(
        method, port, local_port=peer.port, to_tag=to_tag, call_id=call_id, cseq=cseq, **kw
    ).decode()
    data = "\r\n".join(from_line if line.startswith("From:") else line for line in data.split("\r\n"))
    return data.encode()


async def test_full_dialog_over_raw_udp(running: Running) -> None:
    peer = await UdpPeer().open()
    port = running.port
    try:
        ctype = "Content-Type: application/sdp\r\n"
        invite = request("INVITE", port, local_port=peer.port, body=sdp(40000), extra=ctype)
        peer.send(invite, port)
        statuses = []
        while not statuses or statuses[-1] < 200:
            message = await peer.receive()
            assert isinstance(message, SipResponse)
            statuses.append(message.status)
        assert statuses == [100, 180, 200]
        ok = message
        assert b"a=sendrecv" in ok.body and b"PCMU" in ok.body
        # no ACK yet: the 200 must come again (T1 = 0.1 s here)
        again = await peer.receive()
        assert isinstance(again, SipResponse) and again.status == 200
        ack = in_dialog("ACK", port, peer, invite, ok, 1)
        peer.send(ack, port)
        await asyncio.sleep(0.5)
        while not peer.queue.empty():  # drop 200s that crossed our ACK
            peer.queue.get_nowait()
        assert await peer.nothing(0.5), "200 OK still retransmitted after ACK"
        assert running.endpoint.active_calls == 1

        hold = sdp(40000, extra="a=sendonly\r\n")
        peer.send(in_dialog("INVITE", port, peer, invite, ok, 2, body=hold, extra=ctype), port)
        held = await peer.final()
        assert held.status == 200 and b"a=recvonly" in held.body
        peer.send(in_dialog("ACK", port, peer, invite, ok, 2), port)

        info = in_dialog(
            "INFO", port, peer, invite, ok, 3, body="Signal=9\r\nDuration=100\r\n",
            extra="Content-Type: application/dtmf-relay\r\n",
        )  # fmt: skip
        peer.send(info, port)
        assert (await peer.final()).status == 200
        peer.send(
            in_dialog(
                "INFO", port, peer, invite, ok, 4, body="X", extra="Content-Type: application/dtmf\r\n"
            ),
            port,
        )
        assert (await peer.final()).status == 400
        # an old CSeq is out of order
        peer.send(in_dialog("INFO", port, peer, invite, ok, 1), port)
        assert (await peer.final()).status == 500

        peer.send(in_dialog("BYE", port, peer, invite, ok, 5), port)
        assert (await peer.final()).status == 200
        for _ in range(100):
            if running.endpoint.active_calls == 0:
                break
            await asyncio.sleep(0.05)
        assert running.endpoint.active_calls == 0
        assert list(running.agent.digits.values()) == [["9"]]
    finally:
        peer.close()
