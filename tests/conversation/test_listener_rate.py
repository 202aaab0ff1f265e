"""The listener resamples the caller's audio from the rate each chunk carries, not from the rate the
call guessed when it started: an AudioSocket call says 8 kHz until Asterisk's first audio frame shows
slin16 (issue 11's deaf agent: 16 kHz audio read as 8 kHz came out twice as long, an octave down)."""

from __future__ import annotations

import numpy as np

from conversation.fakes import CollectingSink, FakeVADStream
from conversation.test_conversation import make_agent
from voxline.audio.clock import VirtualClock
from voxline.audio.pcm import AudioChunk, Float32Array
from voxline.conversation.listener import Listener, ListenerEvent, UserTurn
from voxline.transports.base import CallIO, Dtmf


class RecordingVAD(FakeVADStream):
    """Loud frames are speech; keeps every frame it was shown (at its 16 kHz rate)."""

    def __init__(self) -> None:
        super().__init__(level=0.05)
        self.frames: list[Float32Array] = []

    def probability(self, frame: Float32Array) -> float:
        self.frames.append(frame)
        return super().probability(frame)

    @property
    def heard(self) -> np.ndarray:
        return np.concatenate(self.frames) if self.frames else np.zeros(0, np.float32)


class GuessingCall(CallIO):
    """A call that announced 8 kHz when it started (as AudioSocketCall does before the first frame)."""

    def __init__(self) -> None:
        super().__init__("rate-test", 8000, CollectingSink(8000))

    async def receive(self) -> AudioChunk | Dtmf | None:
        return None

    async def hangup(self, reason: str = "normal") -> None:
        pass


def tone(seconds: float, rate: int, hz: float = 440.0, level: float = 0.3) -> AudioChunk:
    t = np.arange(round(seconds * rate)) / rate
    return AudioChunk.from_float32((level * np.sin(2 * np.pi * hz * t)).astype(np.float32), rate)


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[int(np.argmax(spectrum))])


def feed_in_frames(listener: Listener, audio: AudioChunk, start: float) -> float:
    """Hand `audio` to the listener as 20 ms chunks arriving in real time; returns the end time."""
    step = round(audio.sample_rate * 0.02)
    now = start
    for i in range(0, audio.num_samples, step):
        now += 0.02
        listener.feed(AudioChunk(audio.samples[i : i + step], audio.sample_rate), now)
    return now


def make_listener(vad: RecordingVAD, events: list[ListenerEvent]) -> Listener:
    agent = make_agent()
    return Listener(GuessingCall(), vad, agent, VirtualClock(), events.append)


def test_16k_audio_on_a_call_that_started_at_8k_is_heard_at_its_own_rate() -> None:
    vad = RecordingVAD()
    events: list[ListenerEvent] = []
    listener = make_listener(vad, events)
    end = feed_in_frames(listener, tone(1.0, 16000), 0.0)
    feed_in_frames(listener, AudioChunk.silence(0.6, 16000), end)
    heard = vad.heard
    assert abs(heard.size / 16000 - 1.6) < 0.05  # real time, not twice as long
    assert abs(dominant_hz(heard[:16000], 16000) - 440) < 5  # the caller's pitch, not an octave down
    turns = [e for e in events if isinstance(e, UserTurn)]
    assert len(turns) == 1
    assert abs(turns[0].t_last_speech - turns[0].t_onset - 1.0) < 0.07


def test_a_rate_change_mid_call_rebuilds_the_resampler() -> None:
    vad = RecordingVAD()
    listener = make_listener(vad, [])
    end = feed_in_frames(listener, tone(0.5, 8000), 0.0)
    feed_in_frames(listener, tone(0.5, 16000), end)
    heard = vad.heard
    assert abs(heard.size / 16000 - 1.0) < 0.05
    second_half = heard[9000:16000]
    assert abs(dominant_hz(second_half, 16000) - 440) < 5
