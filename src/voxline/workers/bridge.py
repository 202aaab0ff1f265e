"""The supervisor's side of one call running in a job: the transport it drives, the record it keeps.

`CallBridge` sits between the call's real transport (a WebSocketCall; for `pipe` media any CallIO)
and the job:

- inbound: the transport's audio (pipe media only), key presses and the caller's hang-up go to the
  job as they arrive;
- outbound: each paced frame from the job is written to the transport at once (the job paced it;
  pacing it again here would only add delay), a `clear` drops what the transport still holds;
- the job's events go to the client, its hang-up / transfer / DTMF requests to the transport;
- the record: every `record.*` relay goes to the supervisor's recorder (the single writer), and the
  turns are kept here too, so a job that dies mid-call still leaves its record closed with every
  finished turn and `end_reason: worker_crashed` (or `memory_limit`), its webhook queued, and a
  CallFailed event for the client.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from voxline.agent.config import AgentConfig
from voxline.audio.pcm import AudioChunk
from voxline.calls.runner import CallContext, CallObserver, EventSink, LabelStore, WebhookQueue
from voxline.conversation.events import CallFailed, to_wire
from voxline.conversation.metrics import CallRecorder, CallReport, NullRecorder
from voxline.conversation.webhook import call_payload, default_sender
from voxline.transports.base import CallIO, Dtmf
from voxline.workers.media import MediaSpec
from voxline.workers.protocol import Control, Message, ProtocolError
from voxline.workers.records import report_from_dict, turn_from_dict

if TYPE_CHECKING:
    from voxline.workers.pool import JobProcess

log = logging.getLogger(__name__)

HANGUP_GRACE_S = 15.0
"""After the caller left, how long a job may take to close its call (record, webhook) and report."""
OUTBOUND_FRAMES = 100
"""Frames from the job waiting for a slow transport (2 s): past that the oldest are dropped."""


def _safely(fn: Callable[..., object], *args: Any) -> None:
    try:
        fn(*args)
    except Exception:
        log.exception("%r failed", fn)


class CallBridge:
    """Runs one call in one job; `run` returns the call's report however the job ended."""

    def __init__(
        self,
        job: JobProcess,
        call: CallIO,
        context: CallContext,
        agent: AgentConfig,
        media: MediaSpec,
        *,
        recorder: CallRecorder | None = None,
        labels: LabelStore | None = None,
        on_event: EventSink | None = None,
        observer: CallObserver | None = None,
        webhooks: WebhookQueue | None = None,
        on_started: Callable[[], None] | None = None,
    ) -> None:
        self.job = job
        self.call = call
        self.context = context
        self.agent = agent
        self.media = media
        self.recorder: CallRecorder = recorder or NullRecorder()
        self.labels = labels
        self.on_event = on_event
        self.observer = observer
        self.webhooks = webhooks
        self.on_started = on_started
        self.report: CallReport | None = None
        """The record as relayed so far (opened, turns, closed)."""
        self.record_closed = False
        self.started_at: float | None = None
        """Monotonic time the job reported the call running."""
        self._done: asyncio.Future[CallReport | None] = asyncio.get_running_loop().create_future()
        self._failure: str | None = None
        self._out: collections.deque[AudioChunk] = collections.deque(maxlen=OUTBOUND_FRAMES)
        self._out_ready = asyncio.Event()
        self._out_drained = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.frames_out = 0

    # ------------------------------------------------------------------ running
    async def run(self, assignment: dict[str, Any]) -> CallReport:
        job = self.job
        job.handler = self._on_message
        job.send(assignment, self.media.fds)
        if self.media.on_assigned is not None:
            self.media.on_assigned(job)
        pump = asyncio.create_task(self._pump_in(), name="bridge-in")
        writer = asyncio.create_task(self._write_out(), name="bridge-out")
        ended: asyncio.Future[Any] = asyncio.ensure_future(job.ended())
        done: asyncio.Future[Any] = self._done
        try:
            await asyncio.wait({done, ended}, return_when=asyncio.FIRST_COMPLETED)
            report = self._done.result() if self._done.done() else None
        finally:
            pump.cancel()
            for task in list(self._tasks):
                task.cancel()
            ended.cancel()
            await self._flush_out(writer)
        if report is None:
            report = self._crashed()
        if self.started_at is not None and self.observer is not None:
            error = report.end_reason in ("error", "worker_crashed", "memory_limit")
            _safely(lambda: self.observer.call_ended(error=error) if self.observer else None)
        return report

    async def _flush_out(self, writer: asyncio.Task[None]) -> None:
        """Let frames already received reach the transport, then stop the writer."""
        self._out_ready.set()
        if self._out and not writer.done():
            self._out_drained.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._out_drained.wait(), 1.0)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer

    # ------------------------------------------------------------------ job → supervisor
    def _on_message(self, message: Message) -> None:
        if isinstance(message, bytes):
            if not self.media.crosses_supervisor:
                raise ProtocolError("audio on the channel for a call whose media does not cross it")
            self._out.append(AudioChunk.from_bytes(message, self.call.sink.output_rate))
            self._out_ready.set()
            return
        handler = self._handlers.get(message.type)
        if handler is None:
            raise ProtocolError(f"unexpected {message.type!r} from a job in a call")
        handler(self, message)

    def _started(self, message: Control) -> None:
        self.started_at = time.monotonic()
        if self.observer is not None:
            _safely(self.observer.call_started)
        if self.on_started is not None:
            _safely(self.on_started)

    def _clear(self, message: Control) -> None:
        self._out.clear()
        _safely(self.call.sink._on_clear)  # the transport flushes its side (WebSocket: a clear event)

    def _event(self, message: Control) -> None:
        event = message.body.get("event")
        if self.on_event is not None and isinstance(event, dict):
            _safely(self.on_event, event)

    def _record_open(self, message: Control) -> None:
        self.report = report_from_dict(message.body["report"])
        _safely(self.recorder.call_started, self.report)

    def _record_turn(self, message: Control) -> None:
        turn = turn_from_dict(message.body["turn"])
        if self.report is not None:
            self.report.turns.append(turn)
        _safely(self.recorder.turn_finished, self.call.call_id, turn)

    def _record_label(self, message: Control) -> None:
        if self.labels is not None:
            _safely(self.labels.set_label, self.call.call_id, str(message.body["label"]))

    def _record_close(self, message: Control) -> None:
        closed = report_from_dict(message.body["report"])
        if self.report is not None:
            closed.turns = self.report.turns
        self.report = closed
        self.record_closed = True
        _safely(self.recorder.call_ended, closed)

    def _webhook(self, message: Control) -> None:
        payload = message.body.get("payload")
        if self.agent.webhook is not None and isinstance(payload, dict):
            _safely((self.webhooks or default_sender()).submit, self.agent.webhook, payload)

    def _hangup(self, message: Control) -> None:
        self._spawn(self.call.hangup(str(message.body.get("reason") or "normal")))

    def _transfer(self, message: Control) -> None:
        self._spawn(self._reply(message, self.call.transfer(str(message.body.get("target", "")))))

    def _send_dtmf(self, message: Control) -> None:
        body = message.body
        digits = str(body.get("digits", ""))
        self._spawn(self._reply(message, self.call.send_dtmf(digits, int(body.get("duration_ms", 100)))))

    def _done_message(self, message: Control) -> None:
        if not self._done.done():
            self._done.set_result(report_from_dict(message.body["report"]))

    def _failed(self, message: Control) -> None:
        self._failure = str(message.body.get("error", "the job failed"))
        log.error("job %d could not run the call: %s", self.job.pid, self._failure)
        if not self._done.done():
            self._done.set_result(None)

    _handlers: ClassVar[dict[str, Callable[[CallBridge, Control], None]]] = {
        "started": _started,
        "clear": _clear,
        "event": _event,
        "record.open": _record_open,
        "record.turn": _record_turn,
        "record.label": _record_label,
        "record.close": _record_close,
        "webhook": _webhook,
        "hangup": _hangup,
        "transfer": _transfer,
        "send_dtmf": _send_dtmf,
        "done": _done_message,
        "failed": _failed,
    }

    async def _reply(self, message: Control, outcome: Any) -> None:
        try:
            ok = bool(await outcome)
        except Exception:
            log.exception("%s for the job failed", message.type)
            ok = False
        self.job.send({"type": "reply", "id": message.body.get("id"), "ok": ok})

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ transport ↔ job
    async def _write_out(self) -> None:
        emit = self.call.sink._emit  # the job paced the frame: straight to the wire
        while True:
            if not self._out:
                self._out_drained.set()
                self._out_ready.clear()
                await self._out_ready.wait()
                continue
            frame = self._out.popleft()
            try:
                await emit(frame)
            except Exception as exc:
                log.info("the transport took no more audio (%s)", exc)
                self._out.clear()
                return
            self.frames_out += 1

    async def _pump_in(self) -> None:
        call, job = self.call, self.job
        while True:
            try:
                item = await call.receive()
            except Exception:
                log.exception("the transport failed; ending the call")
                item = None
            if item is None:
                job.send({"type": "remote_hangup", "reason": call.hangup_reason or "caller_hangup"})
                # the job must wrap up now; one that does not (hung) would hold the call forever
                await asyncio.sleep(HANGUP_GRACE_S)
                log.error("job %d did not end its call %.0f s after the caller left: killing it",
                          job.pid, HANGUP_GRACE_S)  # fmt: skip
                job.kill("unresponsive")
                return
            if isinstance(item, Dtmf):
                job.send({"type": "dtmf", "digit": item.digit, "duration_ms": item.duration_ms})
            elif self.media.crosses_supervisor:
                job.send_media(item.to_bytes())

    # ------------------------------------------------------------------ a job that died
    def _crashed(self) -> CallReport:
        """Close the record of a call whose job ended without reporting: every relayed turn is kept."""
        if self._failure is not None:
            reason = "error"
        else:  # the supervisor's reason to kill it (protocol_error, lingering) is in the log
            reason = "memory_limit" if self.job.kill_reason == "memory_limit" else "worker_crashed"
        if self._failure is None:
            log.error("job %d ended mid-call (%s): closing the call's record", self.job.pid,
                      self.job.kill_reason or "it died")  # fmt: skip
        report = self.report
        if report is None:
            report = CallReport(self.call.call_id, self.agent.name, self.context.transport, time.time())
            _safely(self.recorder.call_started, report)
            if self.context.label and self.labels is not None:
                _safely(self.labels.set_label, report.call_id, self.context.label)
        if not self.record_closed:
            report.end_reason = reason
            report.ended_at = time.time()
            _safely(self.recorder.call_ended, report)
            if self.agent.webhook is not None:
                sender = self.webhooks or default_sender()
                _safely(sender.submit, self.agent.webhook, call_payload(report, []))
        if self.on_event is not None:
            message = {
                "memory_limit": "the call used more memory than its limit and was ended",
            }.get(reason, "the call's worker process failed")
            _safely(self.on_event, to_wire(CallFailed(message)))
        return report
