"""The real Kamailio as a registrar that demands digest auth: voxline registers as an extension
(401), then a call placed by another voxline goes through the registrar to it, the INVITE being
challenged first with 407 (a proxy) or 401 (a registrar answering as the UAS)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from telephony.peers.kamailio import KAMAILIO, REGISTRAR_TEMPLATE, Kamailio, running_kamailio
from voxline.agent.config import SipConfig, SipRegistrationConfig
from voxline.audio.pcm import AudioChunk
from voxline.telephony.echo import EchoAgent
from voxline.telephony.sip.endpoint import SipEndpoint
from voxline.telephony.sip.transaction import Timers
from voxline.transports.base import CallIO

pytestmark = [
    pytest.mark.skipif(KAMAILIO is None, reason="kamailio is not installed"),
    pytest.mark.timeout(120),
]

PASSWORD = "correct horse"
TIMERS = Timers(t1=0.1, t2=0.4, t4=0.5)


def extension(kamailio: Kamailio, user: str, password: str = PASSWORD) -> SipConfig:
    """A SIP config registering as `user` with the registrar (and calling as that user)."""
    registration = SipRegistrationConfig(
        registrar=f"sip:{kamailio.address}", username=user, password=password, expires_s=60
    )
    base = SipConfig(host="127.0.0.1", port=0, transports=["udp"], user=user, registration=registration)
    return base.model_copy(update={"rtp_port_min": 0, "rtp_port_max": 0})


async def wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


@dataclass
class Pbx:
    kamailio: Kamailio
    agent: EchoAgent
    callee: SipEndpoint
    """voxline registered as the extension "agent"."""
    caller: SipEndpoint
    """voxline registered as "alice", placing calls through the registrar."""


@pytest.fixture
async def pbx(tmp_path: Path) -> AsyncIterator[Pbx]:
    async with running_kamailio(tmp_path, [], template=REGISTRAR_TEMPLATE, password=PASSWORD) as kamailio:
        agent = EchoAgent()
        callee = SipEndpoint(extension(kamailio, "agent"), agent, timers=TIMERS, answer_delay_s=0.1)
        caller = SipEndpoint(extension(kamailio, "alice"), EchoAgent(), timers=TIMERS)
        await callee.start()
        await caller.start()
        try:
            for endpoint in (callee, caller):
                registration = endpoint._registration
                assert registration is not None
                await wait_for(lambda r=registration: r.registered)  # type: ignore[misc]
            yield Pbx(kamailio, agent, callee, caller)
        finally:
            await caller.stop()
            await callee.stop()


def tone(seconds: float) -> AudioChunk:
    t = np.arange(round(seconds * 8000)) / 8000
    return AudioChunk((np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16), 8000)


async def talk_and_hang_up(call: CallIO, heard: list[int]) -> None:
    """Send 1 s of tone, collect the echo for up to 3 s, hang up."""
    await call.sink.send(tone(1.0))
    received = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 3.0
    while received < 4000 and loop.time() < deadline:
        try:
            item = await asyncio.wait_for(call.receive(), max(0.01, deadline - loop.time()))
        except TimeoutError:
            break
        if isinstance(item, AudioChunk) and np.abs(item.samples).max(initial=0) > 1000:
            received += item.num_samples
    heard.append(received)
    await call.hangup("normal")


async def test_registration_is_challenged_then_bound(pbx: Pbx) -> None:
    for user in ("agent", "alice"):
        assert await pbx.kamailio.wait_for_log(f"challenge 401 REGISTER {user}")
        assert await pbx.kamailio.wait_for_log(f"registered {user} at ")


@pytest.mark.parametrize(("callee_user", "challenges"), [
    ("agent", ["407"]), ("www-agent", ["401"]), ("both-agent", ["407", "401"]),
])  # fmt: skip
async def test_call_through_the_registrar_answers_its_challenges(
    pbx: Pbx, callee_user: str, challenges: list[str]
) -> None:
    heard: list[int] = []

    async def handler(call: CallIO) -> None:
        await talk_and_hang_up(call, heard)

    reason = await pbx.caller.call(f"sip:{callee_user}@{pbx.kamailio.address}", handler, timeout_s=10)
    assert reason == "normal"
    for challenge in challenges:
        assert len(pbx.kamailio.log_lines(f"challenge {challenge} INVITE ")) == 1, pbx.kamailio.log()[-3000:]
    assert await pbx.kamailio.wait_for_log(r"INVITE \S+ from alice -> sip:agent@127\.0\.0\.1:")
    assert heard and heard[0] >= 4000, "the registered agent's echo did not come back through the call"
    await wait_for(lambda: pbx.agent.calls_finished == pbx.agent.calls_started == 1)
    assert pbx.agent.samples_echoed and max(pbx.agent.samples_echoed.values()) > 0
    await wait_for(lambda: pbx.caller.active_calls == 0 == pbx.callee.active_calls)


async def test_wrong_password_is_rejected_after_one_retry(tmp_path: Path) -> None:
    async with running_kamailio(tmp_path, [], template=REGISTRAR_TEMPLATE, password=PASSWORD) as kamailio:
        caller = SipEndpoint(extension(kamailio, "mallory", "guess"), EchoAgent(), timers=TIMERS)
        await caller.start()
        try:
            reason = await caller.call(f"sip:agent@{kamailio.address}", timeout_s=10)
            assert caller._registration is not None and not caller._registration.registered
        finally:
            await caller.stop()
    assert reason == "rejected_407"
    # one challenge answered, then a second challenge for the wrong answer: no endless retry loop
    assert len(kamailio.log_lines("challenge 407 INVITE ")) == 2
