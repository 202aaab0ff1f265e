"""RtpSession on real loopback sockets: symmetric RTP, pacing, DTMF out and in, floods, hold."""

from __future__ import annotations

import asyncio
import itertools
import os
import statistics
from collections.abc import AsyncIterator

import numpy as np
import pytest

from voxline.audio.clock import VirtualClock
from voxline.audio.pacing import EventLoopLagMonitor
from voxline.audio.pcm import AudioChunk
from voxline.telephony.rtp import PCMA, PCMU, RtpPacket, RtpSession
from voxline.telephony.rtp.packet import seq_delta, ts_delta
from voxline.telephony.rtp.session import LEARN_PACKETS
from voxline.telephony.rtp.telephone_event import parse_telephone_event
from voxline.transports.base import Dtmf

from .udp_peer import UdpPeer

HOST = "127.0.0.1"


def tone(seconds: float, freq: float = 440.0, rate: int = 8000) -> AudioChunk:
    t = np.arange(round(seconds * rate)) / rate
    return AudioChunk.from_float32(0.3 * np.sin(2 * np.pi * freq * t), rate)


@pytest.fixture
async def session() -> AsyncIterator[RtpSession]:
    s = await RtpSession.open(HOST, 0, call_id="test-a")
    yield s
    await s.aclose()


@pytest.fixture
async def peer() -> AsyncIterator[UdpPeer]:
    p = await UdpPeer.open()
    yield p
    p.close()


async def test_open_binds_an_even_port_in_range() -> None:
    base = 30000 + 2 * (os.getpid() % 5000)
    s = await RtpSession.open(HOST, base, base + 40)
    try:
        assert s.local_port % 2 == 0 and base <= s.local_port <= base + 40
        assert s.local_host == HOST
    finally:
        await s.aclose()


async def test_open_with_no_free_port_raises_cleanly() -> None:
    s = await RtpSession.open(HOST, 0)
    try:
        with pytest.raises(OSError, match="no free even UDP port"):
            await RtpSession.open(HOST, s.local_port, s.local_port)
    finally:
        await s.aclose()


async def test_packets_are_paced_20ms_apart_with_consistent_headers(
    session: RtpSession, peer: UdpPeer
) -> None:
    session.set_remote(HOST, peer.port)
    await session.sink.send(tone(1.0))
    await session.sink.drain()
    await peer.wait_for(50)
    packets = peer.packets()
    assert len(packets) == 50
    headers = [p for _, p in packets]
    assert all(p.payload_type == PCMU.payload_type and len(p.payload) == 160 for p in headers)
    assert [p.marker for p in headers] == [True] + [False] * 49
    assert all(seq_delta(b.sequence, a.sequence) == 1 for a, b in itertools.pairwise(headers))
    assert all(ts_delta(b.timestamp, a.timestamp) == 160 for a, b in itertools.pairwise(headers))
    gaps = np.diff([t for t, _ in packets])
    assert 0.015 < statistics.median(gaps) < 0.025
    # No bursts: the great majority of packets leave a frame apart (a busy CI box may stall a few).
    assert np.mean((gaps > 0.010) & (gaps < 0.030)) > 0.8
    assert 0.85 < packets[-1][0] - packets[0][0] < 1.2
    assert session.stats.packets_out == 50


async def test_send_jitter_and_loop_lag_stay_near_the_published_figures() -> None:
    """README: p99 packet send jitter under 10 ms (the median call of 150); docs/performance.md: event
    loop lag p99 ~2 ms. Three 1 s streams, one after another, each on a fresh session.

    Spread over 20 runs of one stream on this 2-core machine while five other engineers loaded it
    (load average 2-5): send-lateness p99 median 2.1-2.3 ms, p90 2.2-5.1 ms, max 3.7-20 ms; median
    lateness 0.65-0.93 ms; loop lag p99 median 1.5-2.6 ms, max 1.9-8.1 ms. With three more busy
    processes on top (2.5x oversubscribed): p99 median 6-14 ms, max 15-31 ms; median lateness max
    6.6 ms; loop lag p99 median 6-16 ms. Single stalls of 20-50 ms come from other processes, so the
    p99 bounds hold for the best of the three streams and the median for every one: a regression that
    makes every packet late (drift, a blocking call per frame, a slower pacer) fails all three.
    """
    p99s, lag_p99s = [], []
    for _ in range(3):
        session = await RtpSession.open(HOST, 0, call_id="jitter")
        peer = await UdpPeer.open()
        try:
            session.set_remote(HOST, peer.port)
            async with EventLoopLagMonitor(interval_s=0.01) as monitor:
                await session.sink.send(tone(1.0))
                await session.sink.drain()
                await peer.wait_for(50)
            lateness = session.stats.send_lateness_ms()
            assert len(lateness) == 50
            assert statistics.median(lateness) < 10.0, lateness
            p99s.append(session.stats.send_jitter_ms_p99())
            lag_p99s.append(monitor.p99_ms)
        finally:
            peer.close()
            await session.aclose()
    assert min(p99s) < 10.0, p99s
    assert min(lag_p99s) < 10.0, lag_p99s


async def test_timestamps_keep_real_time_across_silence(session: RtpSession, peer: UdpPeer) -> None:
    session.set_remote(HOST, peer.port)
    await session.sink.send(tone(0.1))
    await session.sink.drain()
    await asyncio.sleep(0.3)  # nothing is sent during silence...
    assert len(peer.received) == 5
    await session.sink.send(tone(0.1))
    await session.sink.drain()
    await peer.wait_for(10)
    packets = peer.packets()
    first, second = packets[4], packets[5]
    assert second[1].marker  # a new talkspurt
    # ...but the timestamp moved on with the clock, as if the silence had been sent.
    elapsed_ts = ts_delta(second[1].timestamp, first[1].timestamp)
    elapsed_wall = (second[0] - first[0]) * 8000
    assert abs(elapsed_ts - elapsed_wall) <= 2 * 160
    assert elapsed_ts >= 0.25 * 8000


async def test_symmetric_rtp_answers_where_packets_come_from(session: RtpSession, peer: UdpPeer) -> None:
    wrong = await UdpPeer.open()  # what the SDP said; the peer actually sends from another port
    try:
        session.set_remote(HOST, wrong.port)
        for i in range(LEARN_PACKETS):  # a source the SDP did not name is learnt after a few in sequence
            peer.send(RtpPacket(0, 1 + i, 160 * (1 + i), 0xABC, bytes(160)).to_bytes(), session.local_port)
        item = await asyncio.wait_for(session.receive(), 2.0)
        assert isinstance(item, AudioChunk) and item.num_samples == 160
        assert session.remote == (HOST, peer.port)
        await session.sink.send(tone(0.1))
        await session.sink.drain()
        await peer.wait_for(5)
        assert wrong.received == []
    finally:
        wrong.close()


async def test_before_any_packet_arrives_audio_goes_to_the_sdp_address(
    session: RtpSession, peer: UdpPeer
) -> None:
    session.set_remote(HOST, peer.port)
    await session.sink.send(tone(0.06))
    await session.sink.drain()
    await peer.wait_for(3)


async def test_dtmf_out_follows_rfc4733(session: RtpSession, peer: UdpPeer) -> None:
    session.set_remote(HOST, peer.port)
    await session.send_dtmf("5", duration_ms=100)
    await peer.wait_for(5)
    packets = peer.packets()
    assert all(p.payload_type == 101 for _, p in packets)
    assert len({p.timestamp for _, p in packets}) == 1
    events = [parse_telephone_event(p.payload) for _, p in packets]
    assert [p.marker for _, p in packets] == [True, False, False, False, False]
    assert [e.event for e in events] == [5] * 5
    assert [e.end for e in events] == [False, False, True, True, True]
    assert [e.duration for e in events] == [160, 400, 800, 800, 800]
    assert all(seq_delta(b.sequence, a.sequence) == 1 for (_, a), (_, b) in itertools.pairwise(packets))
    times = [t - packets[0][0] for t, _ in packets]
    assert times[1] == pytest.approx(0.05, abs=0.03)
    assert times[2] == pytest.approx(0.10, abs=0.03)
    assert session.stats.dtmf_out == 1


async def test_dtmf_round_trip_between_two_sessions(session: RtpSession) -> None:
    other = await RtpSession.open(HOST, 0, call_id="test-b")
    try:
        session.set_remote(HOST, other.local_port)
        other.set_remote(HOST, session.local_port)
        await session.send_dtmf("1*#9", duration_ms=80)
        heard: list[Dtmf] = []
        async with asyncio.timeout(3):
            while len(heard) < 4:
                item = await other.receive()
                if isinstance(item, Dtmf):
                    heard.append(item)
        assert [d.digit for d in heard] == ["1", "*", "#", "9"]
        assert all(d.duration_ms == 80 for d in heard)
        assert other.stats.dtmf_in == 4
        # Each digit's end went out three times; only one Dtmf each came of it.
        await asyncio.sleep(0.1)
        assert other.stats.packets_in == 4 * 5
    finally:
        await other.aclose()


async def test_bad_dtmf_requests_are_refused(session: RtpSession) -> None:
    with pytest.raises(ValueError, match="not DTMF digits"):
        await session.send_dtmf("12x")
    with pytest.raises(ValueError, match="duration"):
        await session.send_dtmf("1", duration_ms=0)
    session.set_codec(PCMA, None)
    with pytest.raises(RuntimeError, match="telephone-event"):
        await session.send_dtmf("1")


async def test_garbage_and_floods_do_not_disturb_a_running_stream(session: RtpSession, peer: UdpPeer) -> None:
    attacker = await UdpPeer.open()
    session.set_remote(HOST, peer.port)
    frames = 40
    rng = np.random.default_rng(1)
    try:

        async def stream() -> None:
            for i in range(frames):
                payload = bytes([i]) * 160
                peer.send(
                    RtpPacket(0, 100 + i, 5000 + 160 * i, 0x1111, payload).to_bytes(), session.local_port
                )
                peer.send(RtpPacket(96, 100 + i, 0, 0x1111, b"x").to_bytes(), session.local_port)  # wrong PT
                await asyncio.sleep(0.02)

        async def flood() -> None:
            n = 0
            while True:
                for _ in range(20):
                    n += 1
                    kind = n % 4
                    if kind == 0:
                        data = rng.bytes(int(rng.integers(0, 300)))
                    elif kind == 1:
                        data = bytes([0x40]) + rng.bytes(40)  # RTP version 1
                    elif kind == 2:
                        data = RtpPacket(8, n & 0xFFFF, n, 0x2222, bytes(160)).to_bytes()
                    else:  # "valid" audio from a stranger, trying to take over the stream
                        data = RtpPacket(0, n & 0xFFFF, 160 * n, 0x3333, bytes([0xFF]) * 160).to_bytes()
                    attacker.send(data, session.local_port)
                await asyncio.sleep(0.005)

        sender = asyncio.create_task(stream())
        first = await asyncio.wait_for(session.receive(), 2.0)  # the stream is running...
        flooder = asyncio.create_task(flood())  # ...when the flood starts
        assert isinstance(first, AudioChunk)
        got = [first]
        async with asyncio.timeout(5):
            while len(got) < frames:
                item = await session.receive()
                assert isinstance(item, AudioChunk)
                if np.any(item.samples):  # skip silence released if this busy box stalled our sender
                    got.append(item)
        flooder.cancel()
        await sender
        expected = [PCMU.decode(bytes([i]) * 160) for i in range(frames)]
        assert all(np.array_equal(a.samples, b.samples) for a, b in zip(got, expected, strict=True))
        stats = session.stats
        assert stats.non_rtp_dropped > 0 and stats.wrong_payload_dropped >= frames
        assert stats.foreign_source_dropped > 0
        assert stats.lost == 0 and stats.ssrc_changes == 0
        assert session.remote == (HOST, peer.port)
    finally:
        attacker.close()


async def test_flood_from_the_peer_itself_is_rate_limited(session: RtpSession, peer: UdpPeer) -> None:
    for burst in range(12):  # 5000 packets/s for 120 ms
        for n in range(50 * burst, 50 * burst + 50):
            peer.send(RtpPacket(0, n, 160 * n, 1, bytes(160)).to_bytes(), session.local_port)
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    stats = session.stats
    assert stats.flood_dropped > 300
    assert stats.packets_in < 200  # the burst allowance plus 200 packets/s
    assert stats.packets_in + stats.flood_dropped <= 600


async def test_hold_sends_nothing(session: RtpSession, peer: UdpPeer) -> None:
    session.set_remote(HOST, peer.port)
    session.set_hold(True)
    await session.sink.send(tone(0.1))
    await session.sink.drain()
    await asyncio.sleep(0.05)
    assert peer.received == []
    session.set_hold(False)
    await session.sink.send(tone(0.04))
    await session.sink.drain()
    await peer.wait_for(2)
    assert peer.packets()[0][1].marker


async def test_pcma_codec_switch(session: RtpSession, peer: UdpPeer) -> None:
    session.set_remote(HOST, peer.port)
    session.set_codec(PCMA, 101)
    audio = tone(0.02)
    await session.sink.send(audio)
    await session.sink.drain()
    await peer.wait_for(1)
    packet = peer.packets()[0][1]
    assert packet.payload_type == 8 and packet.payload == PCMA.encode(audio)


async def test_receive_returns_none_once_closed(session: RtpSession) -> None:
    task = asyncio.create_task(session.receive())
    await asyncio.sleep(0.01)
    await session.aclose()
    assert await asyncio.wait_for(task, 1.0) is None


async def test_virtual_clock_releases_silence_when_the_peer_goes_quiet(peer: UdpPeer) -> None:
    clock = VirtualClock(start=100.0)
    session = await RtpSession.open(HOST, 0, clock=clock)
    session.set_remote(HOST, peer.port)
    try:
        peer.send(RtpPacket(0, 7, 0, 5, bytes([0x80]) * 160).to_bytes(), session.local_port)
        first = await asyncio.wait_for(session.receive(), 2.0)
        assert isinstance(first, AudioChunk) and np.any(first.samples)
        # Nothing more arrives: after the jitter wait the session releases silence, in virtual time.
        quiet = await asyncio.wait_for(session.receive(), 2.0)
        assert isinstance(quiet, AudioChunk) and quiet.num_samples == 160 and not np.any(quiet.samples)
        assert clock.now() == pytest.approx(100.0 + 0.02 + 0.06)
    finally:
        await session.aclose()
