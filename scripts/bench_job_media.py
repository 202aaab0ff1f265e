"""What running a phone call in a job process costs its media: echo round trip per frame, inline vs job.

A node (this process) answers with the echo stand-in conversation, either on its own event loop
(`inline`) or in a job process per call (`process`: the RTP socket / AudioSocket connection is
handed to the job). The callers run in a separate process so their timing is not disturbed by the
node: each streams 20 ms frames, one loud frame every 200 ms, and notes when each loud frame left
and when its echo arrived (raw arrival, before any jitter buffer). The round trip includes the
node's jitter buffer and pacing, identical in both modes, so `process` minus `inline` is what the
job costs per frame. With `--kill`, one call's job is killed with SIGKILL mid-call and the other
calls' echo is measured for gaps (send jitter as the peer sees it: each packet's arrival against
its RTP timestamp).

    .venv/bin/python scripts/bench_job_media.py [--calls 4] [--seconds 10] [--out out/job-media]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [
    str(ROOT / "scripts"),  # jobs import ProbeEcho from here by name
    str(ROOT / "tests"),
    str(ROOT / "tests" / "workers"),
    str(ROOT / "tests" / "server"),
]

from voxline.agent.config import AgentConfig, SipConfig  # noqa: E402
from voxline.audio.g711 import ulaw_decode  # noqa: E402
from voxline.audio.pcm import AudioChunk  # noqa: E402
from voxline.calls.runner import CallContext, CallRunner  # noqa: E402
from voxline.engines.base import Engines  # noqa: E402
from voxline.node.config import WorkersConfig  # noqa: E402
from voxline.telephony.audiosocket.server import AudioSocketServer  # noqa: E402
from voxline.telephony.job_bridge import run_with_own_media  # noqa: E402
from voxline.telephony.sip.endpoint import SipEndpoint  # noqa: E402
from voxline.transports.base import CallIO  # noqa: E402
from voxline.workers.pool import WorkerPool  # noqa: E402

RATE = 8000
FRAME = RATE // 50
BURST_EVERY = 10
"""A loud frame every 10 frames (200 ms); the echo of each is timed."""
LOUD = 2000
# Callers first send one loud frame every 200 ms until its echo comes back, and only then the timed
# stream. Audio sent while a call is being handed to its job waits in the socket and reaches the job
# at once when it starts: a conversation takes it in at once, but an echo would play it back late
# and keep that delay for the whole call, hiding the per-frame cost measured here. The start itself
# is reported apart: `first_echo` (answer to first echo) and the pool's `start_delay`.


def probe_audio(seconds: float) -> AudioChunk:
    frames = int(seconds * 50)
    samples = np.zeros(frames * FRAME, dtype=np.int16)
    t = np.arange(FRAME) / RATE
    burst = (8000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    for k in range(0, frames, BURST_EVERY):
        samples[k * FRAME : (k + 1) * FRAME] = burst
    return AudioChunk(samples, RATE)


def percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


def round_trips(sent: list[float], arrived: list[float]) -> list[float]:
    """For each loud frame sent, the first loud arrival after it (and before the next one left)."""
    out = []
    j = 0
    for i, t in enumerate(sent):
        limit = sent[i + 1] if i + 1 < len(sent) else float("inf")
        while j < len(arrived) and arrived[j] < t:
            j += 1
        if j < len(arrived) and arrived[j] < limit:
            out.append(1000 * (arrived[j] - t))
    return out


# ---------------------------------------------------------------------- the callers (child process)


class SipProbe:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.sent: list[float] = []
        self.loud_arrivals: list[float] = []
        self.arrivals: list[tuple[float, int]] = []
        self.ended_early = False
        self.talked = False
        self.first_echo_ms: float | None = None

    async def __call__(self, call: CallIO) -> None:
        session = call.session  # type: ignore[attr-defined]
        inner_datagram = session._on_datagram
        inner_emit = call.sink._emit

        def on_datagram(data: bytes, addr: tuple[str, int]) -> None:
            now = time.monotonic()
            if len(data) > 12 and data[1] & 0x7F == session.codec.payload_type:
                self.arrivals.append((now, int.from_bytes(data[4:8], "big")))
                if np.abs(ulaw_decode(data[12:])).max(initial=0) > LOUD:
                    self.loud_arrivals.append(now)
            inner_datagram(data, addr)

        async def emit(frame: AudioChunk) -> None:
            if np.abs(frame.samples).max(initial=0) > LOUD:
                self.sent.append(time.monotonic())
            await inner_emit(frame)

        session._on_datagram = on_datagram
        call.sink._emit = emit  # type: ignore[method-assign]
        drained = asyncio.ensure_future(self._talk(call))
        while await call.receive() is not None:
            pass
        self.ended_early = not self.talked
        await asyncio.sleep(0)
        drained.cancel()

    async def _talk(self, call: CallIO) -> None:
        answered = time.monotonic()
        while not self.loud_arrivals:  # one loud frame until it comes back: the agent is up
            await call.sink.send(probe_audio(0.2))
            await call.sink.drain()
            await asyncio.sleep(0.2)
            if time.monotonic() - answered > 15:
                raise TimeoutError("no echo within 15 s")
        self.first_echo_ms = 1000 * (self.loud_arrivals[0] - answered)
        await _quiet(lambda: self.loud_arrivals[-1])
        self.sent.clear()
        self.loud_arrivals.clear()
        self.arrivals.clear()
        await call.sink.send(probe_audio(self.seconds))
        await call.sink.drain()
        await asyncio.sleep(0.5)
        self.talked = True
        await call.hangup("caller_done")

    def result(self) -> dict[str, Any]:
        rtt = round_trips(self.sent, self.loud_arrivals)
        lateness: list[float] = []
        if len(self.arrivals) > 1:
            t0, ts0 = self.arrivals[0]
            raw = [(t - t0) - ((ts - ts0) & 0xFFFFFFFF) / RATE for t, ts in self.arrivals]
            floor = min(raw)
            lateness = [1000 * (x - floor) for x in raw]
        return {
            "ended_early": self.ended_early,
            "rtt_ms": rtt,
            "arrival_jitter_ms": lateness,
            "first_echo_ms": self.first_echo_ms,
        }


async def sip_callers(port: int, calls: int, seconds: float) -> list[dict[str, Any]]:
    config = SipConfig(host="127.0.0.1", port=0, transports=["udp"], user="caller", codecs=["PCMU"])
    config = config.model_copy(update={"rtp_port_min": 0, "rtp_port_max": 0, "jitter_buffer_ms": 20})
    probes = [SipProbe(seconds) for _ in range(calls)]
    endpoint = SipEndpoint(config, probes[0])
    await endpoint.start()
    try:
        tasks = []
        for probe in probes:
            tasks.append(
                asyncio.create_task(endpoint.call(f"sip:echo@127.0.0.1:{port}", probe, timeout_s=10))
            )
            await asyncio.sleep(0.2)
        await asyncio.gather(*tasks)
    finally:
        await endpoint.stop()
    return [p.result() for p in probes]


async def audiosocket_callers(port: int, calls: int, seconds: float) -> list[dict[str, Any]]:
    from telephony.asterisk_audiosocket import AsteriskAudioSocket

    async def one() -> dict[str, Any]:
        sent: list[float] = []
        async with AsteriskAudioSocket(port) as ast:
            connected = time.monotonic()
            burst = probe_audio(0.02).to_bytes()
            while not any(_loud(r.payload) for r in ast.audio_frames):  # wait for the agent
                await ast.send_raw(bytes([0x10]) + len(burst).to_bytes(2, "big") + burst)
                await asyncio.sleep(0.2)
                if time.monotonic() - connected > 15:
                    raise TimeoutError("no echo within 15 s")
            first_echo_ms = 1000 * (next(r.at for r in ast.audio_frames if _loud(r.payload)) - connected)
            await _quiet(lambda: max(r.at for r in ast.audio_frames if _loud(r.payload)))
            skip = len(ast.audio_frames)
            audio = probe_audio(seconds).to_bytes()
            step = 2 * FRAME
            start = time.monotonic()
            for n, offset in enumerate(range(0, len(audio), step)):
                payload = audio[offset : offset + step]
                if n % BURST_EVERY == 0:
                    sent.append(time.monotonic())
                await ast.send_raw(bytes([0x10]) + len(payload).to_bytes(2, "big") + payload)
                await asyncio.sleep(max(0.0, start + (n + 1) * 0.02 - time.monotonic()))
            await asyncio.sleep(0.5)
            frames = ast.audio_frames[skip:]
            loud = [r.at for r in frames if _loud(r.payload)]
            arrivals = [r.at for r in frames]
        gaps = [1000 * (b - a) for a, b in itertools.pairwise(arrivals)]
        return {
            "ended_early": False,
            "rtt_ms": round_trips(sent, loud),
            "frame_gap_ms": gaps,
            "first_echo_ms": first_echo_ms,
        }

    tasks = []
    for _ in range(calls):
        tasks.append(asyncio.create_task(one()))
        await asyncio.sleep(0.2)
    return list(await asyncio.gather(*tasks))


async def _quiet(last_loud: Any, for_s: float = 0.5, within_s: float = 10.0) -> None:
    """Wait until no loud echo came for `for_s`: what queued up during the start has played out."""
    deadline = time.monotonic() + within_s
    while time.monotonic() - last_loud() < for_s and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)


def _loud(pcm: bytes) -> bool:
    return bool(np.abs(np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2")).max(initial=0) > LOUD)


def caller_main(args: argparse.Namespace) -> None:
    run = sip_callers if args.transport == "sip" else audiosocket_callers
    results = asyncio.run(run(args.port, args.calls, args.seconds))
    print(json.dumps(results))


# ---------------------------------------------------------------------- the node (this process)


def echo_agent() -> AgentConfig:
    return AgentConfig(name="echo")


class ProbeEcho:
    """A conversation stand-in that writes each loud frame straight back to the wire and nothing
    else. It skips the sink's 20 ms pacing on purpose: the tick's phase against the caller's would
    add a fixed 0-20 ms per call, whatever the way in, and a queue would turn one early stall into
    an offset for the rest of the call (a plain echo does both). What is left is the media path:
    socket, jitter buffer, the conversation's `receive()`, the transport's write."""

    def __init__(self, call: CallIO, agent: AgentConfig, engines: Any, **kwargs: Any) -> None:
        from voxline.conversation.metrics import CallReport

        self.call = call
        self.report = CallReport(call.call_id, agent.name, str(kwargs.get("transport")), time.time())
        self.tool_log: list[dict[str, Any]] = []

    async def run(self) -> Any:
        while (item := await self.call.receive()) is not None:
            if isinstance(item, AudioChunk) and np.abs(item.samples).max(initial=0) > LOUD:
                await self.call.sink._emit(item)
        self.report.end_reason = self.call.hangup_reason or "caller_hangup"
        self.report.ended_at = time.time()
        return self.report


async def run_point(
    mode: str, transport: str, calls: int, seconds: float, kill: bool, paced: bool = False
) -> dict[str, Any]:
    from ws_harness import EchoConversation

    # the kill runs need a continuous, paced echo (gaps show); the latency runs the probe echo
    paced = paced or kill
    conversation: Any = EchoConversation if paced else ProbeEcho

    agent = echo_agent()
    pool: WorkerPool | None = None
    if mode == "process":
        pool = WorkerPool(
            WorkersConfig(mode="process", idle_processes=calls + 1),
            conversation_factory="job_fakes:JobEchoConversation" if paced else "bench_job_media:ProbeEcho",
            engines_factory="job_fakes:fake_engines",
        )
        await pool.start()
        deadline = time.monotonic() + 180
        while pool.idle < calls + 1 and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)  # every call gets a warm job (the start measured is a warm one)
        workers = pool

        async def handler(call: CallIO) -> Any:
            async def in_job(call: CallIO, media: Any = None) -> Any:
                return await workers.run(call, CallContext(transport), agent, media=media)

            return await run_with_own_media(call, in_job)

    else:
        engines = Engines(vad=None, stt=None, llm=None, tts=None)  # type: ignore[arg-type]
        runner = CallRunner(agent, engines, make_conversation=conversation)
        handler = runner.handler(CallContext(transport))

    in_jobs = mode == "process"
    sip: SipEndpoint | None = None
    audiosocket: AudioSocketServer | None = None
    if transport == "sip":
        config = SipConfig(host="127.0.0.1", port=0, transports=["udp"], max_calls=100)
        sip = SipEndpoint(config.model_copy(update={"rtp_port_min": 0, "rtp_port_max": 0}), handler)
        sip.media_in_jobs = in_jobs
        await sip.start()
        port = sip.local_port("udp")
    else:
        audiosocket = AudioSocketServer("127.0.0.1", 0, handler, max_calls=100)
        audiosocket.media_in_jobs = in_jobs
        await audiosocket.start()
        port = audiosocket.port
    killed: list[int] = []

    async def kill_one() -> None:
        assert pool is not None and sip is not None
        while len(sip.calls) < calls:  # noqa: ASYNC110 - polling the endpoint's table is enough here
            await asyncio.sleep(0.05)
        await asyncio.sleep(2.0 + seconds / 2)
        calls_now = list(sip.calls.values())
        if not calls_now:
            return
        pid = pool.pid_of(calls_now[0].call_id)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    killer = asyncio.create_task(kill_one()) if kill else None
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "caller", "--transport", transport, "--port", str(port),
        "--calls", str(calls), "--seconds", str(seconds),
        stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )  # fmt: skip
    out, _ = await proc.communicate()
    if killer is not None:
        await killer
    results: list[dict[str, Any]] = json.loads(out)
    if sip is not None:
        await sip.stop()
    if audiosocket is not None:
        await audiosocket.stop()
    if pool is not None:
        await pool.stop()
    start_delays = [1000 * d for _, d in pool.stats.start_delay_s] if pool is not None else []
    survivors = [r for r in results if not r["ended_early"]]
    rtt = [x for r in survivors for x in r["rtt_ms"]]
    jitter = [x for r in survivors for x in r.get("arrival_jitter_ms", [])]
    gaps = [x for r in survivors for x in r.get("frame_gap_ms", [])]
    first_echo = [r["first_echo_ms"] for r in results if r.get("first_echo_ms") is not None]
    return {
        "mode": mode,
        "transport": transport,
        "calls": calls,
        "echo": "paced" if paced else "probe",
        "killed_jobs": len(killed),
        "calls_cut_short": len(results) - len(survivors),
        # the media path's round trip (probe echo); the kill run's echo is paced, so not comparable
        "echo_rtt_ms_p50": None if paced else percentile(rtt, 50),
        "echo_rtt_ms_p99": None if paced else percentile(rtt, 99),
        "frames_timed": 0 if paced else len(rtt),
        # the continuous (paced) echo of the kill runs, as the peer sees it
        "arrival_jitter_ms_p50": percentile(jitter, 50) if paced else None,
        "arrival_jitter_ms_p99": percentile(jitter, 99) if paced else None,
        "packets_timed": len(jitter) if paced else 0,
        "frame_gap_ms_p99": percentile(gaps, 99),
        "frame_gap_ms_max": round(max(gaps), 3) if gaps else None,
        "first_echo_ms_p50": percentile(first_echo, 50),
        "first_echo_ms_max": round(max(first_echo), 1) if first_echo else None,
        "start_delay_ms_p50": percentile(start_delays, 50),
        "start_delay_ms_max": round(max(start_delays), 1) if start_delays else None,
    }


async def node_main(args: argparse.Namespace) -> None:
    points = []
    for transport in args.transports.split(","):
        for mode in ("inline", "process"):
            point = await run_point(mode, transport, args.calls, args.seconds, kill=False)
            points.append(point)
            print(json.dumps(point), flush=True)
    if "sip" in args.transports:  # the same paced echo with and without a job killed mid-call
        for kill in (False, True):
            point = await run_point("process", "sip", args.calls, args.seconds, kill=kill, paced=True)
            points.append(point)
            print(json.dumps(point), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "job_media.json").write_text(json.dumps({"cpus": os.cpu_count(), "points": points}, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command")
    caller = sub.add_parser("caller")
    caller.add_argument("--transport", choices=["sip", "audiosocket"], required=True)
    caller.add_argument("--port", type=int, required=True)
    caller.add_argument("--calls", type=int, default=4)
    caller.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--calls", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--transports", default="sip,audiosocket")
    parser.add_argument("--out", type=Path, default=Path("out/job-media"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.command == "caller":
        caller_main(args)
    else:
        asyncio.run(node_main(args))


if __name__ == "__main__":
    main()
