"""Time sources. Everything that paces audio or measures latency asks a Clock, never time.time()."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on a monotonic scale."""
        ...

    async def sleep_until(self, deadline: float) -> None: ...


class MonotonicClock:
    """The real clock: time.monotonic with asyncio sleeps."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep_until(self, deadline: float) -> None:
        delay = deadline - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            await asyncio.sleep(0)


class VirtualClock:
    """A test clock: sleeping advances time instantly, so paced code runs as fast as the CPU allows."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds

    async def sleep_until(self, deadline: float) -> None:
        if deadline > self._now:
            self._now = deadline
        await asyncio.sleep(0)
