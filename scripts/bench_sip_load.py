"""How many concurrent SIP calls with RTP one voxline process carries (media only, no models).

voxline runs its SIP endpoint with the echo agent; sipp (a separate process) places N concurrent
calls with its built-in `uac_pcap` scenario: each call streams 8 s of A-law speech and a DTMF digit
as RTP, which voxline decodes, runs through its jitter buffer and sends back, paced. For each N we
report the outbound packet send-timing jitter (how late each packet left against its 20 ms
schedule; p50/p99/max pooled over every packet of every call), the event loop's lag, packets in
and out, loss, the calls that completed, and the voxline process's CPU use.

    .venv/bin/python scripts/bench_sip_load.py --out out/sip-load [--calls 1,10,20,40,80]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from voxline.agent.config import SipConfig
from voxline.audio.pacing import EventLoopLagMonitor
from voxline.telephony.echo import EchoAgent
from voxline.telephony.sip.endpoint import SipEndpoint
from voxline.transports.base import CallIO

PCAPS = Path("/usr/share/sip-tester")
DEGRADED_JITTER_MS = 10.0
"""Send jitter p99 above this (half a packet) is audible as a jittery stream at a strict receiver."""


class MeasuringEcho:
    """The echo agent, keeping each call's RTP statistics when it ends."""

    def __init__(self) -> None:
        self.echo = EchoAgent()
        self.stats: list[Any] = []

    async def __call__(self, call: CallIO) -> None:
        try:
            await self.echo(call)
        finally:
            session = getattr(call, "session", None)
            if session is not None:
                self.stats.append(session.stats)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run_point(n: int, workdir: Path) -> dict[str, Any]:
    handler = MeasuringEcho()
    config = SipConfig(port=0, transports=["udp"], rtp_port_min=0, rtp_port_max=0, max_calls=max(50, 2 * n))
    endpoint = SipEndpoint(config, handler)
    await endpoint.start()
    port = endpoint.local_port("udp")
    monitor = EventLoopLagMonitor()
    monitor.start()
    peak = 0

    async def sample_concurrency() -> None:
        nonlocal peak
        while True:
            peak = max(peak, endpoint.active_calls)
            await asyncio.sleep(0.1)

    sampler = asyncio.create_task(sample_concurrency())
    cpu0, t0 = cpu_seconds(), time.monotonic()
    # every call starts within ~2 s, so all n overlap for most of their ~10 s
    proc = await asyncio.create_subprocess_exec(
        "sipp", "-sn", "uac_pcap", "-i", "127.0.0.1", "-p", "0", "-m", str(n), "-l", str(n),
        "-r", str(max(1, n // 2)), "-rp", "1000", "-nostdin", "-timeout", "60", "-timeout_error",
        "-trace_err", f"127.0.0.1:{port}",
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    _, err = await proc.communicate()
    wall = time.monotonic() - t0
    cpu = cpu_seconds() - cpu0
    for _ in range(100):
        if endpoint.active_calls == 0:
            break
        await asyncio.sleep(0.05)
    sampler.cancel()
    await monitor.stop()
    await endpoint.stop()
    lateness = np.array([x for s in handler.stats for x in s.send_lateness_ms()] or [0.0])
    packets_in = sum(s.packets_in for s in handler.stats)
    packets_out = sum(s.packets_out for s in handler.stats)
    lost = sum(s.lost for s in handler.stats)
    return {
        "concurrent_calls": n,
        "peak_concurrent_calls": peak,
        "calls_completed": len(handler.stats),
        "sipp_exit_code": proc.returncode,
        "sipp_errors": err.decode(errors="replace")[-300:] if proc.returncode else "",
        "send_jitter_ms_p50": round(float(np.percentile(lateness, 50)), 3),
        "send_jitter_ms_p99": round(float(np.percentile(lateness, 99)), 3),
        "send_jitter_ms_max": round(float(lateness.max()), 3),
        "loop_lag_ms_p99": round(monitor.p99_ms, 3),
        "packets_in": packets_in,
        "packets_out": packets_out,
        "lost": lost,
        "loss_pct": round(100 * lost / max(1, packets_in + lost), 3),
        "cpu_pct_of_one_core": round(100 * cpu / wall, 1),
        "wall_s": round(wall, 1),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("out/sip-load"))
    parser.add_argument("--calls", default="1,20,50,100,150,200,300")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if shutil.which("sipp") is None:
        raise SystemExit("sipp is not installed (apt install sip-tester)")
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(PCAPS, Path(tmp) / "pcap")  # uac_pcap looks for ./pcap/g711a.pcap
        for n in (int(x) for x in args.calls.split(",")):
            point = await run_point(n, Path(tmp))
            results.append(point)
            print(json.dumps(point), flush=True)
    machine = {"cpus": os.cpu_count(), "load_generator": "sipp uac_pcap (separate process, same machine)"}
    (args.out / "sip_load.json").write_text(json.dumps({"machine": machine, "points": results}, indent=2))
    lines = [
        "| calls | peak concurrent | completed | send jitter p50 / p99 / max (ms) | loop lag p99 (ms) "
        "| loss % | CPU % of a core |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in results:
        lines.append(
            f"| {p['concurrent_calls']} | {p['peak_concurrent_calls']} | {p['calls_completed']} | "
            f"{p['send_jitter_ms_p50']} / "
            f"{p['send_jitter_ms_p99']} / {p['send_jitter_ms_max']} | {p['loop_lag_ms_p99']} | "
            f"{p['loss_pct']} | {p['cpu_pct_of_one_core']} |"
        )
    degraded = [p["concurrent_calls"] for p in results if p["send_jitter_ms_p99"] > DEGRADED_JITTER_MS]
    lines.append("")
    lines.append(
        f"Degrades (send jitter p99 > {DEGRADED_JITTER_MS} ms) from {degraded[0]} calls."
        if degraded
        else "No degradation in the range tried."
    )
    (args.out / "sip_load.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    asyncio.run(main())
