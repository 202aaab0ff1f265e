"""One call-capacity budget for the whole process, shared by every way in.

The models are shared by every call, so the limit that matters is the total: a flood of WebSocket
calls must not leave SIP answering OPTIONS 200 with no room left, nor the reverse.

Hook for a way in (every listener uses it):

    slot = capacity.admit("sip")
    if isinstance(slot, Refusal):  # SIP answers 503 + Retry-After, AudioSocket/WebSocket refuse
        ...refuse with slot.reason, slot.retry_after_s...
    with slot:                     # released when the call ends, however it ends
        slot.started()             # the call really runs now (a reservation becomes its slot)
        ...run the call...

and `capacity.has_room()` answers an OPTIONS probe. `try_acquire(transport)` is the older form of
`admit` (None when refused). `call_handler` in voxline.server.app takes a slot for every call the
telephony listeners hand over (or adopts the one they took), so they count against the budget.

`CallCapacity` is a plain count (at most `max_calls` at once); the node's own policy (a load
function, a threshold, reservations that expire, draining) is `voxline.node.load.NodeLoad`, which
keeps this shape.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from types import TracebackType

RETRY_AFTER_S = 5
"""What a refusal asks the peer to wait before trying this node again (SIP Retry-After)."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a call was not admitted, and when to try again."""

    reason: str
    """A sentence for the caller's client and the log ("the server is at capacity ...")."""
    code: str = "capacity"
    """Short and stable, for counters and WebSocket close reasons: capacity, load, draining."""
    retry_after_s: int = RETRY_AFTER_S


class CallSlot:
    """One admitted call; release it exactly once (a context manager, or `release()`)."""

    def __init__(self, owner: CallCapacity, transport: str) -> None:
        self._owner = owner
        self.transport = transport
        self._released = False

    @property
    def released(self) -> bool:
        return self._released

    def started(self) -> None:
        """The call is running now (its conversation or job started). A plain slot already counts
        as a call; a reservation (`voxline.node.load.Reservation`) becomes one here. Idempotent."""

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._owner._release(self)

    def __enter__(self) -> CallSlot:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


class CallCapacity:
    """At most `max_calls` calls at once across every transport. Thread-safe."""

    def __init__(self, max_calls: int) -> None:
        if max_calls < 1:
            raise ValueError(f"max_calls must be at least 1, got {max_calls}")
        self.max_calls = max_calls
        self._lock = threading.Lock()
        self._active: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()

    def admit(self, transport: str) -> CallSlot | Refusal:
        """A slot for a new call from `transport`, or why not (counted in `refused`)."""
        with self._lock:
            if sum(self._active.values()) >= self.max_calls:
                self.refused[transport] += 1
                return Refusal(self.refusal_reason())
            self._active[transport] += 1
        return CallSlot(self, transport)

    def try_acquire(self, transport: str) -> CallSlot | None:
        admitted = self.admit(transport)
        return None if isinstance(admitted, Refusal) else admitted

    def has_room(self) -> bool:
        with self._lock:
            return sum(self._active.values()) < self.max_calls

    @property
    def active(self) -> int:
        with self._lock:
            return sum(self._active.values())

    @property
    def retry_after_s(self) -> int:
        """Retry-After for a refusal now (SIP OPTIONS and INVITE 503)."""
        return RETRY_AFTER_S

    def refusal_reason(self) -> str:
        return f"the server is at capacity ({self.max_calls} calls); try again later"

    def describe(self) -> dict[str, object]:
        with self._lock:
            return {
                "max_calls": self.max_calls,
                "active": dict(self._active),
                "refused": dict(self.refused),
            }

    def _release(self, slot: CallSlot) -> None:
        with self._lock:
            self._active[slot.transport] -= 1
            if self._active[slot.transport] <= 0:
                del self._active[slot.transport]
