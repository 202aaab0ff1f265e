"""Phone calls answered by `serve` in process mode: each call's media goes to a real job process.

The supervisor keeps SIP signalling and the AudioSocket accept; the job (the pool's stand-in echo
conversation, no models) owns the RTP socket or the TCP connection. Peers are sipp, voxline's own
SIP user agent and the Asterisk AudioSocket simulator, all on loopback.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ws_harness import LiveServer

from telephony.asterisk_audiosocket import AsteriskAudioSocket, speech_clip
from telephony.sip.conftest import SCENARIOS, needs_sipp, run_sipp, sip_config
from voxline.agent.config import AgentConfig, AudioSocketConfig, TelephonyConfig
from voxline.audio.pcm import AudioChunk
from voxline.node.config import WorkersConfig
from voxline.records import SqliteCallRecorder
from voxline.server.app import create_app
from voxline.server.telephony import TelephonyService
from voxline.telephony.rtp.handoff import JobRtpSession
from voxline.telephony.sip.endpoint import SipEndpoint
from voxline.transports.base import CallIO
from voxline.workers.pool import WorkerPool

pytestmark = [needs_sipp, pytest.mark.timeout(180)]


def make_pool(idle: int = 2) -> WorkerPool:
    return WorkerPool(
        WorkersConfig(mode="process", idle_processes=idle),
        conversation_factory="job_fakes:JobEchoConversation",
        engines_factory="job_fakes:fake_engines",
    )


class Node:
    def __init__(
        self, server: LiveServer, service: TelephonyService, pool: WorkerPool, recorder: Any
    ) -> None:
        self.server, self.service, self.pool, self.recorder = server, service, pool, recorder

    @property
    def sip_port(self) -> int:
        assert self.service.sip is not None
        return self.service.sip.local_port("udp")

    def record(self, call_id: str) -> dict[str, Any]:
        self.recorder.flush(5)
        record = self.recorder.get_call(call_id)
        assert record is not None, call_id
        return dict(record)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    telephony = TelephonyConfig(
        sip=sip_config(transports=["udp"]), audiosocket=AudioSocketConfig(enabled=True, port=0)
    )
    agent = AgentConfig(name="job agent", telephony=telephony)
    pool = make_pool()
    recorder = SqliteCallRecorder(tmp_path / "calls.sqlite3")
    service = TelephonyService(agent)
    app = create_app(agent, recorder=recorder, workers=pool, services=[service])
    try:
        with LiveServer(app) as server:
            deadline = time.monotonic() + 60
            while pool.idle < 2:
                assert time.monotonic() < deadline, "the pool did not warm up"
                time.sleep(0.05)
            yield Node(server, service, pool, recorder)
    finally:
        recorder.close()


async def until(predicate: Any, within_s: float = 20.0) -> None:
    deadline = time.monotonic() + within_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def tone(seconds: float, rate: int = 8000, level: int = 8000) -> AudioChunk:
    t = np.arange(int(seconds * rate)) / rate
    return AudioChunk((level * np.sin(2 * np.pi * 440 * t)).astype(np.int16), rate)


class EchoedCaller:
    """Our SIP UA as the caller: talks for `seconds`, notes when each echoed RTP packet arrives
    (raw, before any jitter buffer), presses `#` (RFC 4733) and waits for the agent's BYE."""

    def __init__(self, seconds: float, press: str | None = "#") -> None:
        self.seconds = seconds
        self.press = press
        self.arrivals: list[tuple[float, int, bytes]] = []
        self.heard = 0
        self.call_id: str | None = None

    async def __call__(self, call: CallIO) -> None:
        session = call.session  # type: ignore[attr-defined]
        inner = session._on_datagram

        def on_datagram(data: bytes, addr: tuple[str, int]) -> None:
            if len(data) > 12 and data[1] & 0x7F == session.codec.payload_type:
                self.arrivals.append((time.monotonic(), int.from_bytes(data[4:8], "big"), data[12:]))
            inner(data, addr)

        session._on_datagram = on_datagram

        async def listen() -> None:
            while (item := await call.receive()) is not None:
                if isinstance(item, AudioChunk) and np.abs(item.samples).max(initial=0) > 2000:
                    self.heard += item.num_samples

        listener = asyncio.create_task(listen())
        await call.sink.send(tone(self.seconds))
        await call.sink.drain()
        await asyncio.sleep(0.5)
        if self.press:
            assert await call.send_dtmf(self.press)
        try:
            await asyncio.wait_for(listener, 10)  # the agent hangs up: BYE from the supervisor
        except TimeoutError:
            listener.cancel()

    def send_jitter_ms(self) -> list[float]:
        """How late each echoed packet arrived against its RTP timestamp (the sender's clock),
        relative to the earliest: the echo's send jitter as the peer sees it."""
        voiced = [(t, ts) for t, ts, payload in self.arrivals if max(payload, default=0xFF) != min(payload)]
        if len(voiced) < 2:
            return []
        t0, ts0 = voiced[0]
        lateness = [(t - t0) - ((ts - ts0) & 0xFFFFFFFF) / 8000 for t, ts in voiced]
        floor = min(lateness)
        return [1000 * (x - floor) for x in lateness]


async def place(node: Node, caller: EchoedCaller) -> str:
    config = sip_config(transports=["udp"], user="caller")
    endpoint = SipEndpoint(config, caller)
    await endpoint.start()
    try:
        return await endpoint.call(f"sip:agent@127.0.0.1:{node.sip_port}", caller, timeout_s=10)
    finally:
        await endpoint.stop()


def latest_call(node: Node) -> str:
    assert node.service.sip is not None
    (call,) = node.service.sip.calls.values()
    assert isinstance(call.session, JobRtpSession)
    return call.call_id


async def test_a_sip_call_is_answered_by_a_job_that_owns_its_rtp(node: Node) -> None:
    caller = EchoedCaller(seconds=3.0)
    placing = asyncio.create_task(place(node, caller))
    await until(lambda: node.service.sip is not None and len(node.service.sip.calls) == 1)
    call_id = latest_call(node)
    await until(lambda: node.pool.pid_of(call_id) is not None)
    job_pid = node.pool.pid_of(call_id)
    assert job_pid is not None and job_pid != os.getpid()
    reason = await placing
    assert reason == "caller_hangup", reason  # for our UA the far end hung up: the supervisor's BYE
    assert caller.heard >= 8000 * 2.5  # the job echoed the caller's tone back on its own socket
    record = node.record(call_id)
    assert record["transport"] == "sip" and record["end_reason"] == "agent_ended"
    assert len(record["turns"]) >= 2  # the stand-in writes a turn per second of caller audio


async def test_sip_info_dtmf_reaches_the_job(node: Node, tmp_path: Path) -> None:
    # INFO "#" makes the job's agent hang up: the scenario passes only if the BYE then comes
    scenario = str(SCENARIOS / "routed_hangup_by_agent_uac.xml")
    result = await run_sipp(tmp_path, f"127.0.0.1:{node.sip_port}", "-sf", scenario)
    assert result.returncode == 0, result.explain()
    node.recorder.flush(5)
    (record,) = node.recorder.list_calls()
    assert record["transport"] == "sip" and record["end_reason"] == "agent_ended", record


async def test_kill_9_of_a_job_sends_its_caller_a_bye_and_spares_the_other_call(
    node: Node, tmp_path: Path
) -> None:
    other = EchoedCaller(seconds=8.0)
    other_call = asyncio.create_task(place(node, other))
    await until(lambda: node.service.sip is not None and len(node.service.sip.calls) == 1)
    scenario = str(SCENARIOS / "uac_waits_for_bye.xml")
    victim = asyncio.create_task(
        run_sipp(tmp_path, f"127.0.0.1:{node.sip_port}", "-sf", scenario, with_pcaps=True)
    )
    assert node.service.sip is not None
    await until(lambda: len(node.service.sip.calls) == 2)
    await asyncio.sleep(1.5)  # both calls talking
    calls = list(node.service.sip.calls.values())
    victim_call = next(c for c in calls if "sipp" in c.dialog.remote_party)
    pid = node.pool.pid_of(victim_call.call_id)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    result = await victim
    assert result.returncode == 0, result.explain()  # sipp received the supervisor's BYE
    assert "worker_crashed" in result.log("messages.log")
    assert node.record(victim_call.call_id)["end_reason"] == "worker_crashed"
    assert await other_call == "caller_hangup"  # the other call went on to its own end (agent's BYE)
    assert other.heard >= 8000 * 7.0
    jitter = other.send_jitter_ms()
    p99 = float(np.percentile(jitter, 99))
    print(f"other call's echo: {len(jitter)} packets, send jitter p50 {statistics.median(jitter):.2f} ms,"
          f" p99 {p99:.2f} ms, max {max(jitter):.2f} ms")  # fmt: skip
    assert len(jitter) > 300


async def test_an_audiosocket_call_runs_in_a_job(node: Node) -> None:
    assert node.service.audiosocket is not None
    port = node.service.audiosocket.port
    async with AsteriskAudioSocket.application_form(port) as ast:
        sent = await ast.stream(speech_clip(8000, 1.0))
        await until(lambda: len(ast.sound_frames) >= sent, 5)
        assert b"".join(f.payload for f in ast.sound_frames) == b"".join(ast.sent_audio)
        await ast.send_dtmf("#")
        assert await ast.wait_ended(10)
    assert ast.end_reason in ("hangup", "closed"), ast.end_reason
    assert ast.end_reason != "timeout"
