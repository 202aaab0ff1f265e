"""Turns a blocking generator into an async iterator: produced in a worker thread, consumed on the
loop, stopped promptly when the consumer goes away (checked between items)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TypeVar

T = TypeVar("T")
_END = object()


async def iterate_in_thread(make: Callable[[threading.Event], Iterator[T]]) -> AsyncIterator[T]:
    """`make(stop)` runs in a thread; it may also watch `stop` itself for a faster exit."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()
    stop = threading.Event()

    def post(item: object) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is listening any more
            loop.call_soon_threadsafe(queue.put_nowait, item)

    def produce() -> None:
        try:
            for item in make(stop):
                if stop.is_set():
                    break
                post(item)
        except BaseException as exc:
            post(exc)
        finally:
            post(_END)

    worker = asyncio.ensure_future(asyncio.to_thread(produce))
    try:
        while True:
            item = await queue.get()
            if item is _END:
                break
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.shield(worker)
