"""The node's view of its calls' RTP send timing (in jobs, or on the supervisor for media-only calls):
how late each packet left against its schedule.

Each job paces its own call's RTP (the socket is its own), so only the job sees how late its
packets went out; it sends the lateness of every packet with its `done`. The pool pools them here,
in a fixed histogram (50 µs bins to 200 ms, then one overflow bin), so `/health` reads percentiles
over every packet of every call since the node started without sorting anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from voxline.telephony.rtp.stats import RtpStats
from voxline.transports.base import CallIO

BIN_US = 50
BINS = 4000
"""50 µs × 4000: up to 200 ms; later packets go in the last bin (and `max_ms` keeps the worst)."""


class SendTiming:
    """Send lateness pooled over the node's finished job calls (see the module docstring)."""

    def __init__(self) -> None:
        self.counts = np.zeros(BINS + 1, dtype=np.int64)
        self.calls = 0
        self.max_us = 0

    def add(self, lateness_us: Iterable[int]) -> None:
        """One call's packets (µs late each; a malformed list from a job is its own loss)."""
        values = np.fromiter((int(x) for x in lateness_us), dtype=np.int64)
        self.calls += 1
        if values.size == 0:
            return
        values = np.clip(values, 0, None)
        self.max_us = max(self.max_us, int(values.max()))
        np.add.at(self.counts, np.minimum(values // BIN_US, BINS), 1)

    @property
    def packets(self) -> int:
        return int(self.counts.sum())

    def percentile_ms(self, q: float) -> float | None:
        """The q-th percentile (0..100) in ms, to the bin's upper edge; None before any packet."""
        total = self.packets
        if total == 0:
            return None
        rank = max(1, int(np.ceil(q / 100.0 * total)))
        index = int(np.searchsorted(np.cumsum(self.counts), rank))
        if index >= BINS:
            return round(self.max_us / 1000.0, 2)
        return round(min((index + 1) * BIN_US, self.max_us) / 1000.0, 2)

    def describe(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "packets": self.packets,
            "p50_ms": self.percentile_ms(50),
            "p99_ms": self.percentile_ms(99),
            "max_ms": round(self.max_us / 1000.0, 2) if self.packets else None,
        }


def send_timing(call: CallIO) -> list[int] | None:
    """How late each of the call's RTP packets left against its 20 ms schedule, in µs (the last
    SEND_TIMING_WINDOW), for the pool's view of its jobs' send jitter; None for a call without RTP."""
    session = getattr(call, "session", None)
    stats = getattr(session, "stats", None)
    if not isinstance(stats, RtpStats):
        return None
    return [round(ms * 1000) for ms in stats.send_lateness_ms()]
