"""Per-session RTP counters, outbound send-timing jitter, and a log line that cannot flood the log."""

from __future__ import annotations

import collections
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["RateLimitedLog", "RtpStats"]

SEND_TIMING_WINDOW = 20_000
"""Send-lateness samples kept (about 6.7 minutes of 20 ms frames); older ones roll off."""


@dataclass
class RtpStats:
    packets_in: int = 0
    """Valid RTP packets accepted from the peer (audio and telephone-events)."""
    packets_out: int = 0
    lost: int = 0
    """Packets never received in time (concealed)."""
    late: int = 0
    """Packets that arrived after their place in the stream had been played or concealed."""
    duplicates: int = 0
    non_rtp_dropped: int = 0
    """Datagrams that were not RTP version 2, or malformed."""
    ssrc_changes: int = 0
    dtmf_in: int = 0
    dtmf_out: int = 0
    wrong_payload_dropped: int = 0
    """RTP with a payload type that was not negotiated."""
    foreign_source_dropped: int = 0
    """RTP from an address other than the peer's, once the peer's source is known."""
    flood_dropped: int = 0
    """Packets over the rate limit (far more than one stream's worth per second)."""
    concealed_ms: float = 0.0
    _send_lateness_s: collections.deque[float] = field(
        default_factory=lambda: collections.deque(maxlen=SEND_TIMING_WINDOW), repr=False
    )

    def record_send(self, lateness_s: float) -> None:
        """How long after its scheduled time a packet actually left."""
        self._send_lateness_s.append(max(0.0, lateness_s))

    def send_jitter_ms_p99(self) -> float:
        if not self._send_lateness_s:
            return 0.0
        return float(np.percentile(np.fromiter(self._send_lateness_s, dtype=np.float64), 99)) * 1000.0

    def send_lateness_ms(self) -> list[float]:
        """Every recorded send lateness, in ms (for pooling across calls in a benchmark)."""
        return [x * 1000.0 for x in self._send_lateness_s]

    def send_jitter_ms_max(self) -> float:
        return max(self._send_lateness_s, default=0.0) * 1000.0

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        out["send_jitter_ms_p99"] = round(self.send_jitter_ms_p99(), 3)
        return out


class RateLimitedLog:
    """At most one line per `interval_s` per key; the next line says how many were suppressed.

    A flood of bad packets costs a counter increment each, not a log write each.
    """

    def __init__(self, logger: logging.Logger, interval_s: float = 5.0) -> None:
        self._log = logger
        self._interval_s = interval_s
        self._last: dict[str, float] = {}
        self._suppressed: collections.Counter[str] = collections.Counter()

    def warning(self, key: str, message: str, *args: object, extra: dict[str, Any] | None = None) -> None:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self._interval_s:
            self._suppressed[key] += 1
            return
        self._last[key] = now
        suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            message += f" ({suppressed} similar suppressed)"
        self._log.warning(message, *args, extra=extra)
