"""A per-source token bucket: how often one address may open a call, with a bounded memory."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

MAX_SOURCES = 4096
"""Sources remembered at once; the least recently seen is forgotten first (a spoofing flood cannot
grow memory, it can only make an old source's bucket start full again)."""


class SourceRateLimiter:
    """`allow(source)` is True while `source` has made at most `per_minute` attempts a minute
    (a burst of `burst` is allowed from a full bucket)."""

    def __init__(
        self,
        per_minute: int,
        burst: int | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_sources: int = MAX_SOURCES,
    ) -> None:
        self.rate_per_s = per_minute / 60.0
        self.burst = float(burst if burst is not None else max(1, min(per_minute, 10)))
        self._clock = clock
        self._max_sources = max_sources
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self.refused = 0

    def allow(self, source: str) -> bool:
        now = self._clock()
        tokens, last = self._buckets.pop(source, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate_per_s)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        else:
            self.refused += 1
        self._buckets[source] = (tokens, now)
        if len(self._buckets) > self._max_sources:
            self._buckets.popitem(last=False)
        return allowed

    def retry_after_s(self, source: str) -> int:
        tokens, _ = self._buckets.get(source, (self.burst, 0.0))
        return max(1, round((1.0 - tokens) / self.rate_per_s)) if self.rate_per_s > 0 else 60
