"""WebSocket calls whose conversations run in real job processes (loopback, stand-in conversation)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from ws_harness import LiveServer, tone

from voxline.agent.config import AgentConfig
from voxline.node.config import WorkersConfig
from voxline.records import SqliteCallRecorder
from voxline.server.app import create_app
from voxline.workers.pool import WorkerPool

pytestmark = pytest.mark.timeout(180)
RATE = 16000
FRAME_BYTES = RATE // 50 * 2


def make_pool(**config: Any) -> WorkerPool:
    return WorkerPool(
        WorkersConfig(mode="process", **config),
        conversation_factory="job_fakes:JobEchoConversation",
        engines_factory="job_fakes:fake_engines",
        memory_check_s=0.2,
    )


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[SqliteCallRecorder]:
    rec = SqliteCallRecorder(tmp_path / "calls.sqlite3")
    yield rec
    rec.close()


def serve(pool: WorkerPool, recorder: SqliteCallRecorder) -> LiveServer:
    return LiveServer(create_app(AgentConfig(name="job agent"), recorder=recorder, workers=pool))


async def next_event(ws: ClientConnection, kind: str, within_s: float = 15.0) -> dict[str, Any]:
    while True:
        msg = await asyncio.wait_for(ws.recv(), within_s)
        if isinstance(msg, str):
            event: dict[str, Any] = json.loads(msg)
            if event["type"] == kind:
                return event


async def start_call(ws: ClientConnection) -> str:
    await ws.send(json.dumps({"type": "start", "sample_rate": RATE, "format": "s16le", "call_id": "mine"}))
    return str((await next_event(ws, "ready"))["call_id"])


async def send_tone(ws: ClientConnection, seconds: float, realtime: bool = False) -> None:
    audio = tone(seconds, RATE).to_bytes()
    for i in range(0, len(audio), FRAME_BYTES):
        await ws.send(audio[i : i + FRAME_BYTES])
        if realtime:
            await asyncio.sleep(0.02)


async def until(predicate: Any, within_s: float = 30.0) -> None:
    deadline = time.monotonic() + within_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_a_websocket_call_runs_in_a_job_and_the_pool_refills(
    recorder: SqliteCallRecorder,
) -> None:
    pool = make_pool(idle_processes=2)
    with serve(pool, recorder) as server:
        await until(lambda: pool.idle == 2)
        async with httpx.AsyncClient() as http:
            health = (await http.get(f"{server.http}/health")).json()
        assert health["workers"]["idle"] == 2 and health["workers"]["jobs"] == 0
        idle_pids = set(map(int, health["workers"]["jobs_rss_mb"]))
        async with websockets.connect(f"{server.ws}/ws/call") as ws:
            call_id = await start_call(ws)
            job_pid = pool.pid_of(call_id)
            assert job_pid in idle_pids and job_pid != os.getpid()  # a warm job took it
            await next_event(ws, "state")
            await send_tone(ws, 2.0)
            echoed, kinds = 0, []
            while echoed < 1.5 * RATE * 2:  # the job paced the echo back through the supervisor
                msg = await asyncio.wait_for(ws.recv(), 10)
                if isinstance(msg, bytes):
                    assert len(msg) == FRAME_BYTES
                    echoed += len(msg)
                else:
                    kinds.append(json.loads(msg)["type"])
            assert "user_text" in kinds and "metrics" in kinds  # the job's events reach the client
            await ws.send(json.dumps({"type": "dtmf", "digit": "#"}))  # the agent ends the call
            hangup = await next_event(ws, "hangup")
            assert hangup["reason"] == "agent_ended"
        await until(lambda: pool.pid_of(call_id) is None)
        recorder.flush(5)
        record = recorder.get_call(call_id)
        assert record is not None and record["end_reason"] == "agent_ended"
        assert record["label"] == "mine" and record["transport"] == "websocket"
        assert len(record["turns"]) == 2
        # single use: the job exits, and the pool is back to two warm jobs without it
        await until(lambda: pool.idle == 2 and str(job_pid) not in pool.describe()["jobs_rss_mb"])
        assert pool.describe()["spawned"] == 3 and pool.describe()["crashed"] == 0
        async with httpx.AsyncClient() as http:
            metrics = (await http.get(f"{server.http}/metrics")).text
        assert "voxline_calls_total 1" in metrics
