"""Strict RTP learning on real loopback sockets: nothing goes out before the signalling confirms
the session, a stranger is never latched before it or after the peer, silence or hold gives no
opening, and only the address the SDP named may take over a learnt one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest

from voxline.audio.pcm import AudioChunk
from voxline.telephony.rtp import RtpPacket, RtpSession
from voxline.telephony.rtp.session import LEARN_PACKETS

from .udp_peer import UdpPeer

HOST = "127.0.0.1"


def tone(seconds: float) -> AudioChunk:
    t = np.arange(round(seconds * 8000)) / 8000
    return AudioChunk.from_float32(0.3 * np.sin(2 * np.pi * 440 * t), 8000)


def audio(seq: int, ssrc: int = 0xABC, fill: int = 0xFF) -> bytes:
    return RtpPacket(0, seq & 0xFFFF, 160 * seq, ssrc, bytes([fill]) * 160).to_bytes()


@pytest.fixture
async def session() -> AsyncIterator[RtpSession]:
    s = await RtpSession.open(HOST, 0, call_id="strict")
    yield s
    await s.aclose()


@pytest.fixture
async def peers() -> AsyncIterator[tuple[UdpPeer, UdpPeer]]:
    peer, stranger = await UdpPeer.open(), await UdpPeer.open()
    yield peer, stranger
    peer.close()
    stranger.close()


async def _settle() -> None:
    await asyncio.sleep(0.05)


async def test_nothing_is_sent_and_no_stranger_latches_before_confirmation(
    session: RtpSession, peers: tuple[UdpPeer, UdpPeer]
) -> None:
    peer, stranger = peers
    session.await_confirmation()
    session.set_remote(HOST, peer.port)
    for seq in range(1, 11):  # a stranger in perfect sequence, before the ACK
        stranger.send(audio(seq), session.local_port)
    await session.sink.send(tone(0.1))
    await asyncio.sleep(0.2)
    assert peer.received == [] and stranger.received == []  # the greeting waits for the ACK
    assert session.stats.foreign_source_dropped == 10 and session.stats.packets_out == 0
    session.media_confirmed()
    await session.sink.send(tone(0.1))
    await session.sink.drain()
    await peer.wait_for(3)
    assert stranger.received == []  # still nothing to the stranger: only the SDP address until learnt


async def test_the_sdp_address_is_heard_before_confirmation(
    session: RtpSession, peers: tuple[UdpPeer, UdpPeer]
) -> None:
    peer, _ = peers
    session.await_confirmation()
    session.set_remote(HOST, peer.port)
    peer.send(audio(1), session.local_port)
    item = await asyncio.wait_for(session.receive(), 2.0)
    assert isinstance(item, AudioChunk)
    assert session.remote == (HOST, peer.port)


async def test_no_relatch_during_silence_or_hold(session: RtpSession, peers: tuple[UdpPeer, UdpPeer]) -> None:
    peer, stranger = peers
    nat = await UdpPeer.open()  # the SDP names an address the peer does not send from (NAT)
    try:
        session.set_remote(HOST, nat.port)
        for seq in range(1, 1 + LEARN_PACKETS):
            peer.send(audio(seq), session.local_port)
        await _settle()
        assert session.remote == (HOST, peer.port)
        session.set_hold(True)
        await asyncio.sleep(0.7)  # the peer falls silent (on hold) for longer than any grace period
        for seq in range(100, 160):  # the stranger streams in perfect sequence meanwhile
            stranger.send(audio(seq, ssrc=0x5555, fill=0x00), session.local_port)
            await asyncio.sleep(0.002)
        await _settle()
        assert session.remote == (HOST, peer.port)
        assert session.stats.foreign_source_dropped >= 60
        session.set_hold(False)
        await session.sink.send(tone(0.1))
        await session.sink.drain()
        await peer.wait_for(3)
        assert stranger.received == []
    finally:
        nat.close()


async def test_a_stranger_out_of_sequence_is_never_learnt(
    session: RtpSession, peers: tuple[UdpPeer, UdpPeer]
) -> None:
    peer, stranger = peers
    session.set_remote(HOST, peer.port)
    for seq in range(40):  # forged packets with random-looking sequence numbers
        stranger.send(audio(seq * 7919), session.local_port)
    await _settle()
    assert session.stats.packets_in == 0 and session.remote == (HOST, peer.port)


async def test_the_sdp_address_takes_over_a_learnt_source(
    session: RtpSession, peers: tuple[UdpPeer, UdpPeer]
) -> None:
    peer, stranger = peers
    session.set_remote(HOST, peer.port)
    for seq in range(1, 1 + LEARN_PACKETS):  # a stranger got in first, before the peer's first packet
        stranger.send(audio(seq), session.local_port)
    await _settle()
    assert session.remote == (HOST, stranger.port)
    peer.send(audio(50), session.local_port)  # the address the signalling named wins at once...
    await _settle()
    assert session.remote == (HOST, peer.port)
    for seq in range(60, 60 + 3 * LEARN_PACKETS):  # ...and keeps it
        stranger.send(audio(seq), session.local_port)
    await _settle()
    assert session.remote == (HOST, peer.port)


async def test_a_host_name_is_refused_as_rtp_remote(session: RtpSession) -> None:
    with pytest.raises(ValueError, match="IP address"):
        session.set_remote("media.example.com", 4000)


async def test_without_learning_only_the_signalled_address_is_heard(
    session: RtpSession, peers: tuple[UdpPeer, UdpPeer]
) -> None:
    peer, stranger = peers
    session.learn_sources = False  # ARI: Asterisk announced where its RTP comes from
    session.set_remote(HOST, peer.port)
    for seq in range(1, 3 * LEARN_PACKETS):
        stranger.send(audio(seq), session.local_port)
    await _settle()
    assert session.stats.packets_in == 0 and session.remote == (HOST, peer.port)
