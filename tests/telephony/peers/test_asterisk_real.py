"""voxline against a real Asterisk 23 on loopback (issue 11), when VOXLINE_ASTERISK_PREFIX names a
build (skipped otherwise: CI cannot build Asterisk; the AudioSocket simulator stands in for it there).

The caller is an Asterisk Local channel running a dialplan: it answers, plays a loud tone (the
"speech"), then sits in Wait(), which produces no frames at all, and hangs up. The agent is voxline:
a conversation on fake engines over AudioSocket, or a call handler over the PJSIP trunk.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import numpy as np
import pytest

from conversation.fakes import FakeLLM, FakeSTT, FakeTTS, FakeVAD
from conversation.test_conversation import make_agent
from telephony.audiosocket.helpers import wait_until
from telephony.peers.asterisk import PREFIX_ENV, Asterisk, prefix
from telephony.sip.conftest import sip_config
from voxline.agent.config import AriConfig
from voxline.audio.pcm import AudioChunk
from voxline.audio.wav import write_wav
from voxline.conversation.conversation import Conversation
from voxline.conversation.metrics import CallReport
from voxline.engines.base import Engines, LLMDelta, ToolCall
from voxline.telephony.ari.controller import AriController
from voxline.telephony.audiosocket import AudioSocketCall, AudioSocketServer
from voxline.telephony.sip.endpoint import SipEndpoint
from voxline.telephony.sip.transaction import Timers
from voxline.transports.base import CallIO, Dtmf

pytestmark = [
    pytest.mark.skipif(
        prefix() is None,
        reason=f"no Asterisk build: set {PREFIX_ENV} to a `make bininstall` prefix (docs/asterisk.md)",
    ),
    pytest.mark.timeout(120),
]

TONE_S = 0.8
QUIET_S = 6

DIALPLAN = """
[caller]
exten => talk,1,Answer()
 same => n,Playback(custom/tone)
 same => n,Wait({quiet})
 same => n,Hangup()

exten => talk-keys,1,Answer()
 same => n,Playback(custom/tone)
 same => n,SendDTMF(45)
 same => n,Wait({quiet})
 same => n,Hangup()

[agent]
exten => stasis,1,Stasis(voxline)
 same => n,Hangup()
exten => app,1,Answer()
 same => n,AudioSocket(${{UUID()}},127.0.0.1:{as_port})
 same => n,Hangup()
exten => chan16,1,Answer()
 same => n,Dial(AudioSocket/127.0.0.1:{as_port}/${{UUID()}}/c(slin16))
 same => n,Hangup()
exten => trunk,1,Dial(PJSIP/voxline)
 same => n,Hangup()
exten => trunk-keys,1,Dial(PJSIP/voxline,,D(123))
 same => n,Hangup()
exten => trunk-g722,1,Dial(PJSIP/voxline-g722)
 same => n,Hangup()

[from-voxline]
; Asterisk's NOTIFY says 200 once media (or an answer) reaches the transferred caller: a target that
; only waits in silence makes it 503 when the caller leaves. So the target "speaks".
exten => 200,1,Answer()
 same => n,NoOp(voxline transfer landed)
 same => n,Playback(custom/tone)
 same => n,Wait(1)
 same => n,Hangup()
"""

PJSIP = """
[voxline]
type=endpoint
transport=transport-udp
context=from-voxline
disallow=all
allow=ulaw
dtmf_mode=rfc4733
direct_media=no
rtp_symmetric=yes
aors=voxline
allow_transfer=yes

[voxline]
type=aor
contact=sip:agent@127.0.0.1:{sip_port}

[voxline-g722]
type=endpoint
transport=transport-udp
context=from-voxline
disallow=all
allow=g722,ulaw
dtmf_mode=rfc4733
direct_media=no
rtp_symmetric=yes
aors=voxline

[voxline]
type=identify
endpoint=voxline
match=127.0.0.1
"""


def write_tone(folder: Path) -> None:
    t = np.arange(round(8000 * TONE_S)) / 8000
    wave = (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    write_wav(folder / "tone.wav", AudioChunk.from_float32(wave, 8000))


@pytest.fixture
async def asterisk(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Asterisk]]]:
    started: list[Asterisk] = []

    async def start(
        *, as_port: int = 9, sip_port: int = 9, ari_user: tuple[str, str] | None = None
    ) -> Asterisk:
        install = prefix()
        assert install is not None
        ast = Asterisk(tmp_path / "asterisk", install)
        if ari_user is not None:
            ast.enable_ari(*ari_user)
        write_tone(ast.custom_sounds)
        ast.configure(
            extensions=DIALPLAN.format(as_port=as_port, quiet=QUIET_S),
            pjsip=PJSIP.format(sip_port=sip_port),
        )
        await ast.start()
        started.append(ast)
        return ast

    yield start
    for ast in started:
        await ast.stop()


class FakeAgent:
    """A conversation on fake engines (loud audio is speech) for each AudioSocket call."""

    def __init__(self) -> None:
        self.stt = FakeSTT(["When do you open?"])
        self.llm = FakeLLM(["We open at nine."])
        self.engines = Engines(vad=FakeVAD(), stt=self.stt, llm=self.llm, tts=FakeTTS())
        self.reports: list[CallReport] = []
        self.calls: list[CallIO] = []
        self.started: list[float] = []
        self.ended: list[float] = []

    async def __call__(self, call: CallIO) -> None:
        self.calls.append(call)
        self.started.append(time.monotonic())
        agent = make_agent(limits={"silence_reprompt_s": 30, "max_reprompts": 1})
        self.reports.append(await Conversation(call, agent, self.engines, transport="audiosocket").run())
        self.ended.append(time.monotonic())


async def audiosocket_call(
    asterisk: Callable[..., Awaitable[Asterisk]], extension: str
) -> tuple[Asterisk, FakeAgent]:
    agent = FakeAgent()
    server = AudioSocketServer("127.0.0.1", 0, agent)
    await server.start()
    try:
        ast = await asterisk(as_port=server.port)
        await ast.cli(f"channel originate Local/talk@caller/n extension {extension}@agent")
        assert await wait_until(lambda: len(agent.reports) == 1, 30), ast.full_log[-3000:]
    finally:
        await server.stop()
    return ast, agent


async def test_audiosocket_application_keeps_a_quiet_caller_and_answers_them(
    asterisk: Callable[..., Awaitable[Asterisk]],
) -> None:
    ast, agent = await audiosocket_call(asterisk, "app")
    report = agent.reports[0]
    assert "Reached timeout" not in ast.full_log
    assert agent.ended[0] - agent.started[0] > QUIET_S - 1  # held through the caller's silent Wait()
    assert report.end_reason == "caller_disconnected" or report.end_reason == "caller_hangup"
    assert agent.stt.transcribed_s and TONE_S <= agent.stt.transcribed_s[0] < TONE_S + 0.7
    answered = [t for t in report.turns if t.user_text]
    assert answered and answered[0].agent_text == "We open at nine."


async def test_without_keepalive_the_application_hangs_up_after_2_s(
    asterisk: Callable[..., Awaitable[Asterisk]],
) -> None:
    """What voxline did before issue 11, checked against Asterisk itself (the simulator's model)."""
    started: list[float] = []

    async def listen_silently(call: CallIO) -> None:
        assert isinstance(call, AudioSocketCall)
        call.sink.keepalive = False  # type: ignore[attr-defined]
        started.append(time.monotonic())
        while await call.receive() is not None:
            pass
        started.append(time.monotonic())

    server = AudioSocketServer("127.0.0.1", 0, listen_silently)
    await server.start()
    try:
        ast = await asterisk(as_port=server.port)
        await ast.cli("channel originate Local/talk@caller/n extension app@agent")
        assert await wait_until(lambda: len(started) == 2, 20)
    finally:
        await server.stop()
    assert "Reached timeout after 2000 ms of no activity" in ast.full_log
    assert started[1] - started[0] < QUIET_S - 1


async def test_channel_driver_slin16_agent_hears_the_caller_at_16_khz(
    asterisk: Callable[..., Awaitable[Asterisk]],
) -> None:
    _, agent = await audiosocket_call(asterisk, "chan16")
    call = agent.calls[0]
    assert call.input_rate == 16000
    assert (
        agent.stt.transcribed_s and TONE_S <= agent.stt.transcribed_s[0] < TONE_S + 0.7
    )  # not doubled: not deaf
    answered = [t for t in agent.reports[0].turns if t.user_text]
    assert answered and answered[0].agent_text == "We open at nine."


@pytest.fixture
async def sip_agent() -> AsyncIterator[tuple[SipEndpoint, list[Callable[[CallIO], Awaitable[None]]]]]:
    handlers: list[Callable[[CallIO], Awaitable[None]]] = []

    async def dispatch(call: CallIO) -> None:
        await handlers[0](call)

    endpoint = SipEndpoint(sip_config(), dispatch, timers=Timers(t1=0.1, t2=0.4, t4=0.5))
    await endpoint.start()
    try:
        yield endpoint, handlers
    finally:
        await endpoint.stop()


async def test_refer_through_a_dial_bridged_leg_is_a_transfer(
    asterisk: Callable[..., Awaitable[Asterisk]],
    sip_agent: tuple[SipEndpoint, list[Callable[[CallIO], Awaitable[None]]]],
) -> None:
    endpoint, handlers = sip_agent
    results: list[tuple[bool, str | None]] = []

    async def transfer(call: CallIO) -> None:
        await asyncio.sleep(1.0)
        results.append((await call.transfer("200"), call.hangup_reason))

    handlers.append(transfer)
    ast = await asterisk(sip_port=endpoint.local_port("udp"))
    await ast.cli("channel originate Local/talk@caller/n extension trunk@agent")
    assert await wait_until(lambda: bool(results), 30), ast.full_log[-3000:]
    assert results == [(True, "transferred")]
    assert await wait_until(lambda: "voxline transfer landed" in ast.full_log, 10)


async def test_refer_on_an_unbridged_channel_gets_400_and_the_call_goes_on(
    asterisk: Callable[..., Awaitable[Asterisk]],
    sip_agent: tuple[SipEndpoint, list[Callable[[CallIO], Awaitable[None]]]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="voxline.telephony.sip")
    endpoint, handlers = sip_agent
    results: list[bool] = []

    async def transfer(call: CallIO) -> None:
        await asyncio.sleep(1.0)
        results.append(await call.transfer("200"))
        await call.hangup("agent_ended")

    handlers.append(transfer)
    ast = await asterisk(sip_port=endpoint.local_port("udp"))
    await ast.cli("channel originate PJSIP/voxline application Wait 10")
    assert await wait_until(lambda: bool(results), 30), ast.full_log[-3000:]
    assert results == [False]
    assert "failed: 400" in caplog.text and "not bridged" in caplog.text


async def test_keys_from_dial_d_option_arrive_as_rfc_4733(
    asterisk: Callable[..., Awaitable[Asterisk]],
    sip_agent: tuple[SipEndpoint, list[Callable[[CallIO], Awaitable[None]]]],
) -> None:
    endpoint, handlers = sip_agent
    keys: list[str] = []

    async def collect(call: CallIO) -> None:
        while (item := await call.receive()) is not None:
            if isinstance(item, Dtmf):
                keys.append(item.digit)
                if len(keys) == 3:
                    await call.hangup("agent_ended")
                    return

    handlers.append(collect)
    ast = await asterisk(sip_port=endpoint.local_port("udp"))
    await ast.cli("channel originate Local/talk@caller/n extension trunk-keys@agent")
    assert await wait_until(lambda: len(keys) == 3, 30), ast.full_log[-3000:]
    assert keys == ["1", "2", "3"]


async def test_a_g722_trunk_is_wideband(
    asterisk: Callable[..., Awaitable[Asterisk]],
    sip_agent: tuple[SipEndpoint, list[Callable[[CallIO], Awaitable[None]]]],
) -> None:
    endpoint, handlers = sip_agent
    heard: list[AudioChunk] = []
    codecs: list[str] = []

    async def listen(call: CallIO) -> None:
        codecs.append(call.session.codec.name)  # type: ignore[attr-defined]
        while (item := await call.receive()) is not None:
            if isinstance(item, AudioChunk):
                heard.append(item)
                if sum(c.duration_s for c in heard) > 2.0:
                    await call.hangup("agent_ended")
                    return

    handlers.append(listen)
    ast = await asterisk(sip_port=endpoint.local_port("udp"))
    await ast.cli("channel originate Local/talk@caller/n extension trunk-g722@agent")
    assert await wait_until(lambda: sum(c.duration_s for c in heard) > 2.0, 30), ast.full_log[-3000:]
    assert codecs == ["G722"]
    assert {c.sample_rate for c in heard} == {16000}
    audio = AudioChunk.concat(heard).to_float32()
    assert float(np.max(np.abs(audio))) > 0.1  # the caller's tone came through, decoded right:
    spectrum = np.abs(np.fft.rfft(audio))
    peak_hz = float(np.fft.rfftfreq(audio.size, 1 / 16000)[int(np.argmax(spectrum))])
    assert abs(peak_hz - 300) < 5, peak_hz


async def test_ari_external_media_slin16_hears_the_caller_and_its_keys(
    asterisk: Callable[..., Awaitable[Asterisk]],
) -> None:
    heard: list[AudioChunk] = []
    keys: list[str] = []

    async def listen(call: CallIO) -> None:
        while (item := await call.receive()) is not None:
            if isinstance(item, Dtmf):
                keys.append(item.digit)
            else:
                heard.append(item)
            if len(keys) == 2 and sum(c.duration_s for c in heard) > 1.5:
                await call.hangup("agent_ended")
                return

    ast = await asterisk(ari_user=("voxline", "secret"))
    url = f"http://127.0.0.1:{ast.http_port}/ari"
    config = AriConfig(url=url, username="voxline", password="secret", format="slin16")
    controller = AriController(config, listen, rtp_port_min=0, rtp_port_max=0)
    await controller.start()
    try:
        await ast.cli("channel originate Local/talk-keys@caller/n extension stasis@agent")
        assert await wait_until(lambda: len(keys) == 2, 30), ast.full_log[-3000:]
        assert await wait_until(lambda: controller.active_calls == 0, 10)
    finally:
        await controller.stop()
    assert keys == ["4", "5"]
    assert {c.sample_rate for c in heard} == {16000}
    audio = AudioChunk.concat(heard).to_float32()
    spectrum = np.abs(np.fft.rfft(audio))
    peak_hz = float(np.fft.rfftfreq(audio.size, 1 / 16000)[int(np.argmax(spectrum))])
    assert abs(peak_hz - 300) < 5, peak_hz


async def test_a_conversation_that_transfers_is_recorded_as_transferred(
    asterisk: Callable[..., Awaitable[Asterisk]],
    sip_agent: tuple[SipEndpoint, list[Callable[[CallIO], Awaitable[None]]]],
) -> None:
    """Issue 11 end to end: the model calls transfer_call, Asterisk carries out the REFER, and the
    call record says transferred (not caller_hangup), with the target."""
    endpoint, handlers = sip_agent
    reply = [
        LLMDelta(text="Putting you through."),
        LLMDelta(tool_call=ToolCall("transfer_call", {}, "call_1"), finish_reason="tool_calls"),
    ]
    engines = Engines(vad=FakeVAD(), stt=FakeSTT(["a human please"]), llm=FakeLLM([reply]), tts=FakeTTS())
    agent = make_agent(tools=[{"name": "transfer_call", "target": "200"}])
    reports: list[CallReport] = []

    async def converse(call: CallIO) -> None:
        reports.append(await Conversation(call, agent, engines, transport="sip").run())

    handlers.append(converse)
    ast = await asterisk(sip_port=endpoint.local_port("udp"))
    await ast.cli("channel originate Local/talk@caller/n extension trunk@agent")
    assert await wait_until(lambda: bool(reports), 30), ast.full_log[-3000:]
    assert (reports[0].end_reason, reports[0].transferred_to) == ("transferred", "200")
    assert "voxline transfer landed" in ast.full_log
