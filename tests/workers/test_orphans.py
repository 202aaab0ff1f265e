"""No job outlives its supervisor, however the supervisor ends: an idle job sees EOF on its channel,
and a stuck one (its event loop blocked: it would never read the EOF) gets the kernel's
parent-death signal."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

SUPERVISOR = """
import asyncio, os, sys
from test_pool_calls import PhoneCall
from voxline.agent.config import AgentConfig
from voxline.calls.runner import CallContext
from voxline.node.config import WorkersConfig
from voxline.workers.pool import WorkerPool

async def main():
    pool = WorkerPool(WorkersConfig(mode="process", idle_processes=1),
                      conversation_factory="job_fakes:JobEchoConversation",
                      engines_factory="job_fakes:fake_engines")
    await pool.start()
    started = asyncio.Event()
    call = PhoneCall("stuck", keys="4")  # the stand-in blocks its job's event loop for good
    asyncio.create_task(pool.run(call, CallContext("audiosocket"), AgentConfig(name="x"),
                                 on_started=started.set))
    await started.wait()
    while pool.idle < 1:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    print(pool.pid_of("stuck"), *pool.describe()["jobs_rss_mb"], flush=True)
    os.kill(os.getpid(), 9)

asyncio.run(main())
"""


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            return "zombie" in status.read()
    except FileNotFoundError:
        return True


async def test_jobs_die_with_a_killed_supervisor() -> None:
    here = Path(__file__).parent
    path = os.pathsep.join([str(here), str(here.parent / "server"), *sys.path])
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", SUPERVISOR], capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": path}, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == -9, done.stderr[-2000:]
    pids = sorted({int(pid) for pid in done.stdout.split()})
    assert len(pids) == 2  # the stuck job in its call, and the warm idle one
    deadline = time.monotonic() + 10
    while not all(gone(pid) for pid in pids):
        assert time.monotonic() < deadline, [pid for pid in pids if not gone(pid)]
        await asyncio.sleep(0.1)
