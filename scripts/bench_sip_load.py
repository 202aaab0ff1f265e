"""How many concurrent SIP calls with RTP one voxline process carries (media only, no models).

voxline runs its SIP endpoint with the echo agent; sipp (a separate process) places N concurrent
calls with its built-in `uac_pcap` scenario: each call streams 8 s of A-law speech and a DTMF digit
as RTP, which voxline decodes, runs through its jitter buffer and sends back, paced. For each N we
report the outbound packet send-timing jitter (how late each packet left against its 20 ms
schedule; p50/p99/max pooled over every packet of every call), the event loop's lag, packets in
and out, loss, the calls that completed, and the voxline process's CPU use.

    .venv/bin/python scripts/bench_sip_load.py --out out/sip-load [--calls 1,10,20,40,80]
        [--workers inline,process]

`--workers process` measures the node as deployed in process mode instead: `voxline serve
--workers process` with a `mode: echo` agent, a fresh node per point with min(N, 64) jobs kept
warm, each call in its own job process on its own RTP socket. The send timing then comes from the
jobs (the pool's `rtp_send_lateness` on /health, pooled over every packet of every call the same
way), CPU is the whole node's (supervisor and every job, counted from /proc), and memory is the
peak resident size of the supervisor and its jobs together.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from voxline.agent.config import SipConfig
from voxline.audio.pacing import EventLoopLagMonitor
from voxline.bench.runner import ECHO_AGENT
from voxline.telephony.echo import EchoAgent
from voxline.telephony.sip.endpoint import SipEndpoint
from voxline.transports.base import CallIO

IDLE_MAX = 64
"""`workers.idle_processes` at most."""

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
    proc, err = await run_sipp(n, port, workdir)
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_TICKS = os.sysconf("SC_CLK_TCK")


def _proc_stat(pid: int) -> list[bytes] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _proc_stat(int(entry))
            if fields is not None and int(fields[1]) == pid:
                found.append(int(entry))
    return found


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of `pid`, its reaped children (ended jobs) and its live children (jobs)."""
    total = 0.0
    fields = _proc_stat(pid)
    if fields is not None:
        total += sum(int(x) for x in fields[11:15]) / _TICKS  # utime stime cutime cstime
    for child in _children(pid):
        fields = _proc_stat(child)
        if fields is not None:
            total += (int(fields[11]) + int(fields[12])) / _TICKS
    return total


def tree_rss_mb(pid: int) -> tuple[float, int]:
    """(resident MiB of `pid` and its children together, how many children)."""
    children = _children(pid)
    total = 0.0
    for p in [pid, *children]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return total, len(children)


async def _health(client: Any, url: str) -> dict[str, Any]:
    try:
        body: dict[str, Any] = (await client.get(f"{url}/health")).json()
        return body
    except Exception:
        return {}


async def run_sipp(n: int, port: int, workdir: Path) -> tuple[asyncio.subprocess.Process, bytes]:
    """sipp's uac_pcap scenario: n calls, all started within ~2 s so that they overlap for most of
    their ~10 s; returns the finished process and its stderr."""
    proc = await asyncio.create_subprocess_exec(
        "sipp", "-sn", "uac_pcap", "-i", "127.0.0.1", "-p", "0", "-m", str(n), "-l", str(n),
        "-r", str(max(1, n // 2)), "-rp", "1000", "-nostdin", "-timeout", "60", "-timeout_error",
        "-trace_err", f"127.0.0.1:{port}",
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    _, err = await proc.communicate()
    return proc, err


async def run_process_point(
    n: int, workdir: Path, agent_file: Path, log_path: Path, media_calls: str = "jobs"
) -> dict[str, Any]:
    """One point against `voxline serve --workers process` with the echo agent (see the docstring);
    `media_calls`: the node's default `supervisor` (echo calls on its own loop, no warm jobs needed)
    or `jobs` (a warm job per call)."""
    import httpx

    idle = min(n, IDLE_MAX) if media_calls == "jobs" else 0
    http_port = _free_port()
    args = [
        sys.executable, "-m", "voxline.cli", "serve", "--agent", str(agent_file), "--port", str(http_port),
        "--sip", "--sip-port", "0", "--no-audiosocket", "--log-level", "warning",
        "--workers", "process", "--idle-processes", str(idle), "--max-calls", str(max(50, 2 * n)),
        "--media-calls", media_calls,
        "--load-fnc", "voxline.node.load.calls_load", "--capacity-calls", "1000", "--load-threshold", "1",
    ]  # fmt: skip
    url = f"http://127.0.0.1:{http_port}"
    with log_path.open("ab") as log_file:
        node = await asyncio.create_subprocess_exec(*args, stdout=log_file, stderr=log_file)
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            started = time.monotonic()
            health: dict[str, Any] = {}
            while time.monotonic() - started < 300:
                health = await _health(client, url)
                if "sip" in health and int((health.get("pool") or {}).get("idle") or 0) >= idle:
                    break
                await asyncio.sleep(0.5)
            warm_fill_s = time.monotonic() - started
            port = int(health["sip"]["udp"])
            rss_idle, _ = tree_rss_mb(node.pid)
            peak_calls = 0
            peak_rss = rss_idle
            peak_children = 0

            async def sample() -> None:
                nonlocal peak_calls, peak_rss, peak_children
                while True:
                    view = await _health(client, url)
                    peak_calls = max(peak_calls, int((view.get("pool") or {}).get("jobs") or 0))
                    rss, children = await asyncio.to_thread(tree_rss_mb, node.pid)
                    peak_rss, peak_children = max(peak_rss, rss), max(peak_children, children)
                    await asyncio.sleep(1.0)

            sampler = asyncio.create_task(sample())
            load_before = os.getloadavg()
            cpu0, t0 = tree_cpu_s(node.pid), time.monotonic()
            proc, err = await run_sipp(n, port, workdir)
            for _ in range(200):  # every job reported and gone (its send timing is in the pool's view)
                view = await _health(client, url)
                pool = view.get("pool") or {}
                if int(pool.get("jobs") or 0) == 0:
                    break
                await asyncio.sleep(0.1)
            wall = time.monotonic() - t0
            cpu = tree_cpu_s(node.pid) - cpu0
            sampler.cancel()
            pool = (await _health(client, url)).get("pool") or {}
    finally:
        if node.returncode is None:
            # SIGTERM drains: calls still waiting for a job would hold it up to drain_timeout
            node.terminate()
            try:
                await asyncio.wait_for(node.wait(), 10)
            except TimeoutError:
                node.kill()  # its jobs die with it (parent-death signal)
                await node.wait()
    timing = pool.get("rtp_send_lateness") or {}
    return {
        "workers": "process" if media_calls == "supervisor" else "process-jobs",
        "concurrent_calls": n,
        "idle_processes": idle,
        "peak_concurrent_calls": peak_calls,
        "calls_completed": timing.get("calls"),
        "sipp_exit_code": proc.returncode,
        "sipp_errors": err.decode(errors="replace")[-300:] if proc.returncode else "",
        "send_jitter_ms_p50": timing.get("p50_ms"),
        "send_jitter_ms_p99": timing.get("p99_ms"),
        "send_jitter_ms_max": timing.get("max_ms"),
        "packets_out": timing.get("packets"),
        "cold_starts": pool.get("cold_starts"),
        "jobs_crashed": pool.get("crashed"),
        "pool_calls": pool.get("calls"),
        "start_delay_s": pool.get("start_delay_s"),
        "job_warm_s_p50": pool.get("warm_s_p50"),
        "pool_fill_s": round(warm_fill_s, 1),
        "node_rss_mb_idle": round(rss_idle, 1),
        "node_rss_mb_peak": round(peak_rss, 1),
        "peak_processes": peak_children + 1,
        "cpu_pct_of_one_core": round(100 * cpu / wall, 1),
        "wall_s": round(wall, 1),
        "load_avg_before": [round(x, 2) for x in load_before],
    }


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("out/sip-load"))
    parser.add_argument("--calls", default="1,20,50,100,150,200,300")
    parser.add_argument(
        "--workers", default="inline",
        help="inline, process (echo calls on the supervisor: the default) and/or process-jobs, comma-sep.",
    )  # fmt: skip
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if shutil.which("sipp") is None:
        raise SystemExit("sipp is not installed (apt install sip-tester)")
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(PCAPS, Path(tmp) / "pcap")  # uac_pcap looks for ./pcap/g711a.pcap
        agent_file = Path(tmp) / "echo.yaml"
        agent_file.write_text(ECHO_AGENT)  # telephony.sip.max_calls out of the way
        for n in (int(x) for x in args.calls.split(",")):
            for workers in args.workers.split(","):
                if workers in ("process", "process-jobs"):
                    media_calls = "jobs" if workers == "process-jobs" else "supervisor"
                    log_path = args.out / "node.log"
                    point = await run_process_point(n, Path(tmp), agent_file, log_path, media_calls)
                else:
                    point = {"workers": "inline", **await run_point(n, Path(tmp))}
                    point["load_avg_before"] = [round(x, 2) for x in os.getloadavg()]
                results.append(point)
                print(json.dumps(point), flush=True)
    machine = {"cpus": os.cpu_count(), "load_generator": "sipp uac_pcap (separate process, same machine)"}
    (args.out / "sip_load.json").write_text(json.dumps({"machine": machine, "points": results}, indent=2))
    lines = [
        "| workers | calls | peak concurrent | completed | send jitter p50 / p99 / max (ms) "
        "| loop lag p99 (ms) | loss % | CPU % of a core | memory peak (MiB) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for p in results:
        lines.append(
            f"| {p['workers']} | {p['concurrent_calls']} | {p['peak_concurrent_calls']} | "
            f"{p['calls_completed']} | "
            f"{p['send_jitter_ms_p50']} / "
            f"{p['send_jitter_ms_p99']} / {p['send_jitter_ms_max']} | {p.get('loop_lag_ms_p99', '–')} | "
            f"{p.get('loss_pct', '–')} | {p['cpu_pct_of_one_core']} | {p.get('node_rss_mb_peak', '–')} |"
        )
    for workers in dict.fromkeys(p["workers"] for p in results):
        within = [
            p["concurrent_calls"] for p in results
            if p["workers"] == workers and (p["send_jitter_ms_p99"] or 1e9) <= 5.0
            and p["calls_completed"] == p["concurrent_calls"]
        ]  # fmt: skip
        best = max(within, default="none")
        lines.append(f"{workers}: largest point with every call completed and p99 ≤ 5 ms: {best}")
    degraded = [
        p["concurrent_calls"] for p in results if (p["send_jitter_ms_p99"] or 1e9) > DEGRADED_JITTER_MS
    ]
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
