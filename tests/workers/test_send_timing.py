"""The pool's view of its jobs' RTP send lateness: pooled over calls, percentiles from a histogram."""

from __future__ import annotations

import numpy as np

from voxline.workers.send_timing import BIN_US, SendTiming


def test_empty_until_a_call_reports() -> None:
    timing = SendTiming()
    assert timing.describe() == {"calls": 0, "packets": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    timing.add([])  # a call with no RTP sent: counted, no packets
    assert timing.describe()["calls"] == 1 and timing.packets == 0


def test_percentiles_pool_every_packet_of_every_call_to_the_bin() -> None:
    rng = np.random.default_rng(5)
    calls = [rng.integers(0, 3000, size=500) for _ in range(4)] + [np.array([250_000, 80_000])]
    timing = SendTiming()
    for lateness in calls:
        timing.add(lateness.tolist())
    pooled = np.concatenate(calls)
    described = timing.describe()
    assert described["calls"] == 5 and described["packets"] == pooled.size
    for q, key in ((50, "p50_ms"), (99, "p99_ms")):
        exact = float(np.percentile(pooled, q, method="inverted_cdf")) / 1000
        assert exact <= described[key] <= exact + BIN_US / 1000  # the bin's upper edge
    assert described["max_ms"] == 250.0  # past the last bin: the worst packet is kept exactly


def test_negative_lateness_counts_as_on_time() -> None:
    timing = SendTiming()
    timing.add([-40, 10, 20])
    assert timing.describe()["max_ms"] == 0.02
    assert timing.percentile_ms(50) == 0.02 and timing.packets == 3
