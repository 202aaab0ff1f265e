"""Real calls from (and to) sipp on loopback against a SipEndpoint running the echo agent."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from voxline.agent.config import SipInboundAuthConfig
from voxline.telephony.echo import EchoAgent
from voxline.telephony.sip.endpoint import SipEndpoint
from voxline.telephony.sip.transaction import Timers
from voxline.transports.base import CallIO

from .conftest import SCENARIOS, Running, needs_sipp, run_sipp, sip_config

pytestmark = [needs_sipp, pytest.mark.timeout(90)]


async def wait_for(condition: object, timeout_s: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():  # type: ignore[operator]
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_sipp_uac_call_completes_and_cleans_up(running: Running, tmp_path: Path) -> None:
    result = await run_sipp(tmp_path, f"127.0.0.1:{running.port}", "-sn", "uac", "-d", "500")
    assert result.returncode == 0, result.stdout[-2000:] + result.log("errors.log")
    await wait_for(lambda: running.endpoint.active_calls == 0)
    assert running.agent.calls_started == 1
    await wait_for(lambda: running.agent.calls_finished == 1)


async def test_sipp_uac_over_tcp(running: Running, tmp_path: Path) -> None:
    port = running.endpoint.local_port("tcp")
    result = await run_sipp(tmp_path, f"127.0.0.1:{port}", "-sn", "uac", "-t", "t1", "-d", "300")
    assert result.returncode == 0, result.stdout[-2000:] + result.log("errors.log")
    await wait_for(lambda: running.endpoint.active_calls == 0)
    assert running.agent.calls_started == 1


async def test_rtp_flows_both_ways_with_uac_pcap(running: Running, tmp_path: Path) -> None:
    stats = []

    async def echo_and_record(call: CallIO) -> None:
        await running.agent(call)
        stats.append(call.session.stats)  # type: ignore[attr-defined]

    running.endpoint.on_call = echo_and_record
    result = await run_sipp(tmp_path, f"127.0.0.1:{running.port}", "-sn", "uac_pcap", with_pcaps=True)
    assert result.returncode == 0, result.stdout[-2000:] + result.log("errors.log")
    await wait_for(lambda: running.agent.calls_finished == 1)
    (call_id,) = running.agent.samples_echoed
    # g711a.pcap is ~8 s of speech in 30 ms packets: most of it must have come in and gone back out.
    assert running.agent.samples_echoed[call_id] > 8000 * 5
    assert stats[0].packets_in > 150
    assert stats[0].packets_out > 200
    assert running.agent.digits[call_id] == ["1"]  # the RFC 4733 key at the end of uac_pcap


async def test_dtmf_rfc4733_from_pcap(running: Running, tmp_path: Path) -> None:
    result = await run_sipp(
        tmp_path, f"127.0.0.1:{running.port}", "-sf", str(SCENARIOS / "dtmf_rfc4733.xml"), with_pcaps=True
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.log("errors.log")
    await wait_for(lambda: running.agent.calls_finished == 1)
    assert list(running.agent.digits.values()) == [["1"]]


async def test_dtmf_by_sip_info(running: Running, tmp_path: Path) -> None:
    result = await run_sipp(tmp_path, f"127.0.0.1:{running.port}", "-sf", str(SCENARIOS / "dtmf_info.xml"))
    assert result.returncode == 0, result.stdout[-2000:] + result.log("errors.log")
    await wait_for(lambda: running.agent.calls_finished == 1)
    assert list(running.agent.digits.values()) == [["5", "7"]]


async def test_cancel_before_answer(tmp_path: Path) -> None:
    agent = EchoAgent()
    endpoint = SipEndpoint(sip_config(), agent, timers=Timers(t1=0.1, t2=0.4, t4=0.5), answer_delay_s=3.0)
    await endpoint.start()
    try:
        target = f"127.0.0.1:{endpoint.local_port('udp')}"
        result = await run_sipp(tmp_path, target, "-sf", str(SCENARIOS / "cancel.xml"))
        assert result.returncode == 0, result.stdout[-2000:] + result.log("errors.log")
        await wait_for(lambda: endpoint.active_calls == 0)
        assert agent.calls_started == 0
    finally:
        await endpoint.stop()


async def test_a_digest_challenged_invite_from_a_real_peer(tmp_path: Path) -> None:
    """sipp answers our 401 with its own digest code (MD5, qop=auth), and the call goes through;
    with a wrong password it gets 401 again and no call runs."""
    password = "correct-horse-battery"
    agent = EchoAgent()
    auth = SipInboundAuthConfig(username="pbx", password=password)
    endpoint = SipEndpoint(sip_config(auth=auth), agent, timers=Timers(t1=0.1, t2=0.4, t4=0.5))
    await endpoint.start()
    try:
        target = f"127.0.0.1:{endpoint.local_port('udp')}"
        scenario = str(SCENARIOS / "digest_auth_uac.xml")
        (tmp_path / "ok").mkdir()
        (tmp_path / "wrong").mkdir()
        ok = await run_sipp(tmp_path / "ok", target, "-sf", scenario, "-au", "pbx", "-ap", password)
        assert ok.returncode == 0, ok.stdout[-2000:] + ok.log("errors.log")
        await wait_for(lambda: agent.calls_finished == 1)
        wrong = await run_sipp(
            tmp_path / "wrong", target, "-sf", scenario, "-au", "pbx", "-ap", "guess", timeout_s=5
        )
        assert wrong.returncode != 0  # the second INVITE got 401, not the 200 the scenario waits for
        assert agent.calls_started == 1
        assert endpoint.admission.authenticator is not None and endpoint.admission.authenticator.failures >= 1
    finally:
        await endpoint.stop()
