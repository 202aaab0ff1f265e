"""Callers in the root namespace: voxline's own SIP user agent placing calls through Kamailio.

Each call streams a steady tone for as long as it is held and listens to what comes back: the
node's echo agent returns the tone, so every moment of the call shows whether its media still
flows (a silence in the echo is a gap; the longest is reported per call).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from dataclasses import dataclass, field

import numpy as np

from voxline.agent.config import SipConfig
from voxline.audio.pcm import AudioChunk
from voxline.telephony.sip.call import SipCall
from voxline.telephony.sip.endpoint import SipEndpoint
from voxline.telephony.sip.message import parse_uri
from voxline.transports.base import CallIO

TONE_HZ = 440.0
LOUD_RMS = 1000.0
"""The echoed tone is ~5000 RMS after two G.722 passes; silence (nothing echoed) is 0."""


@dataclass
class CallOutcome:
    index: int
    hold_s: float
    end: str = ""
    """What placing the call returned: "normal" when we hung up, "rejected_503" if refused, ..."""
    node: str | None = None
    """The address of the node that answered (its Contact)."""
    sip_call_id: str = ""
    placed_at: float = 0.0
    answered_at: float | None = None
    ended_at: float | None = None
    loud_at: list[float] = field(default_factory=list)
    """Event-loop times at which echoed tone arrived."""
    rtp_lost: int = 0

    @property
    def answered(self) -> bool:
        return self.answered_at is not None

    def heard_between(self, start: float, end: float) -> bool:
        return any(start <= t <= end for t in self.loud_at)

    def longest_gap_s(self, start: float | None = None, end: float | None = None) -> float:
        """The longest time without echoed tone between `start` and `end` (default: first echo to hangup)."""
        if not self.loud_at or self.ended_at is None:
            return float("inf")
        lo = self.loud_at[0] if start is None else start
        hi = self.ended_at if end is None else end
        times = [lo, *(t for t in self.loud_at if lo < t < hi), hi]
        return max(b - a for a, b in itertools.pairwise(times))


class _HeldCall:
    """The handler of one placed call: tone out, echo in, hang up after `hold_s`."""

    def __init__(self, outcome: CallOutcome) -> None:
        self.outcome = outcome

    async def __call__(self, call: CallIO) -> None:
        loop = asyncio.get_running_loop()
        outcome = self.outcome
        outcome.answered_at = loop.time()
        if isinstance(call, SipCall):
            outcome.node = parse_uri(call.dialog.remote_target).host
            outcome.sip_call_id = call.sip_call_id
        sender = asyncio.create_task(self._send_tone(call))
        deadline = outcome.answered_at + outcome.hold_s
        try:
            while (remaining := deadline - loop.time()) > 0:
                try:
                    item = await asyncio.wait_for(call.receive(), remaining)
                except TimeoutError:
                    break
                if item is None:
                    break  # the node hung up on us
                if isinstance(item, AudioChunk) and _rms(item) > LOUD_RMS:
                    outcome.loud_at.append(loop.time())
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            outcome.ended_at = loop.time()
            if isinstance(call, SipCall):
                outcome.rtp_lost = call.session.stats.lost
        await call.hangup("normal")

    async def _send_tone(self, call: CallIO) -> None:
        rate = call.sink.output_rate
        step = rate // 10  # 100 ms
        phase = 0
        while True:
            if call.sink.queued_s - call.sink.played_s < 0.2:  # audio still to play
                t = (np.arange(step) + phase) / rate
                phase += step
                samples = (8000 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.int16)
                await call.sink.send(AudioChunk(samples, rate))
            await asyncio.sleep(0.04)


def _rms(chunk: AudioChunk) -> float:
    if not chunk.num_samples:
        return 0.0
    return float(np.sqrt(np.mean(chunk.samples.astype(np.float64) ** 2)))


class Callers:
    """One SIP user agent on the callers' address that places any number of calls through the proxy."""

    def __init__(self, host: str, proxy_uri: str, proxy_host: str) -> None:
        config = SipConfig(
            host=host, port=0, transports=["udp"], rtp_port_min=0, rtp_port_max=0, max_calls=500,
            allow_from=[f"{proxy_host}/32"],  # in-dialog requests reach us through Kamailio only
        )  # fmt: skip
        self.endpoint = SipEndpoint(config, _refuse_inbound)
        self.target = proxy_uri.replace("sip:", "sip:agent@", 1)
        self.outcomes: list[CallOutcome] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Callers:
        await self.endpoint.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.endpoint.stop()

    def place(self, hold_s: float) -> CallOutcome:
        """Start one call now (it runs in the background); its outcome fills in as it goes."""
        outcome = CallOutcome(len(self.outcomes), hold_s, placed_at=asyncio.get_running_loop().time())
        self.outcomes.append(outcome)
        self._tasks.append(asyncio.create_task(self._run(outcome)))
        return outcome

    async def burst(self, count: int, rate_per_s: float, hold_s: float) -> list[CallOutcome]:
        """`count` calls, started `rate_per_s` a second (like a queue of callers released at once)."""
        placed = []
        for _ in range(count):
            placed.append(self.place(hold_s))
            await asyncio.sleep(1.0 / rate_per_s)
        return placed

    async def _run(self, outcome: CallOutcome) -> None:
        outcome.end = await self.endpoint.call(self.target, _HeldCall(outcome), timeout_s=15)
        if outcome.ended_at is None:
            outcome.ended_at = asyncio.get_running_loop().time()

    async def wait_all(self, timeout_s: float) -> None:
        await asyncio.wait_for(asyncio.gather(*self._tasks), timeout_s)


async def _refuse_inbound(call: CallIO) -> None:
    await call.hangup("not_taking_calls")
