"""Real-time pacing without drift, and a probe that proves nothing blocks the event loop.

`Pacer` computes every deadline from the start time (start + k * period) instead of sleeping one
period after the last wake-up, so scheduler jitter never accumulates. After a long stall it skips
the missed ticks rather than firing them back to back: a burst of stale audio helps nobody.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
import time
from collections.abc import AsyncIterator

import numpy as np

from voxline.audio.clock import Clock, MonotonicClock

__all__ = ["EventLoopLagMonitor", "Pacer"]


class Pacer:
    """Yields one deadline per period on an absolute schedule: `start + k * period_s`."""

    def __init__(
        self,
        clock: Clock,
        period_s: float,
        start: float | None = None,
        max_lateness_s: float = 0.2,
    ) -> None:
        if period_s <= 0:
            raise ValueError(f"period must be positive, got {period_s}")
        self.clock = clock
        self.period_s = period_s
        self.max_lateness_s = max_lateness_s
        self.start = clock.now() if start is None else start
        self._tick = 0
        self.skipped = 0
        """Ticks dropped after stalls longer than `max_lateness_s`."""

    @property
    def next_deadline(self) -> float:
        # Multiplying (not summing periods) is what keeps float error from accumulating.
        return self.start + self._tick * self.period_s

    async def wait(self) -> float:
        """Sleep until the next deadline and return it (the nominal time of this tick)."""
        deadline = self.next_deadline
        now = self.clock.now()
        if now - deadline > self.max_lateness_s:
            # Stalled: jump to the first tick at or after now, keeping the grid.
            missed = math.ceil((now - self.start) / self.period_s) - self._tick
            self._tick += missed
            self.skipped += missed
            deadline = self.next_deadline
        self._tick += 1
        await self.clock.sleep_until(deadline)
        return deadline

    def __aiter__(self) -> AsyncIterator[float]:
        return self._ticks()

    async def _ticks(self) -> AsyncIterator[float]:
        while True:
            yield await self.wait()


class EventLoopLagMonitor:
    """Sleeps `interval_s` again and again on the real loop and records how late each wake-up is.

    A model call that holds the GIL or runs on the loop shows up as lag of its own duration;
    benchmarks assert p99 stays at a few milliseconds while STT, LLM and TTS run.
    """

    def __init__(self, interval_s: float = 0.010, max_samples: int | None = None) -> None:
        """`max_samples` keeps only the latest wake-ups (a server's rolling window); None keeps all."""
        self.interval_s = interval_s
        self._lags_s: collections.deque[float] = collections.deque(maxlen=max_samples)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-lag-monitor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def __aenter__(self) -> EventLoopLagMonitor:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _run(self) -> None:
        clock = MonotonicClock()
        while True:
            expected = time.monotonic() + self.interval_s
            await clock.sleep_until(expected)
            self._lags_s.append(max(0.0, time.monotonic() - expected))

    @property
    def samples(self) -> int:
        return len(self._lags_s)

    def _percentile_ms(self, q: float) -> float:
        if not self._lags_s:
            return 0.0
        return float(np.percentile(np.asarray(self._lags_s), q)) * 1000.0

    @property
    def p50_ms(self) -> float:
        return self._percentile_ms(50)

    @property
    def p99_ms(self) -> float:
        return self._percentile_ms(99)

    @property
    def max_ms(self) -> float:
        return max(self._lags_s, default=0.0) * 1000.0

    def reset(self) -> None:
        self._lags_s.clear()

    def summary(self) -> dict[str, float]:
        return {
            "samples": float(self.samples),
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
        }
