"""Draining a node: stop taking calls at once, let the calls in progress finish, then exit.

    first SIGTERM / SIGINT (or `voxline drain`)  every way in refuses new calls ("draining":
                                                 OPTIONS and INVITE 503, WebSocket and AudioSocket
                                                 refused), /health says draining; calls go on
    calls all ended, or drain_timeout_s passed   the calls left are asked to say goodbye (below)
    second signal                                every conversation says its goodbye line and ends
                                                 (`CallRunner.request_goodbye`; a job pool relays
                                                 it to its jobs as the `goodbye` message)
    all ended, or goodbye_grace_s passed         the server exits (status 0); the listeners hang up
                                                 whatever is left as they stop
    third signal                                 exit now

`DrainingServer` is uvicorn's server with its signal handling replaced by this: uvicorn's own
closes every WebSocket call at the first SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import FrameType
from typing import Any, Protocol, runtime_checkable

import uvicorn

from voxline.node.load import NodeLoad

log = logging.getLogger(__name__)

GOODBYE_GRACE_S = 20.0
"""After the calls were asked to say goodbye: how long they get before the node exits anyway
(the floor cuts a goodbye longer than 15 s)."""
POLL_S = 0.1
END_REASON = "node_shutdown"


@runtime_checkable
class GoodbyeTarget(Protocol):
    """Something running calls that can ask them to say goodbye (CallRunner, the job pool)."""

    def request_goodbye(self, reason: str = END_REASON) -> int: ...


class Drain:
    """The node's drain, one per server. States: serving → draining → ending → done."""

    def __init__(
        self,
        load: NodeLoad,
        timeout_s: float,
        *,
        goodbye_grace_s: float = GOODBYE_GRACE_S,
        targets: Callable[[], Iterable[object]] = tuple,
    ) -> None:
        self.load = load
        self.timeout_s = timeout_s
        self.goodbye_grace_s = goodbye_grace_s
        self.targets = targets
        """What runs calls now (asked for goodbyes): objects that are a `GoodbyeTarget` count."""
        self.on_done: Callable[[bool], None] | None = None
        """Called once every call has ended or the grace ran out (the server sets it: exit);
        with True on a third signal (exit without waiting for connections)."""
        self.state = "serving"
        self.started_at: float | None = None
        self.goodbyes_asked = 0
        self._ending = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.done = asyncio.Event()

    @property
    def draining(self) -> bool:
        return self.state != "serving"

    def begin(self) -> None:
        """Refuse new calls from now on and wait for the calls in progress (idempotent)."""
        if self.draining:
            return
        self.state = "draining"
        self.started_at = time.monotonic()
        self.load.start_draining()
        log.warning(
            "draining: new calls are refused; %d call(s) in progress get up to %.0f s to finish",
            self.load.active, self.timeout_s,
        )  # fmt: skip
        self._task = asyncio.get_running_loop().create_task(self._run(), name="node-drain")

    def end_calls(self) -> None:
        """Ask every call to say goodbye and end (a second signal)."""
        if not self.draining:
            self.begin()
        self._ending.set()

    def on_signal(self, sig: int) -> None:
        """One more SIGTERM/SIGINT: drain, then end the calls, then exit at once."""
        if self.state == "serving":
            log.warning("%s: draining (send it again to end the calls with a goodbye)", _name(sig))
            self.begin()
        elif self.state == "draining":
            log.warning("%s again: asking every call to say goodbye", _name(sig))
            self.end_calls()
        else:
            log.warning("%s a third time: exiting now", _name(sig))
            self._finish(force=True)

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"state": self.state, "timeout_s": self.timeout_s}
        if self.started_at is not None:
            info["for_s"] = round(time.monotonic() - self.started_at, 1)
            info["calls_left"] = self.load.active
            info["goodbyes_asked"] = self.goodbyes_asked
        return info

    async def _run(self) -> None:
        try:
            if not await self._calls_end_within(self.timeout_s, self._ending):
                if not self._ending.is_set():
                    log.warning("drain timeout (%.0f s): %d call(s) still running", self.timeout_s,
                                self.load.active)  # fmt: skip
                self._ask_goodbye()
                if not await self._calls_end_within(self.goodbye_grace_s):
                    log.warning(
                        "%d call(s) did not end after their goodbye; exiting anyway", self.load.active
                    )
            else:
                log.info("every call has ended")
        finally:
            self._finish()

    def _ask_goodbye(self) -> None:
        self.state = "ending"
        asked = 0
        for target in self.targets():
            if isinstance(target, GoodbyeTarget):
                try:
                    asked += target.request_goodbye(END_REASON)
                except Exception:
                    log.exception("asking %s's calls for a goodbye failed", type(target).__name__)
        self.goodbyes_asked += asked
        log.warning("asked %d call(s) to say goodbye; %d call(s) in progress", asked, self.load.active)

    async def _calls_end_within(self, seconds: float, interrupt: asyncio.Event | None = None) -> bool:
        """True once no call holds a slot; False after `seconds`, or at once when `interrupt` is set."""
        deadline = time.monotonic() + seconds
        while self.load.active > 0:
            if time.monotonic() >= deadline or (interrupt is not None and interrupt.is_set()):
                return False
            await asyncio.sleep(POLL_S)
        return True

    def _finish(self, *, force: bool = False) -> None:
        if self.state == "done" and not force:
            return
        self.state = "done"
        self.done.set()
        if self.on_done is not None:
            self.on_done(force)


def _name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


class DrainingServer(uvicorn.Server):
    """uvicorn, with SIGTERM/SIGINT handed to the app's `Drain` instead of closing every call."""

    def __init__(self, config: uvicorn.Config, drain: Drain) -> None:
        super().__init__(config)
        self.drain = drain
        drain.on_done = self._exit
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: Any = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # a signal handler: hand the work to the event loop, and record nothing for uvicorn to
        # re-raise once it has stopped (the process ends with status 0)
        if self._loop is None or self._loop.is_closed():
            self.should_exit = True
            return
        self._loop.call_soon_threadsafe(self.drain.on_signal, sig)

    def _exit(self, force: bool) -> None:
        self.force_exit = self.force_exit or force
        self.should_exit = True


def serve_app(app: Any, *, host: str, port: int, pid_file: Path | None = None, **options: Any) -> None:
    """Run `app` (create_app's) with uvicorn until it has drained: what `voxline serve` does."""
    config = uvicorn.Config(app, host=host, port=port, log_config=None, **options)
    server = DrainingServer(config, app.state.voxline.drain)
    if pid_file is not None:
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        pid_file.write_text(f"{os.getpid()}\n")
    try:
        server.run()
    finally:
        if pid_file is not None:
            with contextlib.suppress(OSError):
                pid_file.unlink()
    if server.drain.state == "serving" and not server.started:
        raise SystemExit(3)  # uvicorn could not start (the port is taken...): it logged why


class DrainError(Exception):
    pass


def signal_drain(pid: int | None, pid_file: Path | None, *, now: bool = False) -> int:
    """SIGTERM the server (twice with `now`: drain, then goodbyes); returns its pid."""
    if (pid is None) == (pid_file is None):
        raise DrainError("give the server's --pid or its --pid-file")
    if pid_file is not None:
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError) as exc:
            raise DrainError(f"cannot read a pid from {pid_file}: {exc}") from None
    assert pid is not None
    if pid <= 1:
        raise DrainError(f"refusing to signal pid {pid}")
    try:
        os.kill(pid, signal.SIGTERM)
        if now:
            time.sleep(0.2)  # two signals in one instant could arrive as one
            os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        raise DrainError(f"no process {pid}") from None
    except PermissionError:
        raise DrainError(f"not allowed to signal pid {pid} (run as the server's user)") from None
    return pid


def wait_for_exit(pid: int, timeout_s: float) -> bool:
    """True once `pid` is gone (or a zombie), False after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.2)
    return not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) has finished
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True
