"""The job pool: job processes kept warm ahead of demand, one per call, replaced as soon as used.

`WorkerPool.run(call, context, agent, media=...)` is the supervisor's handler for a call from any way
in: it takes a warm job (or starts one cold if none is ready), hands it the call, drives the call's
transport through a `CallBridge`, and returns the call's report. A job runs one call and exits; the
pool starts its replacement at once, one spawn at a time (spawning is CPU work that the calls in
progress would otherwise feel).

Faults stay inside their call: a job that dies mid-call (`kill -9`, a native crash, the OOM killer)
ends that call with `worker_crashed`; a job above `workers.job_memory_mb` is killed and its call ends
with `memory_limit` (a warning is logged at 80 %); a job that breaks the protocol is killed.

`describe()` is what /health and /metrics show of the pool.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from voxline.agent.config import AgentConfig
from voxline.calls.runner import CallContext, CallObserver, EventSink, LabelStore, WebhookQueue
from voxline.conversation.events import CallFailed, to_wire
from voxline.conversation.metrics import CallRecorder, CallReport
from voxline.node.config import WorkersConfig
from voxline.telephony.rtp.stats import SEND_TIMING_WINDOW
from voxline.transports.base import CallIO
from voxline.workers.bridge import CallBridge
from voxline.workers.job import rss_mb
from voxline.workers.media import MediaSpec
from voxline.workers.protocol import Channel, ChannelClosed, Control, Message, ProtocolError
from voxline.workers.send_timing import SendTiming
from voxline.workers.services import NodeServices

log = logging.getLogger(__name__)

EOF_WAIT_S = 30.0
"""After a job exits, how long its last messages may take to be read from the socket. The socket's
end comes as soon as the reader has the loop, so this bounds only a descendant holding the socket
open; 2 s was too short on a saturated supervisor (56 of 100 echo calls that ended normally were
recorded `worker_crashed`, their `done` still unread)."""
EXIT_GRACE_S = 5.0
"""A job that reported its call done gets this long to exit before it is killed."""
MAX_SEND_SAMPLES = SEND_TIMING_WINDOW
"""A job's send-timing report is at most what its RtpStats keeps."""
TIMINGS_KEPT = 256


class NoWorker(RuntimeError):
    """No job could be had for a call (the pool is stopping, at `max_jobs`, or a spawn failed)."""


class JobProcess:
    """One job process and its channel, as the pool sees it."""

    def __init__(self, proc: asyncio.subprocess.Process, sock: socket.socket) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.spawned_at = time.monotonic()
        self.state = "spawning"
        """spawning → idle → busy → ended."""
        self.warm_s: float | None = None
        self.rss_mb = 0.0
        self.cpu_pct = 0.0
        """CPU use over the last sampling interval (100 = one core)."""
        self.cpu_sampled: tuple[float, float] | None = None
        self.memory_warned = False
        self.kill_reason: str | None = None
        """Why the supervisor killed it (memory_limit, protocol_error), if it did."""
        self.finished = False
        """It reported its call done (so its exit is not a crash)."""
        self.handler: Any = None
        """Where its messages go while it runs a call (the CallBridge)."""
        self.send_lateness_us: Any = None
        """Its call's RTP send lateness per packet, from its `done` (see SendTiming)."""
        loop = asyncio.get_running_loop()
        self._ready: asyncio.Future[dict[str, Any]] = loop.create_future()
        self._ready.add_done_callback(_retrieved)  # a job that dies unasked-for is not an error to log
        self._exited: asyncio.Future[int] = loop.create_future()
        self._eof: asyncio.Future[None] = loop.create_future()
        self.channel = Channel(sock, self._on_message, self._on_closed)

    # -- messages
    def send(self, body: dict[str, Any], fds: Any = ()) -> None:
        with contextlib.suppress(ChannelClosed):  # it is dying; its exit ends the call
            self.channel.send(body, fds)

    def send_media(self, pcm: bytes) -> None:
        with contextlib.suppress(ChannelClosed):
            self.channel.send_media(pcm)

    def _on_message(self, message: Message) -> None:
        try:
            if self.handler is not None:
                if isinstance(message, Control) and message.type == "done":
                    self.finished = True
                    self.send_lateness_us = message.body.get("send_lateness_us")
                self.handler(message)
            elif isinstance(message, Control) and message.type == "hello":
                pass
            elif isinstance(message, Control) and message.type == "ready":
                self.warm_s = time.monotonic() - self.spawned_at
                self.rss_mb = float(message.body.get("rss_mb") or 0.0)
                if not self._ready.done():
                    self._ready.set_result(message.body)
            elif isinstance(message, Control) and message.type == "failed":
                error = str(message.body.get("error"))
                if not self._ready.done():
                    self._ready.set_exception(NoWorker(f"job {self.pid} failed to warm up: {error}"))
            else:
                raise ProtocolError(f"unexpected message from an idle job: {message!r:.80}")
        except Exception as exc:  # a message its handler cannot take is the job's fault, not ours
            self.broke_protocol(exc)

    def _on_closed(self, error: BaseException | None) -> None:
        if not self._eof.done():
            self._eof.set_result(None)
        if isinstance(error, ProtocolError):
            self.broke_protocol(error)
        if not self._ready.done():
            self._ready.set_exception(NoWorker(f"job {self.pid} exited while warming up"))

    def broke_protocol(self, error: BaseException) -> None:
        log.error("job %d broke the protocol (%s): killing it", self.pid, error)
        self.kill("protocol_error")

    # -- life
    async def ready(self, timeout_s: float) -> dict[str, Any]:
        return await asyncio.wait_for(asyncio.shield(self._ready), timeout_s)

    async def ended(self) -> int:
        return await asyncio.shield(self._exited)

    @property
    def alive(self) -> bool:
        return not self._exited.done() and self.kill_reason is None and not self.channel.closed

    def kill(self, reason: str) -> None:
        if self.kill_reason is None:
            self.kill_reason = reason
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGKILL)

    async def watch(self) -> int:
        code = await self.proc.wait()
        if not self.channel.closed:
            # what it wrote before exiting (its `done`) is still in the socket: read it to the end
            # first, or a call that ended normally would be taken for a crash
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._eof), EOF_WAIT_S)
        self.state = "ended"
        self.channel.close()
        if not self._exited.done():
            self._exited.set_result(code)
        if not self._ready.done():
            self._ready.set_exception(NoWorker(f"job {self.pid} exited ({code}) while warming up"))
        return code


@dataclass
class PoolStats:
    spawned: int = 0
    crashed: int = 0
    """Jobs that ended without finishing their call or warm-up cleanly (killed ones included)."""
    memory_kills: int = 0
    protocol_kills: int = 0
    calls: int = 0
    cold_starts: int = 0
    warm_s: collections.deque[float] = field(default_factory=lambda: collections.deque(maxlen=TIMINGS_KEPT))
    """Spawn to ready, per job."""
    start_delay_s: collections.deque[tuple[bool, float]] = field(
        default_factory=lambda: collections.deque(maxlen=TIMINGS_KEPT)
    )
    """(cold, seconds) from the call handed to the pool to the job running it."""


class WorkerPool:
    """Job processes for calls; see the module docstring. Start it on the serving loop."""

    def __init__(
        self,
        config: WorkersConfig,
        *,
        preload: AgentConfig | None = None,
        services: NodeServices | None = None,
        conversation_factory: str | None = None,
        engines_factory: str | None = None,
        log_level: str | None = None,
        log_json: bool | None = None,
        memory_check_s: float = 1.0,
        python: str = sys.executable,
    ) -> None:
        """`preload`: the agent whose engines each job builds while idle (the node's main agent);
        `services`: the node's shared servers (default: a speech server for `preload`, unless
        `engines_factory` is given); `conversation_factory` / `engines_factory`: "module:function"
        stand-ins (tests)."""
        self.config = config
        self.preload = preload
        # a pool of real jobs for an agent shares one speech server (stand-in engines need none)
        speech_agents = [preload] if preload is not None and engines_factory is None else []
        self.services = services if services is not None else NodeServices(speech_agents)
        self.conversation_factory = conversation_factory
        self.engines_factory = engines_factory
        self.log_level = log_level or logging.getLevelName(logging.getLogger().getEffectiveLevel())
        self.log_json = _logging_json() if log_json is None else log_json
        self.memory_check_s = memory_check_s
        self.python = python
        self.stats = PoolStats()
        self.send_timing = SendTiming()
        self._jobs: set[JobProcess] = set()
        self._idle: collections.deque[JobProcess] = collections.deque()
        self._refill_wanted = asyncio.Event()
        self._import_path = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))
        self._tasks: list[asyncio.Task[Any]] = []
        self._watchers: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self._started = False
        self._calls: dict[str, JobProcess] = {}

    # ------------------------------------------------------------------ life
    async def start(self, wait_warm: bool = True) -> None:
        """Start the node's services (the speech server, the llama-server an agent needs), then fill
        the pool; with
        `wait_warm` return once the first job is warm (a node is ready when it can take a call)."""
        if self._started:
            return
        self._started = True
        await self.services.start()  # the speech server: loaded and answering before any job warms
        if self.preload is not None:
            if self.preload.llm.engine == "llama_cpp" and not self.preload.media_only:
                log.warning(
                    "llm.engine llama_cpp loads the model in every job process (its own KV cache "
                    "and threads): use llm.engine: llama_server with workers.mode: process"
                )
            await self.services.for_agent(self.preload)
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._watch_memory(), name="pool-memory"))
        if wait_warm and self.config.idle_processes > 0:
            # the first job proves the setup (its imports, models): a broken one fails the start
            await self._warm(await self._spawn())
        self._tasks.append(loop.create_task(self._refill_forever(), name="pool-refill"))
        self._refill_wanted.set()

    async def stop(self) -> None:
        """Let idle jobs go, end the calls in jobs (each job reports and exits; one that has not
        within EXIT_GRACE_S is killed), stop the services."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for job in list(self._jobs):
            if job.handler is not None:  # in a call: it ends as if the caller left, and reports
                job.send({"type": "remote_hangup", "reason": "node_stopping"})
            else:
                job.channel.close()  # an idle job exits
        if self._jobs:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(job.ended() for job in self._jobs)), EXIT_GRACE_S)
        for job in list(self._jobs):
            job.kill("stopping")
        for task in list(self._watchers):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.services.stop()

    # ------------------------------------------------------------------ spawning
    async def _spawn(self) -> JobProcess:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = dict(os.environ)
        # the job imports exactly the code the supervisor runs (a source checkout on PYTHONPATH too)
        env["PYTHONPATH"] = self._import_path
        try:
            proc = await asyncio.create_subprocess_exec(
                self.python, "-m", "voxline.workers.job", "--fd", str(theirs.fileno()),
                "--parent", str(os.getpid()),
                pass_fds=(theirs.fileno(),), env=env, stdin=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C reaches the supervisor, which ends its jobs
            )  # fmt: skip
        except Exception:
            ours.close()
            raise
        finally:
            theirs.close()
        job = JobProcess(proc, ours)
        self._jobs.add(job)
        self.stats.spawned += 1
        watcher = asyncio.get_running_loop().create_task(self._watch(job), name=f"job-{job.pid}")
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)
        job.send(self._init())
        return job

    def _init(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": "init", "log_level": self.log_level, "log_json": self.log_json}
        if self.conversation_factory:
            body["conversation_factory"] = self.conversation_factory
        if self.engines_factory:
            body["engines_factory"] = self.engines_factory
        if self.preload is not None:
            body["preload"] = {
                "agent": self.preload.model_dump(mode="json"),
                "services": self.services.shared(self.preload),
            }
        return body

    async def _watch(self, job: JobProcess) -> None:
        code = await job.watch()
        self._jobs.discard(job)
        with contextlib.suppress(ValueError):
            self._idle.remove(job)
        if not job.finished and not self._stopping:
            self.stats.crashed += 1
            if job.kill_reason == "memory_limit":
                self.stats.memory_kills += 1
            elif job.kill_reason == "protocol_error":
                self.stats.protocol_kills += 1
            log.warning("job %d ended (exit %s%s)", job.pid, code,
                        f", {job.kill_reason}" if job.kill_reason else "")  # fmt: skip
        self._refill_wanted.set()

    def _wanted(self) -> bool:
        spawning = sum(1 for job in self._jobs if job.state == "spawning")
        if len(self._idle) + spawning >= self.config.idle_processes:
            return False
        max_jobs = self.config.max_jobs
        return max_jobs is None or len(self._jobs) < max_jobs

    async def _refill_forever(self) -> None:
        while not self._stopping:
            await self._refill_wanted.wait()
            self._refill_wanted.clear()
            while self._wanted() and not self._stopping:
                try:
                    job = await self._spawn()
                    await self._warm(job)
                except Exception as exc:
                    log.error("job spawn failed: %s", exc)
                    await asyncio.sleep(1.0)  # a broken setup must not spin

    async def _warm(self, job: JobProcess) -> None:
        try:
            await job.ready(self.config.spawn_timeout_s)
        except Exception:
            job.kill("warm_up_failed")
            raise
        self.stats.warm_s.append(job.warm_s or 0.0)
        job.state = "idle"
        self._idle.append(job)
        log.debug("job %d warm in %.2f s, %.0f MB", job.pid, job.warm_s or 0.0, job.rss_mb)

    async def _take(self) -> tuple[JobProcess, bool]:
        if self._stopping:
            raise NoWorker("the node is stopping")
        while self._idle:
            job = self._idle.popleft()
            if job.alive:
                job.state = "busy"
                self._refill_wanted.set()
                return job, False
        max_jobs = self.config.max_jobs
        if max_jobs is not None and len(self._jobs) >= max_jobs:
            raise NoWorker(f"all {max_jobs} job processes are in use")
        job = await self._spawn()
        job.state = "cold"
        try:
            await job.ready(self.config.spawn_timeout_s)
        except Exception as exc:
            job.kill("warm_up_failed")
            raise NoWorker(str(exc) or "a job did not warm up in time") from exc
        job.state = "busy"
        self._refill_wanted.set()
        return job, True

    # ------------------------------------------------------------------ calls
    async def run(
        self,
        call: CallIO,
        context: CallContext,
        agent: AgentConfig,
        *,
        media: MediaSpec | None = None,
        recorder: CallRecorder | None = None,
        labels: LabelStore | None = None,
        on_event: EventSink | None = None,
        observer: CallObserver | None = None,
        webhooks: WebhookQueue | None = None,
        on_started: Callable[[], None] | None = None,
    ) -> CallReport:
        """Run the call's conversation in a job; returns its report (its `end_reason` is the
        hang-up reason for `run_call`). Never raises for the call's own failures."""
        accepted = time.monotonic()
        media = media or MediaSpec.pipe(call.input_rate, call.sink.output_rate)
        try:
            job, cold = await self._take()
        except NoWorker as exc:
            log.error("no job for the call: %s", exc)
            if on_event is not None:
                on_event(to_wire(CallFailed("no worker is free for the call, try again")))
            return CallReport(
                call.call_id, agent.name, context.transport, time.time(), end_reason="no_worker"
            )
        self.stats.calls += 1
        self.stats.cold_starts += cold
        lease = self.services.lease(agent)

        def started() -> None:
            self.stats.start_delay_s.append((cold, time.monotonic() - accepted))
            if on_started is not None:
                on_started()

        bridge = CallBridge(
            job, call, context, agent, media, recorder=recorder, labels=labels, on_event=on_event,
            observer=observer, webhooks=webhooks, on_started=started,
        )  # fmt: skip
        assignment = {
            "type": "assign",
            "call_id": call.call_id,
            "agent": agent.model_dump(mode="json"),
            "context": {"transport": context.transport, "label": context.label},
            "media": media.to_wire(),
            "services": await lease.services(),
        }
        self._calls[call.call_id] = job
        try:
            report = await bridge.run(assignment)
        finally:
            self._calls.pop(call.call_id, None)
            lease.release()
            for fd in media.fds:
                with contextlib.suppress(OSError):
                    os.close(fd)  # the job has its own copies
            reaper = self._let_go(job)
            self._add_send_timing(job)
        # the call (and its admission slot, held by the caller of run) lasts until its job is gone
        await asyncio.shield(reaper)
        return report

    def _add_send_timing(self, job: JobProcess) -> None:
        lateness = job.send_lateness_us
        if not isinstance(lateness, list) or len(lateness) > MAX_SEND_SAMPLES:
            return
        try:
            self.send_timing.add(lateness)
        except (TypeError, ValueError, OverflowError):
            log.warning("job %d reported unusable send timing", job.pid)

    def _let_go(self, job: JobProcess) -> asyncio.Task[None]:
        """A job whose call is over exits by itself (at once); one that lingers is killed."""
        job.handler = None

        async def reap() -> None:
            try:
                await asyncio.wait_for(job.ended(), EXIT_GRACE_S)
            except TimeoutError:
                job.kill("lingering")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(job.ended(), EXIT_GRACE_S)

        task = asyncio.get_running_loop().create_task(reap(), name=f"reap-{job.pid}")
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)
        return task

    def request_goodbye(self, reason: str = "node_shutdown") -> int:
        """Ask every call in a job to say its goodbye line and end (a drain's second signal);
        returns how many were asked."""
        asked = 0
        for job in list(self._calls.values()):
            if job.alive:
                job.send({"type": "goodbye", "reason": reason})
                asked += 1
        return asked

    # ------------------------------------------------------------------ memory
    async def _watch_memory(self) -> None:
        limit = self.config.job_memory_mb
        while True:
            await asyncio.sleep(self.memory_check_s)
            jobs = [job for job in self._jobs if job.alive]
            samples = await asyncio.to_thread(_samples, [job.pid for job in jobs])
            now = time.monotonic()
            for job, (size, cpu_s) in zip(jobs, samples, strict=True):
                if size <= 0:
                    continue
                job.rss_mb = size
                if job.cpu_sampled is not None and now > job.cpu_sampled[0]:
                    job.cpu_pct = 100.0 * (cpu_s - job.cpu_sampled[1]) / (now - job.cpu_sampled[0])
                job.cpu_sampled = (now, cpu_s)
                if limit is None:
                    continue
                if size > limit:
                    log.error("job %d uses %.0f MB, over its %d MB limit: ending its call",
                              job.pid, size, limit)  # fmt: skip
                    job.kill("memory_limit")
                elif size > 0.8 * limit and not job.memory_warned:
                    job.memory_warned = True
                    log.warning("job %d uses %.0f MB, %.0f%% of its %d MB limit",
                                job.pid, size, 100 * size / limit, limit)  # fmt: skip

    # ------------------------------------------------------------------ reporting
    @property
    def idle(self) -> int:
        return len(self._idle)

    def pid_of(self, call_id: str) -> int | None:
        """The job process running a call (None once it is over)."""
        job = self._calls.get(call_id)
        return job.pid if job is not None else None

    def describe(self) -> dict[str, Any]:
        """For /health and /metrics: processes by state, each job's memory, the pool's history."""
        states = collections.Counter(job.state for job in self._jobs)
        stats = self.stats
        warm = sorted(stats.warm_s)
        return {
            "mode": "process",
            "idle": len(self._idle),
            "jobs": states["busy"],
            "spawning": states["spawning"] + states["cold"],
            "crashed": stats.crashed,
            "memory_kills": stats.memory_kills,
            "protocol_kills": stats.protocol_kills,
            "spawned": stats.spawned,
            "calls": stats.calls,
            "cold_starts": stats.cold_starts,
            "idle_target": self.config.idle_processes,
            "job_memory_mb": self.config.job_memory_mb,
            "jobs_rss_mb": {str(job.pid): round(job.rss_mb, 1) for job in self._jobs},
            "jobs_cpu_pct": {str(job.pid): round(job.cpu_pct, 1) for job in self._jobs},
            "warm_s_p50": round(warm[len(warm) // 2], 3) if warm else None,
            "start_delay_s": _start_delays(stats.start_delay_s),
            "rtp_send_lateness": self.send_timing.describe(),
            "services": self.services.describe(),
        }


def _start_delays(delays: collections.deque[tuple[bool, float]]) -> dict[str, Any]:
    """From a call handed to the pool to its job running it (the last TIMINGS_KEPT calls): the
    median with a warm job and with a cold one (spawned for the call), and the longest."""

    def median(values: list[float]) -> float | None:
        return round(sorted(values)[len(values) // 2], 3) if values else None

    return {
        "warm_p50": median([s for cold, s in delays if not cold]),
        "cold_p50": median([s for cold, s in delays if cold]),
        "max": round(max((s for _, s in delays), default=0.0), 3) if delays else None,
    }


def _samples(pids: list[int]) -> list[tuple[float, float]]:
    return [(rss_mb(pid), cpu_seconds(pid)) for pid in pids]


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used, from /proc/<pid>/stat."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()  # after the command, which may hold spaces
        return (int(fields[11]) + int(fields[12])) / _TICKS
    except (OSError, ValueError, IndexError):
        return 0.0


def _logging_json() -> bool:
    """Jobs log the way the supervisor does (JSON lines or text)."""
    from voxline.logs import JsonFormatter

    return any(isinstance(h.formatter, JsonFormatter) for h in logging.getLogger().handlers)


def _retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
