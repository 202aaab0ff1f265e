"""The real Kamailio dispatcher in front of two voxline SIP instances: load spreading, health probes,
failover, and in-dialog requests routed back to the instance that has the call."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from telephony.peers.kamailio import KAMAILIO, Kamailio, running_kamailio
from telephony.peers.sipp import SCENARIOS, SIPP, run_sipp
from voxline.agent.config import SipConfig
from voxline.telephony.echo import EchoAgent
from voxline.telephony.sip.endpoint import SipEndpoint
from voxline.telephony.sip.transaction import Timers

pytestmark = [
    pytest.mark.skipif(SIPP is None, reason="sipp (Debian sip-tester) is not installed"),
    pytest.mark.skipif(KAMAILIO is None, reason="kamailio is not installed"),
    pytest.mark.timeout(120),
]


@dataclass
class Instance:
    endpoint: SipEndpoint
    agent: EchoAgent

    @property
    def port(self) -> int:
        return self.endpoint.local_port("udp")


def sip_config() -> SipConfig:
    base = SipConfig(host="127.0.0.1", port=0, transports=["udp"])
    return base.model_copy(update={"rtp_port_min": 0, "rtp_port_max": 0})


@pytest.fixture
async def instances() -> AsyncIterator[list[Instance]]:
    started: list[Instance] = []
    try:
        for _ in range(2):
            agent = EchoAgent()
            # answer_delay_s: the 180 leaves well before the 200, so with several Kamailio workers
            # relaying them in parallel the 180 cannot overtake the 200 (TELEPHONY.md).
            endpoint = SipEndpoint(
                sip_config(), agent, timers=Timers(t1=0.1, t2=0.4, t4=0.5), answer_delay_s=0.1
            )
            await endpoint.start()
            started.append(Instance(endpoint, agent))
        yield started
    finally:
        for instance in started:
            await instance.endpoint.stop()


@pytest.fixture
def sip_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="voxline.telephony.sip")
    return caplog


async def wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def all_calls_over(instances: list[Instance]) -> None:
    await wait_for(lambda: all(i.endpoint.active_calls == 0 for i in instances))
    await wait_for(lambda: all(i.agent.calls_finished == i.agent.calls_started for i in instances))


def no_unknown_dialogs(caplog: pytest.LogCaptureFixture) -> None:
    """No instance answered 481 (an in-dialog request that reached the wrong instance)."""
    wrong = [r.getMessage() for r in caplog.records if r.getMessage().endswith(": 481")]
    assert not wrong, wrong


def in_dialog_reached_the_answering_instance(kamailio: Kamailio, methods: set[str], how: str) -> None:
    """Each call's in-dialog requests went, the way expected, to the instance its INVITE went to."""
    answered_by = kamailio.instance_by_call()
    seen = {(r.method, r.call_id) for r in kamailio.in_dialog()}
    assert seen == {(m, c) for m in methods for c in answered_by}, kamailio.log()[-3000:]
    for request in kamailio.in_dialog():
        assert request.how == how, request
        assert request.port == answered_by[request.call_id], request


async def test_calls_spread_across_both_instances(
    instances: list[Instance], sip_log: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    async with running_kamailio(tmp_path / "kamailio", [i.port for i in instances]) as kamailio:
        result = await run_sipp(tmp_path / "sipp", kamailio.address, "-sn", "uac", "-d", "300", calls=6)
        assert result.returncode == 0, result.explain() + kamailio.log()[-3000:]
        await all_calls_over(instances)
        # sipp's built-in uac ignores Record-Route: Kamailio's call table sends its ACK and BYE on
        in_dialog_reached_the_answering_instance(kamailio, {"ACK", "BYE"}, "call table")
    started = [i.agent.calls_started for i in instances]
    assert sum(started) == 6
    assert all(n >= 1 for n in started), started  # round robin: each instance took some
    no_unknown_dialogs(sip_log)


async def test_probe_takes_a_503ing_instance_out_of_rotation(
    instances: list[Instance], sip_log: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    draining, healthy = instances
    async with running_kamailio(tmp_path / "kamailio", [i.port for i in instances]) as kamailio:
        draining.endpoint.accepting = False  # it now answers OPTIONS (and INVITE) with 503
        line = await kamailio.wait_for_log(
            rf"destination down: {kamailio.backend_uri(draining.port)}\b", timeout_s=6
        )
        assert str(draining.port) in line
        result = await run_sipp(tmp_path / "sipp", kamailio.address, "-sn", "uac", "-d", "200", calls=4)
        assert result.returncode == 0, result.explain() + kamailio.log()[-3000:]
        await all_calls_over(instances)
        # the probe, not the failover, kept calls away from it: no INVITE was even tried there
        assert not kamailio.log_lines("failover"), kamailio.log()[-3000:]
        assert not kamailio.log_lines(rf"INVITE .* -> {kamailio.backend_uri(draining.port)}\b")

        draining.endpoint.accepting = True  # and once it answers 200 again, it comes back
        await kamailio.wait_for_log(rf"destination up: {kamailio.backend_uri(draining.port)}\b", 6)
    assert draining.agent.calls_started == 0
    assert healthy.agent.calls_started == 4


async def test_invite_refused_with_503_fails_over_to_the_other(
    instances: list[Instance], sip_log: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    refusing, healthy = instances
    refusing.endpoint.accepting = False
    # no health probes: Kamailio keeps sending INVITEs to the refusing instance, and only its
    # failure_route can rescue them
    folder = tmp_path / "kamailio"
    async with running_kamailio(folder, [i.port for i in instances], probing=False) as kamailio:
        result = await run_sipp(tmp_path / "sipp", kamailio.address, "-sn", "uac", "-d", "200", calls=4)
        assert result.returncode == 0, result.explain() + kamailio.log()[-3000:]
        await all_calls_over(instances)
        failovers = kamailio.log_lines(rf"failover .* -> {kamailio.backend_uri(healthy.port)}\b")
    refused = [r for r in sip_log.records if "INVITE refused" in r.getMessage()]
    # every 503 was rescued by a failover (a slow instance's 408 may add one more)
    assert len(failovers) >= len(refused) >= 1, kamailio.log()[-3000:]
    assert set(kamailio.instance_by_call().values()) == {healthy.port}
    assert refusing.agent.calls_started == 0
    assert healthy.agent.calls_started == 4


async def test_in_dialog_requests_follow_the_route_to_the_right_instance(
    instances: list[Instance], sip_log: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    async with running_kamailio(tmp_path / "kamailio", [i.port for i in instances]) as kamailio:
        scenario = str(SCENARIOS / "routed_info_uac.xml")
        result = await run_sipp(tmp_path / "sipp", kamailio.address, "-sf", scenario, calls=4)
        assert result.returncode == 0, result.explain() + kamailio.log()[-3000:]
        await all_calls_over(instances)
        in_dialog_reached_the_answering_instance(kamailio, {"ACK", "INFO", "BYE"}, "Route")
    for instance in instances:
        assert instance.agent.calls_started >= 1
        # every call an instance answered got its key press, and no instance got another's
        assert list(instance.agent.digits.values()) == [["5"]] * instance.agent.calls_started
    no_unknown_dialogs(sip_log)


async def test_kamailio_harness_rejects_in_dialog_requests_for_unknown_calls(tmp_path: Path) -> None:
    """A BYE for a dialog nobody has is answered by Kamailio (404), not sent on to an instance."""
    kamailio = Kamailio(tmp_path / "kamailio", [])
    await kamailio.start()
    try:
        scenario = tmp_path / "stray_bye.xml"
        scenario.write_text(STRAY_BYE)
        result = await run_sipp(tmp_path / "sipp", kamailio.address, "-sf", str(scenario))
        assert result.returncode == 0, result.explain() + kamailio.log()[-3000:]
        assert kamailio.log_lines("for no known dialog: 404")
    finally:
        await kamailio.stop()


STRAY_BYE = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="stray bye">
  <send retrans="500">
    <![CDATA[

      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>;tag=nobody
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="404"/>
</scenario>
"""


async def test_agent_hangup_goes_back_through_kamailio(
    instances: list[Instance], sip_log: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """The instance's own BYE follows the route set it learned from the INVITE's Record-Route."""
    for instance in instances:
        instance.agent.hang_up_on = "#"
    async with running_kamailio(tmp_path / "kamailio", [i.port for i in instances]) as kamailio:
        scenario = str(SCENARIOS / "routed_hangup_by_agent_uac.xml")
        result = await run_sipp(tmp_path / "sipp", kamailio.address, "-sf", scenario, calls=2)
        assert result.returncode == 0, result.explain() + kamailio.log()[-3000:]
        await all_calls_over(instances)
        answered_by = kamailio.instance_by_call()
        requests = kamailio.in_dialog()
    byes = [r for r in requests if r.method == "BYE"]
    assert {r.call_id for r in byes} == set(answered_by), kamailio.log()[-3000:]
    assert all(r.how == "Route" and r.port not in answered_by.values() for r in byes)  # to sipp
    assert [i.agent.calls_started for i in instances] == [1, 1]
    no_unknown_dialogs(sip_log)
