"""The app's handler for the phone ways in (SIP, AudioSocket, ARI), run the way the listeners run it:
through `run_call`, which alone hangs the call up, with the reason the handler reports."""

from __future__ import annotations

from ws_harness import EchoConversation, stand_in_engines

from voxline.agent.config import AgentConfig
from voxline.audio.pcm import AudioChunk
from voxline.calls import run_call
from voxline.conversation.metrics import NullRecorder
from voxline.server.app import ServerState, call_handler, create_app
from voxline.server.security import SecuritySettings
from voxline.transports.base import CallIO, Dtmf, PacedSink


class _NullSink(PacedSink):
    async def _emit(self, frame: AudioChunk) -> None:
        pass


class PhoneCall(CallIO):
    """A phone call that presses `keys` and then hangs up (or waits to be hung up with no keys)."""

    def __init__(self, call_id: str, keys: str = "") -> None:
        super().__init__(call_id, 8000, _NullSink(8000))
        self.keys = list(keys)
        self.hangups: list[str] = []
        self.closed = 0

    async def receive(self) -> AudioChunk | Dtmf | None:
        if self.keys:
            return Dtmf(self.keys.pop(0))
        self.hangup_reason = self.hangup_reason or "caller_hangup"
        return None

    async def hangup(self, reason: str = "normal") -> None:
        self.hangups.append(reason)
        self.hangup_reason = self.hangup_reason or reason

    async def aclose(self) -> None:
        self.closed += 1
        await super().aclose()


def app(max_calls: int = 4) -> object:
    return create_app(
        AgentConfig(name="phone agent"),
        engines=stand_in_engines(),
        recorder=NullRecorder(),
        conversation_factory=EchoConversation,
        security=SecuritySettings.local(max_calls=max_calls),
    )


async def test_a_call_before_the_models_are_ready_is_refused_and_hung_up() -> None:
    server = app()
    call = PhoneCall("early")
    report = await run_call(call, call_handler(server, "sip"))  # type: ignore[arg-type]
    assert report is not None and report.end_reason == "not_ready"
    assert call.hangups == ["not_ready"] and call.closed == 1
    assert EchoConversation.instances == []


async def test_calls_run_the_conversation_and_end_once_with_its_reason() -> None:
    server = app()
    async with server.router.lifespan_context(server):  # type: ignore[attr-defined]
        handler = call_handler(server, "audiosocket")  # type: ignore[arg-type]
        agent_ends, caller_ends = PhoneCall("a", keys="#"), PhoneCall("b", keys="12")
        ended_by_agent = await run_call(agent_ends, handler)
        ended_by_caller = await run_call(caller_ends, handler)
        state: ServerState = server.state.voxline  # type: ignore[attr-defined]
        assert state.metrics.calls_active == 0 and state.metrics.calls_total == 2
    assert ended_by_agent is not None and ended_by_agent.end_reason == "agent_ended"
    assert agent_ends.hangups == ["agent_ended"] and agent_ends.closed == 1
    assert ended_by_caller is not None and ended_by_caller.end_reason == "caller_hangup"
    assert caller_ends.hangups == [] and caller_ends.closed == 1  # the caller had gone already
    assert [c.transport for c in EchoConversation.instances] == ["audiosocket", "audiosocket"]
    assert EchoConversation.instances[1].dtmf == ["1", "2"]


async def test_a_call_over_capacity_is_refused_and_a_crash_ends_with_error() -> None:
    server = app(max_calls=1)
    async with server.router.lifespan_context(server):  # type: ignore[attr-defined]
        handler = call_handler(server, "ari")  # type: ignore[arg-type]
        state: ServerState = server.state.voxline  # type: ignore[attr-defined]
        held = state.capacity.try_acquire("ari")
        assert held is not None
        with held:
            full = PhoneCall("full", keys="1")
            refused = await run_call(full, handler)
        crashing = PhoneCall("crash", keys="9")  # the stand-in crashes on 9
        crashed = await run_call(crashing, handler)
        assert state.metrics.call_errors_total == 1
    assert refused is not None and refused.end_reason == "over_capacity"
    assert full.hangups == ["over_capacity"] and full.closed == 1
    assert crashed is not None and crashed.end_reason == "error"
    assert crashing.hangups == ["error"] and crashing.closed == 1
