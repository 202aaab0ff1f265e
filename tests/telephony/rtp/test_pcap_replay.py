"""sipp's packaged captures replayed over UDP into an RtpSession: real peers' packets, real timing."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from voxline.audio.pcm import AudioChunk
from voxline.telephony.rtp import PCMA, PCMU, RtpSession
from voxline.telephony.rtp.packet import parse_rtp
from voxline.transports.base import Dtmf

from .pcap import SIPP_PCAPS, udp_payloads
from .udp_peer import UdpPeer


async def replay(path_name: str, session: RtpSession, peer: UdpPeer, speed: float = 1.0) -> int:
    path = SIPP_PCAPS / path_name
    if not path.exists():
        pytest.skip("sip-tester pcaps not installed")
    captured = udp_payloads(path)
    start_wall, start_cap = time.monotonic(), captured[0][0]
    for t, payload in captured:
        delay = (t - start_cap) / speed - (time.monotonic() - start_wall)
        if delay > 0:
            await asyncio.sleep(delay)
        peer.send(payload, session.local_port)
    return len(captured)


@pytest.mark.parametrize(("name", "digit"), [("dtmf_2833_pound.pcap", "#"), ("dtmf_2833_7.pcap", "7")])
async def test_sipp_dtmf_capture_over_udp_gives_one_digit(name: str, digit: str) -> None:
    session = await RtpSession.open("127.0.0.1", 0, codec=PCMU, dtmf_payload_type=101)
    peer = await UdpPeer.open()
    try:
        session.set_remote("127.0.0.1", peer.port)
        sent = await replay(name, session, peer)
        heard = await asyncio.wait_for(session.receive(), 2.0)
        assert heard == Dtmf(digit, 280)
        await asyncio.sleep(0.1)
        assert session.stats.dtmf_in == 1
        assert session.stats.packets_in == sent
    finally:
        peer.close()
        await session.aclose()


async def test_sipp_alaw_capture_decodes_to_continuous_audio() -> None:
    path = SIPP_PCAPS / "g711a.pcap"
    if not path.exists():
        pytest.skip("sip-tester pcaps not installed")
    expected = [parse_rtp(p) for _, p in udp_payloads(path)]
    session = await RtpSession.open("127.0.0.1", 0, codec=PCMA)
    peer = await UdpPeer.open()
    try:
        session.set_remote("127.0.0.1", peer.port)
        # 4x real time: a 7 s capture in under 2 s, still one packet at a time.
        replayer = asyncio.create_task(replay("g711a.pcap", session, peer, speed=4.0))
        audio: list[AudioChunk] = []
        want = sum(len(p.payload) for p in expected)
        async with asyncio.timeout(10):
            while sum(c.num_samples for c in audio) < want:
                item = await session.receive()
                assert isinstance(item, AudioChunk)
                audio.append(item)
        await replayer
        decoded = AudioChunk.concat(audio).samples
        reference = PCMA.decode(b"".join(p.payload for p in expected)).samples
        assert np.array_equal(decoded[: reference.size], reference)
        assert session.stats.lost == 0 and session.stats.packets_in == len(expected)
    finally:
        peer.close()
        await session.aclose()
