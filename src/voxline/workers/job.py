"""A job process: warms up, runs exactly one call's conversation, and exits.

Started by the pool as `python -m voxline.workers.job --fd N`, where N is its end of a Unix
socketpair with the supervisor (see voxline.workers.protocol). Its life, in messages:

    job → hello {pid}              supervisor → init {log_level, preload?, factories?}
    (imports, Silero VAD, the preloaded agent's engines)
    job → ready {warm_s}           supervisor → assign {call_id, agent, context, media, services} + fds
    (engines for the agent, media built from the MediaSpec)
    job → started                  ... the call: media, events, record.*, hangup/transfer/send_dtmf
    job → done {report}            (then the job exits; a failure before the call: failed {error})

The call runs through `CallRunner.converse`, the very path the server runs inline, with a recorder
and webhook queue that relay to the supervisor (which alone writes records). If the supervisor's end
closes, an idle job exits and a job in a call ends it as if the caller had left.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import importlib
import inspect
import itertools
import logging
import os
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

from voxline.agent.config import AgentConfig
from voxline.calls.runner import CallContext, CallRunner, ConversationFactory, build_conversation
from voxline.engines.base import VAD, Engines
from voxline.logs import call_id_var
from voxline.workers.engines import Services, assign_services, job_engines, silero_vad
from voxline.workers.media import (
    INBOX_FRAMES,
    CallMessages,
    MediaContext,
    build_media,
    import_builders,
)
from voxline.workers.protocol import Channel, ChannelClosed, Control, Message
from voxline.workers.records import RelayRecorder, RelayWebhooks
from voxline.workers.send_timing import send_timing

log = logging.getLogger("voxline.workers.job")

CALL_CONTROLS = frozenset({"dtmf", "remote_hangup", "rtp_media"})
"""Supervisor messages for the call itself (`rtp_media`: a re-INVITE changed its RTP, telephony)."""

EnginesFactory = Callable[[AgentConfig, Services, "VAD | None"], "Engines | Awaitable[Engines]"]
"""`job_engines`, or a stand-in (sync or async) named in the pool's init message (tests)."""


class JobLink:
    """The job's end of the channel: the supervisor's messages in order, requests with replies."""

    def __init__(self, sock: socket.socket) -> None:
        self.channel = Channel(sock, self._on_message, self._on_closed)
        self._controls: asyncio.Queue[Control | None] = asyncio.Queue()
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._call: CallMessages | None = None
        self._early: collections.deque[bytes | dict[str, Any]] = collections.deque(maxlen=INBOX_FRAMES)
        """The call's messages that came before its CallIO was built (a greeting's worth of the
        caller's audio, a key press): handed over, in order, on `attach`."""
        self.gone = asyncio.Event()
        self.goodbye_reason: str | None = None
        """The node asked the call to end with a goodbye (its drain's second signal)."""
        self.on_goodbye: Callable[[str], None] | None = None

    # -- SupervisorLink
    def send(self, body: dict[str, Any], fds: Sequence[int] = ()) -> None:
        with contextlib.suppress(ChannelClosed):  # the supervisor is gone: the call is ending anyway
            self.channel.send(body, fds)

    def send_media(self, pcm: bytes) -> None:
        with contextlib.suppress(ChannelClosed):
            self.channel.send_media(pcm)

    async def request(self, body: dict[str, Any], timeout_s: float = 30.0) -> dict[str, Any]:
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[request_id] = future
        self.send({**body, "id": request_id})
        try:
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            return {"ok": False, "error": "no reply from the supervisor"}
        finally:
            self._replies.pop(request_id, None)

    def attach(self, call: CallMessages) -> None:
        self._call = call
        while self._early:
            item = self._early.popleft()
            if isinstance(item, bytes):
                call.on_media(item)
            else:
                call.on_control(item)

    # -- the job's own flow
    async def expect(self, kind: str) -> Control:
        """The next control message not addressed to the call; it must be `kind`."""
        message = await self._controls.get()
        if message is None:
            raise ChannelClosed("the supervisor closed the channel")
        if message.type != kind:
            raise RuntimeError(f"expected {kind!r} from the supervisor, got {message.type!r}")
        return message

    def _on_message(self, message: Message) -> None:
        if isinstance(message, bytes):
            if self._call is not None:
                self._call.on_media(message)
            else:
                self._early.append(message)
            return
        if message.type == "reply":
            future = self._replies.get(int(message.body.get("id", 0)))
            if future is not None and not future.done():
                future.set_result(message.body)
        elif message.type == "goodbye":
            self.goodbye_reason = str(message.body.get("reason") or "node_draining")
            if self.on_goodbye is not None:
                self.on_goodbye(self.goodbye_reason)
        elif message.type in CALL_CONTROLS:
            if self._call is not None:
                self._call.on_control(message.body)
            else:
                self._early.append(message.body)
        else:
            self._controls.put_nowait(message)

    def _on_closed(self, error: BaseException | None) -> None:
        if error is not None:
            log.warning("channel to the supervisor failed: %s", error)
        self.gone.set()
        self._controls.put_nowait(None)
        gone = {"type": "remote_hangup", "reason": "supervisor_gone"}
        if self._call is not None:
            self._call.on_control(gone)
        else:
            self._early.append(gone)


def _import(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def rss_mb(pid: int | None = None) -> float:
    """Resident memory of a process (this one by default), from /proc, in MiB."""
    try:
        with open(f"/proc/{pid or os.getpid()}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


class Job:
    """One job's state between the messages: its engines factory, VAD and preloaded engines."""

    def __init__(self, link: JobLink) -> None:
        self.link = link
        self.make_engines: EnginesFactory = job_engines
        self.make_conversation: ConversationFactory = build_conversation
        self.vad: VAD | None = None
        self.preloaded: tuple[dict[str, Any], Engines] | None = None

    async def warm(self, init: dict[str, Any]) -> None:
        """Imports, VAD, and the engines of the agent most calls will want (all before any call).
        A node whose main agent is media-only (`mode: echo`) warms its jobs with neither models nor
        the conversation's imports: only the media stacks."""
        if init.get("engines_factory"):
            self.make_engines = cast(EnginesFactory, _import(init["engines_factory"]))
        preload = init.get("preload")
        media_only = isinstance(preload, dict) and AgentConfig.model_validate(preload["agent"]).media_only
        if init.get("conversation_factory"):
            self.make_conversation = cast(ConversationFactory, _import(init["conversation_factory"]))
        elif not media_only:
            import voxline.conversation.conversation
        if not media_only:
            import voxline.runtime  # warm: what building and warming engines imports

        import_builders()  # the media builders too (telephony: the RTP and AudioSocket stacks)

        AgentConfig()  # warm: pydantic builds its validators on first use, not at a call
        if media_only:
            import voxline.calls.echo  # noqa: F401 - warm: the echo call's code

            return
        self.vad = await asyncio.to_thread(silero_vad)
        if isinstance(preload, dict):
            agent_data = preload["agent"]
            engines = await self._engines(agent_data, preload.get("services") or {})
            self.preloaded = (agent_data, engines)

    async def _engines(self, agent_data: dict[str, Any], services: Services) -> Engines:
        from voxline.runtime import warm_engines

        agent = AgentConfig.model_validate(agent_data)
        built = self.make_engines(agent, services, self.vad)
        engines = await built if inspect.isawaitable(built) else built
        if self.make_engines is job_engines:
            await warm_engines(agent, engines)
        return engines

    async def engines_for(self, agent_data: dict[str, Any], services: Services) -> Engines:
        if AgentConfig.model_validate(agent_data).media_only:
            return Engines.none()
        if self.preloaded is not None and self.preloaded[0] == agent_data:
            engines = self.preloaded[1]
            assign_services(engines, services)
            return engines
        return await self._engines(agent_data, services)

    async def run_call(self, assign: Control) -> None:
        body = assign.body
        call_id = str(body["call_id"])
        token = call_id_var.set(call_id)
        try:
            agent = AgentConfig.model_validate(body["agent"])
            context_data = body.get("context") or {}
            context = CallContext(**context_data)
            engines = await self.engines_for(body["agent"], body.get("services") or {})
            media = dict(body["media"])
            media.setdefault("label", context.label)
            call = await build_media(MediaContext(call_id, media, assign.fds, self.link))
        except Exception as exc:
            log.exception("job could not start its call")
            self.link.send({"type": "failed", "error": f"{type(exc).__name__}: {exc}"})
            return
        self.link.send({"type": "started", "pid": os.getpid()})
        relay = RelayRecorder(self.link.send)
        runner = CallRunner(
            agent, engines, relay, make_conversation=self.make_conversation, labels=relay,
            webhooks=RelayWebhooks(self.link.send),
        )  # fmt: skip

        def on_event(event: dict[str, Any]) -> None:
            self.link.send({"type": "event", "event": event})

        def goodbye(reason: str) -> None:
            # the conversation says its goodbye line, then ends; one that cannot (a media-only
            # agent) is ended as if the caller had left
            if runner.request_goodbye(reason) == 0:
                on_control = getattr(call, "on_control", None)
                if callable(on_control):
                    on_control({"type": "remote_hangup", "reason": reason})

        self.link.on_goodbye = goodbye
        if self.link.goodbye_reason is not None:  # asked before the call was running
            asyncio.get_running_loop().call_soon(goodbye, self.link.goodbye_reason)

        try:
            report = await runner.converse(call, context, on_event)
        finally:
            await call.sink.aclose()  # every paced frame is out before `done`
        done: dict[str, Any] = {"type": "done", "report": report.as_dict()}
        timing = send_timing(call)
        if timing is not None:
            done["send_lateness_us"] = timing
        self.link.send(done)
        call_id_var.reset(token)


async def run_job(sock: socket.socket) -> int:
    link = JobLink(sock)
    job = Job(link)
    started = time.monotonic()
    link.send({"type": "hello", "pid": os.getpid()})
    try:
        init = await link.expect("init")
        from voxline.logs import configure_logging

        configure_logging(str(init.body.get("log_level") or "info"), bool(init.body.get("log_json")))
        try:
            await job.warm(init.body)
        except Exception as exc:
            log.exception("job could not warm up")
            link.send({"type": "failed", "error": f"{type(exc).__name__}: {exc}"})
            await link.channel.drain()
            return 1
        link.send({"type": "ready", "warm_s": round(time.monotonic() - started, 3), "rss_mb": rss_mb()})
        assign = await link.expect("assign")
    except ChannelClosed:
        return 0  # the supervisor let us go (or went away) before any call
    await job.run_call(assign)
    await link.channel.drain()
    link.channel.close()
    return 0


_fd = -1
_PR_SET_PDEATHSIG = 1


def _die_with(parent: int) -> None:
    """Be killed when the supervisor dies, even if this job is stuck and never reads the EOF on its
    channel (the kernel's parent-death signal; Linux). The pool forks jobs from its event loop's
    thread, which lives as long as the pool."""
    import ctypes
    import ctypes.util
    import signal

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the supervisor died before the signal was armed
        os._exit(1)


def current_fd() -> int:
    """This job's end of the channel (a test's stand-in writes garbage on it)."""
    return _fd


def main(argv: list[str] | None = None) -> int:
    global _fd
    parser = argparse.ArgumentParser(prog="voxline.workers.job")
    parser.add_argument("--fd", type=int, required=True, help="this job's end of the socketpair")
    parser.add_argument("--parent", type=int, default=0, help="the supervisor's pid: die with it")
    args = parser.parse_args(argv)
    if args.parent:
        _die_with(args.parent)
    sock = socket.socket(fileno=args.fd)
    _fd = args.fd
    code = asyncio.run(run_job(sock))
    # single use: skip the interpreter's teardown (model runtimes' threads, atexit) and go at once
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    # run the importable module's main, not this __main__ copy: one set of module globals
    from voxline.workers.job import main as job_main

    sys.exit(job_main())
