"""The one call runner: every call runs through `run_call`, which alone ends it (hang-up, media)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from voxline.agent.config import AgentConfig, WebhookConfig
from voxline.audio.clock import Clock
from voxline.audio.pcm import AudioChunk
from voxline.calls import CallContext, CallRunner, CallSession, end_call, run_call
from voxline.conversation.metrics import CallRecorder, CallReport, TurnRecord
from voxline.engines.base import Engines
from voxline.logs import call_id_var
from voxline.transports.base import CallIO, Dtmf, PacedSink


class _NullSink(PacedSink):
    async def _emit(self, frame: AudioChunk) -> None:
        pass


class LineCall(CallIO):
    """A call whose hang-ups and closes are counted."""

    def __init__(self, call_id: str = "call-1") -> None:
        super().__init__(call_id, 8000, _NullSink(8000))
        self.hangups: list[str] = []
        self.closed = 0

    def caller_leaves(self) -> None:
        self.hangup_reason = "caller_hangup"

    async def receive(self) -> AudioChunk | Dtmf | None:
        return None

    async def hangup(self, reason: str = "normal") -> None:
        self.hangups.append(reason)
        if self.hangup_reason is None:
            self.hangup_reason = reason

    async def aclose(self) -> None:
        self.closed += 1
        await super().aclose()


class ListRecorder:
    def __init__(self) -> None:
        self.events: list[str] = []

    def call_started(self, report: CallReport) -> None:
        self.events.append(f"started {report.call_id} {report.transport}")

    def turn_finished(self, call_id: str, turn: TurnRecord) -> None:
        self.events.append("turn")

    def call_ended(self, report: CallReport) -> None:
        self.events.append(f"ended {report.end_reason}")

    def set_label(self, call_id: str, label: str) -> None:
        self.events.append(f"label {call_id} {label}")


class Counter:
    def __init__(self) -> None:
        self.active = 0
        self.errors = 0

    def call_started(self) -> None:
        self.active += 1

    def call_ended(self, *, error: bool = False) -> None:
        self.active -= 1
        self.errors += error


class ScriptedConversation:
    """A stand-in conversation: records how it was built, ends with `end_reason` (or raises)."""

    built: list[ScriptedConversation] = []  # noqa: RUF012 - a registry for assertions

    def __init__(
        self,
        call: CallIO,
        agent: AgentConfig,
        engines: Engines,
        *,
        recorder: CallRecorder,
        clock: Clock | None,
        transport: str,
        on_event: Any,
        end_reason: str = "agent_ended",
        crash: bool = False,
        held: bool = False,
    ) -> None:
        self.call, self.agent, self.recorder, self.transport = call, agent, recorder, transport
        self.on_event = on_event
        self.end_reason = end_reason
        self.crash = crash
        self.call_id_seen = ""
        self.report = CallReport(call.call_id, agent.name, transport, time.time())
        self.tool_log: list[dict[str, Any]] = [{"name": "end_call", "turn": 1}]
        self.hold = asyncio.Event()
        """Cleared (`held`): the conversation talks until it is set."""
        if not held:
            self.hold.set()
        ScriptedConversation.built.append(self)

    async def run(self) -> CallReport:
        self.call_id_seen = call_id_var.get()
        await self.hold.wait()
        if self.crash:
            raise RuntimeError("stand-in conversation crashed on purpose")
        self.recorder.turn_finished(self.call.call_id, TurnRecord(0, "", "Bye.", "en", 0.0))
        self.report.end_reason = self.end_reason
        return self.report


def factory(**script: Any) -> Any:
    def make(*args: Any, **kwargs: Any) -> CallSession:
        return ScriptedConversation(*args, **kwargs, **script)

    return make


def engines() -> Engines:
    return Engines(vad=None, stt=None, llm=None, tts=None)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _fresh_registry() -> None:
    ScriptedConversation.built.clear()


async def test_run_call_hangs_up_once_with_the_handlers_reason_and_closes() -> None:
    call = LineCall()
    seen: list[str] = []

    async def handler(c: CallIO) -> CallReport:
        seen.append(call_id_var.get())
        return CallReport(c.call_id, "a", "test", 0.0, end_reason="max_duration")

    report = await run_call(call, handler)
    assert report is not None and report.end_reason == "max_duration"
    assert call.hangups == ["max_duration"]
    assert call.closed == 1
    assert seen == ["call-1"]  # the handler's log lines carry the call id
    assert call_id_var.get() == "-"  # and it is reset afterwards


async def test_a_call_already_ended_is_not_hung_up_again_but_still_closed() -> None:
    call = LineCall()

    async def caller_leaves(c: CallIO) -> None:
        call.caller_leaves()

    assert await run_call(call, caller_leaves) is None
    assert call.hangups == []
    assert call.closed == 1


async def test_a_media_only_handler_ends_normal_and_a_crash_ends_error() -> None:
    quiet, broken = LineCall("quiet"), LineCall("broken")

    async def echo(c: CallIO) -> None:
        return None

    async def crash(c: CallIO) -> None:
        raise RuntimeError("handler bug")

    await run_call(quiet, echo)
    await run_call(broken, crash)  # contained: the listener never sees the exception
    assert quiet.hangups == ["normal"] and broken.hangups == ["error"]
    assert quiet.closed == broken.closed == 1


async def test_end_call_again_is_harmless() -> None:
    call = LineCall()
    await end_call(call, "normal")
    await end_call(call, "shutdown")
    assert call.hangups == ["normal"]
    assert call.hangup_reason == "normal"


async def test_cancelling_a_call_still_ends_it() -> None:
    call = LineCall()
    started = asyncio.Event()

    async def forever(c: CallIO) -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(run_call(call, forever))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert call.hangups == ["normal"] and call.closed == 1


async def test_runner_builds_the_conversation_records_counts_and_ends_the_call() -> None:
    agent = AgentConfig(name="desk")
    recorder, counter, events = ListRecorder(), Counter(), []
    runner = CallRunner(
        agent, engines(), recorder, make_conversation=factory(), observer=counter, labels=recorder
    )
    call = LineCall("c42")
    report = await runner.run(call, CallContext("sip", label="ticket-7"), events.append)
    built = ScriptedConversation.built[0]
    assert (built.agent, built.transport, built.call_id_seen) == (agent, "sip", "c42")
    assert built.on_event == events.append
    assert report.end_reason == "agent_ended"
    # the runner opens and closes the record around the conversation, which records its turns
    assert recorder.events == ["started c42 sip", "label c42 ticket-7", "turn", "ended agent_ended"]
    assert (counter.active, counter.errors) == (0, 0)
    assert call.hangups == ["agent_ended"] and call.closed == 1


async def test_a_label_without_a_store_that_keeps_labels_is_dropped() -> None:
    recorder = ListRecorder()
    runner = CallRunner(AgentConfig(), engines(), recorder, make_conversation=factory())
    await runner.run(LineCall("c1"), CallContext("websocket", label="mine"))
    assert recorder.events == ["started c1 websocket", "turn", "ended agent_ended"]


async def test_a_crashing_conversation_ends_its_call_with_error_and_tells_the_client() -> None:
    counter, events = Counter(), []
    runner = CallRunner(
        AgentConfig(name="desk"), engines(), make_conversation=factory(crash=True), observer=counter
    )
    call = LineCall("c9")
    report = await runner.run(call, CallContext("websocket"), events.append)
    assert report.end_reason == "error" and report.call_id == "c9" and report.agent == "desk"
    assert [e["type"] for e in events] == ["error"]
    assert (counter.active, counter.errors) == (0, 1)
    assert call.hangups == ["error"] and call.closed == 1


async def test_a_crash_closes_the_record_as_error_and_a_cancelled_call_as_cancelled() -> None:
    recorder = ListRecorder()
    crashing = CallRunner(AgentConfig(), engines(), recorder, make_conversation=factory(crash=True))
    await crashing.run(LineCall("c1"), CallContext("sip"))
    assert recorder.events == ["started c1 sip", "ended error"]
    recorder.events.clear()
    runner = CallRunner(AgentConfig(), engines(), recorder, make_conversation=factory(held=True))
    call = LineCall("c2")
    task = asyncio.create_task(runner.run(call, CallContext("sip")))
    for _ in range(3):  # let the runner open the record and the conversation start talking
        await asyncio.sleep(0)
    assert recorder.events == ["started c2 sip"]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert recorder.events == ["started c2 sip", "ended cancelled"]
    assert call.hangups == ["normal"] and call.closed == 1


class Hooks:
    """A webhook sender that keeps what it is handed."""

    def __init__(self) -> None:
        self.submitted: list[tuple[WebhookConfig, dict[str, Any]]] = []

    def submit(self, config: WebhookConfig, payload: dict[str, Any]) -> bool:
        self.submitted.append((config, payload))
        return True


async def test_the_runner_queues_the_post_call_webhook_before_the_hang_up() -> None:
    hook = WebhookConfig(url="http://127.0.0.1:9/hook")
    agent = AgentConfig(webhook=hook)
    sender, call = Hooks(), LineCall("c5")
    hung_up_before: list[bool] = []
    hangup = call.hangup

    async def hangup_after_the_webhook(reason: str = "normal") -> None:
        hung_up_before.append(bool(sender.submitted))
        await hangup(reason)

    call.hangup = hangup_after_the_webhook  # type: ignore[method-assign]
    runner = CallRunner(agent, engines(), make_conversation=factory(), webhooks=sender)
    await runner.run(call, CallContext("sip"))
    [(config, payload)] = sender.submitted
    assert config == hook and payload["call_id"] == "c5"
    assert payload["outcome"]["end_reason"] == "agent_ended"
    assert payload["tool_calls"] == [{"name": "end_call", "turn": 1}]
    assert hung_up_before == [True] and call.hangups == ["agent_ended"]


async def test_converse_leaves_the_ending_to_run_call() -> None:
    runner = CallRunner(AgentConfig(), engines(), make_conversation=factory(end_reason="transferred"))
    call = LineCall()
    report = await runner.converse(call, CallContext("ari"))
    assert report.end_reason == "transferred"
    assert call.hangups == [] and call.closed == 0


async def test_a_one_call_command_sees_the_crash_once_the_call_is_ended() -> None:
    counter = Counter()
    runner = CallRunner(
        AgentConfig(), engines(), make_conversation=factory(crash=True), observer=counter,
        contain_crashes=False,
    )  # fmt: skip
    call = LineCall()
    with pytest.raises(RuntimeError, match="crashed on purpose"):
        await runner.run(call, CallContext("file"))
    assert call.hangups == ["error"] and call.closed == 1
    assert (counter.active, counter.errors) == (0, 1)
