"""Waiting on the call's clock: the next item of a queue, or the moment a deadline passes.

Deadlines are clock times, and the wait for one goes through `Clock.sleep_until`, so on a
`VirtualClock` a whole call's timers (silence, call length, key runs, digit entry) run in virtual
time instead of on `asyncio` timeouts computed from the clock.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any, TypeVar

from voxline.audio.clock import Clock

T = TypeVar("T")


async def next_before(queue: asyncio.Queue[T], clock: Clock, deadline: float) -> T | None:
    """The queue's next item, or None once `clock` reaches `deadline` with the queue still empty."""
    if not queue.empty():
        return queue.get_nowait()
    if math.isinf(deadline):
        return await queue.get()
    getter = asyncio.ensure_future(queue.get())
    timer = asyncio.ensure_future(clock.sleep_until(deadline))
    try:
        await asyncio.wait([getter, timer], return_when=asyncio.FIRST_COMPLETED)
    finally:
        timer.cancel()
        if not getter.done():
            getter.cancel()  # an item put meanwhile stays in the queue for the next call
    if getter.done() and not getter.cancelled():
        return getter.result()
    return None


async def done_before(work: asyncio.Future[T], clock: Clock, deadline: float) -> bool:
    """Wait for `work` until `clock` reaches `deadline`; True if it finished by then. `work` is
    left running either way (shield it yourself if a cancelled wait must not cancel it)."""
    if work.done():
        return True
    timer: asyncio.Future[Any] = asyncio.ensure_future(clock.sleep_until(deadline))
    try:
        await asyncio.wait([work, timer], return_when=asyncio.FIRST_COMPLETED)
    finally:
        timer.cancel()
    return work.done()
