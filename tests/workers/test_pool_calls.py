"""WebSocket calls whose conversations run in real job processes (loopback, stand-in conversation)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from ws_harness import LiveServer, tone

from voxline.agent.config import AgentConfig
from voxline.audio.pcm import AudioChunk
from voxline.calls import run_call
from voxline.conversation.metrics import NullRecorder
from voxline.node.config import WorkersConfig
from voxline.records import SqliteCallRecorder
from voxline.server.app import call_handler, create_app
from voxline.transports.base import CallIO, Dtmf, PacedSink
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


async def collect_until(ws: ClientConnection, kind: str, within_s: float = 15.0) -> list[dict[str, Any]]:
    """Every event up to and including the first of `kind` (audio skipped)."""
    events: list[dict[str, Any]] = []
    while not events or events[-1]["type"] != kind:
        msg = await asyncio.wait_for(ws.recv(), within_s)
        if isinstance(msg, str):
            events.append(json.loads(msg))
    return events


async def expect_closed(ws: ClientConnection, within_s: float = 10.0) -> None:
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), within_s)


async def talk_two_turns(ws: ClientConnection) -> None:
    await send_tone(ws, 2.2)
    turns = 0
    while turns < 2:
        turns += (await next_event(ws, "user_text")) is not None


async def test_kill_9_ends_only_that_call_and_keeps_its_turns(recorder: SqliteCallRecorder) -> None:
    from job_fakes import probe_time

    pool = make_pool(idle_processes=2)
    with serve(pool, recorder) as server:
        await until(lambda: pool.idle == 2)
        async with (
            websockets.connect(f"{server.ws}/ws/call") as victim,
            websockets.connect(f"{server.ws}/ws/call") as other,
        ):
            victim_id, other_id = await start_call(victim), await start_call(other)
            victim_pid = pool.pid_of(victim_id)
            assert victim_pid is not None and victim_pid != pool.pid_of(other_id)
            await talk_two_turns(victim)
            # the other call plays 3 s of paced audio; the victim's job is killed in the middle
            await other.send(json.dumps({"type": "dtmf", "digit": "6"}))
            arrivals: list[float] = []
            killed_at = None
            while len(arrivals) < 150:
                msg = await asyncio.wait_for(other.recv(), 10)
                if isinstance(msg, bytes) and probe_time(msg) is not None:
                    arrivals.append(time.monotonic())
                    if len(arrivals) == 50:
                        os.kill(victim_pid, signal.SIGKILL)
                        killed_at = len(arrivals)
            assert killed_at == 50
            events = await collect_until(victim, "hangup")
            assert {"type": "error", "message": "the call's worker process failed"} in events
            assert events[-1]["reason"] == "worker_crashed"
            await expect_closed(victim)
            gaps_ms = np.diff(arrivals) * 1000.0
            jitter = np.abs(gaps_ms - 20.0)
            print(
                f"\nother call's frames around the kill: p50 jitter {np.percentile(jitter, 50):.2f} ms, "
                f"p99 {np.percentile(jitter, 99):.2f} ms, max gap {gaps_ms.max():.1f} ms"
            )
            await other.send(json.dumps({"type": "dtmf", "digit": "#"}))
            assert (await next_event(other, "hangup"))["reason"] == "agent_ended"
        recorder.flush(5)
        victim_record = recorder.get_call(victim_id)
        assert victim_record is not None and victim_record["end_reason"] == "worker_crashed"
        assert len(victim_record["turns"]) == 2  # every finished turn survived its process
        other_record = recorder.get_call(other_id)
        assert other_record is not None and other_record["end_reason"] == "agent_ended"
        await until(lambda: pool.idle == 2 and pool.describe()["jobs"] == 0)
        assert pool.describe()["crashed"] == 1


async def test_a_job_that_breaks_the_protocol_is_killed(recorder: SqliteCallRecorder) -> None:
    pool = make_pool(idle_processes=1)
    with serve(pool, recorder) as server:
        await until(lambda: pool.idle == 1)
        async with websockets.connect(f"{server.ws}/ws/call") as ws:
            call_id = await start_call(ws)
            pid = pool.pid_of(call_id)
            await ws.send(json.dumps({"type": "dtmf", "digit": "7"}))  # a frame header over 1 MiB
            events = await collect_until(ws, "hangup")
            assert events[-1]["reason"] == "worker_crashed"
            await expect_closed(ws)
        assert pid is not None
        await until(lambda: str(pid) not in pool.describe()["jobs_rss_mb"])
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        assert pool.describe()["protocol_kills"] == 1
        recorder.flush(5)
        record = recorder.get_call(call_id)
        assert record is not None and record["end_reason"] == "worker_crashed"


async def test_memory_warns_then_ends_only_that_call(
    recorder: SqliteCallRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    pool = make_pool(idle_processes=2, job_memory_mb=950)
    with serve(pool, recorder) as server:
        await until(lambda: pool.idle == 2)
        async with (
            websockets.connect(f"{server.ws}/ws/call") as hog,
            websockets.connect(f"{server.ws}/ws/call") as other,
        ):
            hog_id, other_id = await start_call(hog), await start_call(other)
            hog_pid = pool.pid_of(hog_id)
            await hog.send(json.dumps({"type": "dtmf", "digit": "8"}))  # ~0.8 GB with the warm job: over 80 %
            await until(lambda: f"job {hog_pid} uses" in caplog.text)
            assert pool.pid_of(hog_id) == hog_pid  # warned, still running
            await hog.send(json.dumps({"type": "dtmf", "digit": "8"}))  # ~1.5 GB: over the limit
            events = await collect_until(hog, "hangup")
            assert events[-1]["reason"] == "memory_limit"
            assert any(e["type"] == "error" and "memory" in e["message"] for e in events)
            # the other call goes on: its audio still echoes
            await send_tone(other, 0.5)
            got = 0
            while got < 0.4 * RATE * 2:
                msg = await asyncio.wait_for(other.recv(), 10)
                got += len(msg) if isinstance(msg, bytes) else 0
            await other.send(json.dumps({"type": "hangup"}))
        recorder.flush(5)
        record = recorder.get_call(hog_id)
        assert record is not None and record["end_reason"] == "memory_limit"
        await until(lambda: recorder.get_call(other_id) is not None)
        assert pool.describe()["memory_kills"] == 1


class PhoneCall(CallIO):
    """A phone call (any CallIO) that presses `keys`, then stays on the line until hung up."""

    def __init__(self, call_id: str, keys: str) -> None:
        super().__init__(call_id, 8000, _NullSink(8000))
        self.keys = list(keys)
        self.hangups: list[str] = []
        self.transfers: list[str] = []
        self._hung_up = asyncio.Event()

    async def receive(self) -> AudioChunk | Dtmf | None:
        if self.keys:
            return Dtmf(self.keys.pop(0))
        await self._hung_up.wait()
        return None

    async def hangup(self, reason: str = "normal") -> None:
        self.hangups.append(reason)
        self.hangup_reason = self.hangup_reason or reason
        self._hung_up.set()

    async def transfer(self, target: str) -> bool:
        self.transfers.append(target)
        return True


class _NullSink(PacedSink):
    async def _emit(self, frame: AudioChunk) -> None:
        pass


async def test_phone_calls_from_any_way_in_run_in_jobs_too() -> None:
    """The telephony listeners' handler (`call_handler`) runs the call in a job with pipe media."""
    pool = make_pool(idle_processes=1)
    server = create_app(AgentConfig(name="phone agent"), recorder=NullRecorder(), workers=pool)
    async with server.router.lifespan_context(server):
        handler = call_handler(server, "audiosocket")
        ends, crashes = PhoneCall("phone-a", keys="12#"), PhoneCall("phone-b", keys="9")
        transfers = PhoneCall("phone-c", keys="3")
        ended = await run_call(ends, handler)
        crashed = await run_call(crashes, handler)
        transferred = await run_call(transfers, handler)
        assert pool.describe()["calls"] == 3
    assert ended is not None and ended.end_reason == "agent_ended" and ends.hangups == ["agent_ended"]
    # the conversation's own crash is contained in its job: the call ends "error", the job exits cleanly
    assert crashed is not None and crashed.end_reason == "error" and crashes.hangups == ["error"]
    # the job's transfer request reached the transport and its answer came back
    assert transfers.transfers == ["sip:desk"]
    assert transferred is not None and transferred.end_reason == "transferred"
    assert pool.describe()["crashed"] == 0


async def test_a_hung_job_is_killed_once_the_caller_has_left(
    recorder: SqliteCallRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from voxline.workers import bridge

    monkeypatch.setattr(bridge, "HANGUP_GRACE_S", 1.0)
    pool = make_pool(idle_processes=1)
    with serve(pool, recorder) as server:
        await until(lambda: pool.idle == 1)
        async with websockets.connect(f"{server.ws}/ws/call") as ws:
            call_id = await start_call(ws)
            await talk_two_turns(ws)
            await ws.send(json.dumps({"type": "dtmf", "digit": "4"}))  # the job's loop blocks for good
            await asyncio.sleep(0.5)
        await until(lambda: pool.pid_of(call_id) is None, within_s=20)  # the caller left: killed
        recorder.flush(5)
        record = recorder.get_call(call_id)
        assert record is not None and record["end_reason"] == "worker_crashed"
        assert len(record["turns"]) == 2


async def test_a_goodbye_asked_of_the_pool_ends_the_calls_in_jobs(recorder: SqliteCallRecorder) -> None:
    pool = make_pool(idle_processes=1)
    with serve(pool, recorder) as server:
        await until(lambda: pool.idle == 1)
        async with websockets.connect(f"{server.ws}/ws/call") as ws:
            call_id = await start_call(ws)
            await next_event(ws, "state")
            assert pool.request_goodbye("node_shutdown") == 1
            # the stand-in has no goodbye line: the job ends its call with the reason it was given
            assert (await next_event(ws, "hangup"))["reason"] == "node_shutdown"
        recorder.flush(5)
        await until(lambda: pool.pid_of(call_id) is None)
        record = recorder.get_call(call_id)
        assert record is not None and record["end_reason"] == "node_shutdown"
        assert pool.describe()["crashed"] == 0


async def test_past_max_jobs_a_call_is_refused_with_a_reason(recorder: SqliteCallRecorder) -> None:
    pool = make_pool(idle_processes=1, max_jobs=1)
    with serve(pool, recorder) as server:
        await until(lambda: pool.idle == 1)
        async with websockets.connect(f"{server.ws}/ws/call") as first:
            await start_call(first)
            await next_event(first, "state")
            assert pool.describe()["spawning"] == 0  # no replacement past max_jobs
            async with websockets.connect(f"{server.ws}/ws/call") as second:
                await start_call(second)
                events = await collect_until(second, "hangup")
                assert events[-1]["reason"] == "no_worker"
                assert any(e["type"] == "error" and "no worker" in e["message"] for e in events)
            await first.send(json.dumps({"type": "hangup"}))
        await until(lambda: pool.idle == 1)  # the slot freed: the pool is warm again
