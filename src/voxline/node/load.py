"""How busy the node is, and whether it takes one more call: the load function, the threshold and
reserved slots.

`NodeLoad` is the node's call budget (a `voxline.capacity.CallCapacity`, so every way in keeps its
one hook: `admit(transport)` gives a slot or a `Refusal`). A new call is admitted while

    load_fnc(sample) < threshold      (and fewer than `max_calls` calls, and not draining)

where the sample counts the calls running **and the ones reserved**: a call is reserved from the
moment a way in accepts it (an INVITE, an AudioSocket connection, a WebSocket handshake) until it
really starts (`slot.started()`), so two INVITEs arriving together cannot both take the one slot
left, however long their set-up takes (the capacity race LiveKit's reserved slots fix). A
reservation that never starts (a 200 OK never ACKed, a socket that never sends its UUID) stops
counting after `reserved_slot_ttl_s`; released later, it is still released exactly once.

The default load function is the larger of the calls in use against the node's capacity
(`capacity_calls`, measured with `voxline bench`; by default one call per usable core) and the CPU
the node's own process tree uses (supervisor, job processes, inference servers), averaged over
`cpu_window_s`, against the cores it may run on. Other processes on the host are not counted: set
`load.load_fnc: voxline.node.load.calls_load` to admit by calls alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from voxline.capacity import CallCapacity, CallSlot, Refusal

if TYPE_CHECKING:
    from voxline.node.config import LoadConfig

log = logging.getLogger(__name__)

DRAIN_RETRY_AFTER_S = 60
"""Retry-After while draining: this node is going away; a proxy should use another one."""
DEFAULT_LOAD_FNC = "voxline.node.load.default_load"


@dataclass(frozen=True, slots=True)
class LoadSample:
    """What a load function sees. It must be cheap: it runs on every admission, under a lock."""

    calls: int
    """Calls running (started)."""
    reserved: int
    """Calls admitted but not started yet: count them, or two arrivals can take one slot."""
    capacity_calls: int
    """The calls this node holds within its latency target."""
    cpu: float | None
    """CPU the node's process tree used over the window, 0..1 of its cores (None before measured)."""

    @property
    def in_use(self) -> int:
        return self.calls + self.reserved


LoadFunction = Callable[[LoadSample], float]


def calls_load(sample: LoadSample) -> float:
    """Calls in use (running and reserved) against the node's capacity."""
    return sample.in_use / sample.capacity_calls


def default_load(sample: LoadSample) -> float:
    """The busier of the calls in use against capacity and the node's CPU use."""
    return max(calls_load(sample), sample.cpu or 0.0)


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity, which containers and `taskset` narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_capacity_calls() -> int:
    """One call per usable core, when this machine's capacity was never measured: a guess that
    ignores the models (a 2-core machine measured with the bank agent held one call, not two). Run
    `voxline bench --scenarios capacity` once, or set `load.capacity_calls`."""
    return usable_cores()


def resolve_load_fnc(dotted: str) -> LoadFunction:
    """`package.module.function` (or `package.module:function`) as a load function."""
    module_name, sep, attr = dotted.partition(":") if ":" in dotted else dotted.rpartition(".")
    if not sep or not module_name or not attr:
        raise ValueError(f"load_fnc must be a dotted path to a function, got {dotted!r}")
    try:
        target = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"load_fnc {dotted!r} cannot be imported: {exc}") from None
    if not callable(target):
        raise ValueError(f"load_fnc {dotted!r} is not a function")
    fnc: LoadFunction = target
    return fnc


class Reservation(CallSlot):
    """A slot held from admission until the call starts; then it is the call's slot."""

    def __init__(self, owner: NodeLoad, transport: str, expires_at: float) -> None:
        super().__init__(owner, transport)
        self._node = owner
        self.expires_at = expires_at
        self.state = "reserved"
        """reserved, started or expired (a reservation that never started in time)."""

    def started(self) -> None:
        self._node._start(self)


class NodeCpu:
    """CPU used by this process and its descendants, averaged over a window, as a fraction of the
    usable cores. Sampled from /proc in a thread once a second (never on the event loop)."""

    def __init__(self, window_s: float = 10.0, interval_s: float = 1.0, root_pid: int | None = None) -> None:
        self.window_s = window_s
        self.interval_s = interval_s
        self.root_pid = root_pid or os.getpid()
        self.cores = usable_cores()
        self._ticks = os.sysconf("SC_CLK_TCK")
        self._last: dict[int, float] = {}
        self._last_at: float | None = None
        self._intervals: deque[tuple[float, float]] = deque()
        """(seconds of wall time, CPU seconds used) per sample interval, the window's worth."""
        self._task: asyncio.Task[None] | None = None
        self._lock = threading.Lock()

    @property
    def fraction(self) -> float | None:
        with self._lock:
            wall = sum(w for w, _ in self._intervals)
            if wall <= 0:
                return None
            return min(1.0, sum(c for _, c in self._intervals) / (wall * self.cores))

    def sample(self) -> None:
        """Read the tree's CPU times now and add the interval since the last sample."""
        now = time.monotonic()
        times = self._tree_cpu_seconds()
        with self._lock:
            if self._last_at is not None:
                used = sum(max(0.0, t - self._last.get(pid, 0.0)) for pid, t in times.items())
                self._intervals.append((now - self._last_at, used))
                while sum(w for w, _ in self._intervals) > self.window_s and len(self._intervals) > 1:
                    self._intervals.popleft()
            self._last, self._last_at = times, now

    async def start(self) -> None:
        if self._task is None and sys.platform == "linux":
            await asyncio.to_thread(self.sample)
            self._task = asyncio.get_running_loop().create_task(self._run(), name="node-cpu")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await asyncio.to_thread(self.sample)
            except Exception:
                log.exception("sampling the node's CPU failed")

    def _tree_cpu_seconds(self) -> dict[int, float]:
        """utime + stime of the root process and every descendant, by pid."""
        parents: dict[int, int] = {}
        cpu: dict[int, float] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue  # it exited while we looked
            fields = stat[stat.rfind(b")") + 2 :].split()  # the name may hold spaces and ')'
            pid = int(entry.name)
            parents[pid] = int(fields[1])
            cpu[pid] = (int(fields[11]) + int(fields[12])) / self._ticks
        tree = {self.root_pid}
        grew = True
        while grew:
            grew = False
            for pid, ppid in parents.items():
                if ppid in tree and pid not in tree:
                    tree.add(pid)
                    grew = True
        return {pid: cpu[pid] for pid in tree if pid in cpu}


class NodeLoad(CallCapacity):
    """The node's call budget: a load function against a threshold, reserved slots, draining.
    Thread-safe; `admit` never waits (the CPU figure is sampled in the background)."""

    def __init__(
        self,
        capacity_calls: int,
        threshold: float = 0.9,
        *,
        max_calls: int = 50,
        load_fnc: LoadFunction = default_load,
        reserved_slot_ttl_s: float = 10.0,
        cpu: NodeCpu | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(max_calls)
        if capacity_calls < 1:
            raise ValueError(f"capacity_calls must be at least 1, got {capacity_calls}")
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        self.capacity_calls = capacity_calls
        self.threshold = threshold
        self.load_fnc = load_fnc
        self.reserved_slot_ttl_s = reserved_slot_ttl_s
        self.cpu = cpu
        self._clock = clock
        self._reserved: dict[Reservation, float] = {}
        self.refusals: Counter[str] = Counter()
        """Refusals by code: capacity (max_calls), load (over the threshold), draining."""
        self.reservations_expired = 0
        self.draining = False
        self._fnc_failed = False

    @classmethod
    def budget(cls, max_calls: int) -> NodeLoad:
        """Calls alone, up to `max_calls` (what the server did before the node had a load policy)."""
        return cls(max_calls, 1.0, max_calls=max_calls, load_fnc=calls_load)

    @classmethod
    def from_config(
        cls, config: LoadConfig, *, max_calls: int = 50, measured_calls: int | None = None
    ) -> NodeLoad:
        """`measured_calls`: what `voxline bench --scenarios capacity` found this machine holds
        (`voxline.node.measured`), used when the config sets no `capacity_calls`."""
        fnc = resolve_load_fnc(config.load_fnc)
        uses_cpu = config.load_fnc != "voxline.node.load.calls_load"
        return cls(
            config.capacity_calls or measured_calls or default_capacity_calls(),
            config.threshold,
            max_calls=max_calls,
            load_fnc=fnc,
            reserved_slot_ttl_s=config.reserved_slot_ttl_s,
            cpu=NodeCpu(config.cpu_window_s) if uses_cpu else None,
        )

    # ------------------------------------------------------------ admission

    def admit(self, transport: str) -> CallSlot | Refusal:
        with self._lock:
            self._expire()
            refusal = self._refusal()
            if refusal is not None:
                self.refused[transport] += 1
                self.refusals[refusal.code] += 1
                return refusal
            reservation = Reservation(self, transport, self._clock() + self.reserved_slot_ttl_s)
            self._reserved[reservation] = reservation.expires_at
            return reservation

    def has_room(self) -> bool:
        with self._lock:
            self._expire()
            return self._refusal() is None

    @property
    def active(self) -> int:
        """Calls holding a slot: running or reserved."""
        with self._lock:
            self._expire()
            return sum(self._active.values()) + len(self._reserved)

    @property
    def retry_after_s(self) -> int:
        return DRAIN_RETRY_AFTER_S if self.draining else super().retry_after_s

    def refusal_reason(self) -> str:
        with self._lock:
            refusal = self._refusal()
        return refusal.reason if refusal is not None else "the node has room"

    def load(self) -> float:
        with self._lock:
            self._expire()
            return self._load()

    def start_draining(self) -> None:
        """Refuse every new call from now on (calls in progress go on)."""
        with self._lock:
            self.draining = True

    async def start(self) -> None:
        """Start measuring the node's CPU (the server's lifespan)."""
        if self.cpu is not None:
            await self.cpu.start()

    async def stop(self) -> None:
        if self.cpu is not None:
            await self.cpu.stop()

    # ------------------------------------------------------------ reporting

    def describe(self) -> dict[str, object]:
        """The call budget as /health has always shown it: calls holding a slot by transport."""
        with self._lock:
            self._expire()
            active: Counter[str] = Counter(self._active)
            for reservation in self._reserved:
                active[reservation.transport] += 1
            return {"max_calls": self.max_calls, "active": dict(active), "refused": dict(self.refused)}

    def describe_load(self) -> dict[str, object]:
        """Load, capacity, threshold and reserved slots (/health `load`, /metrics)."""
        with self._lock:
            self._expire()
            sample = self._sample()
            return {
                "load": round(self._load(), 3),
                "threshold": self.threshold,
                "capacity_calls": self.capacity_calls,
                "calls": sample.calls,
                "reserved": sample.reserved,
                "cpu": None if sample.cpu is None else round(sample.cpu, 3),
                "accepting": self._refusal() is None,
                "draining": self.draining,
                "refused": {code: self.refusals.get(code, 0) for code in ("capacity", "load", "draining")},
                "reservations_expired": self.reservations_expired,
                "reserved_slot_ttl_s": self.reserved_slot_ttl_s,
                "load_fnc": _dotted(self.load_fnc),
            }

    # ------------------------------------------------------------ internals (under the lock)

    def _sample(self) -> LoadSample:
        cpu = self.cpu.fraction if self.cpu is not None else None
        return LoadSample(sum(self._active.values()), len(self._reserved), self.capacity_calls, cpu)

    def _load(self) -> float:
        sample = self._sample()
        try:
            return float(self.load_fnc(sample))
        except Exception:
            if not self._fnc_failed:  # once: a broken load function must not flood the log
                self._fnc_failed = True
                log.exception("the load function failed; admitting by calls alone")
            return calls_load(sample)

    def _refusal(self) -> Refusal | None:
        if self.draining:
            return Refusal("the node is draining (shutting down); call another node", "draining",
                           DRAIN_RETRY_AFTER_S)  # fmt: skip
        if sum(self._active.values()) + len(self._reserved) >= self.max_calls:
            return Refusal(super().refusal_reason(), "capacity")
        load = self._load()
        if load >= self.threshold:
            return Refusal(
                f"the node is busy (load {load:.2f}, threshold {self.threshold:.2f}); try again later", "load"
            )
        return None

    def _expire(self) -> None:
        now = self._clock()
        for reservation, expires_at in list(self._reserved.items()):
            if now >= expires_at:
                del self._reserved[reservation]
                reservation.state = "expired"
                self.reservations_expired += 1
                log.warning(
                    "a %s call reserved %.0f s ago never started: its slot is free again",
                    reservation.transport, self.reserved_slot_ttl_s,
                )  # fmt: skip

    def _start(self, reservation: Reservation) -> None:
        with self._lock:
            if reservation.released or reservation.state == "started":
                return
            if self._reserved.pop(reservation, None) is None:  # expired, yet the call did start
                log.warning("a %s call started after its reservation expired", reservation.transport)
            reservation.state = "started"
            self._active[reservation.transport] += 1

    def _release(self, slot: CallSlot) -> None:
        if not isinstance(slot, Reservation):
            super()._release(slot)
            return
        with self._lock:
            if slot.state == "reserved":
                self._reserved.pop(slot, None)
            elif slot.state == "started":
                self._active[slot.transport] -= 1
                if self._active[slot.transport] <= 0:
                    del self._active[slot.transport]


def _dotted(fnc: object) -> str:
    return f"{getattr(fnc, '__module__', '?')}.{getattr(fnc, '__qualname__', '?')}"
