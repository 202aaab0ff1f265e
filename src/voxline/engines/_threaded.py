"""Where blocking model work runs: a pool of worker threads at a lower CPU priority than the event
loop, so on a busy 2-core machine the loop (VAD, pacing of outbound audio) still gets the CPU first.
Also turns a blocking generator into an async iterator, stopped promptly when the consumer leaves."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import os
import threading
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

T = TypeVar("T")
P = ParamSpec("P")
_END = object()

MODEL_THREAD_NICENESS = int(os.environ.get("VOXLINE_MODEL_NICENESS", "5"))
"""How much nicer than the loop model threads are. Threads that model runtimes start from them
(llama.cpp/CTranslate2/onnxruntime pools) inherit it on Linux."""


def _lower_priority() -> None:
    with contextlib.suppress(OSError, AttributeError):  # not Linux, or not permitted: run as is
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + MODEL_THREAD_NICENESS)


_pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="voxline-model", initializer=_lower_priority)


async def run_model(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run blocking model work off the loop, in the low-priority pool (context vars carried over,
    so log lines keep their call id)."""
    call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_pool, call)


def run_model_sync(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run model loading in the pool too, so the thread pools runtimes start while loading are
    created at the lower priority."""
    return _pool.submit(fn, *args, **kwargs).result()


async def iterate_in_thread(make: Callable[[threading.Event], Iterator[T]]) -> AsyncGenerator[T, None]:
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

    worker = asyncio.ensure_future(run_model(produce))
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
