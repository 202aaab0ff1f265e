"""What a job process costs a call: the pipe's added latency per frame, warm-up and start-up times,
memory per idle job, and another call's send jitter while a job is killed with SIGKILL.

Calls are real WebSocket calls on loopback to the real server app; the conversation is the tests'
echo stand-in (tests/workers/job_fakes.py), which plays 150 probe frames whose samples carry the
monotonic time the job's paced sink let each one go. The supervisor's WebSocket sink reads the
stamp as it writes the frame: that difference is the pipe (job → supervisor → transport). The same
probe runs inline (no job) for the baseline.

    PYTHONPATH=src .venv/bin/python scripts/bench_job_pipe.py [--calls 5] [--real-agent]

`--real-agent` also starts a node for the default agent on `llm.engine: llama_server` and warms one
job with its real STT and TTS (the greeting rendered) to time a realistic warm-up and its memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "workers"), str(ROOT / "tests" / "server")]

from job_fakes import JobEchoConversation, probe_time  # noqa: E402
from ws_harness import LiveServer, stand_in_engines  # noqa: E402

from voxline.agent.config import AgentConfig  # noqa: E402
from voxline.calls.runner import CallContext  # noqa: E402
from voxline.node.config import WorkersConfig  # noqa: E402
from voxline.records import SqliteCallRecorder  # noqa: E402
from voxline.server.app import create_app  # noqa: E402
from voxline.transports import websocket as ws_transport  # noqa: E402
from voxline.transports.base import CallIO, PacedSink  # noqa: E402
from voxline.workers.pool import WorkerPool  # noqa: E402

RATE = 16000
PROBES = 150

# The supervisor side: when the WebSocket sink writes a probe frame, how long since the job (or the
# inline sink) let it go; and when each call's frames left, for send jitter.
pipe_ms: list[float] = []
sent_at: dict[int, list[float]] = {}
_original_emit = ws_transport.WebSocketSink._emit


async def _measured_emit(self: ws_transport.WebSocketSink, frame: Any) -> None:
    now = time.monotonic()
    stamp = probe_time(frame.to_bytes())
    if stamp is not None:
        pipe_ms.append((now - stamp) * 1000.0)
        sent_at.setdefault(id(self), []).append(now)
    await _original_emit(self, frame)


ws_transport.WebSocketSink._emit = _measured_emit  # type: ignore[method-assign]


def pct(values: list[float] | np.ndarray, q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if len(values) else float("nan")


async def start_call(ws: Any) -> str:
    await ws.send(json.dumps({"type": "start", "sample_rate": RATE, "format": "s16le"}))
    while True:
        msg = await ws.recv()
        if isinstance(msg, str) and json.loads(msg)["type"] == "ready":
            return str(json.loads(msg)["call_id"])


async def probe(ws: Any, kill: tuple[int, int] | None = None) -> list[float]:
    """Ask for the probe frames; return when each arrived at the client (kill (pid, at_frame))."""
    await ws.send(json.dumps({"type": "dtmf", "digit": "6"}))
    arrivals: list[float] = []
    while len(arrivals) < PROBES:
        msg = await asyncio.wait_for(ws.recv(), 15)
        if isinstance(msg, bytes) and probe_time(msg) is not None:
            arrivals.append(time.monotonic())
            if kill is not None and len(arrivals) == kill[1]:
                os.kill(kill[0], signal.SIGKILL)
    return arrivals


def jitter(times: list[float]) -> np.ndarray:
    return np.abs(np.diff(times) * 1000.0 - 20.0)


async def pipe_latency(server: LiveServer, calls: int) -> dict[str, float]:
    pipe_ms.clear()
    client_ms: list[float] = []
    for _ in range(calls):
        async with websockets.connect(f"{server.ws}/ws/call") as ws:
            await start_call(ws)
            await asyncio.sleep(0.3)
            arrivals = await probe(ws)
            client_ms += list(jitter(arrivals))
            await ws.send(json.dumps({"type": "hangup"}))
    return {
        "frames": len(pipe_ms),
        "pipe_p50_ms": pct(pipe_ms, 50),
        "pipe_p99_ms": pct(pipe_ms, 99),
        "pipe_max_ms": max(pipe_ms, default=float("nan")),
        "client_jitter_p99_ms": pct(client_ms, 99),
    }


async def kill_during_other_call(server: LiveServer, pool: WorkerPool, kill: bool = True) -> dict[str, float]:
    """Two calls; one plays the probe frames while the other's job is killed at the 50th (or not:
    the baseline)."""
    sent_at.clear()
    async with (
        websockets.connect(f"{server.ws}/ws/call") as victim,
        websockets.connect(f"{server.ws}/ws/call") as other,
    ):
        victim_id = await start_call(victim)
        await start_call(other)
        await asyncio.sleep(0.3)
        pid = pool.pid_of(victim_id)
        assert pid is not None
        arrivals = await probe(other, kill=(pid, 50) if kill else None)
        if not kill:
            await victim.send(json.dumps({"type": "hangup"}))
        await other.send(json.dumps({"type": "hangup"}))
    (other_sends,) = sent_at.values()
    return {
        "send_jitter_p50_ms": pct(jitter(other_sends), 50),
        "send_jitter_p99_ms": pct(jitter(other_sends), 99),
        "client_jitter_p99_ms": pct(jitter(arrivals), 99),
        "frames": len(arrivals),
    }


async def start_delays(server: LiveServer, pool: WorkerPool, calls: int) -> list[float]:
    pool.stats.start_delay_s.clear()
    for _ in range(calls):
        async with websockets.connect(f"{server.ws}/ws/call") as ws:
            await start_call(ws)
            while True:  # the conversation's first event: the job is running the call
                msg = await asyncio.wait_for(ws.recv(), 60)
                if isinstance(msg, str) and json.loads(msg)["type"] == "state":
                    break
            await ws.send(json.dumps({"type": "hangup"}))
        await refilled(pool)  # every call finds the pool as full as it keeps it
    return [delay for _cold, delay in pool.stats.start_delay_s]


async def refilled(pool: WorkerPool) -> None:
    for _ in range(600):
        if pool.idle >= pool.config.idle_processes:
            return
        await asyncio.sleep(0.1)


def make_pool(idle: int, **kwargs: Any) -> WorkerPool:
    return WorkerPool(
        WorkersConfig(mode="process", idle_processes=idle),
        conversation_factory="job_fakes:JobEchoConversation",
        engines_factory="job_fakes:fake_engines",
        **kwargs,
    )


async def real_agent_warm_up() -> dict[str, float]:
    from voxline.agent.config import load_agent

    agent = load_agent(None)
    agent = agent.model_copy(update={"llm": agent.llm.model_copy(update={"engine": "llama_server"})})
    pool = WorkerPool(WorkersConfig(mode="process", idle_processes=1, spawn_timeout_s=600), preload=agent)
    started = time.monotonic()
    await pool.start()
    took = time.monotonic() - started
    rss = list(pool.describe()["jobs_rss_mb"].values())
    warm_s = pool.stats.warm_s[0]
    # one call on the warm job: accepted → running (the greeting starts), then the caller leaves
    call = SilentCall()
    report = await pool.run(call, CallContext("websocket"), agent, on_started=call.leave_soon)
    await pool.stop()
    return {
        "node_start_s": took,
        "job_warm_s": warm_s,
        "rss_mb": rss[0] if rss else float("nan"),
        "accepted_to_running_s": pool.stats.start_delay_s[0][1],
        "end_reason": report.end_reason,
    }


class _NullSink(PacedSink):
    async def _emit(self, frame: Any) -> None:
        pass


class SilentCall(CallIO):
    """A caller who says nothing and leaves a second after the call is running."""

    def __init__(self) -> None:
        super().__init__("bench-real", 8000, _NullSink(8000))
        self._left = asyncio.Event()

    def leave_soon(self) -> None:
        asyncio.get_running_loop().call_later(1.0, self._left.set)

    async def receive(self) -> Any:
        await self._left.wait()
        return None

    async def hangup(self, reason: str = "normal") -> None:
        self.hangup_reason = self.hangup_reason or reason


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--real-agent", action="store_true")
    args = parser.parse_args()
    agent = AgentConfig(name="bench agent")
    results: dict[str, Any] = {"load_average": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        recorder = SqliteCallRecorder(Path(tmp) / "calls.sqlite3")
        inline = create_app(
            agent, engines=stand_in_engines(), recorder=recorder, conversation_factory=JobEchoConversation
        )
        with LiveServer(inline) as server:
            results["inline"] = await pipe_latency(server, args.calls)

        pool = make_pool(2)
        with LiveServer(create_app(agent, recorder=recorder, workers=pool)) as server:
            await refilled(pool)
            rss = list(pool.describe()["jobs_rss_mb"].values())
            results["process"] = await pipe_latency(server, args.calls)
            results["warm_start_s"] = await start_delays(server, pool, args.calls)
            results["no_kill"] = await kill_during_other_call(server, pool, kill=False)
            await refilled(pool)
            results["kill_9"] = await kill_during_other_call(server, pool)
            results["job_warm_s"] = list(pool.stats.warm_s)
            results["idle_job_rss_mb"] = rss

        cold = make_pool(0)
        with LiveServer(create_app(agent, recorder=recorder, workers=cold)) as server:
            results["cold_start_s"] = await start_delays(server, cold, max(2, args.calls // 2))
        recorder.close()
    if args.real_agent:
        results["real_agent"] = await real_agent_warm_up()
    print(json.dumps(results, indent=1, default=lambda v: round(float(v), 2)))
    summary = {
        "pipe added p50/p99 ms": (results["process"]["pipe_p50_ms"], results["process"]["pipe_p99_ms"]),
        "inline sink→transport p50/p99 ms": (
            results["inline"]["pipe_p50_ms"],
            results["inline"]["pipe_p99_ms"],
        ),
        "job spawn→warm s (p50)": pct(results["job_warm_s"], 50),
        "accepted→running warm p50/max s": (pct(results["warm_start_s"], 50), max(results["warm_start_s"])),
        "accepted→running cold p50/max s": (pct(results["cold_start_s"], 50), max(results["cold_start_s"])),
        "two calls, no kill: send jitter p50/p99 ms": (
            results["no_kill"]["send_jitter_p50_ms"],
            results["no_kill"]["send_jitter_p99_ms"],
        ),
        "other call send jitter during kill -9 p50/p99 ms": (
            results["kill_9"]["send_jitter_p50_ms"],
            results["kill_9"]["send_jitter_p99_ms"],
        ),
    }
    for key, value in summary.items():
        shown = tuple(round(v, 3) for v in value) if isinstance(value, tuple) else round(value, 3)
        print(f"{key}: {shown}")


if __name__ == "__main__":
    asyncio.run(main())
