"""Whole SIP calls on the real default stack, through `serve`'s SIP listener.

- baresip (a real softphone) dials the agent, plays a recorded question as its microphone and records
  what it hears: the recording, transcribed back, holds the greeting and a spoken answer.
- voxline's own SIP user agent places the call with the scripted caller on it, which measures
  voice-to-voice from the caller's side of the wire.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from server.ws_harness import LiveServer
from speech import caller_turns, word_recall
from telephony.peers import baresip
from voxline.agent.config import AgentConfig, AudioSocketConfig, SipConfig, TelephonyConfig, load_agent
from voxline.audio.pcm import AudioChunk
from voxline.audio.resample import resample
from voxline.audio.wav import read_wav, write_wav
from voxline.bench.caller import ScriptedCaller
from voxline.engines.base import Engines
from voxline.server.app import create_app
from voxline.server.telephony import TelephonyService
from voxline.telephony.sip.endpoint import SipEndpoint
from voxline.transports.base import CallIO

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def _sip_only(agent: AgentConfig) -> AgentConfig:
    sip = SipConfig(port=0).model_copy(update={"rtp_port_min": 0, "rtp_port_max": 0})
    telephony = TelephonyConfig(sip=sip, audiosocket=AudioSocketConfig(enabled=False))
    return agent.model_copy(update={"telephony": telephony})


@pytest.fixture
def sip_server(
    bank_agent: AgentConfig, real_engines: Engines, tmp_path: Path
) -> Iterator[tuple[int, LiveServer]]:
    agent = _sip_only(bank_agent)
    service = TelephonyService(agent)
    app = create_app(agent, engines=real_engines, db_path=tmp_path / "calls.sqlite3", services=[service])
    with LiveServer(app) as server:
        yield service.sip.local_port("udp"), server


@pytest.mark.skipif(shutil.which("baresip") is None, reason="baresip-core is not installed")
async def test_baresip_hears_the_agent_answer_its_recorded_question(
    sip_server: tuple[int, LiveServer], transcriber: object, tmp_path: Path
) -> None:
    port, server = sip_server
    question_path, _ = caller_turns()[13]
    question = resample(read_wav(question_path), 8000)
    # baresip hangs up when its microphone file ends: greeting time, the question, then time to answer
    microphone = AudioChunk.concat([AudioChunk.silence(7.0, 8000), question, AudioChunk.silence(7.0, 8000)])
    mic_path = tmp_path / "microphone.wav"
    write_wav(mic_path, microphone)
    result = await baresip.call(f"sip:agent@127.0.0.1:{port}", mic_path, tmp_path / "baresip", seconds=19)
    assert result.heard is not None, result.log[-2000:]
    heard = read_wav(result.heard)  # only what arrived: the agent's silences are not in the file
    assert heard.duration_s > 4.0, "baresip heard nothing or only part of the greeting"
    heard_text = (await transcriber.transcribe(heard)).text  # type: ignore[attr-defined]
    async with httpx.AsyncClient(base_url=server.http) as client:
        calls = (await client.get("/calls")).json()
        record = (await client.get(f"/calls/{calls[0]['call_id']}")).json()
    assert record["transport"] == "sip"
    greeting, answer = record["turns"][0], record["turns"][1]
    assert answer["user_text"], record  # the agent heard baresip's question
    assert answer["agent_text"], record
    assert word_recall(greeting["agent_text"], heard_text) > 0.6, heard_text
    assert word_recall(answer["agent_text"], heard_text) > 0.5, (answer["agent_text"], heard_text)


async def test_sip_caller_measures_voice_to_voice_over_the_wire(sip_server: tuple[int, LiveServer]) -> None:
    port, _ = sip_server
    turns = [read_wav(path) for path, _ in (caller_turns()[13], caller_turns()[0])]
    caller = ScriptedCaller(turns, pause_s=0.5)
    config = SipConfig(port=0, transports=["udp"], user="caller", jitter_buffer_ms=20)
    config = config.model_copy(update={"rtp_port_min": 0, "rtp_port_max": 0})
    endpoint = SipEndpoint(config, caller)
    await endpoint.start()
    try:
        reason = await endpoint.call(f"sip:agent@127.0.0.1:{port}", caller, timeout_s=10)
    finally:
        await endpoint.stop()
    assert reason == "caller_done", reason  # the caller hung up after its script
    result = caller.result
    assert result.greeting_onset_s is not None
    assert len(result.turns) == 2
    for turn in result.turns:
        assert turn.voice_to_voice_ms is not None, turn
        assert 0 < turn.voice_to_voice_ms < 5000, turn


class KeypadCaller:
    """Waits for the menu, presses keys by RFC 4733 over RTP, listens, hangs up."""

    def __init__(self, presses: list[tuple[float, str]], listen_s: float) -> None:
        self.presses = presses
        self.listen_s = listen_s
        self.heard_s = 0.0

    async def __call__(self, call: CallIO) -> None:
        async def listen() -> None:
            while (item := await call.receive()) is not None:
                if isinstance(item, AudioChunk) and np.abs(item.samples).max(initial=0) > 1000:
                    self.heard_s += item.duration_s

        listener = asyncio.create_task(listen())
        for delay, keys in self.presses:
            await asyncio.sleep(delay)
            assert await call.send_dtmf(keys), "DTMF could not be sent"
        await asyncio.sleep(self.listen_s)
        listener.cancel()
        await call.hangup("caller_done")


async def test_keypad_menu_over_sip_with_rfc4733(real_engines: Engines, tmp_path: Path) -> None:
    ivr_agent = _sip_only(load_agent(Path(__file__).parents[2] / "examples" / "agents" / "bank-ivr.yaml"))
    service = TelephonyService(ivr_agent)
    app = create_app(ivr_agent, engines=real_engines, db_path=tmp_path / "calls.sqlite3", services=[service])
    caller = KeypadCaller([(9.0, "2"), (6.0, "1")], listen_s=8.0)
    config = SipConfig(port=0, transports=["udp"], user="caller")
    config = config.model_copy(update={"rtp_port_min": 0, "rtp_port_max": 0})
    with LiveServer(app) as server:
        endpoint = SipEndpoint(config, caller)
        await endpoint.start()
        try:
            await endpoint.call(f"sip:agent@127.0.0.1:{service.sip.local_port('udp')}", caller, timeout_s=10)
        finally:
            await endpoint.stop()
        async with httpx.AsyncClient(base_url=server.http) as client:
            calls = (await client.get("/calls")).json()
            record = (await client.get(f"/calls/{calls[0]['call_id']}")).json()
    keyed = [t for t in record["turns"] if t["dtmf"]]
    assert [t["dtmf"] for t in keyed] == ["2", "1"], record["turns"]
    assert "card" in keyed[0]["agent_full_text"].lower(), keyed[0]  # the cards menu prompt
    assert keyed[1]["agent_full_text"], keyed[1]  # the model answered the caller's card question
    assert caller.heard_s > 5.0
