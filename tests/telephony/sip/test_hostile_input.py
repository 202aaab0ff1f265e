"""Malformed and unexpected requests over raw UDP and TCP get the right status, and the endpoint
keeps serving."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from .conftest import Running
from .rawpeer import TcpPeer, UdpPeer, request, sdp

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def udp() -> AsyncIterator[UdpPeer]:
    peer = await UdpPeer().open()
    yield peer
    peer.close()


async def options_ok(udp: UdpPeer, port: int) -> None:
    udp.send(request("OPTIONS", port, local_port=udp.port), port)
    response = await udp.final()
    assert response.status == 200


async def test_options_200_then_503_when_not_accepting(running: Running, udp: UdpPeer) -> None:
    udp.send(request("OPTIONS", running.port, local_port=udp.port), running.port)
    response = await udp.final()
    assert response.status == 200
    assert "INVITE" in (response.headers.get("Allow") or "")
    assert response.headers.get("Accept") == "application/sdp"
    running.endpoint.accepting = False
    udp.send(request("OPTIONS", running.port, local_port=udp.port), running.port)
    busy = await udp.final()
    assert busy.status == 503
    assert busy.headers.get("Retry-After")
    udp.send(request("INVITE", running.port, local_port=udp.port, body=sdp(4000)), running.port)
    assert (await udp.final()).status == 503


async def test_response_goes_to_rport_source(running: Running, udp: UdpPeer) -> None:
    # The Via claims port 5099, but rport makes the response come back to where it was sent from.
    udp.send(request("OPTIONS", running.port, local_port=5099), running.port)
    response = await udp.final()
    via = response.headers.get("Via") or ""
    assert f"rport={udp.port}" in via and "received=127.0.0.1" in via


@pytest.mark.parametrize(
    ("message", "status"),
    [
        (dict(drop=("Call-ID",)), 400),
        (dict(drop=("CSeq",)), 400),
        (dict(content_length="abc"), 400),
        (dict(content_length="500", body="short"), 400),
        (dict(extra="X-Huge: " + "a" * 9000 + "\r\n"), None),
        (dict(extra="".join(f"X-H{i}: {i}\r\n" for i in range(150))), None),
    ],
)
async def test_malformed_requests_over_udp(
    running: Running, udp: UdpPeer, message: dict[str, str], status: int | None
) -> None:
    udp.send(request("OPTIONS", running.port, local_port=udp.port, **message), running.port)  # type: ignore[arg-type]
    response = await udp.final()
    if status is None:
        assert 400 <= response.status < 600
    else:
        assert response.status == status
    await options_ok(udp, running.port)


async def test_garbage_and_responses_are_dropped(running: Running, udp: UdpPeer) -> None:
    for junk in (b"\x00\xff" * 50, b"hello world\r\n\r\n", b"SIP/2.0 200 OK\r\n\r\n", b"\r\n\r\n"):
        udp.send(junk, running.port)
    assert await udp.nothing(0.5)
    await options_ok(udp, running.port)


async def test_version_unknown_method_and_unknown_dialog(running: Running, udp: UdpPeer) -> None:
    port = running.port
    bad_version = request("OPTIONS", port, local_port=udp.port).replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1)
    udp.send(bad_version, port)
    assert (await udp.final()).status == 505
    udp.send(request("FROB", port, local_port=udp.port), port)
    assert (await udp.final()).status == 501
    udp.send(request("SUBSCRIBE", port, local_port=udp.port), port)
    refused = await udp.final()
    assert refused.status == 405 and "INVITE" in (refused.headers.get("Allow") or "")
    udp.send(request("BYE", port, local_port=udp.port, to_tag="nosuch"), port)
    assert (await udp.final()).status == 481
    udp.send(request("CANCEL", port, local_port=udp.port), port)
    assert (await udp.final()).status == 481
    udp.send(request("INFO", port, local_port=udp.port, extra="Require: 100rel\r\n"), port)
    assert (await udp.final()).status == 420


async def test_bad_sdp_and_no_common_codec(running: Running, udp: UdpPeer) -> None:
    port = running.port
    ctype = "Content-Type: application/sdp\r\n"
    udp.send(request("INVITE", port, local_port=udp.port, body="v=0\r\nnonsense\r\n", extra=ctype), port)
    assert (await udp.final()).status == 400
    udp.send(request("INVITE", port, local_port=udp.port, body=sdp(4000, "18"), extra=ctype), port)
    assert (await udp.final()).status == 488
    udp.send(
        request("INVITE", port, local_port=udp.port, body="hi", extra="Content-Type: text/plain\r\n"), port
    )
    assert (await udp.final()).status == 415
    assert running.endpoint.active_calls == 0
    await options_ok(udp, port)


async def test_tcp_errors_and_framing(running: Running) -> None:
    port = running.endpoint.local_port("tcp")
    peer = await TcpPeer.connect(port)
    try:
        peer.send(request("OPTIONS", port, transport="TCP", local_port=peer.port))
        assert (await peer.final()).status == 200
        peer.send(request("FROB", port, transport="TCP", local_port=peer.port))
        assert (await peer.final()).status == 501
        # two messages in one segment, split anywhere, still frame correctly
        data = request("OPTIONS", port, transport="TCP") + request("OPTIONS", port, transport="TCP")
        peer.send(data[:37])
        peer.send(data[37:])
        assert (await peer.final()).status == 200
        assert (await peer.final()).status == 200
        peer.send(request("OPTIONS", port, transport="TCP", content_length="abc"))
        assert (await peer.final()).status == 400
        assert await peer.closed()  # framing is lost: the endpoint drops the connection
    finally:
        peer.close()
    fresh = await TcpPeer.connect(port)
    try:
        fresh.send(request("OPTIONS", port, transport="TCP", local_port=fresh.port))
        assert (await fresh.final()).status == 200
    finally:
        fresh.close()
