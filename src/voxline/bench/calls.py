"""Placing scripted calls into the agent under test, over SIP/RTP or the WebSocket, one or many at once."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from voxline.agent.config import SipConfig
from voxline.bench.caller import ScriptedCaller
from voxline.bench.processes import AgentTarget
from voxline.bench.utterances import Utterance
from voxline.bench.ws_client import WebSocketCallerCall
from voxline.telephony.rtp.call import RtpCall
from voxline.telephony.sip.endpoint import SipEndpoint
from voxline.transports.base import FRAME_S, CallIO

log = logging.getLogger(__name__)

CALLER_JITTER_BUFFER_MS = 40
"""The caller's own jitter buffer, like a phone's (it adds to the caller-side voice-to-voice)."""
STAGGER_S = 0.5
"""Gap between the starts of concurrent calls, so their order matches the server's records."""
SETUP_TIMEOUT_S = 10.0
WS_RATE = 16000


@dataclass
class CallSettings:
    pause_s: float = 1.0
    wait_for_greeting: bool = True
    barge_in_after_s: float | None = None
    reply_timeout_s: float = 20.0


@dataclass
class PlacedCall:
    """One bench call: what the caller said and heard, and how the call itself went."""

    index: int
    utterances: list[Utterance]
    caller: ScriptedCaller
    transport: str
    call_id: str | None = None
    """The server's call id (known up front over the WebSocket; matched later for SIP)."""
    started_epoch: float = 0.0
    epoch_offset: float = 0.0
    """time.time() − the caller's clock, to put caller times next to the server's epoch times."""
    end_reason: str | None = None
    error: str | None = None
    packets_lost: int | None = None
    record: dict[str, Any] | None = None
    """The server's record of the call (GET /calls/{id}), once fetched."""
    events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    """(arrival epoch, event) of the server's JSON events (WebSocket calls only)."""

    @property
    def completed(self) -> bool:
        return self.error is None and len(self.caller.result.turns) == len(self.utterances)

    def jitter_p99_ms(self) -> float | None:
        """p99 of |inter-arrival − 20 ms| over the frames the caller received."""
        times = [t for t, _ in self.caller.result.heard]
        if len(times) < 3:
            return None
        deviation = np.abs(np.diff(np.asarray(times)) - FRAME_S) * 1000
        return round(float(np.percentile(deviation, 99)), 2)


def _caller(utterances: Sequence[Utterance], settings: CallSettings) -> ScriptedCaller:
    return ScriptedCaller(
        [u.audio for u in utterances],
        pause_s=settings.pause_s,
        wait_for_greeting=settings.wait_for_greeting,
        reply_timeout_s=settings.reply_timeout_s,
        barge_in_after_s=settings.barge_in_after_s,
    )


def _mark_start(call: PlacedCall) -> None:
    call.started_epoch = time.time()
    call.epoch_offset = call.started_epoch - call.caller.clock.now()


async def _sip_call(endpoint: SipEndpoint, target: AgentTarget, call: PlacedCall) -> None:
    async def handler(io: CallIO) -> None:
        try:
            await call.caller(io)
        finally:
            if isinstance(io, RtpCall):  # a SIP call's media is RTP: its losses are known
                call.packets_lost = io.session.stats.lost

    _mark_start(call)
    call.end_reason = await endpoint.call(target.sip_uri, handler, timeout_s=SETUP_TIMEOUT_S)


async def _ws_call(target: AgentTarget, call: PlacedCall) -> None:
    if target.ws_url is None:
        raise RuntimeError("no HTTP address for the WebSocket path")
    call.call_id = f"bench-{uuid.uuid4().hex[:10]}"
    _mark_start(call)
    io = await WebSocketCallerCall.connect(target.ws_url, call.call_id, WS_RATE)
    call.call_id = io.call_id  # the server's id of the record (ours is kept as its label)
    try:
        await call.caller(io)
    finally:
        call.end_reason = io.hangup_reason
        call.events = list(zip(io.event_times, io.events, strict=True))
        await io.aclose()


async def _run_one(endpoint: SipEndpoint | None, target: AgentTarget, call: PlacedCall) -> None:
    try:
        if endpoint is not None:
            await _sip_call(endpoint, target, call)
        else:
            await _ws_call(target, call)
    except Exception as exc:  # one failed call is a result, not the end of the bench
        log.warning("bench call %d failed: %s", call.index, exc)
        call.error = f"{type(exc).__name__}: {exc}"


async def place_calls(
    target: AgentTarget,
    transport: str,
    scripts: Sequence[Sequence[Utterance]],
    settings: CallSettings,
    *,
    concurrency: int = 1,
    stagger_s: float = STAGGER_S,
) -> list[PlacedCall]:
    """Run every script as one call, `concurrency` calls at a time (starts `stagger_s` apart), in order."""
    calls = [
        PlacedCall(i, list(script), _caller(script, settings), transport) for i, script in enumerate(scripts)
    ]
    endpoint: SipEndpoint | None = None
    if transport == "sip":
        config = SipConfig(
            port=0, transports=["udp"], rtp_port_min=0, rtp_port_max=0, user="bench",
            jitter_buffer_ms=CALLER_JITTER_BUFFER_MS, max_calls=max(50, 2 * concurrency),
            codecs=["PCMU"],  # the benchmark's line is G.711 (docs/benchmark-telephony.md), not G.722
        )  # fmt: skip
        endpoint = SipEndpoint(config, lambda io: asyncio.sleep(0))
        await endpoint.start()
    try:
        for first in range(0, len(calls), concurrency):
            batch = calls[first : first + concurrency]
            tasks = []
            for n, call in enumerate(batch):
                if n:
                    await asyncio.sleep(stagger_s)
                tasks.append(asyncio.create_task(_run_one(endpoint, target, call)))
            await asyncio.gather(*tasks)
    finally:
        if endpoint is not None:
            await endpoint.stop()
    return calls
