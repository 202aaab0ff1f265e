"""Whole AudioSocket calls against the Asterisk simulator: echo, pacing, DTMF, hangups, barge-in."""

from __future__ import annotations

import asyncio
import itertools
import re
import statistics
import time

import pytest

from telephony.asterisk_audiosocket import AUDIO_KIND_RATES, AsteriskAudioSocket, frame, speech_clip
from telephony.audiosocket.helpers import RecordingHandler, wait_until
from voxline.logs import call_id_var
from voxline.telephony.audiosocket import AudioSocketServer
from voxline.telephony.echo import EchoAgent
from voxline.transports.base import CallIO

Server = tuple[AudioSocketServer, RecordingHandler]


def assert_paced(arrivals: list[float]) -> None:
    """~20 ms apart, and never a burst: any 10 consecutive frames span well over 100 ms."""
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert 0.015 < statistics.median(gaps) < 0.025, gaps
    spans = [arrivals[i + 9] - arrivals[i] for i in range(len(arrivals) - 9)]
    assert min(spans) > 0.12, spans


@pytest.mark.parametrize("kind", [0x10, 0x12, 0x16])
async def test_echo_comes_back_in_the_same_kind_paced(
    kind: int, echo_server: Server, echo: EchoAgent
) -> None:
    server, handler = echo_server
    rate = AUDIO_KIND_RATES[kind]
    frame_bytes = 2 * round(rate * 0.02)
    async with AsteriskAudioSocket(server.port, kind=kind) as ast:
        sent = await ast.stream(speech_clip(rate, 1.0))
        assert sent == 50
        assert await wait_until(lambda: len(ast.sound_frames) >= 50, 2.0)
        assert server.active_calls == 1
        frames = ast.sound_frames  # the echo; keep-alive silence fills the ticks around it
        assert {f.kind for f in frames} == {kind}
        assert {len(f.payload) for f in frames} == {frame_bytes}
        assert b"".join(f.payload for f in frames) == b"".join(ast.sent_audio)
        assert_paced([f.at for f in frames])
        call = handler.calls[0]
        assert call.label == str(ast.uuid)  # type: ignore[attr-defined]  # the peer's UUID: a label only
        assert re.fullmatch(r"[0-9a-f]{32}", call.call_id) and call.call_id != ast.uuid.hex  # ours
        assert call.input_rate == rate
        await ast.hang_up()
    assert await wait_until(lambda: server.active_calls == 0)
    # the echo also plays back the silence heard while no frame came (after the clip)
    assert echo.samples_echoed[call.call_id] >= 50 * frame_bytes // 2
    assert handler.calls[0].hangup_reason == "caller_disconnected"


async def test_dtmf_reaches_the_agent_and_a_closed_socket_ends_the_call(
    echo_server: Server, echo: EchoAgent
) -> None:
    server, handler = echo_server
    async with AsteriskAudioSocket(server.port) as ast:
        await ast.stream(seconds=0.1)
        for digit in "12*9":
            await ast.send_dtmf(digit)
            await ast.send_raw(frame(0x03, b"x"))  # not a key: logged and ignored, the call goes on
        await ast.stream(seconds=0.1)
        call_id = handler.calls[0].call_id
        assert await wait_until(lambda: len(echo.digits.get(call_id, [])) == 4)
        assert echo.digits[call_id] == ["1", "2", "*", "9"]
    # leaving the block closes the socket without a hangup frame
    assert await wait_until(lambda: server.active_calls == 0)
    assert handler.calls[0].hangup_reason == "caller_disconnected"
    assert echo.calls_finished == 1


async def test_error_frame_caller_hangup_ends_the_call(echo_server: Server) -> None:
    server, handler = echo_server
    async with AsteriskAudioSocket(server.port) as ast:
        await ast.stream(seconds=0.1)
        await ast.send_error(0x02)  # frame forwarding error: logged, the call goes on
        await ast.stream(seconds=0.1)
        assert server.active_calls == 1
        await ast.send_error(0x01)
        assert await ast.wait_ended(2.0)
        assert ast.closed_by_server_at is not None
    assert await wait_until(lambda: server.active_calls == 0)
    assert handler.calls[0].hangup_reason == "caller_hangup"


async def test_agent_hangup_sends_hangup_frame_then_closes(echo_server: Server) -> None:
    server, handler = echo_server
    async with AsteriskAudioSocket(server.port) as ast:
        await ast.stream(speech_clip(8000, 0.4))
        await ast.send_dtmf("#")  # EchoAgent(hang_up_on="#") drains its echo, then hangs up
        assert await ast.wait_ended(3.0)
        assert ast.end_reason == "hangup"
        assert await wait_until(lambda: ast.closed_by_server_at is not None, 1.0)
        assert ast.kinds_received[-1] == 0x00  # nothing follows the hangup frame
        assert ast.kinds_received.count(0x00) == 1
        assert len(ast.sound_frames) == 20  # the whole echo was played before hanging up
    assert await wait_until(lambda: server.active_calls == 0)
    assert handler.calls[0].hangup_reason == "agent_ended"


async def test_barge_in_clear_stops_audio_within_a_frame() -> None:
    marks: dict[str, float] = {}

    async def talker(call: CallIO) -> None:
        await call.sink.send(speech_clip(8000, 3.0))
        await asyncio.sleep(0.5)
        marks["cleared_at"] = time.monotonic()
        marks["dropped_s"] = call.sink.clear()
        while await call.receive() is not None:
            pass

    server = AudioSocketServer("127.0.0.1", 0, talker)
    await server.start()
    try:
        async with AsteriskAudioSocket(server.port) as ast:
            await ast.stream(seconds=1.2)  # Asterisk keeps sending the caller's audio meanwhile
            cleared_at = marks["cleared_at"]
            before = [f for f in ast.sound_frames if f.at <= cleared_at]
            late = [f for f in ast.sound_frames if f.at > cleared_at + 0.06]
            assert 18 <= len(before) <= 28  # ~0.5 s of paced audio, nothing queued ahead on the wire
            assert late == []
            assert 2.3 < marks["dropped_s"] < 2.6
            assert_paced([f.at for f in before])
    finally:
        await server.stop()
    assert server.active_calls == 0


async def test_first_audio_after_we_started_speaking_sets_the_kind() -> None:
    rates: list[int] = []
    seen: dict[str, str] = {}

    async def greeter(call: CallIO) -> None:
        seen["call_id"] = call_id_var.get()
        seen["label"] = getattr(call, "label", "")
        await call.sink.send(speech_clip(8000, 1.0))  # greeting before the caller's first audio
        while (item := await call.receive()) is not None:
            rates.append(getattr(item, "sample_rate", 0))

    server = AudioSocketServer("127.0.0.1", 0, greeter)
    await server.start()
    try:
        async with AsteriskAudioSocket(server.port, kind=0x12) as ast:
            await asyncio.sleep(0.3)
            await ast.stream(seconds=1.0)
            greeting = ast.sound_frames
            kinds = [f.kind for f in greeting]
            first_16k = kinds.index(0x12)
            assert 8 <= first_16k <= 22  # 8 kHz until the peer's first audio showed its kind
            assert set(kinds[:first_16k]) == {0x10} and set(kinds[first_16k:]) == {0x12}
            assert {len(f.payload) for f in greeting[first_16k:]} == {640}
            heard_s = sum(len(f.payload) / 2 / AUDIO_KIND_RATES[f.kind] for f in greeting)
            assert heard_s == pytest.approx(1.0, abs=0.07)  # converted, not lost or doubled
            assert_paced([f.at for f in greeting])
            assert {f.kind for f in ast.audio_frames if f.at > greeting[-1].at} == {0x12}
            assert set(rates) == {16000}
            assert seen["label"] == str(ast.uuid) and seen["call_id"] != str(ast.uuid)
    finally:
        await server.stop()


async def test_max_calls_refuses_with_hangup_and_stop_hangs_up_everyone() -> None:
    handler = RecordingHandler(EchoAgent())
    server = AudioSocketServer("127.0.0.1", 0, handler, max_calls=2)
    await server.start()
    first, second, third = (AsteriskAudioSocket(server.port) for _ in range(3))
    try:
        await first.connect()
        await second.connect()
        assert await wait_until(lambda: server.active_calls == 2)
        await third.connect()
        assert await third.wait_ended(2.0)
        assert third.end_reason == "hangup" and third.kinds_received == [0x00]
        await first.stream(seconds=0.2)
        assert len(first.audio_frames) >= 5  # the refusal touched nobody else
        await server.stop()
        assert server.active_calls == 0
        for ast in (first, second):
            assert await ast.wait_ended(2.0)
            assert ast.end_reason == "hangup"
        assert [c.hangup_reason for c in handler.calls] == ["server_shutdown"] * 2
    finally:
        for ast in (first, second, third):
            await ast.close()
        await server.stop()
