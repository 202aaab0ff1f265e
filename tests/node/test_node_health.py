"""/health and /metrics show the job pool when the node has one (any object with `describe()`), and a
draining node asks the pool for its calls' goodbyes too."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from node_harness import node_app

from server.ws_harness import LiveServer
from voxline.capacity import CallSlot


class FakePool:
    def __init__(self) -> None:
        self.goodbyes: list[str] = []
        self.broken = False

    def describe(self) -> dict[str, Any]:
        if self.broken:
            raise RuntimeError("broken on purpose")
        return {
            "idle": 2,
            "jobs": 1,
            "spawning": 0,
            "crashed": 3,
            "jobs_rss_mb": {"job-7": 101.5, 'odd"job': 1},
        }

    def request_goodbye(self, reason: str = "node_shutdown") -> int:
        self.goodbyes.append(reason)
        return 1


async def test_the_pool_is_shown_and_asked_for_goodbyes() -> None:
    built = node_app(capacity_calls=4)
    pool = FakePool()
    built.state.pool = pool
    with LiveServer(built.app) as server:
        async with httpx.AsyncClient(base_url=server.http) as http:
            health = (await http.get("/health")).json()
            metrics = (await http.get("/metrics")).text.splitlines()
            assert health["pool"] == pool.describe()
            for line in (
                "voxline_pool_idle_processes 2", "voxline_pool_jobs 1", "voxline_pool_spawning 0",
                "voxline_pool_crashed_total 3", 'voxline_job_rss_bytes{job="job-7"} 106430464',
                'voxline_job_rss_bytes{job="odd\\"job"} 1048576',
            ):  # fmt: skip
                assert line in metrics, line
            pool.broken = True  # a failing pool must not take /health down
            broken = await http.get("/health")
            assert broken.status_code == 200 and broken.json()["pool"] == {"error": "describe failed"}

            job_call = built.state.capacity.admit("sip")  # a call the pool runs holds a slot
            assert isinstance(job_call, CallSlot)
            job_call.started()
            loop = server._server.servers[0].get_loop()  # the server's loop, as the signal handler uses
            loop.call_soon_threadsafe(built.state.drain.end_calls)
            for _ in range(100):
                if pool.goodbyes:
                    break
                await asyncio.sleep(0.02)
            job_call.release()
    assert pool.goodbyes == ["node_shutdown"]
    assert built.state.drain.goodbyes_asked == 1


async def test_without_a_pool_there_is_no_pool_section() -> None:
    built = node_app()
    with LiveServer(built.app) as server:
        async with httpx.AsyncClient(base_url=server.http) as http:
            assert "pool" not in (await http.get("/health")).json()
            assert not any(
                line.startswith("voxline_pool") for line in (await http.get("/metrics")).text.splitlines()
            )
