"""A stand-in for the worker pool that hands a call's media over for real, inside the test process.

The descriptor crosses a Unix socketpair with SCM_RIGHTS exactly as it does to a job process, the
media spec goes as JSON, and the two sides of the call talk only through control messages; only
the process boundary is missing (tests of the real pool are in tests/workers). `crash()` ends a
job the way kill -9 does: its messages stop, its descriptors close, nothing of it says goodbye.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from voxline.calls.runner import CallHandler, run_call
from voxline.conversation.metrics import CallReport
from voxline.telephony.job_bridge import hand_off_media, job_ended, on_job_request
from voxline.telephony.job_media import build_audiosocket_call, build_rtp_call
from voxline.transports.base import CallIO


@dataclass(frozen=True)
class Request:
    call_id: str
    spec: dict[str, Any]
    fds: list[int]
    link: JobEnd


class JobEnd:
    """The job's link: its messages go to the supervisor's side of the call, unless it 'died'."""

    def __init__(self, supervisor_call: CallIO) -> None:
        self.supervisor_call = supervisor_call
        self.call: Any = None
        self.dead = False
        self.sent: list[dict[str, Any]] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    def send(self, body: dict[str, Any], fds: Sequence[int] = ()) -> None:
        if self.dead:
            return
        self.sent.append(body)
        task = asyncio.get_running_loop().create_task(on_job_request(self.supervisor_call, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def request(self, body: dict[str, Any], timeout_s: float = 30.0) -> dict[str, Any]:
        self.sent.append(body)
        reply = await asyncio.wait_for(on_job_request(self.supervisor_call, body), timeout_s)
        return reply or {}

    def attach(self, call: Any) -> None:
        self.call = call


@dataclass
class SupervisorEnd:
    """The supervisor's link: control messages for the job's call, delivered on the next tick."""

    job: JobEnd
    sent: list[dict[str, Any]] = field(default_factory=list)

    def send(self, body: dict[str, Any]) -> None:
        if self.job.dead:
            raise ConnectionError("the job is gone")
        self.sent.append(body)
        asyncio.get_running_loop().call_soon(self._deliver, body)

    def _deliver(self, body: dict[str, Any]) -> None:
        if not self.job.dead and self.job.call is not None:
            self.job.call.on_control(body)


@dataclass
class JobRecord:
    supervisor_call: CallIO
    job_call: CallIO
    job_link: JobEnd
    supervisor_link: SupervisorEnd
    spec: dict[str, Any]
    task: asyncio.Task[Any]
    handed_off_at: float


class InProcessJobs:
    """The listener's `CallHandler` in process mode, with `agent` as the job's handler."""

    def __init__(self, agent: CallHandler) -> None:
        self.agent = agent
        self.jobs: list[JobRecord] = []
        self.started = asyncio.Event()

    async def __call__(self, call: CallIO) -> CallReport | None:
        job_link = JobEnd(call)
        supervisor_link = SupervisorEnd(job_link)
        spec, sock = await hand_off_media(call, supervisor_link)
        here, there = socket.socketpair()
        with here, there:
            socket.send_fds(here, [json.dumps(spec).encode()], [sock.fileno()])
            sock.close()  # the supervisor keeps no copy of an RTP socket
            message, fds, _, _ = socket.recv_fds(there, 1 << 20, 1)
        wire_spec = json.loads(message)
        build = build_rtp_call if wire_spec["kind"] == "rtp" else build_audiosocket_call
        job_call = await build(Request(call.call_id, wire_spec, fds, job_link))
        task = asyncio.get_running_loop().create_task(run_call(job_call, self.agent))
        record = JobRecord(call, job_call, job_link, supervisor_link, wire_spec, task, time.monotonic())
        self.jobs.append(record)
        self.started.set()
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if not job_link.dead:
                raise
        crashed = job_link.dead
        job_ended(call)
        if crashed:
            transport = "audiosocket" if wire_spec["kind"] == "audiosocket" else "sip"
            return CallReport(call.call_id, "echo", transport, time.time(), end_reason="worker_crashed")
        return None

    async def crash(self, record: JobRecord) -> None:
        """kill -9: no more messages either way, the job's descriptors closed by the kernel."""
        record.job_link.dead = True
        await record.job_call.aclose()  # its descriptors close, and nothing more is written on them
        record.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await record.task
