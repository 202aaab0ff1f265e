"""One way to run a call, whatever brought it in: WebSocket, SIP (in or out), AudioSocket, ARI, a file.

Two layers, each written once:

- `run_call(call, handler)` is the life of any call: its id on every log line, the handler that
  talks on it (the agent's conversation, or a media-only agent such as the echo), then the end. The
  end is owned here and nowhere else: the call is hung up with the reason the handler reports
  (unless the caller already ended it) and its media closed. Listeners keep only
  what is theirs to release (a SIP dialog entry, an ARI bridge, an AudioSocket connection).
- `CallRunner` is the handler that talks: it builds the agent's conversation on the call, opens and
  closes the call's record (with the client's label), queues the post-call webhook, counts the call
  in the server's metrics, and turns a crash into a report that ends with "error", so no exception
  reaches the listener. The conversation only decides when and why the call ends (its report's
  `end_reason`, once a goodbye has been played out); it never hangs up.

Its inputs are plain (an agent config, the engines, a `CallIO`, a `CallContext`), so a job process
can run a call exactly the way the server does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

from voxline.agent.config import AgentConfig, WebhookConfig
from voxline.audio.clock import Clock
from voxline.conversation.events import CallFailed, to_wire
from voxline.conversation.metrics import CallRecorder, CallReport, NullRecorder, TurnRecord
from voxline.conversation.webhook import call_payload, default_sender
from voxline.dispatch.context import bind_agent
from voxline.dispatch.metadata import CallMetadata
from voxline.engines.base import Engines
from voxline.logs import call_id_var
from voxline.transports.base import CallIO

log = logging.getLogger(__name__)

EventSink = Callable[[dict[str, Any]], None]
"""Where a call's events go as they happen (the browser's WebSocket, the `simulate` console)."""

CallHandler = Callable[[CallIO], Awaitable[CallReport | None]]
"""What talks on a call. It returns the call's report (its `end_reason` is the hang-up reason), or
None for a media-only agent; `run_call` ends the call after it, so a handler never has to."""


class CallSession(Protocol):
    """One call's conversation, built on its `CallIO`: `run()` returns once the call is over."""

    report: CallReport
    """The call's report from the moment it is built (the runner opens the record with it); `run`
    fills it in and returns it with its `end_reason`."""
    tool_log: list[dict[str, Any]]
    """Every tool call the conversation made (the post-call webhook carries them)."""

    async def run(self) -> CallReport: ...


@runtime_checkable
class SaysGoodbye(Protocol):
    """A conversation that can be asked to say goodbye and end (`Conversation.request_goodbye`)."""

    def request_goodbye(self, reason: str = "node_shutdown") -> None: ...


class ConversationFactory(Protocol):
    """Builds a call's conversation (`Conversation`, or a stand-in in tests) with these arguments."""

    def __call__(
        self,
        call: CallIO,
        agent: AgentConfig,
        engines: Engines,
        *,
        recorder: CallRecorder,
        clock: Clock | None,
        transport: str,
        on_event: EventSink | None,
    ) -> CallSession: ...


class CallObserver(Protocol):
    """Counts calls as they start and end (the server's metrics)."""

    def call_started(self) -> None: ...

    def call_ended(self, *, error: bool = False) -> None: ...


class WebhookQueue(Protocol):
    """Takes a post-call webhook to deliver in the background (`WebhookSender`); never waits."""

    def submit(self, config: WebhookConfig, payload: dict[str, Any]) -> bool: ...


@runtime_checkable
class LabelStore(Protocol):
    """A record store that keeps a client's own name for a call (SqliteCallRecorder)."""

    def set_label(self, call_id: str, label: str) -> None: ...


@dataclass(frozen=True, slots=True)
class CallContext:
    """What the runner knows of a call besides its media (plain values: it can cross a process)."""

    transport: str
    """How the call came in: websocket, sip, audiosocket, ari, file."""
    label: str | None = None
    """The client's own name for the call (WebSocket start frame), kept on its record."""
    metadata: CallMetadata = field(default_factory=CallMetadata)
    """What the way in knew of the call (caller, dialled number, headers, ...): kept on its record,
    and filled into the agent's `{placeholders}` (voxline.dispatch.context)."""

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON (a job process gets its call's context this way)."""
        return {"transport": self.transport, "label": self.label, "metadata": self.metadata.as_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CallContext:
        label = data.get("label")
        metadata = data.get("metadata")
        return cls(
            str(data["transport"]),
            label=label if isinstance(label, str) else None,
            metadata=CallMetadata.from_dict(metadata) if isinstance(metadata, dict) else CallMetadata(),
        )


def build_conversation(
    call: CallIO,
    agent: AgentConfig,
    engines: Engines,
    *,
    recorder: CallRecorder,
    clock: Clock | None,
    transport: str,
    on_event: EventSink | None,
) -> CallSession:
    """The agent's conversation (imported per call: the server imports without the conversation
    loop); for a media-only agent (`mode: echo`) its echo."""
    if agent.media_only:
        from voxline.calls.echo import EchoSession

        return EchoSession(call, agent, transport)
    from voxline.conversation.conversation import Conversation

    return Conversation(
        call, agent, engines, recorder=recorder, clock=clock, transport=transport, on_event=on_event
    )


async def run_call(call: CallIO, handler: CallHandler, *, reraise: bool = False) -> CallReport | None:
    """Run `handler` on `call`, then end the call: the one way any call runs, and its one hang-up.

    A handler that raises ends the call with "error"; the exception is logged, or with `reraise`
    raised again once the call is ended (a one-call command lets it surface)."""
    token = call_id_var.set(call.call_id)
    reason = "normal"
    report: CallReport | None = None
    try:
        report = await handler(call)
        if report is not None and report.end_reason:
            reason = report.end_reason
    except Exception:
        reason = "error"
        if reraise:
            raise
        log.exception("call handler failed")
    finally:
        await end_call(call, reason)
        call_id_var.reset(token)
    return report


async def end_call(call: CallIO, reason: str) -> None:
    """Hang up (unless the caller already ended the call), then close its media. Every ending a
    conversation decides goes through here; elsewhere only the signalling layer ends a call that
    no handler runs (no ACK, a listener shutting down).

    Called once per call by `run_call`; safe to call again (a listener stopping, a failed set-up)."""
    if call.hangup_reason is None:
        try:
            await call.hangup(reason)
        except Exception:
            log.exception("hanging up failed")
    try:
        await call.aclose()
    except Exception:
        log.exception("closing the call's media failed")


class CallRunner:
    """Runs the agent's conversation on calls: the `CallHandler` of every transport and command."""

    def __init__(
        self,
        agent: AgentConfig,
        engines: Engines,
        recorder: CallRecorder | None = None,
        *,
        make_conversation: ConversationFactory = build_conversation,
        clock: Clock | None = None,
        observer: CallObserver | None = None,
        labels: LabelStore | None = None,
        contain_crashes: bool = True,
        webhooks: WebhookQueue | None = None,
    ) -> None:
        self.agent = agent
        self.engines = engines
        self.recorder: CallRecorder = recorder or NullRecorder()
        self.make_conversation = make_conversation
        self.clock = clock
        self.observer = observer
        self.labels = labels
        self.contain_crashes = contain_crashes
        """A crash ends only its call, as a report ending "error" (a server); False: the crash is
        raised once the call is ended (a one-call command, where a traceback is the honest answer)."""
        self.webhooks = webhooks
        """Where the post-call webhook is queued (default: the event loop's sender)."""
        self.live: set[CallSession] = set()
        """The conversations running now (a draining node asks them to say goodbye)."""

    def request_goodbye(self, reason: str = "node_shutdown") -> int:
        """Ask every running conversation to say its goodbye line and end the call with `reason`;
        returns how many were asked (a conversation that cannot is left to end with its call)."""
        asked = 0
        for session in list(self.live):
            if isinstance(session, SaysGoodbye):
                session.request_goodbye(reason)
                asked += 1
        return asked

    def handler(
        self, context: CallContext, on_event: EventSink | None = None
    ) -> Callable[[CallIO], Awaitable[CallReport]]:
        """This runner as the `CallHandler` for calls of one kind (it returns a report, see `converse`)."""

        async def converse(call: CallIO) -> CallReport:
            return await self.converse(call, context, on_event)

        return converse

    async def run(self, call: CallIO, context: CallContext, on_event: EventSink | None = None) -> CallReport:
        """Run the conversation on `call` and end the call; returns its report."""
        report = await run_call(call, self.handler(context, on_event), reraise=not self.contain_crashes)
        assert report is not None  # converse() reports, or raises
        return report

    async def converse(
        self, call: CallIO, context: CallContext, on_event: EventSink | None = None
    ) -> CallReport:
        """The conversation part of a call: record, webhook, metrics and crash containment; no
        hang-up (that is `run_call`'s, with the returned report's `end_reason`). Always returns a
        report unless crashes are not contained.

        The record is closed and the webhook queued as the conversation returns, a moment before
        the hang-up: whoever sees the call end finds its record complete."""
        recorder = self.recorder
        if context.label and self.labels is not None:
            recorder = _LabelledRecorder(recorder, self.labels, context.label)
        if self.observer is not None:
            self.observer.call_started()
        failed = False
        conversation: CallSession | None = None
        report: CallReport | None = None
        log.info("%s call started", context.transport)
        try:
            # the agent's {placeholders} filled from this call's metadata, once: the prompt then
            # stays the same, byte for byte, on every turn of the call
            metadata = context.metadata
            if not metadata.transport:
                metadata = replace(metadata, transport=context.transport)
            agent = bind_agent(self.agent, metadata)
            conversation = self.make_conversation(
                call, agent, self.engines, recorder=recorder, clock=self.clock,
                transport=context.transport, on_event=on_event,
            )  # fmt: skip
            conversation.report.metadata = metadata.as_dict()
            _safely(recorder.call_started, conversation.report)
            self.live.add(conversation)
            report = await conversation.run()
            log.info("call ended: %s, %d turns", report.end_reason, len(report.turns))
        except Exception:
            failed = True
            if on_event is not None:
                on_event(to_wire(CallFailed("the call failed on the server")))
            if conversation is not None:
                report = conversation.report
            else:
                report = CallReport(call.call_id, self.agent.name, context.transport, time.time())
                report.metadata = context.metadata.as_dict()
            report.end_reason = "error"
            if not self.contain_crashes:
                raise
            log.exception("call crashed")
        finally:
            if conversation is not None:
                self.live.discard(conversation)
                self._close_record(recorder, report or conversation.report, conversation.tool_log)
            if self.observer is not None:
                self.observer.call_ended(error=failed)
        return report

    def _close_record(
        self, recorder: CallRecorder, report: CallReport, tool_log: list[dict[str, Any]]
    ) -> None:
        """Close the call's record and queue its webhook: whatever ended the call (a cancelled
        call too), never waiting for the receiver."""
        report.end_reason = report.end_reason or "cancelled"
        if report.ended_at is None:
            report.ended_at = time.time()
        _safely(recorder.call_ended, report)
        _safely(self._post_call_webhook, report, tool_log)

    def _post_call_webhook(self, report: CallReport, tool_log: list[dict[str, Any]]) -> None:
        """Hand the call's record to the webhook sender: queued, never awaited (see webhook)."""
        if self.agent.webhook is not None:
            sender: WebhookQueue = self.webhooks or default_sender()
            sender.submit(self.agent.webhook, call_payload(report, tool_log))


def _safely(fn: Callable[..., object], *args: Any) -> None:
    """A record store or webhook that fails must not take the call (or its ending) with it."""
    try:
        fn(*args)
    except Exception:
        log.exception("%r failed", fn)


class _LabelledRecorder:
    """Passes every event on, and keeps the client's label for its call once the call row exists."""

    def __init__(self, inner: CallRecorder, store: LabelStore, label: str) -> None:
        self.inner = inner
        self.store = store
        self.label = label

    def call_started(self, report: CallReport) -> None:
        self.inner.call_started(report)
        self.store.set_label(report.call_id, self.label)

    def turn_finished(self, call_id: str, turn: TurnRecord) -> None:
        self.inner.turn_finished(call_id, turn)

    def call_ended(self, report: CallReport) -> None:
        self.inner.call_ended(report)
