"""Helpers shared by the AudioSocket tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from voxline.telephony.audiosocket import AudioSocketCall
from voxline.transports.base import CallIO


class RecordingHandler:
    """Wraps a handler and keeps every call it was given (to check hangup reasons, rates, ...)."""

    def __init__(self, inner: Callable[[CallIO], Awaitable[None]]) -> None:
        self.inner = inner
        self.calls: list[AudioSocketCall] = []

    async def __call__(self, call: CallIO) -> None:
        assert isinstance(call, AudioSocketCall)
        self.calls.append(call)
        await self.inner(call)


async def wait_until(predicate: Callable[[], bool], within_s: float = 5.0) -> bool:
    deadline = time.monotonic() + within_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True
