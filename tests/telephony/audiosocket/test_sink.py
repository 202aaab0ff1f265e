"""AudioSocketSink on a virtual clock: one frame per tick, drop when the peer stalls, kind switches."""

from __future__ import annotations

import asyncio
from typing import cast

import numpy as np
import pytest

from voxline.audio.clock import VirtualClock
from voxline.audio.pcm import AudioChunk
from voxline.telephony.audiosocket.call import AudioSocketSink


class FakeTransport:
    def __init__(self) -> None:
        self.backlog = 0
        self.closing = False

    def get_write_buffer_size(self) -> int:
        return self.backlog

    def is_closing(self) -> bool:
        return self.closing


class FakeWriter:
    """Just enough of a StreamWriter: records writes with the virtual time they happened at."""

    def __init__(self, clock: VirtualClock) -> None:
        self.transport = FakeTransport()
        self.clock = clock
        self.writes: list[tuple[float, bytes]] = []

    def write(self, data: bytes) -> None:
        self.writes.append((self.clock.now(), data))


def make_sink(kind: int) -> tuple[AudioSocketSink, FakeWriter, VirtualClock]:
    clock = VirtualClock(start=100.0)
    writer = FakeWriter(clock)
    return AudioSocketSink(cast(asyncio.StreamWriter, writer), kind, clock), writer, clock


def ramp(seconds: float, rate: int) -> AudioChunk:
    return AudioChunk((np.arange(round(seconds * rate)) % 2000 + 1).astype(np.int16), rate)


async def test_one_frame_per_tick_in_the_peer_kind() -> None:
    sink, writer, _ = make_sink(0x15)  # 44.1 kHz: 882 samples per 20 ms
    audio = ramp(0.2, 44100)
    await sink.send(audio)
    await sink.drain()
    assert len(writer.writes) == 10
    assert np.allclose(np.diff([t for t, _ in writer.writes]), 0.02)
    assert all(d[:3] == b"\x15\x06\xe4" for _, d in writer.writes)
    assert b"".join(d[3:] for _, d in writer.writes) == audio.to_bytes()
    await sink.aclose()


async def test_frames_are_dropped_not_buffered_while_the_peer_stalls() -> None:
    sink, writer, clock = make_sink(0x10)
    await sink.send(ramp(1.0, 8000))
    sink.start()
    await clock.sleep_until(100.1)
    writer.transport.backlog = 5000  # the kernel stopped taking our bytes
    await clock.sleep_until(100.5)
    stalled_writes = len(writer.writes)
    assert 5 <= stalled_writes <= 7
    assert sink.frames_dropped >= 18
    writer.transport.backlog = 0
    await sink.drain()
    assert len(writer.writes) + sink.frames_dropped == 50  # audio moved on in real time meanwhile
    await sink.aclose()


async def test_closed_transport_ends_the_sink_and_releases_drain() -> None:
    sink, writer, _ = make_sink(0x10)
    writer.transport.closing = True
    await sink.send(ramp(1.0, 8000))
    await asyncio.wait_for(sink.drain(), 5)
    assert writer.writes == []


async def test_adopt_kind_converts_queued_audio_and_keeps_the_accounting() -> None:
    sink, writer, clock = make_sink(0x10)
    await sink.send(ramp(1.0, 8000))
    sink.start()
    await clock.sleep_until(100.3)
    assert sink.played_s == pytest.approx(0.3, abs=0.021)
    sink.adopt_kind(0x16)
    assert sink.output_rate == 48000 and sink.frame_samples == 960
    assert sink.queued_s == pytest.approx(1.0, abs=0.001)
    assert sink.played_s == pytest.approx(0.3, abs=0.021)
    await sink.drain()
    kinds = [d[0] for _, d in writer.writes]
    switch = kinds.index(0x16)
    assert set(kinds[:switch]) == {0x10} and set(kinds[switch:]) == {0x16}
    assert {len(d) for _, d in writer.writes[switch:]} == {3 + 1920}
    assert sink.played_s == pytest.approx(1.0, abs=0.021)
    assert len(writer.writes) == 50
    await sink.aclose()
