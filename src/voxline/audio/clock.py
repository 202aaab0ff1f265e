"""Time sources. Everything that paces audio or measures latency asks a Clock, never time.time()."""

from __future__ import annotations

import asyncio
import heapq
import itertools
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
    """A test clock: time jumps straight to the next deadline anyone sleeps until.

    It is a small discrete-event scheduler. Before moving time forward it lets the event loop run a
    few rounds, so every task that is ready (a consumer handed a packet, a callback) finishes its
    work "at" the current instant; then it advances to the earliest pending deadline only. Two
    tasks pacing on different grids therefore interleave in true time order, and a slow consumer
    cannot fall behind in virtual time. Work in threads still takes no virtual time.
    """

    SETTLE_ROUNDS = 8
    """Event-loop iterations allowed before time moves (how deep a chain of wake-ups may be)."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._advance_scheduled = False

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by hand, waking everyone whose deadline has passed."""
        self._now += seconds
        self._wake_due()

    async def sleep_until(self, deadline: float) -> None:
        if deadline <= self._now:
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._sleepers, (deadline, next(self._seq), waiter))
        if not self._advance_scheduled:
            self._advance_scheduled = True
            loop.call_soon(self._advance_when_settled, loop, self.SETTLE_ROUNDS)
        await waiter

    def _advance_when_settled(self, loop: asyncio.AbstractEventLoop, rounds_left: int) -> None:
        if rounds_left > 0:
            loop.call_soon(self._advance_when_settled, loop, rounds_left - 1)
            return
        self._advance_scheduled = False
        self._drop_cancelled()
        if not self._sleepers:
            return
        self._now = max(self._now, self._sleepers[0][0])
        self._wake_due()
        if self._sleepers:  # others still sleeping: keep the clock running once these have run
            self._advance_scheduled = True
            loop.call_soon(self._advance_when_settled, loop, self.SETTLE_ROUNDS)

    def _drop_cancelled(self) -> None:
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)

    def _wake_due(self) -> None:
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, waiter = heapq.heappop(self._sleepers)
            if not waiter.done():
                waiter.set_result(None)
