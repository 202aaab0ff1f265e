"""Pacer (absolute schedule, stall handling), VirtualClock scheduling, and the loop-lag probe."""

from __future__ import annotations

import asyncio
import time

import pytest

from voxline.audio.clock import MonotonicClock, VirtualClock
from voxline.audio.pacing import EventLoopLagMonitor, Pacer


async def test_deadlines_are_exact_and_do_not_drift_over_1000_frames() -> None:
    clock = VirtualClock(start=100.0)
    pacer = Pacer(clock, 0.02)
    deadlines = [await pacer.wait() for _ in range(1001)]
    assert deadlines[0] == 100.0
    for k, deadline in enumerate(deadlines):
        assert deadline == 100.0 + k * 0.02  # computed, never summed: bit-identical to the grid
    assert clock.now() == deadlines[-1]
    assert pacer.skipped == 0


async def test_late_wakeups_do_not_shift_the_schedule() -> None:
    clock = VirtualClock()
    pacer = Pacer(clock, 0.02)
    await pacer.wait()
    clock.advance(0.015)  # work took 15 ms: still on time for the next tick
    assert await pacer.wait() == pytest.approx(0.02)
    clock.advance(0.05)  # 50 ms late (under the stall limit): catch up, keep the grid
    assert await pacer.wait() == pytest.approx(0.04)
    assert await pacer.wait() == pytest.approx(0.06)
    assert await pacer.wait() == pytest.approx(0.08)


async def test_stall_skips_ahead_instead_of_bursting() -> None:
    clock = VirtualClock()
    pacer = Pacer(clock, 0.02, max_lateness_s=0.2)
    await pacer.wait()
    clock.advance(1.005)  # suspended for a second
    after = [await pacer.wait() for _ in range(3)]
    assert after[0] == pytest.approx(1.02)  # first grid point at or after now, not 0.02
    assert after[1] - after[0] == pytest.approx(0.02)
    assert after[2] - after[1] == pytest.approx(0.02)
    assert pacer.skipped == 50


async def test_async_iteration() -> None:
    clock = VirtualClock()
    ticks = []
    async for deadline in Pacer(clock, 0.5):
        ticks.append(deadline)
        if len(ticks) == 3:
            break
    assert ticks == [0.0, 0.5, 1.0]


def test_rejects_bad_period() -> None:
    with pytest.raises(ValueError, match="positive"):
        Pacer(VirtualClock(), 0)


async def test_virtual_clock_interleaves_tasks_in_time_order() -> None:
    clock = VirtualClock()
    events: list[tuple[float, str]] = []

    async def ticker(name: str, period: float, count: int) -> None:
        pacer = Pacer(clock, period)
        for _ in range(count):
            deadline = await pacer.wait()
            assert clock.now() == pytest.approx(deadline)  # nobody woke us late
            events.append((deadline, name))

    await asyncio.gather(ticker("fast", 0.02, 50), ticker("slow", 0.3, 4))
    times = [t for t, _ in events]
    assert times == sorted(times)
    assert clock.now() == pytest.approx(0.98)


async def test_virtual_clock_consumer_keeps_up_with_producer() -> None:
    clock = VirtualClock()
    queue: asyncio.Queue[float] = asyncio.Queue()
    lags: list[float] = []

    async def producer() -> None:
        pacer = Pacer(clock, 0.02)
        for _ in range(100):
            queue.put_nowait(await pacer.wait())

    async def consumer() -> None:
        for _ in range(100):
            sent = await queue.get()
            await asyncio.sleep(0)  # a little work with a yield in the middle
            lags.append(clock.now() - sent)

    await asyncio.gather(producer(), consumer())
    assert max(lags) == 0.0


async def test_virtual_clock_advance_wakes_sleepers_and_ignores_cancelled() -> None:
    clock = VirtualClock()
    cancelled = asyncio.create_task(clock.sleep_until(5.0))
    await asyncio.sleep(0)
    cancelled.cancel()
    await clock.sleep_until(1.0)
    assert clock.now() == 1.0
    clock.advance(10.0)
    assert clock.now() == 11.0
    await clock.sleep_until(3.0)  # in the past: returns at once
    assert clock.now() == 11.0


async def test_monotonic_clock_sleeps() -> None:
    clock = MonotonicClock()
    start = clock.now()
    await clock.sleep_until(start + 0.01)
    assert clock.now() >= start + 0.01
    await clock.sleep_until(start)  # past deadline: no error


async def test_lag_monitor_sees_a_blocked_loop() -> None:
    async with EventLoopLagMonitor(interval_s=0.005) as monitor:
        await asyncio.sleep(0.05)
        time.sleep(0.08)  # noqa: ASYNC251 - deliberately block the loop
        await asyncio.sleep(0.03)
    assert monitor.samples >= 3
    assert monitor.max_ms >= 50.0  # the blocked wake-up was at least this late
    assert monitor.p50_ms <= monitor.p99_ms <= monitor.max_ms
    summary = monitor.summary()
    assert set(summary) == {"samples", "p50_ms", "p99_ms", "max_ms"}
    monitor.reset()
    assert monitor.samples == 0
    assert monitor.max_ms == 0.0
