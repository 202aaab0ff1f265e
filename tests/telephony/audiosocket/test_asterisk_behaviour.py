"""What Asterisk's AudioSocket code does (apps/app_audiosocket.c, channels/chan_audiosocket.c,
res/res_audiosocket.c), one behaviour per test: first that the simulator does it (against a bare
TCP server that is not voxline), then that voxline copes with it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import numpy as np
import pytest

from telephony.asterisk_audiosocket import AsteriskAudioSocket, frame, speech_clip
from telephony.audiosocket.helpers import RecordingHandler, wait_until
from voxline.audio.pcm import AudioChunk
from voxline.telephony.audiosocket import AudioSocketServer
from voxline.transports.base import CallIO, Dtmf

RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def raw_server(handler: RawHandler) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, int(server.sockets[0].getsockname()[1])


async def read_forever(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A server that listens and never says anything (what voxline did while the agent was silent)."""
    while await reader.read(65536):
        pass
    writer.close()


class Listening:
    """A voxline call handler that only listens: records what receive() hands out, and when."""

    def __init__(self) -> None:
        self.items: list[tuple[float, AudioChunk | Dtmf]] = []

    async def __call__(self, call: CallIO) -> None:
        while (item := await call.receive()) is not None:
            self.items.append((time.monotonic(), item))

    def audio(self) -> list[tuple[float, AudioChunk]]:
        return [(t, i) for t, i in self.items if isinstance(i, AudioChunk)]


@pytest.fixture
async def listening() -> AsyncIterator[tuple[AudioSocketServer, Listening, RecordingHandler]]:
    inner = Listening()
    handler = RecordingHandler(inner)
    server = AudioSocketServer("127.0.0.1", 0, handler)
    await server.start()
    try:
        yield server, inner, handler
    finally:
        await server.stop()


# ---------------------------------------------------------------- the 2-second rule


async def test_the_application_hangs_up_after_2_s_with_no_frame_either_way() -> None:
    server, port = await raw_server(read_forever)
    try:
        ast = AsteriskAudioSocket.application_form(port)
        await ast.connect()
        await ast.stream(speech_clip(8000, 0.4))
        quiet_from = time.monotonic()
        assert await ast.wait_ended(3.0)
        assert ast.end_reason == "timeout"
        assert ast.ended_at is not None
        assert 1.9 < ast.ended_at - quiet_from < 2.4
        await ast.close()
    finally:
        server.close()


async def test_the_channel_driver_has_no_inactivity_timer() -> None:
    server, port = await raw_server(read_forever)
    try:
        async with AsteriskAudioSocket(port, kind=0x12) as ast:
            await ast.stream(speech_clip(16000, 0.2))
            await ast.quiet(2.6)
            assert not ast.ended.is_set()
    finally:
        server.close()


async def test_voxline_keeps_the_application_alive_while_nobody_speaks(
    listening: tuple[AudioSocketServer, Listening, RecordingHandler],
) -> None:
    server, _, handler = listening
    ast = AsteriskAudioSocket.application_form(server.port)
    await ast.connect()
    try:
        await ast.stream(speech_clip(8000, 0.3))
        await ast.quiet(3.0)  # the caller's leg produces nothing; the agent says nothing
        assert not ast.ended.is_set(), f"Asterisk hung up: {ast.end_reason}"
        assert ast.longest_gap_s() < 0.25
        silence = ast.audio_frames
        assert len(silence) > 120  # a frame every 20 ms
        assert {(f.kind, len(f.payload)) for f in silence} == {(0x10, 320)}
        assert all(f.is_silence for f in silence)
        assert handler.calls[0].sink.silence_frames_sent >= len(silence)  # type: ignore[attr-defined]
    finally:
        await ast.hang_up()


async def test_keepalive_silence_takes_the_peer_kind_once_its_first_frame_shows_it(
    listening: tuple[AudioSocketServer, Listening, RecordingHandler],
) -> None:
    server, _, _ = listening
    async with AsteriskAudioSocket(server.port, kind=0x12) as ast:
        await ast.quiet(0.3)  # only the UUID has arrived: the kind is not known yet
        await ast.stream(speech_clip(16000, 0.2))
        await ast.quiet(0.3)
        kinds = [(f.kind, len(f.payload)) for f in ast.audio_frames]
        switch = kinds.index((0x12, 640))
        assert switch >= 10
        assert set(kinds[:switch]) == {(0x10, 320)}
        assert set(kinds[switch:]) == {(0x12, 640)}


# ---------------------------------------------------------------- frames only while the channel produces them


async def test_voxline_hears_silence_in_real_time_when_the_callers_frames_stop(
    listening: tuple[AudioSocketServer, Listening, RecordingHandler],
) -> None:
    server, inner, handler = listening
    async with AsteriskAudioSocket(server.port, kind=0x12) as ast:
        await ast.stream(speech_clip(16000, 0.4))
        speech_end = time.monotonic()
        await ast.quiet(1.0)
        audio = inner.audio()
        after = [(t, c) for t, c in audio if t > speech_end + 0.01]
        heard_s = sum(c.duration_s for _, c in after)
        assert 0.8 < heard_s < 1.05, heard_s  # ~1 s of silence for 1 s without frames, not a burst
        assert all(c.sample_rate == 16000 and not c.samples.any() for _, c in after)
        first_fill = after[0][0] - speech_end
        assert first_fill < 0.2  # the first silence comes within a few frames of the last one
        arrivals = np.array([t for t, _ in after])
        assert np.all(np.diff(arrivals) < 0.1)  # handed out as time passes, not all at the end
        call = handler.calls[0]
        assert call.silence_filled_s == pytest.approx(heard_s, abs=0.05)
        await ast.stream(speech_clip(16000, 0.2))
        assert await wait_until(lambda: any(c.samples.any() for t, c in inner.audio() if t > speech_end + 1))


async def test_no_silence_is_made_up_before_the_first_audio_frame(
    listening: tuple[AudioSocketServer, Listening, RecordingHandler],
) -> None:
    server, inner, _ = listening
    async with AsteriskAudioSocket(server.port, kind=0x12) as ast:
        await ast.quiet(0.5)
        assert inner.items == []  # no rate to hear silence at, and no turn to end


async def test_short_frames_at_a_prompt_end_are_taken_as_they_come(
    listening: tuple[AudioSocketServer, Listening, RecordingHandler],
) -> None:
    server, inner, _ = listening
    async with AsteriskAudioSocket(server.port, kind=0x12) as ast:
        sent = await ast.stream(speech_clip(16000, 0.23))  # the last frame is 10 ms
        assert sent == 12 and len(ast.sent_audio[-1]) == 320
        assert await wait_until(lambda: len(inner.audio()) >= 12)
        sizes = [c.num_samples for _, c in inner.audio()[:12]]
        assert sizes == [320] * 11 + [160]


# ---------------------------------------------------------------- hanging up


async def test_caller_hangup_is_a_closed_socket_and_ends_the_call(
    listening: tuple[AudioSocketServer, Listening, RecordingHandler],
) -> None:
    server, _, handler = listening
    ast = AsteriskAudioSocket(server.port)
    await ast.connect()
    await ast.stream(speech_clip(8000, 0.2))
    await ast.hang_up()
    assert await wait_until(lambda: server.active_calls == 0)
    assert handler.calls[0].hangup_reason == "caller_disconnected"
    assert 0x00 not in ast.kinds_received


async def test_a_hangup_frame_from_the_server_ends_the_session_gracefully() -> None:
    async def hang_up_soon(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(19)
        writer.write(frame(0x10, bytes(320)) + frame(0x00))
        await reader.read()
        writer.close()

    server, port = await raw_server(hang_up_soon)
    try:
        async with AsteriskAudioSocket(port, application=True) as ast:
            assert await ast.wait_ended(1.0)
            assert ast.end_reason == "hangup"
            assert ast.kinds_received == [0x10, 0x00]
    finally:
        server.close()


@pytest.mark.parametrize(
    ("wire", "why"),
    [
        (frame(0x03, b"5"), "kind 0x03 is not hangup or audio"),
        (frame(0x01, bytes(16)), "kind 0x01 is not hangup or audio"),
        (frame(0xFF, b"\x01"), "kind 0xff is not hangup or audio"),
        (frame(0x10), "invalid message length 0"),
    ],
)
async def test_anything_but_hangup_or_audio_from_the_server_is_an_error(wire: bytes, why: str) -> None:
    async def send_it(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(19)
        writer.write(wire)
        await reader.read()
        writer.close()

    server, port = await raw_server(send_it)
    try:
        async with AsteriskAudioSocket(port) as ast:
            assert await ast.wait_ended(1.0)
            assert ast.end_reason == f"protocol_error: {why}"
    finally:
        server.close()


async def test_audio_of_another_kind_or_odd_length_is_accepted_as_asterisk_does() -> None:
    async def send_odd(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(19)
        writer.write(frame(0x16, bytes(range(1, 200)) * 9 + b"\x01") + frame(0x10, b"\x01\x02\x03"))
        await reader.read()
        writer.close()

    server, port = await raw_server(send_odd)
    try:
        async with AsteriskAudioSocket(port, kind=0x12) as ast:
            await ast.quiet(0.3)
            assert not ast.ended.is_set()
            assert [f.kind for f in ast.audio_frames] == [0x16, 0x10]
    finally:
        server.close()


async def test_voxline_hangs_up_with_a_hangup_frame_and_sends_nothing_after() -> None:
    async def hang_up_after_a_while(call: CallIO) -> None:
        await asyncio.sleep(0.3)
        await call.hangup("agent_ended")

    server = AudioSocketServer("127.0.0.1", 0, hang_up_after_a_while)
    await server.start()
    try:
        async with AsteriskAudioSocket(server.port, application=True) as ast:
            assert await ast.wait_ended(2.0)
            assert ast.end_reason == "hangup"
            assert await wait_until(lambda: ast.closed_by_server_at is not None, 1.0)
            assert ast.kinds_received[-1] == 0x00
            assert set(ast.kinds_received[:-1]) == {0x10}  # keep-alive silence until then
    finally:
        await server.stop()
