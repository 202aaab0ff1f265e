"""What admission costs: a call admitted, started and released on a NodeLoad with 100 calls
reserved, and one sample of the node's CPU (a /proc scan, done in a thread once a second).

    PYTHONPATH=src .venv/bin/python scripts/bench_admission.py
"""

from __future__ import annotations

import os
import statistics
import time

from voxline.capacity import CallSlot
from voxline.node.load import NodeCpu, NodeLoad, default_load

CALLS = 10_000


def main() -> None:
    cpu = NodeCpu()
    load = NodeLoad(1000, 0.9, max_calls=10_000, load_fnc=default_load, cpu=cpu)
    cpu.sample()
    held = [load.admit("sip") for _ in range(100)]  # calls being set up meanwhile
    started = time.perf_counter()
    for _ in range(CALLS):
        slot = load.admit("sip")
        assert isinstance(slot, CallSlot)
        slot.started()
        slot.release()
    per_call_us = (time.perf_counter() - started) / CALLS * 1e6
    samples = []
    for _ in range(20):
        t = time.perf_counter()
        cpu.sample()
        samples.append((time.perf_counter() - t) * 1000)
    print(f"admit + started + release: {per_call_us:.1f} us per call ({len(held)} calls reserved)")
    print(
        f"node CPU sample ({len(os.listdir('/proc'))} /proc entries): "
        f"p50 {statistics.median(samples):.2f} ms, max {max(samples):.2f} ms"
    )


if __name__ == "__main__":
    main()
