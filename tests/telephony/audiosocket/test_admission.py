"""Who gets an AudioSocket call, on real loopback sockets: the source allow-list, the call budget
shared with the other ways in (refused with a reason in the log), and the idle timeout."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest

from telephony.asterisk_audiosocket import AsteriskAudioSocket, frame
from telephony.audiosocket.helpers import RecordingHandler, wait_until
from voxline.capacity import CallCapacity
from voxline.telephony.audiosocket import AudioSocketServer
from voxline.telephony.echo import EchoAgent

pytestmark = pytest.mark.timeout(30)


async def _read_all(reader: asyncio.StreamReader) -> bytes:
    try:
        return await asyncio.wait_for(reader.read(), 2.0)
    except ConnectionResetError:
        return b""


async def test_a_source_outside_the_allow_list_is_closed_unanswered() -> None:
    handler = RecordingHandler(EchoAgent())
    server = AudioSocketServer("127.0.0.1", 0, handler, allow_from=["127.0.0.1/32"])
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port, local_addr=("127.0.0.2", 0))
        writer.write(frame(0x01, uuid.uuid4().bytes) + frame(0x10, bytes(320)))
        assert await _read_all(reader) == b""  # no hangup frame, no call
        writer.close()
        assert handler.calls == [] and server.allow_list.refused == 1
        async with AsteriskAudioSocket(server.port) as listed:  # 127.0.0.1 is listed
            await listed.stream(seconds=0.1)
            assert await wait_until(lambda: len(handler.calls) == 1)
    finally:
        await server.stop()


async def test_over_the_shared_budget_the_call_is_refused_with_a_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="voxline.telephony.audiosocket")
    budget = CallCapacity(1)
    handler = RecordingHandler(EchoAgent())
    server = AudioSocketServer("127.0.0.1", 0, handler, capacity=budget)
    await server.start()
    held = budget.try_acquire("sip")  # a SIP call holds the only slot
    assert held is not None
    try:
        refused = AsteriskAudioSocket(server.port)
        await refused.connect()
        assert await refused.wait_ended(2.0)
        assert refused.kinds_received == [0x00]  # a hangup frame, then the socket closes
        assert "at capacity (1 calls)" in caplog.text
        assert budget.refused["audiosocket"] == 1 and handler.calls == []
        await refused.close()
        held.release()
        async with AsteriskAudioSocket(server.port) as admitted:
            await admitted.stream(seconds=0.1)
            assert await wait_until(lambda: len(handler.calls) == 1)
            assert budget.describe()["active"] == {"audiosocket": 1}
            assert getattr(handler.calls[0], "capacity_slot", None) is not None  # the runner adopts it
    finally:
        await server.stop()
    assert budget.active == 0


async def test_a_peer_that_goes_silent_is_hung_up_after_the_idle_timeout() -> None:
    handler = RecordingHandler(EchoAgent())
    server = AudioSocketServer("127.0.0.1", 0, handler, idle_timeout_s=0.5)
    await server.start()
    try:
        async with AsteriskAudioSocket(server.port) as silent:  # the UUID, then nothing at all
            assert await silent.wait_ended(3.0)
            assert silent.end_reason == "hangup"
        assert handler.calls[0].hangup_reason == "idle_timeout"
    finally:
        await server.stop()
