"""WebSocketCall over a real socket: uvicorn on 127.0.0.1, the `websockets` client library."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import websockets
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from websockets.asyncio.client import ClientConnection

from server.ws_harness import LiveServer, tone
from voxline.audio.pcm import AudioChunk
from voxline.transports.base import Dtmf
from voxline.transports.websocket import StartRejected, WebSocketCall, parse_start

pytestmark = pytest.mark.timeout(60)


class Recorded:
    """What the server-side handler saw, for assertions."""

    def __init__(self) -> None:
        self.items: list[AudioChunk | Dtmf | None] = []
        self.hangup_reason: str | None = None
        self.rejected: list[str] = []
        self.finished = asyncio.Event()


async def handler(websocket: WebSocket) -> None:
    """Reports every received item back as an event and obeys DTMF: 1 play tone, 2 clear, 3 hang up."""
    seen: Recorded = websocket.app.state.seen
    try:
        call = await WebSocketCall.accept(websocket)
    except StartRejected as exc:
        seen.rejected.append(str(exc))
        return
    try:
        while True:
            item = await call.receive()
            seen.items.append(item)
            if item is None:
                break
            if isinstance(item, AudioChunk):
                call.send_event({"type": "got_audio", "samples": item.num_samples, "rate": item.sample_rate})
            else:
                call.send_event({"type": "got_dtmf", "digit": item.digit})
                if item.digit == "1":
                    await call.sink.send(tone(1.0, 22050))  # TTS rate; the sink resamples
                    call.sink.flush()
                elif item.digit == "2":
                    call.sink.clear()
                elif item.digit == "3":
                    await call.hangup("agent_ended")
    finally:
        seen.hangup_reason = call.hangup_reason
        await call.aclose()


@pytest.fixture
def server() -> Iterator[tuple[LiveServer, Recorded]]:
    app = Starlette(routes=[WebSocketRoute("/ws", handler)])
    app.state.seen = Recorded()
    with LiveServer(app) as live:
        yield live, app.state.seen


async def recv_json(ws: ClientConnection, within_s: float = 5.0) -> dict[str, Any]:
    """The next text frame (skipping audio)."""
    while True:
        msg = await asyncio.wait_for(ws.recv(), within_s)
        if isinstance(msg, str):
            data: dict[str, Any] = json.loads(msg)
            return data


async def start(ws: ClientConnection, rate: int = 16000) -> dict[str, Any]:
    await ws.send(json.dumps({"type": "start", "sample_rate": rate, "format": "s16le"}))
    return await recv_json(ws)


def test_parse_start_validates_everything() -> None:
    assert parse_start('{"type": "start", "sample_rate": 8000, "format": "s16le"}') == (8000, None)
    assert parse_start('{"type": "start", "sample_rate": 48000, "call_id": "abc"}') == (48000, "abc")
    for bad in [
        "not json",
        "[]",
        '{"type": "dtmf"}',
        '{"type": "start"}',
        '{"type": "start", "sample_rate": 7999}',
        '{"type": "start", "sample_rate": 48001}',
        '{"type": "start", "sample_rate": "16000"}',
        '{"type": "start", "sample_rate": true}',
        '{"type": "start", "sample_rate": 16000.5}',
        '{"type": "start", "sample_rate": 16000, "format": "f32le"}',
        '{"type": "start", "sample_rate": 16000, "call_id": ""}',
    ]:
        with pytest.raises(ValueError):
            parse_start(bad)


async def test_audio_in_and_ready(server: tuple[LiveServer, Recorded]) -> None:
    live, seen = server
    async with websockets.connect(f"{live.ws}/ws") as ws:
        ready = await start(ws, 8000)
        assert ready["type"] == "ready" and ready["call_id"] and ready["sample_rate"] == 8000
        samples = (np.arange(160) * 50).astype("<i2")
        await ws.send(samples.tobytes())
        got = await recv_json(ws)
        assert got == {"type": "got_audio", "samples": 160, "rate": 8000}
        await ws.send(b"\x01\x00" * 7)  # any size is fine
        assert (await recv_json(ws))["samples"] == 7
    await asyncio.sleep(0.3)
    first = seen.items[0]
    assert isinstance(first, AudioChunk) and np.array_equal(first.samples, samples)
    assert seen.items[-1] is None and seen.hangup_reason == "caller_disconnected"


async def test_outbound_audio_is_paced_20ms_frames_at_client_rate(
    server: tuple[LiveServer, Recorded],
) -> None:
    live, _seen = server
    async with websockets.connect(f"{live.ws}/ws") as ws:
        await start(ws, 16000)
        await ws.send(json.dumps({"type": "dtmf", "digit": "1"}))
        frames: list[bytes] = []
        loop = asyncio.get_running_loop()
        arrivals: list[float] = []
        while sum(len(f) for f in frames) < 2 * 16000 * 0.9:  # 0.9 s of the 1 s tone at 16 kHz s16
            msg = await asyncio.wait_for(ws.recv(), 5)
            if isinstance(msg, bytes):
                frames.append(msg)
                arrivals.append(loop.time())
    assert {len(f) for f in frames} == {640}  # 20 ms at 16 kHz
    audio = AudioChunk.from_bytes(b"".join(frames), 16000)
    assert audio.rms_dbfs() > -20  # the tone, not silence
    # Real-time pacing: ~1 s of audio cannot all arrive at once (generous bound for a busy machine).
    assert arrivals[-1] - arrivals[0] > 0.5


async def test_clear_stops_audio_and_tells_client(server: tuple[LiveServer, Recorded]) -> None:
    live, _seen = server
    async with websockets.connect(f"{live.ws}/ws") as ws:
        await start(ws)
        await ws.send(json.dumps({"type": "dtmf", "digit": "1"}))
        while not isinstance(await asyncio.wait_for(ws.recv(), 5), bytes):
            pass  # wait for the first audio frame
        await ws.send(json.dumps({"type": "dtmf", "digit": "2"}))
        audio_after_clear = 0
        got_clear = False
        try:
            while True:
                msg = await asyncio.wait_for(ws.recv(), 0.5)
                if isinstance(msg, bytes):
                    audio_after_clear += got_clear
                elif json.loads(msg)["type"] == "clear":
                    got_clear = True
        except TimeoutError:
            pass
    assert got_clear
    assert audio_after_clear == 0


async def test_bad_frames_get_errors_and_the_call_goes_on(server: tuple[LiveServer, Recorded]) -> None:
    live, seen = server
    async with websockets.connect(f"{live.ws}/ws") as ws:
        await start(ws)
        await ws.send(b"\x00\x01\x02")  # odd byte count
        err = await recv_json(ws)
        assert err["type"] == "error" and "3 bytes" in err["message"]
        for bad in [
            "{nope",
            json.dumps({"type": "dance"}),
            json.dumps({"type": "dtmf", "digit": "x"}),
            "[1]",
        ]:
            await ws.send(bad)
            assert (await recv_json(ws))["type"] == "error"
        await ws.send(json.dumps({"type": "dtmf", "digit": "#"}))
        assert await recv_json(ws) == {"type": "got_dtmf", "digit": "#"}
        await ws.send(b"\x00\x00" * 10)
        assert (await recv_json(ws))["type"] == "got_audio"
        await ws.send(json.dumps({"type": "hangup"}))
        await asyncio.wait_for(ws.wait_closed(), 5)
    assert seen.hangup_reason == "caller_hangup"
    assert [type(i).__name__ for i in seen.items] == ["Dtmf", "AudioChunk", "NoneType"]


@pytest.mark.parametrize(
    "first",
    [
        json.dumps({"type": "start", "sample_rate": 4000, "format": "s16le"}),
        json.dumps({"type": "start", "sample_rate": 16000, "format": "opus"}),
        json.dumps({"type": "hello"}),
        "garbage",
        b"\x00\x00",
    ],
)
async def test_bad_start_is_refused_with_1003(
    server: tuple[LiveServer, Recorded], first: str | bytes
) -> None:
    live, seen = server
    async with websockets.connect(f"{live.ws}/ws") as ws:
        await ws.send(first)
        err = await recv_json(ws)
        assert err["type"] == "error" and err["message"]
        await asyncio.wait_for(ws.wait_closed(), 5)
        assert ws.close_code == 1003
    assert len(seen.rejected) == 1


async def test_server_hangup_sends_reason_then_closes(server: tuple[LiveServer, Recorded]) -> None:
    live, seen = server
    async with websockets.connect(f"{live.ws}/ws") as ws:
        await start(ws)
        await ws.send(json.dumps({"type": "dtmf", "digit": "3"}))
        events = [await recv_json(ws), await recv_json(ws)]
        assert events == [{"type": "got_dtmf", "digit": "3"}, {"type": "hangup", "reason": "agent_ended"}]
        await asyncio.wait_for(ws.wait_closed(), 5)
        assert ws.close_code == 1000
    await asyncio.sleep(0.2)
    assert seen.hangup_reason == "agent_ended"
