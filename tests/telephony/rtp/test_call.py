"""RtpCall: an echo call between two RTP sessions, and the signalling callbacks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest

from voxline.audio.pcm import AudioChunk
from voxline.telephony.echo import EchoAgent
from voxline.telephony.rtp import RtpCall, RtpSession
from voxline.transports.base import Dtmf

HOST = "127.0.0.1"


def tone(seconds: float, freq: float = 440.0, rate: int = 8000) -> AudioChunk:
    t = np.arange(round(seconds * rate)) / rate
    return AudioChunk.from_float32(0.3 * np.sin(2 * np.pi * freq * t), rate)


class Signalling:
    """Records what RtpCall asked the signalling layer to do."""

    def __init__(self, transfer_ok: bool = True) -> None:
        self.hangups: list[str] = []
        self.transfers: list[str] = []
        self.transfer_ok = transfer_ok

    async def hangup(self, reason: str) -> None:
        self.hangups.append(reason)

    async def transfer(self, target: str) -> bool:
        self.transfers.append(target)
        return self.transfer_ok


@pytest.fixture
async def pair() -> AsyncIterator[tuple[RtpSession, RtpSession]]:
    phone = await RtpSession.open(HOST, 0, call_id="phone")
    agent = await RtpSession.open(HOST, 0, call_id="agent")
    phone.set_remote(HOST, agent.local_port)
    agent.set_remote(HOST, phone.local_port)
    yield phone, agent
    await phone.aclose()
    await agent.aclose()


async def test_echo_call_between_two_sessions(pair: tuple[RtpSession, RtpSession]) -> None:
    phone, agent_session = pair
    signalling = Signalling()
    call = RtpCall("call-1", agent_session, on_hangup=signalling.hangup, on_transfer=signalling.transfer)
    echo = EchoAgent(hang_up_on="#")
    agent_task = asyncio.create_task(echo(call))
    await phone.sink.send(tone(0.5))
    heard: list[AudioChunk] = []
    async with asyncio.timeout(5):
        while sum(c.num_samples for c in heard if np.any(c.samples)) < 0.4 * 8000:
            item = await phone.receive()
            assert isinstance(item, AudioChunk)
            heard.append(item)
    echoed = np.concatenate([c.samples for c in heard if np.any(c.samples)]).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(echoed))
    peak_hz = np.argmax(spectrum) * 8000 / echoed.size
    assert abs(peak_hz - 440) < 10
    assert 0.15 < np.sqrt(np.mean(echoed**2)) / 32768 < 0.3  # G.711 twice keeps the level (0.3/sqrt 2)

    await phone.send_dtmf("#")
    await asyncio.wait_for(agent_task, 3)
    assert echo.digits["call-1"] == ["#"]
    assert signalling.hangups == ["agent_ended"]
    assert call.hangup_reason == "agent_ended"
    assert await call.receive() is None
    await call.aclose()
    assert agent_session.stats.packets_out > 0


async def test_hangup_is_idempotent_and_ends_receive(pair: tuple[RtpSession, RtpSession]) -> None:
    _, agent_session = pair
    signalling = Signalling()
    call = RtpCall("call-2", agent_session, on_hangup=signalling.hangup)
    pending = asyncio.create_task(call.receive())
    await asyncio.sleep(0.01)
    await call.hangup("done")
    await call.hangup("again")
    assert signalling.hangups == ["done"]
    assert call.hangup_reason == "done"
    assert await asyncio.wait_for(pending, 1) is None
    assert await call.send_dtmf("1") is False


async def test_remote_hangup_ends_receive_without_signalling(pair: tuple[RtpSession, RtpSession]) -> None:
    _, agent_session = pair
    signalling = Signalling()
    call = RtpCall("call-3", agent_session, on_hangup=signalling.hangup)
    pending = asyncio.create_task(call.receive())
    await asyncio.sleep(0.01)
    call.remote_hangup()
    assert await asyncio.wait_for(pending, 1) is None
    assert call.hangup_reason == "caller_hangup"
    await call.hangup()
    assert signalling.hangups == []


async def test_injected_dtmf_is_delivered(pair: tuple[RtpSession, RtpSession]) -> None:
    _, agent_session = pair
    call = RtpCall("call-4", agent_session, on_hangup=Signalling().hangup)
    call.inject_dtmf(Dtmf("7", 160))
    assert await asyncio.wait_for(call.receive(), 1) == Dtmf("7", 160)


async def test_transfer_goes_through_the_callback(pair: tuple[RtpSession, RtpSession]) -> None:
    _, agent_session = pair
    signalling = Signalling(transfer_ok=False)
    call = RtpCall("call-5", agent_session, on_hangup=signalling.hangup, on_transfer=signalling.transfer)
    assert await call.transfer("sip:desk@example.com") is False
    signalling.transfer_ok = True
    assert await call.transfer("1001") is True
    assert signalling.transfers == ["sip:desk@example.com", "1001"]
    no_transfer = RtpCall("call-6", agent_session, on_hangup=signalling.hangup)
    assert await no_transfer.transfer("1001") is False


async def test_failing_signalling_callbacks_do_not_crash_the_call(
    pair: tuple[RtpSession, RtpSession],
) -> None:
    _, agent_session = pair

    async def broken_hangup(reason: str) -> None:
        raise ConnectionError("dialog gone")

    async def broken_transfer(target: str) -> bool:
        raise ConnectionError("REFER refused")

    call = RtpCall("call-7", agent_session, on_hangup=broken_hangup, on_transfer=broken_transfer)
    assert await call.transfer("1001") is False
    await call.hangup()
    assert call.hangup_reason == "normal"


async def test_send_dtmf_reports_bad_digits(pair: tuple[RtpSession, RtpSession]) -> None:
    _, agent_session = pair
    call = RtpCall("call-8", agent_session, on_hangup=Signalling().hangup)
    assert await call.send_dtmf("1x") is False
    assert await call.send_dtmf("1", duration_ms=40) is True
    assert call.input_rate == 8000 and call.sink is agent_session.sink
