"""ARI external-media calls whose RTP socket is handed to the call's job, against the ARI double."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from telephony.ari.ari_double import AriDouble
from telephony.ari.test_ari_controller import best_correlation, caller_speech, controller_for
from telephony.job_media.harness import InProcessJobs
from voxline.telephony.echo import EchoAgent
from voxline.telephony.rtp.handoff import JobRtpSession
from voxline.transports.base import CallIO

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def ari() -> AsyncIterator[AriDouble]:
    async with AriDouble() as double:
        yield double


async def test_echo_dtmf_events_and_the_agents_hangup_cross_to_and_from_the_job(ari: AriDouble) -> None:
    echo = EchoAgent(hang_up_on="#")
    jobs = InProcessJobs(echo)
    controller = controller_for(ari, jobs)
    controller.media_in_jobs = True
    await controller.start()
    speech = caller_speech()
    caller = await ari.incoming_call(speech)
    await ari.wait_for(lambda: bool(jobs.jobs))
    (job,) = jobs.jobs
    assert isinstance(job.supervisor_call.session, JobRtpSession)  # type: ignore[attr-defined]
    assert job.spec["state"]["learn_sources"] is False  # only the address Asterisk announced is heard
    media = ari.media_for(caller)
    await ari.wait_for(lambda: len(media.received) >= speech.num_samples // 160 - 5, within_s=15)
    assert best_correlation(speech.samples, media.heard().samples) > 0.9  # echoed from the job's socket
    await ari.press(caller, "5")  # a ChannelDtmfReceived event, forwarded to the job
    await ari.wait_for(lambda: echo.digits.get(caller) == ["5"])
    await ari.press(caller, "#")  # the job's agent hangs up: the supervisor deletes the channel
    await ari.wait_for(lambda: bool(ari.calls_to("DELETE", f"/channels/{caller}")))
    await ari.wait_for(lambda: controller.active_calls == 0 and ari.channels == {} and ari.bridges == {})
    await controller.stop()


async def test_a_dead_job_gets_its_caller_hung_up(ari: AriDouble) -> None:
    echo = EchoAgent()
    jobs = InProcessJobs(echo)
    controller = controller_for(ari, jobs)
    controller.media_in_jobs = True
    await controller.start()
    caller = await ari.incoming_call(caller_speech())
    await ari.wait_for(lambda: bool(jobs.jobs))
    await jobs.crash(jobs.jobs[0])
    await ari.wait_for(lambda: bool(ari.calls_to("DELETE", f"/channels/{caller}")))
    await ari.wait_for(lambda: controller.active_calls == 0 and ari.bridges == {})
    assert jobs.jobs[0].supervisor_call.hangup_reason == "worker_crashed"
    await controller.stop()


async def test_a_transfer_asked_by_the_job_is_carried_out_by_the_supervisor(ari: AriDouble) -> None:
    results: list[bool] = []

    async def transferring(call: CallIO) -> None:  # runs in the job, on its RtpCallInJob
        results.append(await call.transfer("PJSIP/2000"))
        while await call.receive() is not None:
            pass

    jobs = InProcessJobs(transferring)
    controller = controller_for(ari, jobs)
    controller.media_in_jobs = True
    await controller.start()
    caller = await ari.incoming_call(caller_speech().slice_s(0, 0.2))
    await ari.wait_for(lambda: results == [True])
    redirect = ari.calls_to("POST", f"/channels/{caller}/redirect")
    assert [r.params for r in redirect] == [{"endpoint": "PJSIP/2000"}]
    await ari.wait_for(lambda: controller.active_calls == 0 and ari.bridges == {})
    assert not ari.calls_to("DELETE", f"/channels/{caller}")  # the dialplan has the caller now
    assert jobs.jobs[0].job_link.sent[0] == {"type": "transfer", "target": "PJSIP/2000"}
    await controller.stop()
