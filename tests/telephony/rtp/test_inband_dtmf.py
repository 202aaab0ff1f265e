"""Keys as tones in the audio, for a SIP peer that negotiated no telephone-event: the session hears
them as key presses in order with the audio; ARI sessions (keys come as events) never look."""

from __future__ import annotations

import asyncio

from audio.test_dtmf_detect import keys_signal, to_chunk
from voxline.agent.config import SipConfig
from voxline.audio.pcm import AudioChunk
from voxline.telephony.rtp import PCMU, RtpSession
from voxline.telephony.sip.media import CallMedia
from voxline.telephony.sip.sdp import build_sdp
from voxline.transports.base import Dtmf

HOST = "127.0.0.1"


async def heard_keys(inband: bool, seconds: float) -> tuple[list[Dtmf], float]:
    sender = await RtpSession.open(HOST, 0, codec=PCMU, call_id="keys-out")
    receiver = await RtpSession.open(HOST, 0, codec=PCMU, dtmf_payload_type=None, call_id="keys-in")
    receiver.inband_dtmf = inband
    keys: list[Dtmf] = []
    audio_s = 0.0
    try:
        sender.set_remote(HOST, receiver.local_port)
        receiver.set_remote(HOST, sender.local_port)
        await sender.sink.send(to_chunk(keys_signal("42#", on_ms=80, off_ms=80, dbfs=-15)))

        async def listen() -> None:
            nonlocal audio_s
            while True:
                item = await receiver.receive()
                if isinstance(item, Dtmf):
                    keys.append(item)
                elif isinstance(item, AudioChunk):
                    audio_s += item.duration_s

        task = asyncio.create_task(listen())
        await asyncio.sleep(seconds)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    finally:
        await sender.aclose()
        await receiver.aclose()
    return keys, audio_s


async def test_inband_keys_arrive_as_key_presses() -> None:
    keys, audio_s = await heard_keys(inband=True, seconds=1.2)
    assert [k.digit for k in keys] == ["4", "2", "#"]
    assert all(60 <= k.duration_ms <= 100 for k in keys)
    assert audio_s > 0.5  # the audio itself still reaches the listener


async def test_no_inband_detection_unless_asked() -> None:
    keys, _ = await heard_keys(inband=False, seconds=0.8)
    assert keys == []


async def test_an_offer_without_telephone_event_turns_inband_detection_on() -> None:
    session = await RtpSession.open(HOST, 0, call_id="sdp")
    try:
        media = CallMedia(SipConfig(), session)
        without = build_sdp(HOST, 4000, codecs=["PCMU"], dtmf_payload_type=None, session_id=1, version=1)
        media.accept(without)
        assert session.inband_dtmf and session.dtmf_payload_type is None
        with_events = build_sdp(HOST, 4000, codecs=["PCMU"], session_id=1, version=2)
        media.accept(with_events)
        assert not session.inband_dtmf and session.dtmf_payload_type == 101
    finally:
        await session.aclose()
