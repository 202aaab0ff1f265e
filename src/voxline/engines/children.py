"""Child processes (model servers) that end with voxline, however voxline ends.

A server left running after `voxline serve` is SIGKILLed (a bench timeout, the OOM killer, a
supervisor's `kill -9`) keeps a core busy and a port taken. On Linux the kernel can signal a child
when its parent dies (`PR_SET_PDEATHSIG`), but it does so when the *thread* that forked it exits,
so every child is forked from one thread that lives as long as the process.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import ctypes.util
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

_PR_SET_PDEATHSIG = 1
_jobs: queue.SimpleQueue[tuple[Callable[[], Any], concurrent.futures.Future[Any]]] = queue.SimpleQueue()
_thread: threading.Thread | None = None
_lock = threading.Lock()


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    except OSError:
        return None
    function: Callable[..., int] = libc.prctl
    return function


_PRCTL = _prctl()


def _die_with_parent(parent: int) -> Callable[[], None] | None:
    prctl = _PRCTL
    if prctl is None:
        return None

    def preexec() -> None:  # runs in the child between fork and exec: no allocation, no imports
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the line above took effect
            os._exit(1)

    return preexec


def _serve() -> None:
    while True:
        job, future = _jobs.get()
        if future.set_running_or_notify_cancel():
            try:
                future.set_result(job())
            except BaseException as exc:  # handed to the caller, who raises it
                future.set_exception(exc)


def _on_lasting_thread(job: Callable[[], Any]) -> Any:
    global _thread
    with _lock:
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_serve, name="voxline-child-spawner", daemon=True)
            _thread.start()
    if threading.current_thread() is _thread:
        return job()
    future: concurrent.futures.Future[Any] = concurrent.futures.Future()
    _jobs.put((job, future))
    return future.result()


def popen_tied(args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """`subprocess.Popen(args, **kwargs)` whose child gets SIGTERM when this process dies (Linux)."""
    preexec = _die_with_parent(os.getpid())
    process: subprocess.Popen[bytes] = _on_lasting_thread(
        lambda: subprocess.Popen(args, preexec_fn=preexec, **kwargs)
    )
    return process
