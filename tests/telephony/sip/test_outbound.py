"""Calls our endpoint places: to sipp's uas, a blind transfer by REFER, and registration."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import numpy as np
import pytest

from telephony.peers.ports import free_port
from voxline.audio.pcm import AudioChunk
from voxline.telephony.sip.digest import parse_auth_params
from voxline.telephony.sip.message import SipRequest, make_response
from voxline.transports.base import CallIO

from .conftest import SCENARIOS, Running, needs_sipp, run_sipp, sip_config
from .rawpeer import UdpPeer

pytestmark = pytest.mark.timeout(60)


async def start_sipp_server(tmp_path: Path, *args: str) -> tuple[asyncio.Task[object], int]:
    port = free_port()
    task = asyncio.create_task(run_sipp(tmp_path, None, *args, port=port, timeout_s=20))
    await asyncio.sleep(0.5)  # let sipp bind its port
    return task, port


@needs_sipp
async def test_call_to_sipp_uas(running: Running, tmp_path: Path) -> None:
    sipp, port = await start_sipp_server(tmp_path, "-sn", "uas")
    sent: list[int] = []

    async def speak_and_hang_up(call: CallIO) -> None:
        tone = (np.sin(np.arange(8000) * 2 * np.pi * 440 / 8000) * 8000).astype(np.int16)
        await call.sink.send(AudioChunk(tone, 8000))
        await call.sink.drain()
        sent.append(call.session.stats.packets_out)  # type: ignore[attr-defined]

    reason = await running.endpoint.call(f"sip:service@127.0.0.1:{port}", speak_and_hang_up, timeout_s=10)
    result = await sipp
    assert reason == "normal"
    assert result.returncode == 0, result.stdout[-2000:] + result.log("errors.log")  # type: ignore[attr-defined]
    assert sent and sent[0] >= 45  # one second of 20 ms packets went out
    assert running.endpoint.active_calls == 0


@needs_sipp
async def test_blind_transfer_by_refer(running: Running, tmp_path: Path) -> None:
    sipp, port = await start_sipp_server(tmp_path, "-sf", str(SCENARIOS / "refer_uas.xml"))
    outcome: list[bool] = []

    async def transfer(call: CallIO) -> None:
        outcome.append(await call.transfer("1234"))

    reason = await running.endpoint.call(f"sip:service@127.0.0.1:{port}", transfer, timeout_s=10)
    result = await sipp
    assert result.returncode == 0, result.stdout[-2000:] + result.log("errors.log")  # type: ignore[attr-defined]
    assert outcome == [True]
    assert reason == "transferred"


async def test_call_rejected_and_unreachable(running: Running) -> None:
    peer = await UdpPeer().open()
    try:
        placing = asyncio.create_task(running.endpoint.call(f"sip:x@127.0.0.1:{peer.port}", timeout_s=5))
        invite = await peer.receive()
        assert isinstance(invite, SipRequest) and invite.method == "INVITE"
        assert b"m=audio" in invite.body
        peer.send(make_response(invite, 486, to_tag="t1").to_bytes(), running.port)
        assert await placing == "rejected_486"
        ack = await peer.receive()  # the transaction ACKs the non-2xx itself
        assert isinstance(ack, SipRequest) and ack.method == "ACK"
    finally:
        peer.close()
    assert running.endpoint.active_calls == 0


async def test_registration_with_digest_auth() -> None:
    from voxline.agent.config import SipRegistrationConfig
    from voxline.telephony.echo import EchoAgent
    from voxline.telephony.sip.endpoint import SipEndpoint

    registrar = await UdpPeer().open()
    registration = SipRegistrationConfig(
        registrar=f"sip:127.0.0.1:{registrar.port}", username="1001", password="s3cret", expires_s=60
    )
    endpoint = SipEndpoint(sip_config(registration=registration), EchoAgent())
    await endpoint.start()
    try:
        first = await registrar.receive()
        assert isinstance(first, SipRequest) and first.method == "REGISTER"
        assert first.headers.get("Expires") == "60"
        challenge = 'Digest realm="pbx", nonce="abc123", qop="auth", algorithm=MD5'
        reply = make_response(first, 401, extra=[("WWW-Authenticate", challenge)])
        registrar.send(reply.to_bytes(), endpoint.local_port("udp"))
        second = await registrar.receive()
        assert isinstance(second, SipRequest) and second.method == "REGISTER"
        auth = second.headers.get("Authorization") or ""
        params = parse_auth_params(auth.split(" ", 1)[1])
        ha1 = hashlib.md5(b"1001:pbx:s3cret").hexdigest()
        ha2 = hashlib.md5(f"REGISTER:{params['uri']}".encode()).hexdigest()
        expected = hashlib.md5(
            f"{ha1}:abc123:{params['nc']}:{params['cnonce']}:auth:{ha2}".encode()
        ).hexdigest()
        assert params["response"] == expected
        ok = make_response(
            second, 200, extra=[("Contact", (second.headers.get("Contact") or "") + ";expires=60")]
        )
        registrar.send(ok.to_bytes(), endpoint.local_port("udp"))
        await asyncio.sleep(0.2)
        assert endpoint._registration is not None and endpoint._registration.registered
    finally:
        stopping = asyncio.create_task(endpoint.stop())
        unregister = await registrar.receive()  # stop() removes the binding (Expires: 0)
        assert isinstance(unregister, SipRequest) and unregister.headers.get("Expires") == "0"
        registrar.send(make_response(unregister, 200).to_bytes(), endpoint.local_port("udp"))
        await stopping
        registrar.close()
