"""PacedSink on a virtual clock: cadence, barge-in clear, drain, resampling, dead wires."""

from __future__ import annotations

import asyncio
import logging

import numpy as np
import pytest

from voxline.audio.clock import VirtualClock
from voxline.audio.pcm import AudioChunk
from voxline.transports.base import PacedSink


class RecordingSink(PacedSink):
    def __init__(self, output_rate: int, clock: VirtualClock) -> None:
        super().__init__(output_rate, clock)
        self.emitted: list[tuple[float, AudioChunk]] = []
        self.idle_ticks = 0
        self.clears = 0

    async def _emit(self, frame: AudioChunk) -> None:
        self.emitted.append((self.clock.now(), frame))

    async def _idle(self) -> None:
        self.idle_ticks += 1

    def _on_clear(self) -> None:
        self.clears += 1


class BrokenSink(PacedSink):
    async def _emit(self, frame: AudioChunk) -> None:
        raise ConnectionResetError("peer went away")


def ramp(seconds: float, rate: int) -> AudioChunk:
    return AudioChunk((np.arange(round(seconds * rate)) % 1000 + 1).astype(np.int16), rate)


async def test_frames_leave_every_20ms_in_order() -> None:
    clock = VirtualClock(start=10.0)
    sink = RecordingSink(8000, clock)
    audio = ramp(0.5, 8000)
    await sink.send(audio)
    assert sink.queued_s == pytest.approx(0.5)
    await sink.drain()
    times = [t for t, _ in sink.emitted]
    assert len(times) == 25
    assert times[0] == pytest.approx(10.0)
    assert np.allclose(np.diff(times), 0.02)
    assert all(f.num_samples == 160 for _, f in sink.emitted)
    played = np.concatenate([f.samples for _, f in sink.emitted])
    assert played.tolist() == audio.samples.tolist()
    assert sink.played_s == pytest.approx(0.5)
    assert not sink.is_playing
    await sink.aclose()


async def test_partial_frame_is_padded_on_flush() -> None:
    clock = VirtualClock()
    sink = RecordingSink(8000, clock)
    await sink.send(ramp(0.025, 8000))  # one frame and a quarter
    await sink.drain()
    assert [f.num_samples for _, f in sink.emitted] == [160, 160]
    assert not sink.emitted[1][1].samples[40:].any()
    await sink.aclose()


async def test_clear_drops_the_queue_and_played_stops() -> None:
    clock = VirtualClock()
    sink = RecordingSink(8000, clock)
    await sink.send(ramp(1.0, 8000))
    await clock.sleep_until(0.1)
    await asyncio.sleep(0)
    played_before = sink.played_s
    assert 0.08 <= played_before <= 0.14
    dropped = sink.clear()
    assert dropped == pytest.approx(1.0 - played_before, abs=1e-9)
    assert sink.clears == 1
    assert not sink.is_playing
    await clock.sleep_until(0.5)
    assert sink.played_s == played_before  # nothing more reached the caller
    assert sink.idle_ticks > 0
    await sink.drain()  # nothing queued: returns at once
    # the next utterance reports a new playback start even though no idle tick is guaranteed between
    await sink.send(ramp(0.04, 8000))
    sink.clear()
    await sink.send(ramp(0.04, 8000))
    await sink.drain()
    starts = list(sink.playback_starts)
    assert len(starts) == 2
    assert starts[0].at == 0.0 and sink.first_frame_at == 0.0
    await sink.aclose()


async def test_a_mark_tells_when_its_audio_began_to_be_heard() -> None:
    clock = VirtualClock()
    sink = RecordingSink(8000, clock)
    sink.start()
    await clock.sleep_until(0.1)  # idle a while
    first = sink.mark()
    await sink.send(ramp(0.2, 8000))
    during = sink.mark()  # sent while the first audio plays: it starts no playback of its own
    await sink.send(ramp(0.1, 8000))
    assert sink.heard_from(first) is None  # not on the wire yet
    await sink.drain()
    started = sink.heard_from(first)
    assert started is not None and started == pytest.approx(0.1, abs=0.021)
    assert sink.heard_from(during) is None
    # audio cleared before a frame of it left is never heard, even though what is sent next begins
    # at the same place in the output
    unheard = sink.mark()
    await sink.send(ramp(0.1, 8000))
    sink.clear()
    again = sink.mark()
    assert again.position_s == unheard.position_s
    await sink.send(ramp(0.1, 8000))
    await sink.drain()
    assert sink.heard_from(unheard) is None
    heard_again = sink.heard_from(again)
    assert heard_again is not None and heard_again > started
    await sink.aclose()


async def test_resampling_22050_to_8000_keeps_duration() -> None:
    clock = VirtualClock()
    sink = RecordingSink(8000, clock)
    tts = AudioChunk.from_float32(0.3 * np.sin(2 * np.pi * 500 * np.arange(22050) / 22050), 22050)
    step = 22050 // 50
    for i in range(0, tts.num_samples, step):  # as a TTS engine streams it
        await sink.send(AudioChunk(tts.samples[i : i + step], 22050))
    await sink.drain()
    # the resampler's delayed tail is flushed, so the caller hears all of it (to within one frame)
    assert sink.played_s == pytest.approx(1.0, abs=0.02)
    played = np.concatenate([f.samples for _, f in sink.emitted]).astype(np.float32)
    voiced = played[:8000]
    spectrum = np.abs(np.fft.rfft(voiced * np.hanning(voiced.size)))
    assert np.argmax(spectrum) * 8000 / voiced.size == pytest.approx(500, abs=2)
    await sink.aclose()


async def test_failing_emit_does_not_raise_out(caplog: pytest.LogCaptureFixture) -> None:
    clock = VirtualClock()
    sink = BrokenSink(8000, clock)
    with caplog.at_level(logging.ERROR):
        await sink.send(ramp(0.2, 8000))
        await asyncio.wait_for(sink.drain(), timeout=5)  # must not hang or raise
    assert "sink emit failed" in caplog.text
    await sink.send(ramp(0.2, 8000))  # a closed sink ignores further audio
    await sink.aclose()


async def test_aclose_releases_a_waiting_drain() -> None:
    clock = VirtualClock()
    sink = RecordingSink(8000, clock)
    await sink.send(ramp(5.0, 8000))
    waiter = asyncio.create_task(sink.drain())
    await asyncio.sleep(0)
    await sink.aclose()
    await asyncio.wait_for(waiter, timeout=5)
    assert sink.played_s < 5.0
