"""SIP calls whose RTP is handed to the call's job: sipp on loopback, the echo agent on the job side."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from telephony.job_media.harness import InProcessJobs
from telephony.sip.conftest import SCENARIOS, needs_sipp, run_sipp, sip_config
from voxline.telephony.echo import EchoAgent
from voxline.telephony.rtp.handoff import JobRtpSession
from voxline.telephony.sip.endpoint import SipEndpoint
from voxline.telephony.sip.transaction import Timers

pytestmark = [needs_sipp, pytest.mark.timeout(90)]


async def wait_for(condition: object, timeout_s: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():  # type: ignore[operator]
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


@pytest.fixture
async def served() -> AsyncIterator[tuple[SipEndpoint, InProcessJobs, EchoAgent]]:
    agent = EchoAgent(hang_up_on="#")
    jobs = InProcessJobs(agent)
    endpoint = SipEndpoint(sip_config(), jobs, timers=Timers(t1=0.1, t2=0.4, t4=0.5))
    endpoint.media_in_jobs = True
    await endpoint.start()
    try:
        yield endpoint, jobs, agent
    finally:
        await endpoint.stop()


async def test_the_job_owns_the_rtp_socket_and_echoes_the_caller(
    served: tuple[SipEndpoint, InProcessJobs, EchoAgent], tmp_path: Path
) -> None:
    endpoint, jobs, agent = served
    result = await run_sipp(
        tmp_path, f"127.0.0.1:{endpoint.local_port('udp')}", "-sn", "uac_pcap", with_pcaps=True
    )
    assert result.returncode == 0, result.explain()
    await wait_for(lambda: agent.calls_finished == 1)
    (job,) = jobs.jobs
    supervisor_session = job.supervisor_call.session  # type: ignore[attr-defined]
    assert isinstance(supervisor_session, JobRtpSession)
    assert supervisor_session.stats.packets_in == 0  # not one packet reached the supervisor
    job_session = job.job_call.rtp  # type: ignore[attr-defined]
    assert job_session.local_port == supervisor_session.local_port  # the port the SDP answer named
    assert job.spec["kind"] == "rtp" and job.spec["state"]["codec"] == "PCMA"
    (call_id,) = agent.samples_echoed
    assert agent.samples_echoed[call_id] > 8000 * 5  # ~8 s of speech came in and went back out
    assert job_session.stats.packets_in > 150
    assert job_session.stats.packets_out > 200
    assert agent.digits[call_id] == ["1"]  # RFC 4733, on the job's socket
    await wait_for(lambda: endpoint.active_calls == 0)


async def test_sip_info_dtmf_reaches_the_job(
    served: tuple[SipEndpoint, InProcessJobs, EchoAgent], tmp_path: Path
) -> None:
    endpoint, jobs, agent = served
    port = endpoint.local_port("udp")
    result = await run_sipp(tmp_path, f"127.0.0.1:{port}", "-sf", str(SCENARIOS / "dtmf_info.xml"))
    assert result.returncode == 0, result.explain()
    await wait_for(lambda: agent.calls_finished == 1)
    assert list(agent.digits.values()) == [["5", "7"]]
    (job,) = jobs.jobs
    assert [m["digit"] for m in job.supervisor_link.sent if m["type"] == "dtmf"] == ["5", "7"]
    # the caller's BYE reached the job as remote_hangup, and no BYE went back
    assert any(m["type"] == "remote_hangup" for m in job.supervisor_link.sent)
    assert job.job_call.hangup_reason == "caller_hangup"


async def test_a_dead_job_gets_its_caller_a_bye_from_the_supervisor(
    served: tuple[SipEndpoint, InProcessJobs, EchoAgent], tmp_path: Path
) -> None:
    endpoint, jobs, _agent = served
    port = endpoint.local_port("udp")
    sipp = asyncio.create_task(
        run_sipp(
            tmp_path, f"127.0.0.1:{port}", "-sf", str(SCENARIOS / "uac_waits_for_bye.xml"), with_pcaps=True
        )
    )
    await asyncio.wait_for(jobs.started.wait(), 10)
    (job,) = jobs.jobs
    await wait_for(lambda: job.job_call.rtp.stats.packets_in > 25)  # type: ignore[attr-defined]
    await jobs.crash(job)
    result = await sipp
    assert result.returncode == 0, result.explain()  # sipp got our BYE and answered it
    assert job.supervisor_call.hangup_reason == "worker_crashed"
    assert "BYE" in result.log("messages.log") and "worker_crashed" in result.log("messages.log")
    await wait_for(lambda: endpoint.active_calls == 0)
