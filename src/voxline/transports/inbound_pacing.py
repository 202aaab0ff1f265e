"""Incoming audio held to real time: a client cannot push minutes of audio into a call at once.

A caller speaks in real time; a sender far ahead of the wall clock is a flood (or a bug), and every
sample it sends costs VAD and STT time shared with the other calls. Up to `burst_s` ahead is let
through (network bunching, a client's start-up buffer); beyond that the reader waits, so TCP back-
pressure slows the sender instead of the server queueing its audio.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

DEFAULT_BURST_S = 2.0


class InboundPacer:
    def __init__(
        self,
        sample_rate: int,
        burst_s: float = DEFAULT_BURST_S,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.sample_rate = sample_rate
        self.burst_s = burst_s
        self._clock = clock
        self._sleep = sleep
        self._started_at: float | None = None
        self._samples = 0
        self.waited_s = 0.0

    async def admit(self, samples: int) -> None:
        """Count `samples` in; wait while the sender is more than `burst_s` ahead of real time."""
        now = self._clock()
        if self._started_at is None:
            self._started_at = now
        self._samples += samples
        ahead_s = self._samples / self.sample_rate - (now - self._started_at) - self.burst_s
        if ahead_s > 0:
            self.waited_s += ahead_s
            await self._sleep(ahead_s)
