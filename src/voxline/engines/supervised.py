"""`SupervisedProcess`: a model server the node keeps running (llama-server, the speech server).

Start it and block until it serves, restart it whenever it exits on its own (a segfault, an OOM
kill), stop it at exit. A subclass says how to spawn it and how to tell that it serves. Blocking
methods (start, stop, wait_ready) belong off the event loop or at startup.
"""

from __future__ import annotations

import abc
import atexit
import contextlib
import logging
import subprocess
import threading
import time
from pathlib import Path

from voxline.engines.base import EngineError

log = logging.getLogger(__name__)


class SupervisedProcess(abc.ABC):
    name = "server"
    """For logs, errors and the watchdog thread's name."""

    def __init__(self, *, startup_timeout_s: float, log_path: Path) -> None:
        self.startup_timeout_s = startup_timeout_s
        self.restarts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._watchdog: threading.Thread | None = None
        self._log_path = log_path

    @abc.abstractmethod
    def _spawn(self) -> None:
        """Start the process (set `self._proc` under `self._lock`)."""

    @abc.abstractmethod
    def _serving(self) -> bool:
        """One probe: does the process answer requests yet?"""

    def _after_failed_restart(self) -> None:  # noqa: B027 - optional hook
        """A restart failed; the next try comes after a back-off (e.g. take another port)."""

    def _after_stop(self) -> None:  # noqa: B027 - optional hook
        """The process is gone for good (remove what it used)."""

    def _secret(self) -> str | None:
        """A value to mask wherever the log's tail is shown."""
        return None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def stopped(self) -> bool:
        return self._stopping.is_set()

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    @property
    def log_path(self) -> Path:
        return self._log_path

    def start(self) -> None:
        """Start the process and block until it serves; raise EngineError if it cannot."""
        self._stopping.clear()
        self._spawn()
        self._wait_serving()
        atexit.register(self.stop)
        if self._watchdog is None:
            self._watchdog = threading.Thread(target=self._watch, name=f"{self.name}-watchdog", daemon=True)
            self._watchdog.start()

    def stop(self) -> None:
        self._stopping.set()
        self._ready.clear()
        with self._lock:
            proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        atexit.unregister(self.stop)
        self._after_stop()

    def wait_ready(self, timeout_s: float) -> bool:
        return self._ready.wait(timeout_s)

    def _wait_serving(self, restarted: bool = False) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                raise EngineError(f"{self.name} exited while starting: {self._log_tail()}")
            if self._serving():
                self.restarts += restarted
                self._ready.set()
                log.info("%s ready (pid %d)", self.name, proc.pid)
                return
            time.sleep(0.1)  # not listening yet, or still loading its models
        raise EngineError(f"{self.name} did not start in {self.startup_timeout_s:.0f} s: {self._log_tail()}")

    def _watch(self) -> None:
        """Restart the process whenever it exits on its own, until stop()."""
        while not self._stopping.is_set():
            proc = self._proc
            if proc is None:
                return
            code = proc.wait()
            if self._stopping.is_set():
                return
            self._ready.clear()
            log.error("%s exited (code %s); restarting it: %s", self.name, code, self._log_tail())
            backoff = 0.5
            while not self._stopping.is_set():
                try:
                    self._spawn()
                    self._wait_serving(restarted=True)
                    break
                except (EngineError, OSError) as exc:
                    log.error("%s restart failed: %s", self.name, exc)
                    with contextlib.suppress(Exception):
                        if self._proc is not None and self._proc.poll() is None:
                            self._proc.kill()
                    self._after_failed_restart()
                    time.sleep(backoff)
                    backoff = min(backoff * 2, 10.0)

    def _log_tail(self, chars: int = 800) -> str:
        try:
            text = self._log_path.read_bytes()[-chars:].decode("utf-8", "replace")
        except OSError:
            return "(no log)"
        secret = self._secret()
        return (text.replace(secret, "***") if secret else text).strip()
