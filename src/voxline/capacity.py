"""One call-capacity budget for the whole process, shared by every way in.

The models are shared by every call, so the limit that matters is the total: a flood of WebSocket
calls must not leave SIP answering OPTIONS 200 with no room left, nor the reverse.

Hook for a way in (WebSocket uses it today; SIP, AudioSocket and ARI are meant to):

    slot = capacity.try_acquire("sip")
    if slot is None:            # full: SIP answers 503 + Retry-After, AudioSocket/WebSocket refuse
        ...refuse with capacity.refusal_reason()...
    with slot:                  # released when the call ends, however it ends
        ...run the call...

and `capacity.has_room()` answers an OPTIONS probe. `call_handler` in voxline.server.app already
takes a slot for every call the telephony listeners hand over, so they count against the budget.
"""

from __future__ import annotations

import threading
from collections import Counter
from types import TracebackType


class CallSlot:
    """One admitted call; release it exactly once (a context manager, or `release()`)."""

    def __init__(self, owner: CallCapacity, transport: str) -> None:
        self._owner = owner
        self.transport = transport
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._owner._release(self.transport)

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

    def try_acquire(self, transport: str) -> CallSlot | None:
        with self._lock:
            if sum(self._active.values()) >= self.max_calls:
                self.refused[transport] += 1
                return None
            self._active[transport] += 1
        return CallSlot(self, transport)

    def has_room(self) -> bool:
        with self._lock:
            return sum(self._active.values()) < self.max_calls

    @property
    def active(self) -> int:
        with self._lock:
            return sum(self._active.values())

    def refusal_reason(self) -> str:
        return f"the server is at capacity ({self.max_calls} calls); try again later"

    def describe(self) -> dict[str, object]:
        with self._lock:
            return {
                "max_calls": self.max_calls,
                "active": dict(self._active),
                "refused": dict(self.refused),
            }

    def _release(self, transport: str) -> None:
        with self._lock:
            self._active[transport] -= 1
            if self._active[transport] <= 0:
                del self._active[transport]
