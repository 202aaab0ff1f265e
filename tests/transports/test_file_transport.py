"""FileCall: a scripted caller on a virtual clock, answered by a tiny scripted agent."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import numpy as np
import pytest

from voxline.audio.clock import VirtualClock
from voxline.audio.levels import is_silent
from voxline.audio.pcm import AudioChunk
from voxline.audio.wav import read_wav, write_wav
from voxline.transports.base import Dtmf
from voxline.transports.file import FileCall

RATE = 16000
FRAME = 0.02


def tone(freq: float, seconds: float, rate: int = RATE, amplitude: float = 0.3) -> AudioChunk:
    t = np.arange(round(seconds * rate)) / rate
    return AudioChunk.from_float32(amplitude * np.sin(2 * np.pi * freq * t), rate)


def caller_turn(speech_s: float, trailing_silence_s: float = 0.3) -> AudioChunk:
    return AudioChunk.concat([tone(440, speech_s), AudioChunk.silence(trailing_silence_s, RATE)])


class ScriptedAgent:
    """Endpoints after `endpoint_frames` silent packets, answers with a tone, stops on barge-in."""

    def __init__(self, call: FileCall, clock: VirtualClock, reply_s: float = 1.0, greeting_s: float = 0.0):
        self.call = call
        self.clock = clock
        self.reply_s = reply_s
        self.greeting_s = greeting_s
        self.endpoint_frames = 10
        self.chunks_received: list[tuple[float, AudioChunk]] = []
        self.barge_ins: list[float] = []

    async def run(self) -> None:
        if self.greeting_s:
            await self.call.sink.send(tone(300, self.greeting_s))
            self.call.sink.flush()
        in_speech, silent_run = False, 0
        while (item := await self.call.receive()) is not None:
            assert isinstance(item, AudioChunk)
            self.chunks_received.append((self.clock.now(), item))
            if not is_silent(item):
                if not in_speech and self.call.sink.is_playing:
                    self.barge_ins.append(self.clock.now())
                    self.call.sink.clear()
                in_speech, silent_run = True, 0
            elif in_speech:
                silent_run += 1
                if silent_run >= self.endpoint_frames:
                    in_speech = False
                    await self.call.sink.send(tone(700, self.reply_s))
                    self.call.sink.flush()


async def run_call(call: FileCall, agent: ScriptedAgent) -> None:
    try:
        await asyncio.wait_for(agent.run(), timeout=30)
    finally:
        await call.aclose()


async def test_turns_arrive_in_real_time_20ms_packets_and_call_hangs_up() -> None:
    clock = VirtualClock()
    call = FileCall(
        [caller_turn(0.5), caller_turn(0.8)], pause_s=0.5, initial_wait_s=0.4, tail_s=1.0, clock=clock
    )
    agent = ScriptedAgent(call, clock, reply_s=0.6)
    await run_call(call, agent)

    times = [t for t, _ in agent.chunks_received]
    assert all(c.num_samples == 320 and c.sample_rate == RATE for _, c in agent.chunks_received)
    gaps = np.diff(times)
    # one packet per 20 ms of clock time, never faster (allowing one-tick reordering on the virtual clock)
    assert gaps.sum() == pytest.approx(FRAME * (len(times) - 1), abs=FRAME)
    assert np.median(gaps) == pytest.approx(FRAME)
    assert call.hangup_reason == "caller-hangup"
    assert await call.receive() is None

    turns = call.turns
    assert len(turns) == 2
    assert turns[0].start_s == pytest.approx(0.4, abs=FRAME)
    assert turns[0].speech_end_s == pytest.approx(turns[0].start_s + 0.5, abs=1e-3)
    # the caller waits for the agent's reply to end, then pause_s, before the next turn
    assert turns[0].reply_onset_s is not None
    reply_end = turns[0].reply_onset_s + 0.6
    assert turns[1].start_s == pytest.approx(reply_end + 0.5, abs=2 * FRAME)


async def test_caller_side_latency_measures_end_of_speech_to_agent_audio() -> None:
    clock = VirtualClock()
    call = FileCall(
        [caller_turn(0.5), caller_turn(0.5)], pause_s=0.5, initial_wait_s=0.2, tail_s=1.0, clock=clock
    )
    agent = ScriptedAgent(call, clock)
    await run_call(call, agent)
    latencies = call.caller_side_latencies()
    assert len(latencies) == 2
    for latency in latencies:
        # the agent endpoints after 10 silent 20 ms packets, so the caller hears it ~200 ms later
        assert latency is not None
        assert 0.2 - 1e-6 <= latency <= 0.2 + FRAME


async def test_first_turn_waits_for_the_greeting_to_finish() -> None:
    clock = VirtualClock()
    call = FileCall([caller_turn(0.4)], pause_s=0.7, initial_wait_s=0.3, tail_s=0.5, clock=clock)
    agent = ScriptedAgent(call, clock, greeting_s=1.5)
    await run_call(call, agent)
    greeting_onset = call.agent_onsets_s[0]
    assert call.turns[0].start_s == pytest.approx(greeting_onset + 1.5 + 0.7, abs=FRAME)


async def test_barge_in_turn_starts_after_reply_begins(tmp_path: Path) -> None:
    clock = VirtualClock()
    call = FileCall(
        [caller_turn(0.5), caller_turn(0.5)],
        barge_in_after_s=0.4,
        initial_wait_s=0.2,
        tail_s=1.0,
        clock=clock,
    )
    agent = ScriptedAgent(call, clock, reply_s=3.0)
    await run_call(call, agent)
    first, second = call.turns
    assert first.reply_onset_s is not None
    # sample-accurate: the caller starts exactly barge_in_after_s after the reply's first sound
    assert second.start_s == pytest.approx(first.reply_onset_s + 0.4, abs=1e-3)
    assert len(agent.barge_ins) == 1
    # the agent heard the talk-over in the first packet (delivered one frame after it started)
    assert agent.barge_ins[0] == pytest.approx(second.start_s + FRAME, abs=FRAME)
    # the agent stopped: its track is silent shortly after the barge-in, until its next reply
    _, agent_track = call.recording()
    stop = second.start_s + 0.1
    assert second.reply_onset_s is not None
    assert is_silent(agent_track.slice_s(stop, second.reply_onset_s - 0.01))


async def test_stereo_recording_has_caller_left_and_agent_right(tmp_path: Path) -> None:
    clock = VirtualClock()
    out = tmp_path / "call.wav"
    call = FileCall(
        [caller_turn(0.5)], initial_wait_s=0.2, tail_s=0.8, pause_s=0.3, clock=clock, record_path=out
    )
    agent = ScriptedAgent(call, clock, reply_s=0.5)
    await run_call(call, agent)

    with wave.open(str(out)) as wav:
        assert wav.getnchannels() == 2
        assert wav.getframerate() == RATE
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    left = AudioChunk(frames[:, 0].copy(), RATE)
    right = AudioChunk(frames[:, 1].copy(), RATE)
    turn = call.turns[0]
    assert turn.reply_onset_s is not None
    # the caller's tone is on the left exactly where the turn says, and only there
    assert not is_silent(left.slice_s(turn.start_s, turn.start_s + 0.5))
    assert is_silent(left.slice_s(turn.start_s + 0.51))
    assert is_silent(right.slice_s(turn.start_s, turn.speech_end_s))
    # the agent's reply is on the right, at the onset measured from the emitted frames
    assert is_silent(right.slice_s(0, turn.reply_onset_s - 0.001))
    assert not is_silent(right.slice_s(turn.reply_onset_s, turn.reply_onset_s + 0.5))
    assert frames.shape[0] / RATE >= turn.reply_onset_s + 0.5


async def test_wav_turns_at_other_rates_and_channels_are_converted(tmp_path: Path) -> None:
    path = tmp_path / "turn8k.wav"
    write_wav(path, AudioChunk.concat([tone(440, 0.5, rate=8000), AudioChunk.silence(0.2, 8000)]))
    clock = VirtualClock()
    call = FileCall([path], initial_wait_s=0.0, tail_s=0.5, clock=clock)
    agent = ScriptedAgent(call, clock, reply_s=0.3)
    await run_call(call, agent)
    assert call.turns[0].source == str(path)
    assert call.turns[0].speech_end_s == pytest.approx(call.turns[0].start_s + 0.5, abs=2e-3)
    assert read_wav(path).sample_rate == 8000


async def test_agent_hangup_ends_the_stream() -> None:
    clock = VirtualClock()
    call = FileCall([caller_turn(2.0)], initial_wait_s=0.0, clock=clock)
    received = 0
    while (item := await call.receive()) is not None:
        assert not isinstance(item, Dtmf)
        received += 1
        if received == 5:
            await call.hangup("agent-goodbye")
    assert call.hangup_reason == "agent-goodbye"
    assert await call.receive() is None
    await call.aclose()


async def test_no_reply_times_out_and_script_continues() -> None:
    clock = VirtualClock()
    call = FileCall(
        [caller_turn(0.3), caller_turn(0.3)], initial_wait_s=0.0, reply_timeout_s=1.0, tail_s=0.5, clock=clock
    )
    while await call.receive() is not None:
        pass  # a mute agent
    await call.aclose()
    assert call.caller_side_latencies() == [None, None]
    first_end = call.turns[0].speech_end_s
    assert first_end is not None
    assert call.turns[1].start_s == pytest.approx(first_end + 1.0, abs=FRAME)


ALLISON = Path("/usr/share/asterisk/sounds/en_US_f_Allison")


@pytest.mark.skipif(not (ALLISON / "hello-world.wav").exists(), reason="needs asterisk-core-sounds-en-wav")
async def test_recorded_8k_prompts_as_caller_turns() -> None:
    """Real telephone speech: the whole file is delivered at 16 kHz and its end of speech is found."""
    paths = [ALLISON / "hello-world.wav", ALLISON / "agent-pass.wav"]
    clock = VirtualClock()
    call = FileCall(paths, initial_wait_s=0.0, pause_s=0.3, tail_s=0.5, clock=clock)
    agent = ScriptedAgent(call, clock, reply_s=0.5)
    await run_call(call, agent)
    for path, turn in zip(paths, call.turns, strict=True):
        duration = read_wav(path).duration_s
        assert turn.end_s - turn.start_s == pytest.approx(duration, abs=1e-3)
        assert turn.speech_end_s is not None
        # the recordings end with ~0.1 s of room tone, which is not speech
        assert 0.5 < turn.speech_end_s - turn.start_s < duration
        assert turn.latency_s is not None
    left, _ = call.recording()
    assert not is_silent(left.slice_s(call.turns[0].start_s, call.turns[0].start_s + 1.0))


async def test_a_transfer_is_taken_by_the_line_and_ends_the_scripted_call() -> None:
    """`simulate` and voice evals: a transfer succeeds as on a PBX, and the caller's leg ends."""
    clock = VirtualClock()
    call = FileCall([caller_turn(2.0), caller_turn(2.0)], initial_wait_s=0.0, clock=clock)
    assert await call.receive() is not None
    assert await call.transfer("sip:agents@127.0.0.1")
    assert call.transferred_to == "sip:agents@127.0.0.1"
    while await call.receive() is not None:
        pass  # what was already queued drains, then the stream ends
    await call.aclose()
