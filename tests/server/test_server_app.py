"""The server app over real sockets (uvicorn on 127.0.0.1) with the stand-in conversation."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from ws_harness import EchoConversation, LiveServer, stand_in_engines, tone

from voxline.agent.config import AgentConfig
from voxline.conversation.metrics import NullRecorder
from voxline.engines.base import Engines
from voxline.records import SqliteCallRecorder
from voxline.server.app import create_app

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[SqliteCallRecorder]:
    rec = SqliteCallRecorder(tmp_path / "calls.sqlite3")
    yield rec
    rec.close()


@pytest.fixture
def live(recorder: SqliteCallRecorder) -> Iterator[LiveServer]:
    app = create_app(
        AgentConfig(name="test agent"),
        engines=stand_in_engines(),
        recorder=recorder,
        conversation_factory=EchoConversation,
    )
    with LiveServer(app) as server:
        yield server


async def next_event(ws: ClientConnection, kind: str, within_s: float = 10.0) -> dict[str, Any]:
    """Skip audio and other events until one of `kind` arrives."""
    while True:
        msg = await asyncio.wait_for(ws.recv(), within_s)
        if isinstance(msg, str):
            event: dict[str, Any] = json.loads(msg)
            if event["type"] == kind:
                return event


async def start_call(ws: ClientConnection, rate: int = 16000) -> str:
    await ws.send(json.dumps({"type": "start", "sample_rate": rate, "format": "s16le"}))
    ready = await next_event(ws, "ready")
    return str(ready["call_id"])


async def send_audio(ws: ClientConnection, seconds: float, rate: int = 16000) -> None:
    audio = tone(seconds, rate).to_bytes()
    frame = rate // 50 * 2
    for i in range(0, len(audio), frame):
        await ws.send(audio[i : i + frame])


async def test_health_page_and_static(live: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live.http) as http:
        await asyncio.sleep(0.1)  # the loop-lag monitor wakes every 10 ms
        health = (await http.get("/health")).json()
        lag = health.pop("event_loop_lag_ms")
        records, capacity, security = health.pop("records"), health.pop("capacity"), health.pop("security")
        load, drain = health.pop("load"), health.pop("drain")
        assert health == {"status": "ok", "models_ready": True, "agent": "test agent", "calls_active": 0}
        assert drain == {"state": "serving", "timeout_s": 300.0}
        # no node settings: calls alone, up to max_calls (what the server did before the load policy)
        assert (load["load"], load["threshold"], load["capacity_calls"]) == (0.0, 1.0, 50)
        assert (load["calls"], load["reserved"], load["cpu"], load["accepting"]) == (0, 0, None, True)
        assert load["load_fnc"] == "voxline.node.load.calls_load"
        assert records["ok"] is True and records["write_errors"] == 0
        assert capacity == {"max_calls": 50, "active": {}, "refused": {}}
        assert security == {"auth": "loopback-only", "tokens": False, "max_calls": 50}
        assert set(lag) == {"p50_ms", "p99_ms", "max_ms"}
        assert 0 <= lag["p50_ms"] <= lag["p99_ms"] <= lag["max_ms"] < 1000
        page = await http.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert 'id="call"' in page.text
        for asset in ("app.js", "style.css", "worklets.js"):
            assert (await http.get(f"/static/{asset}")).status_code == 200
        assert (await http.get("/calls/nope")).status_code == 404


async def test_call_echoes_records_and_exports_metrics(
    live: LiveServer, recorder: SqliteCallRecorder
) -> None:
    async with websockets.connect(f"{live.ws}/ws/call") as ws:
        call_id = await start_call(ws)
        assert (await next_event(ws, "state"))["state"] == "listening"
        await send_audio(ws, 2.1)
        user = await next_event(ws, "user_text")
        assert user["text"].startswith("heard 16000 samples")
        assert (await next_event(ws, "agent_text"))["text"] == "echo"
        assert (await next_event(ws, "metrics"))["voice_to_voice_ms"] == 640.0
        echoed = b""
        while len(echoed) < 16000:  # 0.5 s of our own tone comes back, paced, in 20 ms frames
            msg = await asyncio.wait_for(ws.recv(), 5)
            if isinstance(msg, bytes):
                assert len(msg) == 640
                echoed += msg
        assert np.abs(np.frombuffer(echoed, "<i2")).max() > 5000
        await ws.send(json.dumps({"type": "dtmf", "digit": "#"}))
        assert (await next_event(ws, "hangup"))["reason"] == "agent_ended"
        await asyncio.wait_for(ws.wait_closed(), 10)
        assert ws.close_code == 1000

    recorder.flush(5)
    async with httpx.AsyncClient(base_url=live.http) as http:
        calls = (await http.get("/calls")).json()
        assert [c["call_id"] for c in calls] == [call_id]
        record = (await http.get(f"/calls/{call_id}")).json()
        assert record["transport"] == "websocket" and record["agent"] == "test agent"
        assert record["end_reason"] == "agent_ended" and record["ended_at"] is not None
        assert [t["index"] for t in record["turns"]] == [0, 1]
        metrics = (await http.get("/metrics")).text
    assert "voxline_calls_total 1" in metrics
    assert "voxline_calls_active 0" in metrics
    assert "voxline_turn_voice_to_voice_seconds_count 2" in metrics
    assert 'voxline_turn_voice_to_voice_seconds_bucket{le="0.75"} 2' in metrics
    assert 'voxline_turn_voice_to_voice_seconds_bucket{le="0.5"} 0' in metrics
    assert "voxline_barge_in_stop_seconds_count 1" in metrics
    assert 'voxline_turn_stage_seconds_count{stage="stt"} 2' in metrics
    assert "voxline_event_loop_lag_p99_seconds " in metrics


async def test_a_crashing_call_does_not_affect_a_concurrent_call(live: LiveServer) -> None:
    async with (
        websockets.connect(f"{live.ws}/ws/call") as good,
        websockets.connect(f"{live.ws}/ws/call") as bad,
    ):
        await start_call(good)
        await start_call(bad)
        await send_audio(good, 0.2)
        await bad.send(json.dumps({"type": "dtmf", "digit": "9"}))  # the stand-in raises
        assert (await next_event(bad, "error"))["message"]
        assert (await next_event(bad, "hangup"))["reason"] == "error"
        await asyncio.wait_for(bad.wait_closed(), 10)

        # The good call still echoes and finishes normally.
        await send_audio(good, 1.0)
        assert (await next_event(good, "user_text"))["text"]
        got_audio = False
        while not got_audio:
            got_audio = isinstance(await asyncio.wait_for(good.recv(), 5), bytes)
        await good.send(json.dumps({"type": "dtmf", "digit": "#"}))
        assert (await next_event(good, "hangup"))["reason"] == "agent_ended"

    async with httpx.AsyncClient(base_url=live.http) as http:
        metrics = (await http.get("/metrics")).text
    assert "voxline_calls_total 2" in metrics and "voxline_call_errors_total 1" in metrics


async def test_caller_hangup_and_disconnect_end_the_conversation(live: LiveServer) -> None:
    async with websockets.connect(f"{live.ws}/ws/call") as ws:
        await start_call(ws)
        await ws.send(json.dumps({"type": "hangup"}))
        await asyncio.wait_for(ws.wait_closed(), 10)
    async with websockets.connect(f"{live.ws}/ws/call") as ws:
        await start_call(ws)
    for _ in range(100):
        if len(EchoConversation.instances) == 2 and all(c.done.is_set() for c in EchoConversation.instances):
            break
        await asyncio.sleep(0.05)
    assert all(c.done.is_set() for c in EchoConversation.instances)
    async with httpx.AsyncClient(base_url=live.http) as http:
        reasons = {c["end_reason"] for c in (await http.get("/calls")).json()}
        assert (await http.get("/health")).json()["calls_active"] == 0
    assert reasons == {"caller_hangup", "caller_disconnected"}


async def test_bad_start_is_refused_by_the_app(live: LiveServer) -> None:
    async with websockets.connect(f"{live.ws}/ws/call") as ws:
        await ws.send(json.dumps({"type": "start", "sample_rate": 96000}))
        assert (await next_event(ws, "error"))["message"]
        await asyncio.wait_for(ws.wait_closed(), 10)
        assert ws.close_code == 1003
    assert EchoConversation.instances == []


async def test_engines_factory_and_warm_up_run_once_at_startup() -> None:
    built: list[Engines] = []
    warmed: list[Engines] = []

    def factory() -> Engines:  # sync: runs in a thread
        built.append(stand_in_engines())
        return built[-1]

    async def warm_up(engines: Engines) -> None:
        warmed.append(engines)

    app = create_app(
        AgentConfig(),
        engines_factory=factory,
        warm_up=warm_up,
        recorder=NullRecorder(),
        conversation_factory=EchoConversation,
    )
    with LiveServer(app) as live:
        async with httpx.AsyncClient(base_url=live.http) as http:
            assert (await http.get("/health")).json()["models_ready"] is True
            assert (await http.get("/calls")).status_code == 404  # NullRecorder keeps no records
        async with websockets.connect(f"{live.ws}/ws/call") as ws:
            await start_call(ws)
    assert len(built) == 1 and warmed == built
    assert EchoConversation.instances[0].engines is built[0]


def test_create_app_needs_engines() -> None:
    with pytest.raises(ValueError, match="engines"):
        create_app(AgentConfig(), recorder=NullRecorder())
