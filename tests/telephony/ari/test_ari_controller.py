"""Whole calls through the ARI double: Stasis set-up, echoed RTP, DTMF, hang-ups, transfer, failures."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from telephony.ari.ari_double import AriDouble
from voxline.agent.config import AriConfig
from voxline.audio.pcm import AudioChunk
from voxline.audio.wav import read_wav
from voxline.logs import call_id_var
from voxline.telephony import CallHandler
from voxline.telephony.ari import AriAuthError
from voxline.telephony.ari.controller import MEDIA_CHANNEL_PREFIX, AriController, parse_transfer_target
from voxline.telephony.echo import EchoAgent
from voxline.transports.base import CallIO

SPEECH = Path("/usr/share/asterisk/sounds/en_US_f_Allison/hello-world.wav")

pytestmark = pytest.mark.timeout(60)


def caller_speech(rate: int = 8000) -> AudioChunk:
    if SPEECH.exists():
        return read_wav(SPEECH, target_rate=rate)
    t = np.arange(rate) / rate  # fallback: a warbling tone, still not periodic at any short lag
    return AudioChunk.from_float32(0.3 * np.sin(2 * np.pi * (300 + 200 * t) * t), rate)


@pytest.fixture
async def ari() -> AsyncIterator[AriDouble]:
    async with AriDouble() as double:
        yield double


def controller_for(ari: AriDouble, handler: CallHandler, password: str = "secret",
                   fmt: str = "ulaw", transfer_context: str | None = None) -> AriController:  # fmt: skip
    config = AriConfig(url=ari.url, username="asterisk", password=password, format=fmt)
    return AriController(config, handler, rtp_port_min=0, rtp_port_max=0, transfer_context=transfer_context)


def best_correlation(sent: np.ndarray, heard: np.ndarray) -> float:
    """Peak normalised cross-correlation of `heard` against `sent` over every lag."""
    a = sent.astype(np.float64)
    b = heard.astype(np.float64)
    full = np.correlate(b, a, mode="full")
    energy = np.sqrt(np.sum(a * a) * np.sum(b * b))
    return float(np.max(np.abs(full)) / energy) if energy else 0.0


async def test_whole_call_echo_dtmf_and_caller_hangup(ari: AriDouble) -> None:
    echo = EchoAgent()
    controller = controller_for(ari, echo)
    await controller.start()
    speech = caller_speech()
    caller = await ari.incoming_call(speech)
    await ari.wait_for(lambda: controller.active_calls == 1 and bool(ari.calls_to("POST", "/addChannel")))
    assert ari.channels[caller].state == "Up"

    media = ari.media_for(caller)
    expected_packets = speech.num_samples // 160
    await ari.wait_for(lambda: len(media.received) >= expected_packets - 5, within_s=15)
    assert all(p.payload_type == 0 and len(p.payload) == 160 for p in media.received)
    heard = media.heard()
    assert best_correlation(speech.samples, heard.samples) > 0.9

    await ari.press(caller, "5")
    await ari.wait_for(lambda: echo.digits.get(caller) == ["5"])

    external = ari.calls_to("POST", "/channels/externalMedia")[0].params
    media_id = external["channelId"]
    assert media_id.startswith(MEDIA_CHANNEL_PREFIX)
    assert external["format"] == "ulaw" and external["app"] == "voxline"
    assert external["encapsulation"] == "rtp" and external["transport"] == "udp"
    assert external["direction"] == "both"
    bridge_id = ari.calls_to("POST", "/bridges")[0].params["bridgeId"]
    assert ari.calls_to("POST", "/bridges")[0].params["type"] == "mixing"

    await ari.caller_hangup(caller)
    await ari.wait_for(lambda: controller.active_calls == 0 and echo.calls_finished == 1)
    await ari.wait_for(lambda: bridge_id in ari.deleted_bridges and media_id in ari.deleted_channels)
    assert not ari.calls_to("DELETE", f"/channels/{caller}")  # it was already gone: no DELETE
    assert ari.bridges == {} and ari.channels == {}
    await controller.stop()


async def test_agent_hangup_deletes_the_caller_channel(ari: AriDouble) -> None:
    echo = EchoAgent(hang_up_on="#")
    controller = controller_for(ari, echo)
    await controller.start()
    caller = await ari.incoming_call(caller_speech().slice_s(0, 0.3))
    await ari.wait_for(lambda: bool(ari.calls_to("POST", "/addChannel")))
    await ari.wait_for(lambda: controller.active_calls == 1 and echo.calls_started == 1)
    await ari.press(caller, "#")
    await ari.wait_for(lambda: bool(ari.calls_to("DELETE", f"/channels/{caller}")))
    await ari.wait_for(lambda: controller.active_calls == 0 and ari.channels == {} and ari.bridges == {})
    assert caller in ari.deleted_channels
    await controller.stop()


async def test_transfer_to_an_endpoint_redirects(ari: AriDouble) -> None:
    results: list[bool] = []
    call_ids: list[str] = []

    async def transferring(call: CallIO) -> None:
        call_ids.append(call_id_var.get())
        results.append(await call.transfer("PJSIP/2000"))
        while await call.receive() is not None:
            pass

    controller = controller_for(ari, transferring)
    await controller.start()
    caller = await ari.incoming_call(caller_speech().slice_s(0, 0.2))
    await ari.wait_for(lambda: results == [True])
    redirect = ari.calls_to("POST", f"/channels/{caller}/redirect")
    assert [r.params for r in redirect] == [{"endpoint": "PJSIP/2000"}]
    await ari.wait_for(lambda: controller.active_calls == 0 and ari.bridges == {})
    # the caller now belongs to the dialplan: we must not hang it up
    assert not ari.calls_to("DELETE", f"/channels/{caller}")
    assert caller in ari.channels and not ari.channels[caller].in_stasis
    assert call_ids == [caller]  # the handler's logs carry the Asterisk channel id
    await controller.stop()


async def test_transfer_to_an_extension_continues_in_dialplan(ari: AriDouble) -> None:
    results: list[bool] = []

    async def transferring(call: CallIO) -> None:
        results.append(await call.transfer("2000"))
        while await call.receive() is not None:
            pass

    controller = controller_for(ari, transferring, transfer_context="sales")
    await controller.start()
    caller = await ari.incoming_call(caller_speech().slice_s(0, 0.2))
    await ari.wait_for(lambda: results == [True])
    [request] = ari.calls_to("POST", f"/channels/{caller}/continue")
    assert request.params == {"context": "sales", "extension": "2000", "priority": "1"}
    await ari.wait_for(lambda: controller.active_calls == 0)
    await controller.stop()


async def test_refused_transfer_returns_false_and_the_call_goes_on(ari: AriDouble) -> None:
    results: list[bool] = []

    async def transferring(call: CallIO) -> None:
        results.append(await call.transfer("IAX2/elsewhere"))  # other technology: Asterisk says 422
        while await call.receive() is not None:
            pass

    controller = controller_for(ari, transferring)
    await controller.start()
    caller = await ari.incoming_call(caller_speech().slice_s(0, 0.2))
    await ari.wait_for(lambda: results == [False])
    assert controller.active_calls == 1
    await ari.caller_hangup(caller)
    await ari.wait_for(lambda: controller.active_calls == 0)
    await controller.stop()


def test_transfer_targets() -> None:
    assert parse_transfer_target("PJSIP/2000", None) == ("PJSIP/2000", None, "")
    assert parse_transfer_target("sip:bob@pbx", None) == ("PJSIP/sip:bob@pbx", None, "")
    assert parse_transfer_target("2000", "sales") == (None, "sales", "2000")
    assert parse_transfer_target("2000@support", "sales") == (None, "support", "2000")
    assert parse_transfer_target("2000", None) == (None, None, "2000")


async def test_bad_credentials_fail_start_clearly(ari: AriDouble) -> None:
    controller = controller_for(ari, EchoAgent(), password="wrong")
    with pytest.raises(AriAuthError, match="401"):
        await controller.start()
    assert ari.event_connections == 0
    await controller.stop()


async def test_reconnects_after_the_events_socket_drops(ari: AriDouble) -> None:
    echo = EchoAgent()
    controller = controller_for(ari, echo)
    await controller.start()
    first = await ari.incoming_call(caller_speech().slice_s(0, 0.3))
    await ari.wait_for(lambda: controller.active_calls == 1 and echo.calls_started == 1)
    await ari.drop_event_sockets()
    await ari.wait_for(lambda: ari.event_connections == 2 and len(ari.sockets) == 1)
    assert controller.active_calls == 1  # media does not depend on the events socket
    second = await ari.incoming_call(caller_speech().slice_s(0, 0.3))
    await ari.wait_for(lambda: echo.calls_started == 2 and controller.active_calls == 2)
    await ari.caller_hangup(first)
    await ari.caller_hangup(second)
    await ari.wait_for(lambda: controller.active_calls == 0 and echo.calls_finished == 2)
    await controller.stop()


async def test_ari_failure_ends_only_that_call(ari: AriDouble) -> None:
    echo = EchoAgent()
    controller = controller_for(ari, echo)
    await controller.start()
    healthy = await ari.incoming_call(caller_speech().slice_s(0, 0.3))
    await ari.wait_for(lambda: echo.calls_started == 1)
    ari.faults[("POST", "/channels/externalMedia")] = 500
    doomed = await ari.incoming_call(caller_speech().slice_s(0, 0.3))
    await ari.wait_for(lambda: doomed in ari.deleted_channels)  # we hung the caller up cleanly
    assert echo.calls_started == 1 and controller.active_calls == 1
    ari.faults[("POST", "/answer")] = 404  # the caller vanished before we answered
    await ari.incoming_call(caller_speech().slice_s(0, 0.3))
    await ari.wait_for(lambda: controller.active_calls == 1 and len(ari.calls_to("POST", "/answer")) == 3)
    await ari.press(healthy, "7")
    await ari.wait_for(lambda: echo.digits.get(healthy) == ["7"])
    await controller.stop()


async def test_hostile_events_are_ignored(ari: AriDouble) -> None:
    echo = EchoAgent()
    controller = controller_for(ari, echo)
    await controller.start()
    caller = await ari.incoming_call(caller_speech().slice_s(0, 0.3))
    await ari.wait_for(lambda: echo.calls_started == 1)
    for frame in ["{", "[1,2]", '{"type": "StasisStart"}', '{"type": "StasisStart", "channel": {"id": 7}}',
                  json.dumps({"type": "ChannelDtmfReceived", "digit": "xx", "channel": {"id": caller}}),
                  json.dumps({"type": "ChannelDtmfReceived", "channel": {"id": caller}}),
                  '{"type": "ChannelDestroyed", "channel": {"id": "unknown"}}']:  # fmt: skip
        await ari.send_raw(frame)
    await ari.press(caller, "9")
    await ari.wait_for(lambda: echo.digits.get(caller) == ["9"])
    assert controller.active_calls == 1
    await controller.stop()


async def test_stop_hangs_up_active_calls(ari: AriDouble) -> None:
    echo = EchoAgent()
    controller = controller_for(ari, echo)
    await controller.start()
    caller = await ari.incoming_call(caller_speech())
    await ari.wait_for(lambda: echo.calls_started == 1 and controller.active_calls == 1)
    await controller.stop()
    assert caller in ari.deleted_channels
    assert echo.calls_finished == 1
    await ari.wait_for(lambda: ari.channels == {} and ari.bridges == {})


async def test_slin16_call_echoes_wideband_audio(ari: AriDouble) -> None:
    echo = EchoAgent()
    controller = controller_for(ari, echo, fmt="slin16")
    await controller.start()
    speech = caller_speech(16000).slice_s(0, 1.0)
    caller = await ari.incoming_call(speech)
    await ari.wait_for(lambda: bool(ari.calls_to("POST", "/addChannel")))
    media = ari.media_for(caller)
    await ari.wait_for(lambda: len(media.received) >= 45, within_s=15)
    assert ari.calls_to("POST", "/channels/externalMedia")[0].params["format"] == "slin16"
    assert all(p.payload_type == 118 and len(p.payload) == 640 for p in media.received)
    assert best_correlation(speech.samples, media.heard().samples) > 0.9
    await ari.caller_hangup(caller)
    await ari.wait_for(lambda: controller.active_calls == 0)
    await controller.stop()


async def test_losing_the_external_media_channel_ends_the_call(ari: AriDouble) -> None:
    echo = EchoAgent()
    controller = controller_for(ari, echo)
    await controller.start()
    caller = await ari.incoming_call(caller_speech())
    await ari.wait_for(lambda: echo.calls_started == 1 and controller.active_calls == 1)
    media_id = ari.calls_to("POST", "/channels/externalMedia")[0].params["channelId"]
    await ari.destroy_channel(media_id)  # e.g. an admin's "channel request hangup"
    await ari.wait_for(lambda: controller.active_calls == 0 and echo.calls_finished == 1)
    assert caller in ari.deleted_channels and ari.bridges == {}
    await controller.stop()


async def test_media_announced_outside_allow_from_is_refused(ari: AriDouble) -> None:
    echo = EchoAgent()
    config = AriConfig(url=ari.url, username="asterisk", password="secret", allow_from=["192.0.2.0/24"])
    controller = AriController(config, echo, rtp_port_min=0, rtp_port_max=0)
    await controller.start()
    try:
        caller = await ari.incoming_call(caller_speech().slice_s(0, 0.3))
        # hung up (Asterisk's RTP is on 127.0.0.1); the controller forgets the call a moment after
        await ari.wait_for(lambda: caller in ari.deleted_channels and controller.active_calls == 0)
        assert echo.calls_started == 0
    finally:
        await controller.stop()
