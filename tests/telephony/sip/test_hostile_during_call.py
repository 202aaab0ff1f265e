"""A live call is untouched by a hostile neighbour: while sipp streams speech and gets its echo,
another peer (another loopback address, as a neighbour on the network would be) blasts the SIP port
with garbage, oversized and half-valid requests (over UDP and TCP) faster than the per-source rate,
and floods the call's own RTP port with junk and forged RTP from a stranger."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
from pathlib import Path

import pytest

from voxline.transports.base import CallIO

from .conftest import Running, needs_sipp, run_sipp
from .rawpeer import request

pytestmark = [needs_sipp, pytest.mark.timeout(90)]


def _junk(port: int) -> list[bytes]:
    rng = random.Random(7)
    valid = request("OPTIONS", port)
    return [
        os.urandom(700),
        b"INVITE sip:x SIP/2.0\r\n" + b"X-Big: " + b"a" * 60000 + b"\r\n\r\n",
        valid.replace(b"Content-Length: 0", b"Content-Length: 900"),
        valid.replace(b"SIP/2.0\r\n", b"SIP/7.0\r\n", 1),
        b"\r\n".join(valid.split(b"\r\n")[:2]) + b"\r\n\r\n",  # missing almost every header
        bytes(rng.randrange(256) for _ in range(1400)),
        b"SIP/2.0 200 OK\r\nCSeq: 1 INVITE\r\n\r\n",  # a stray response
        request("FOO", port),  # an unknown method
    ]


NEIGHBOUR = "127.0.0.2"


async def _blast_sip(port: int, stop: asyncio.Event) -> int:
    sent = 0
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((NEIGHBOUR, 0))
    udp.setblocking(False)
    try:
        while not stop.is_set():
            for payload in _junk(port):
                with contextlib.suppress(OSError):  # a datagram too big for loopback is fine to skip
                    udp.sendto(payload[:65000], ("127.0.0.1", port))
                sent += 1
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(NEIGHBOUR, 0))
                writer.write(b"REGISTER sip:x SIP/2.0\r\nContent-Length: -5\r\n\r\n" + os.urandom(300))
                await writer.drain()
                writer.close()
            except OSError:
                pass
            await asyncio.sleep(0.02)
    finally:
        udp.close()
    return sent


async def _flood_rtp(port: int, stop: asyncio.Event) -> int:
    sent = 0
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger.setblocking(False)
    try:
        while not stop.is_set():
            for _ in range(20):  # ~1000 packets/s of junk and forged RTP (version 2, PCMU, random SSRC)
                forged = bytes([0x80, 0x00]) + os.urandom(10) + bytes(160)
                for payload in (os.urandom(172), forged, b"\x00"):
                    with contextlib.suppress(OSError):
                        stranger.sendto(payload, ("127.0.0.1", port))
                    sent += 1
            await asyncio.sleep(0.02)
    finally:
        stranger.close()
    return sent


async def test_a_call_survives_a_hostile_peer_on_the_sip_and_rtp_ports(
    running: Running, tmp_path: Path
) -> None:
    calls: list[CallIO] = []
    stop = asyncio.Event()
    tasks: list[asyncio.Task[int]] = []

    async def echo(call: CallIO) -> None:
        calls.append(call)
        rtp_port = call.session.local_port  # type: ignore[attr-defined]
        tasks.append(asyncio.create_task(_flood_rtp(rtp_port, stop)))
        await running.agent(call)

    running.endpoint.on_call = echo
    tasks.append(asyncio.create_task(_blast_sip(running.port, stop)))
    result = await run_sipp(tmp_path, f"127.0.0.1:{running.port}", "-sn", "uac_pcap", with_pcaps=True)
    stop.set()
    sent = await asyncio.gather(*tasks)
    assert result.returncode == 0, result.stdout[-2000:] + result.log("errors.log")
    assert all(n > 100 for n in sent), sent
    assert running.endpoint.admission.rate_limited > 0  # the neighbour went over its request rate
    (call_id,) = running.agent.samples_echoed
    assert running.agent.samples_echoed[call_id] > 8000 * 5  # the speech still came in and went back
    assert running.agent.digits[call_id] == ["1"]
    stats = calls[0].session.stats  # type: ignore[attr-defined]
    assert stats.non_rtp_dropped + stats.foreign_source_dropped + stats.flood_dropped > 100
    # and the endpoint still answers a well-formed request afterwards
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    probe.settimeout(2)
    try:
        probe.sendto(
            request("OPTIONS", running.port, local_port=probe.getsockname()[1]), ("127.0.0.1", running.port)
        )
        reply, _ = await asyncio.to_thread(probe.recvfrom, 65535)
    finally:
        probe.close()
    assert reply.startswith(b"SIP/2.0 200"), reply[:80]
