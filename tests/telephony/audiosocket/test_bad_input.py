"""Hostile or broken peers: each one loses its own connection, a concurrent call carries on."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest

from telephony.asterisk_audiosocket import AsteriskAudioSocket, frame, speech_clip
from telephony.audiosocket.helpers import RecordingHandler, wait_until
from voxline.telephony.audiosocket import AudioSocketServer
from voxline.telephony.echo import EchoAgent

UUID_FRAME = frame(0x01, uuid.uuid4().bytes)

BAD_PEERS = {
    "unknown_kind": (UUID_FRAME + frame(0x42, b"hi"), "unknown frame kind 0x42"),
    "odd_audio": (UUID_FRAME + frame(0x10, bytes(321)), "whole 16-bit samples"),
    "empty_audio": (UUID_FRAME + frame(0x12), "whole 16-bit samples"),
    "short_dtmf": (UUID_FRAME + frame(0x03), "DTMF frame must carry 1"),
    "short_uuid": (frame(0x01, bytes(15)), "UUID frame must carry 16"),
    "oversized": (UUID_FRAME + b"\x10\xff\xfe" + bytes(1000), "longer than 200 ms at 8000 Hz"),
    "oversized_48k": (UUID_FRAME + frame(0x16, bytes(40000)), "longer than 200 ms at 48000 Hz"),
    "garbage": (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "unknown frame kind 0x47"),
    "audio_before_uuid": (frame(0x10, bytes(320)) + UUID_FRAME, "before its UUID"),
    "no_uuid": (b"", "sent no UUID within"),
    "half_header": (b"\x01\x00", "sent no UUID within"),
}


@pytest.mark.parametrize("case", sorted(BAD_PEERS))
async def test_bad_peer_is_closed_and_other_call_is_unaffected(
    case: str, caplog: pytest.LogCaptureFixture
) -> None:
    wire, log_text = BAD_PEERS[case]
    echo = EchoAgent()
    server = AudioSocketServer("127.0.0.1", 0, RecordingHandler(echo), first_frame_timeout_s=0.4)
    await server.start()
    caplog.set_level(logging.INFO, logger="voxline.telephony.audiosocket")
    good = AsteriskAudioSocket(server.port, kind=0x12)
    bad = AsteriskAudioSocket(server.port)
    try:
        await good.connect()
        streaming = asyncio.create_task(good.stream(speech_clip(16000, 1.2)))
        await asyncio.sleep(0.2)
        await bad.connect(send_uuid=False)
        if wire:
            await bad.send_raw(wire)
        assert await bad.wait_ended(2.0), "the server left the bad connection open"
        assert await wait_until(lambda: bad.closed_by_server_at is not None, 1.0)
        assert all(k in (0x00,) for k in bad.kinds_received)  # at most a polite hangup frame
        assert not good.ended.is_set()
        assert await streaming == 60
        assert await wait_until(lambda: len(good.sound_frames) >= 60, 2.0)
        assert b"".join(f.payload for f in good.sound_frames) == b"".join(good.sent_audio)
        assert server.active_calls == 1
    finally:
        await good.close()
        await bad.close()
        await server.stop()
    assert server.active_calls == 0
    assert log_text in caplog.text


async def test_truncated_frame_then_close_ends_the_call_cleanly() -> None:
    handler = RecordingHandler(EchoAgent())
    server = AudioSocketServer("127.0.0.1", 0, handler)
    await server.start()
    try:
        ast = AsteriskAudioSocket(server.port)
        await ast.connect()
        await ast.send_raw(b"\x10\x01\x40" + bytes(100))  # promises 320 bytes, sends 100
        assert await wait_until(lambda: server.active_calls == 1)
        await ast.close()
        assert await wait_until(lambda: server.active_calls == 0)
        assert handler.calls[0].hangup_reason == "caller_disconnected"
    finally:
        await server.stop()


async def test_handler_crash_hangs_up_only_that_call() -> None:
    async def broken(call: object) -> None:
        raise RuntimeError("handler bug")

    server = AudioSocketServer("127.0.0.1", 0, broken)
    await server.start()
    try:
        async with AsteriskAudioSocket(server.port) as ast:
            assert await ast.wait_ended(2.0)
            assert ast.end_reason == "hangup"
        assert await wait_until(lambda: server.active_calls == 0)
    finally:
        await server.stop()
