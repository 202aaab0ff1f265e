"""Barge-in over real SIP/RTP: sipp interrupts an agent that is talking, and the agent stops at once.

The agent plays a 6 s prompt when the call starts. sipp stays silent for 1.5 s, then plays recorded
speech (g711a.pcap). A plain energy detector on the inbound audio calls `sink.clear()`; from then on
no more RTP may leave for the caller, and the call ends with sipp's BYE.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from telephony.peers.sipp import PCAPS, SCENARIOS, SIPP, run_sipp
from telephony.rtp.pcap import udp_payloads
from voxline.agent.config import SipConfig
from voxline.audio.g711 import alaw_decode
from voxline.audio.pcm import AudioChunk
from voxline.telephony.rtp.call import RtpCall
from voxline.telephony.sip.endpoint import SipEndpoint
from voxline.telephony.sip.transaction import Timers
from voxline.transports.base import CallIO

pytestmark = [
    pytest.mark.skipif(SIPP is None, reason="sipp (Debian sip-tester) is not installed"),
    pytest.mark.timeout(60),
]

PROMPT_S = 6.0
SPEECH_RMS = 300.0
"""g711a.pcap opens with ~0.6 s of line noise at RMS ~8; its speech is at RMS 100-1500."""
LOUD_CHUNKS = 2
"""Consecutive loud chunks that count as the caller speaking (one click is not speech)."""


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if samples.size else 0.0


def speech_onset_in_pcap(path: Path) -> float:
    """Seconds from the pcap's first RTP packet to its first loud one (what the detector reacts to)."""
    packets = udp_payloads(path)
    start = packets[0][0]
    for captured_at, datagram in packets:
        if rms(alaw_decode(datagram[12:])) > SPEECH_RMS:
            return captured_at - start
    raise AssertionError("no speech in the pcap")


def tone(seconds: float, rate: int = 8000, hz: float = 440.0) -> AudioChunk:
    t = np.arange(int(seconds * rate)) / rate
    return AudioChunk((np.sin(2 * np.pi * hz * t) * 8000).astype(np.int16), rate)


class BargeInAgent:
    """Talks when the call starts; stops talking (sink.clear) as soon as the caller speaks."""

    def __init__(self) -> None:
        self.first_packet_at: float | None = None
        """When the first caller RTP packet reached our socket (polled from the session's counters)."""
        self.first_loud_chunk_at: float | None = None
        self.cleared_at: float | None = None
        self.dropped_s = 0.0
        self.packets_out_at_clear = 0
        self.packets_out_soon_after: int | None = None
        self.packets_out_at_end = 0
        self.hangup_reason: str | None = None

    async def __call__(self, call: CallIO) -> None:
        assert isinstance(call, RtpCall)
        stats = call.session.stats
        watcher = asyncio.create_task(self._watch_first_packet(call))
        await call.sink.send(tone(PROMPT_S))
        call.sink.flush()
        loud = 0
        try:
            while (item := await call.receive()) is not None:
                if not isinstance(item, AudioChunk):
                    continue
                if rms(item.samples) <= SPEECH_RMS:
                    loud = 0
                    continue
                loud += 1
                if self.first_loud_chunk_at is None:
                    self.first_loud_chunk_at = time.monotonic()
                if loud >= LOUD_CHUNKS and self.cleared_at is None and call.sink.is_playing:
                    self.dropped_s = call.sink.clear()
                    self.cleared_at = time.monotonic()
                    self.packets_out_at_clear = stats.packets_out
                    asyncio.get_running_loop().call_later(0.2, self._sample_soon_after, call)
        finally:
            watcher.cancel()
            self.packets_out_at_end = stats.packets_out
            self.hangup_reason = call.hangup_reason

    def _sample_soon_after(self, call: RtpCall) -> None:
        self.packets_out_soon_after = call.session.stats.packets_out

    async def _watch_first_packet(self, call: RtpCall) -> None:
        # the session counts packets but has no event for the first one: poll it finely
        while call.session.stats.packets_in == 0:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        self.first_packet_at = time.monotonic()


@pytest.fixture
async def endpoint() -> AsyncIterator[SipEndpoint]:
    config = SipConfig(host="127.0.0.1", port=0, transports=["udp"])
    config = config.model_copy(update={"rtp_port_min": 0, "rtp_port_max": 0})
    endpoint = SipEndpoint(config, BargeInAgent(), timers=Timers(t1=0.1, t2=0.4, t4=0.5))
    await endpoint.start()
    try:
        yield endpoint
    finally:
        await endpoint.stop()


async def test_caller_speech_stops_the_agent_talking(endpoint: SipEndpoint, tmp_path: Path) -> None:
    agent = endpoint.on_call
    assert isinstance(agent, BargeInAgent)
    target = f"127.0.0.1:{endpoint.local_port('udp')}"
    scenario = str(SCENARIOS / "barge_in_uac.xml")
    result = await run_sipp(tmp_path, target, "-sf", scenario, with_pcaps=True, timeout_s=30)
    assert result.returncode == 0, result.explain()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while endpoint.active_calls or agent.hangup_reason is None:
        assert loop.time() < deadline, "the call did not end after sipp's BYE"
        await asyncio.sleep(0.02)
    assert agent.hangup_reason == "caller_hangup"

    assert agent.first_packet_at is not None and agent.cleared_at is not None
    assert agent.first_loud_chunk_at is not None
    # sipp replays the pcap on its capture timing, so its first loud packet reached us this long
    # after its first packet: the agent must not stop before that, and must stop soon after.
    speech_arrived_at = agent.first_packet_at + speech_onset_in_pcap(PCAPS / "g711a.pcap")
    reaction_s = agent.cleared_at - speech_arrived_at
    assert -0.05 < reaction_s < 0.4, f"cleared {reaction_s:.3f} s after the caller started speaking"
    assert agent.cleared_at - agent.first_loud_chunk_at < 0.1  # the detector itself is quick

    # it was talking (about 2 s of the prompt had gone out) and most of the prompt was never sent
    assert agent.packets_out_at_clear > 50
    assert agent.dropped_s > 2.0
    # and not one more packet of it left: RTP stopped with the clear and stayed stopped
    assert agent.packets_out_soon_after is not None
    assert agent.packets_out_soon_after - agent.packets_out_at_clear <= 1
    assert agent.packets_out_at_end == agent.packets_out_soon_after
    assert agent.packets_out_at_end < PROMPT_S / 0.020 * 0.6
