"""AudioSocket calls whose connection is handed to the call's job, against the Asterisk simulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from telephony.asterisk_audiosocket import AsteriskAudioSocket, frame, speech_clip
from telephony.audiosocket.helpers import wait_until
from telephony.job_media.harness import InProcessJobs
from voxline.telephony.audiosocket import AudioSocketServer
from voxline.telephony.audiosocket.handoff import JobAudioSocketCall
from voxline.telephony.echo import EchoAgent

pytestmark = pytest.mark.timeout(30)

Served = tuple[AudioSocketServer, InProcessJobs, EchoAgent]


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    agent = EchoAgent(hang_up_on="#")
    jobs = InProcessJobs(agent)
    server = AudioSocketServer("127.0.0.1", 0, jobs, first_frame_timeout_s=0.5)
    server.media_in_jobs = True
    await server.start()
    try:
        yield server, jobs, agent
    finally:
        await server.stop()


async def test_the_job_echoes_on_the_handed_over_connection(served: Served) -> None:
    server, jobs, agent = served
    async with AsteriskAudioSocket.application_form(server.port) as ast:
        sent = await ast.stream(speech_clip(8000, 1.0))
        await ast.send_dtmf("4")
        assert await wait_until(lambda: len(ast.sound_frames) >= sent, 3.0)
        assert b"".join(f.payload for f in ast.sound_frames) == b"".join(ast.sent_audio)
        (job,) = jobs.jobs
        assert isinstance(job.supervisor_call, JobAudioSocketCall)
        assert job.supervisor_call.label == str(ast.uuid)
        assert job.job_call.call_id == job.supervisor_call.call_id  # one id on both sides
        assert await wait_until(lambda: agent.digits.get(job.job_call.call_id) == ["4"])
        await ast.send_dtmf("#")  # the agent hangs up: from the job, on its socket
        assert await ast.wait_ended()
    assert ast.end_reason == "hangup", ast.end_reason  # the job's hangup frame, not a timeout
    assert await wait_until(lambda: server.active_calls == 0)
    assert job.supervisor_call.hangup_reason == "agent_ended"


async def test_audio_sent_with_the_uuid_reaches_the_job(served: Served) -> None:
    server, _jobs, _agent = served
    ast = AsteriskAudioSocket(server.port)
    await ast.connect(send_uuid=False)
    clip = speech_clip(8000, 0.2).to_bytes()
    frames = [clip[i : i + 320] for i in range(0, len(clip), 320)]
    # one write: the supervisor reads the UUID and these frames together, the job must get them
    await ast.send_raw(frame(0x01, ast.uuid.bytes) + b"".join(frame(0x10, f) for f in frames))
    ast.sent_audio.extend(frames)
    assert await wait_until(lambda: len(ast.sound_frames) >= len(frames), 3.0)
    assert b"".join(f.payload for f in ast.sound_frames)[: len(clip)] == clip
    await ast.close()
    assert await wait_until(lambda: server.active_calls == 0)


async def test_a_dead_job_gets_its_caller_the_hangup_frame(served: Served) -> None:
    server, jobs, _agent = served
    async with AsteriskAudioSocket.application_form(server.port) as ast:
        streaming = asyncio.create_task(ast.stream(seconds=3.0))
        assert await wait_until(lambda: bool(jobs.jobs) and len(ast.audio_frames) > 10, 3.0)
        await jobs.crash(jobs.jobs[0])
        assert await ast.wait_ended(3.0)
        streaming.cancel()
    assert ast.end_reason == "hangup", ast.end_reason  # the supervisor's frame, then close
    assert await wait_until(lambda: server.active_calls == 0)
    assert jobs.jobs[0].supervisor_call.hangup_reason == "worker_crashed"
