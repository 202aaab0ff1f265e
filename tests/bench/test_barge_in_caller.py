"""The scripted caller's barge-in: it talks over a reply and times how soon the agent goes quiet.

A tiny agent behind a real SipEndpoint answers every caller turn with a tone, and stops the tone
the moment it hears the caller again; the bench caller places the call from a second endpoint.
"""

from __future__ import annotations

import numpy as np
import pytest

from voxline.agent.config import SipConfig
from voxline.audio.pcm import AudioChunk
from voxline.bench.caller import ScriptedCaller
from voxline.telephony.sip.endpoint import SipEndpoint
from voxline.transports.base import CallIO

RATE = 8000
REPLY_S = 1.5


def tone(seconds: float, hz: float) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return (6000 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def caller_turn() -> AudioChunk:
    return AudioChunk(np.concatenate([np.zeros(800, np.int16), tone(0.6, 300.0)]), RATE)


class ToneAgent:
    """Replies with a tone 200 ms after the caller stops; stops it as soon as the caller talks."""

    def __init__(self) -> None:
        self.stopped_for_caller = 0

    async def __call__(self, call: CallIO) -> None:
        heard_speech, quiet = False, 0
        while (item := await call.receive()) is not None:
            if not isinstance(item, AudioChunk):
                continue
            if item.rms_dbfs() > -30:
                heard_speech, quiet = True, 0
                if call.sink.is_playing:
                    call.sink.clear()
                    self.stopped_for_caller += 1
                continue
            quiet += 1
            if heard_speech and quiet == 10:
                heard_speech = False
                await call.sink.send(AudioChunk(tone(REPLY_S, 500.0), RATE))


def config(user: str) -> SipConfig:
    # PCMU, as the bench's caller speaks (bench/calls.py). On G.722 the no-barge-in call saw the agent
    # stop once for the caller: not yet explained, noted for the G.722 work.
    return SipConfig(
        port=0,
        transports=["udp"],
        rtp_port_min=0,
        rtp_port_max=0,
        user=user,
        jitter_buffer_ms=20,
        codecs=["PCMU"],
    )


async def call_tone_agent(caller: ScriptedCaller) -> ToneAgent:
    """One SIP call over loopback from `caller` to a fresh ToneAgent; returns the agent."""
    agent = ToneAgent()
    server = SipEndpoint(config("agent"), agent)
    client = SipEndpoint(config("bench"), caller)
    await server.start()
    await client.start()
    try:
        await client.call(f"sip:agent@127.0.0.1:{server.local_port('udp')}", caller, timeout_s=5)
    finally:
        await client.stop()
        await server.stop()
    return agent


@pytest.mark.slow  # two short calls in real time: about 6 s
async def test_caller_barges_in_and_measures_the_agent_stopping() -> None:
    caller = ScriptedCaller([caller_turn(), caller_turn()], wait_for_greeting=False, barge_in_after_s=0.4)
    agent = await call_tone_agent(caller)

    first, second = caller.result.turns
    assert not first.barged_in and first.barge_in_stop_ms is None
    assert first.voice_to_voice_ms is not None and first.voice_to_voice_ms > 0
    assert second.barged_in and agent.stopped_for_caller == 1
    # the caller spoke 0.4 s into a 1.5 s reply: the reply must have stopped before the caller did
    assert second.speech_onset_wire_s is not None and first.reply_onset_s is not None
    assert second.speech_onset_wire_s - first.reply_onset_s >= 0.35
    stop = second.barge_in_stop_ms
    assert stop is not None and 0 <= stop < 600
    # and the agent answered the interrupting turn after it ended
    assert second.voice_to_voice_ms is not None and second.voice_to_voice_ms > 0


@pytest.mark.slow  # about 8 s of real-time audio
async def test_without_barge_in_the_caller_waits_for_each_reply_to_end() -> None:
    caller = ScriptedCaller([caller_turn(), caller_turn()], wait_for_greeting=False, pause_s=0.2)
    agent = await call_tone_agent(caller)

    first, second = caller.result.turns
    assert agent.stopped_for_caller == 0
    assert not second.barged_in and second.barge_in_stop_ms is None
    assert first.reply_end_s is not None and second.speech_start_wire_s > first.reply_end_s
    assert not first.sound_during_speech and not second.sound_during_speech
